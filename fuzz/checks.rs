//! The properties the fuzz targets check, shared with `cargo test`, which
//! replays every input kept in `tests/fuzz-regressions/`.

use csvd::codec::body::{parse, BodyKind};
use csvd::store::dialect::{self, Declared};
use csvd::store::{decode_log, parse_csv, parse_declared, parse_written, write_csv};

/// Any bytes as a request body: a parse error or records, never a panic;
/// outside JSON (declared, or a form or text body that is JSON), no field
/// name is empty.
pub fn body(kind: BodyKind, data: &[u8]) {
    let json_like = std::str::from_utf8(data).is_ok_and(|text| {
        let text = text.trim_start_matches('\u{feff}').trim_start();
        text.starts_with('{') || text.starts_with('[')
    });
    if let Ok(parsed) = parse(kind, data) {
        if kind != BodyKind::Json && kind != BodyKind::Ndjson && !json_like {
            assert!(parsed.records.columns.iter().all(|name| !name.is_empty()));
        }
    }
}

/// Any bytes as a table file: an explained refusal, or a table that writes
/// back to CSV and reads again as the same table.
pub fn csv_file(data: &[u8]) {
    let Ok((columns, rows, layout)) = parse_csv(data) else {
        return;
    };
    let mut out = Vec::new();
    write_csv(&mut out, &columns, rows.iter(), layout).expect("writing to memory");
    let (again_columns, again_rows, _) =
        parse_written(&out, layout).expect("what we write reads back");
    assert_eq!(columns, again_columns);
    if !columns.is_empty() {
        assert_eq!(rows.len(), again_rows.len());
        for (a, b) in rows.iter().zip(&again_rows) {
            assert!(a.cells(columns.len()).eq(b.cells(columns.len())));
        }
    }
}

/// Any bytes through the dialect sniffer: detecting the encoding, quote,
/// delimiter and header never panics; and a file read in the dialect
/// detected (or declared headerless) is written back in it, and that
/// file reads as the same table in the same dialect and writes back
/// byte for byte the same.
pub fn dialect_sniff(data: &[u8]) {
    if let Ok(decoded) = dialect::decode(data) {
        let text = decoded.text.as_bytes();
        let body = match dialect::sep_line(&decoded.text) {
            Some((_, len)) => &text[len..],
            None => text,
        };
        let quote = match dialect::sniff_quote(body) {
            dialect::Quoted::Quote(q) => q,
            dialect::Quoted::Ambiguous => b'"',
        };
        if let dialect::Sniffed::Delimiter(d) = dialect::sniff_with(body, quote) {
            let _ = dialect::headerless(body, d, quote);
        }
    }
    for declared in [
        Declared::default(),
        Declared {
            header: Some(false),
            ..Declared::default()
        },
    ] {
        let Ok((columns, rows, layout)) = parse_declared(data, declared) else {
            continue;
        };
        let mut out = Vec::new();
        write_csv(&mut out, &columns, rows.iter(), layout).expect("writing to memory");
        let (again_columns, again_rows, again) =
            parse_written(&out, layout).expect("what we write reads back");
        assert_eq!(columns, again_columns);
        assert_eq!(
            (again.delimiter, again.quote, again.encoding, again.header),
            (
                layout.delimiter,
                layout.quote,
                layout.encoding,
                layout.header
            )
        );
        assert_eq!(rows.len(), again_rows.len());
        for (a, b) in rows.iter().zip(&again_rows) {
            assert!(a.cells(columns.len()).eq(b.cells(columns.len())));
        }
        let mut twice = Vec::new();
        write_csv(&mut twice, &again_columns, again_rows.iter(), layout)
            .expect("writing to memory");
        assert_eq!(
            out, twice,
            "a file csvd wrote is written back byte for byte"
        );
    }
}

/// Any bytes as a log segment: recovery reads a prefix of whole records
/// and stops cleanly at the first torn or corrupt one.
pub fn wal(data: &[u8]) {
    let decoded = decode_log(data);
    assert!(decoded.valid_len <= data.len());
    assert_eq!(decoded.problem.is_none(), decoded.valid_len == data.len());
}

/// Any text as a query string on a table: a precise refusal or a query,
/// never a panic.
pub fn query(data: &[u8]) {
    let columns = ["id", "name", "age", "city"].map(String::from);
    let raw = String::from_utf8_lossy(data);
    if let Err(err) = csvd::query::parse(&raw, &columns) {
        assert!(!err.to_string().is_empty());
    }
}
