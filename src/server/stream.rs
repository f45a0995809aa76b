//! Answer bodies of many rows: rendered whole when small, streamed in
//! chunks when large. A streamed answer holds the store's stream of rows;
//! the next chunk is rendered only when
//! the connection has taken the previous one, so a request's memory stays
//! bounded whatever the table's size, a slow reader only slows itself,
//! and a client that goes away drops the stream.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::codec::repr::{Format, RowWriter};
use crate::store::dialect;
use crate::store::schema::Types;
use crate::store::{Row, RowStream, Written};

/// How a CSV answer is written for the client that asked: its delimiter,
/// a byte-order mark, and its character set (`?delimiter=`, `?bom=1`,
/// `Accept: text/csv; charset=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOut {
    pub delimiter: u8,
    pub bom: bool,
    pub encoding: &'static encoding_rs::Encoding,
    /// Labelled `text/tab-separated-values` (`/t.tsv`).
    pub tsv: bool,
}

impl Default for CsvOut {
    fn default() -> CsvOut {
        CsvOut {
            delimiter: b',',
            bom: false,
            encoding: encoding_rs::UTF_8,
            tsv: false,
        }
    }
}

impl CsvOut {
    /// A piece of the answer, rendered as UTF-8, in the answer's charset;
    /// a character the charset has not is a 422.
    fn encode(&self, text: Vec<u8>) -> crate::store::Result<Vec<u8>> {
        if self.encoding == encoding_rs::UTF_8 {
            return Ok(text);
        }
        let mut out = Vec::with_capacity(text.len() * 2);
        let mut encoder = dialect::Encode::new(&mut out, self.encoding);
        std::io::Write::write_all(&mut encoder, &text).map_err(|err| {
            crate::store::Error::Unencodable(format!(
                "the answer cannot be sent in {}: {err}; ask for UTF-8 (Accept: text/csv) instead",
                self.encoding.name()
            ))
        })?;
        Ok(out)
    }
}

/// Renders rows piece by piece: a page's rows by the page, the other
/// formats by the codec.
enum Writer {
    Data(RowWriter),
    /// The rows of `table`'s page (the page draws everything around them).
    Page {
        table: String,
        width: usize,
        id_col: Option<usize>,
    },
}

impl Writer {
    fn new(
        format: Format,
        columns: Arc<Vec<String>>,
        id_col: Option<usize>,
        table: &str,
        csv_safe: bool,
        types: &Types,
    ) -> Writer {
        match format.data() {
            Some(data) => Writer::Data(RowWriter::new(data, columns, csv_safe).typed(types)),
            None => Writer::Page {
                table: table.to_string(),
                width: columns.len(),
                id_col,
            },
        }
    }

    fn begin(&mut self, out: &mut Vec<u8>) {
        if let Writer::Data(writer) = self {
            writer.begin(out);
        }
    }

    fn row(&mut self, out: &mut Vec<u8>, row: &Row) {
        match self {
            Writer::Data(writer) => writer.row(out, row),
            Writer::Page {
                table,
                width,
                id_col,
            } => crate::page::write_row(out, table, *width, *id_col, row),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if let Writer::Data(writer) = self {
            writer.end(out);
        }
    }
}

/// Answers of more rows than this are streamed rather than rendered whole
/// (whole answers get a `Content-Length`).
const STREAM_ABOVE_ROWS: usize = 1_000;
/// Target size of one streamed chunk: large enough to amortise the
/// per-chunk cost, small enough to keep per-request memory low.
const CHUNK_BYTES: usize = 64 * 1024;

/// The rows of an answer as the store hands them over, maybe narrowed to
/// some columns (`_fields`).
pub struct Rows {
    columns: Arc<Vec<String>>,
    id_col: Option<usize>,
    rows: RowStream,
    fields: Option<Vec<usize>>,
    types: Types,
}

impl Rows {
    pub fn new(
        columns: Arc<Vec<String>>,
        id_col: Option<usize>,
        rows: RowStream,
        fields: Option<Vec<usize>>,
    ) -> Rows {
        Rows {
            columns,
            id_col,
            rows,
            fields,
            types: Types::default(),
        }
    }

    /// The same rows, JSON cells rendered by the columns' datatypes.
    pub fn typed(self, types: Types) -> Rows {
        Rows { types, ..self }
    }

    /// The writer for these rows: the table's columns, or the chosen ones.
    fn writer(&self, format: Format, title: &str, csv_safe: bool) -> Writer {
        match &self.fields {
            None => Writer::new(
                format,
                self.columns.clone(),
                self.id_col,
                title,
                csv_safe,
                &self.types,
            ),
            Some(fields) => {
                let columns = fields.iter().map(|&c| self.columns[c].clone()).collect();
                let id_col = fields.iter().position(|&c| Some(c) == self.id_col);
                Writer::new(
                    format,
                    Arc::new(columns),
                    id_col,
                    title,
                    csv_safe,
                    &self.types,
                )
            }
        }
    }

    /// The body of the answer in `format`; `csv_safe` neutralises CSV
    /// cells that spreadsheets would run as formulas. A few rows are
    /// rendered whole (the answer gets a `Content-Length`); more are
    /// streamed as they arrive. A store error before the first byte is
    /// the answer's error; after it, it ends the stream.
    pub async fn into_body(
        self,
        format: Format,
        title: &str,
        csv_safe: bool,
    ) -> crate::store::Result<Body> {
        self.into_csv_body(format, title, csv_safe, CsvOut::default())
            .await
    }

    /// [`Rows::into_body`], a CSV answer written as `csv` says.
    pub async fn into_csv_body(
        mut self,
        format: Format,
        title: &str,
        csv_safe: bool,
        csv: CsvOut,
    ) -> crate::store::Result<Body> {
        let mut writer = self.writer(format, title, csv_safe);
        if let Writer::Data(data) = writer {
            writer = Writer::Data(data.delimited(csv.delimiter));
        }
        let csv = match format {
            Format::Csv => csv,
            _ => CsvOut::default(),
        };
        let fields = self.fields.take();
        let mut first = Vec::new();
        let mut ended = false;
        while first.len() <= STREAM_ABOVE_ROWS {
            match self.rows.next().await {
                Some(row) => first.push(row?),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        writer.begin(&mut out);
        for row in &first {
            writer.row(&mut out, &project(row, fields.as_deref()));
        }
        let mut bom = if csv.bom {
            dialect::bom_of(csv.encoding).to_vec()
        } else {
            Vec::new()
        };
        if ended {
            writer.end(&mut out);
            bom.extend(csv.encode(out)?);
            return Ok(Body::from(bom));
        }
        // The first rows are checked before the answer begins; a later
        // character the charset has not cuts the answer short.
        bom.extend(csv.encode(out)?);
        let out = bom;
        let head = futures_util::stream::once(async move { Ok(Bytes::from(out)) });
        let state = (self.rows, writer, fields, false);
        let chunks = futures_util::stream::unfold(
            state,
            move |(mut rows, mut writer, fields, done)| async move {
                if done {
                    return None;
                }
                let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
                let mut finished = false;
                while chunk.len() < CHUNK_BYTES {
                    match rows.next().await {
                        Some(Ok(row)) => writer.row(&mut chunk, &project(&row, fields.as_deref())),
                        Some(Err(err)) => {
                            tracing::warn!("an answer was cut short: {err}");
                            return Some((Err(err), (rows, writer, fields, true)));
                        }
                        None => {
                            finished = true;
                            break;
                        }
                    }
                }
                if finished {
                    writer.end(&mut chunk);
                }
                match csv.encode(chunk) {
                    Ok(chunk) => Some((Ok(Bytes::from(chunk)), (rows, writer, fields, finished))),
                    Err(err) => {
                        tracing::warn!("an answer was cut short: {err}");
                        Some((Err(err), (rows, writer, fields, true)))
                    }
                }
            },
        );
        // A body may be asked for more after it has ended (the compressor
        // does, looking for trailers); the fused stream answers "no more"
        // for ever instead of failing.
        Ok(Body::from_stream(head.chain(chunks).fuse()))
    }
}

/// The rows a write created, as its answer: streamed like any other
/// answer of many rows, so a bulk write's answer is never held whole.
pub async fn written(
    format: Format,
    title: &str,
    written: Written,
    csv_safe: bool,
    types: Types,
) -> Body {
    let rows = futures_util::stream::iter(written.rows.into_iter().map(Ok));
    let rows = Rows::new(written.columns, written.id_col, Box::pin(rows), None).typed(types);
    // Rows already in memory: nothing can fail while they are rendered.
    rows.into_body(format, title, csv_safe)
        .await
        .unwrap_or_else(|_| Body::empty())
}

/// A row with only the chosen cells, in the chosen order.
fn project<'a>(row: &'a Row, fields: Option<&[usize]>) -> Cow<'a, Row> {
    match fields {
        None => Cow::Borrowed(row),
        Some(fields) => Cow::Owned(Row::from_cells(fields.iter().map(|&c| row.get(c)))),
    }
}
