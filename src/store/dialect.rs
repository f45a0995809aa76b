//! How a table file is written: its encoding, byte-order mark, `sep=`
//! line, delimiter and line ends, detected when it is read so that every
//! rewrite keeps them.
//!
//! The encoding is told from the bytes: a byte-order mark (UTF-8, UTF-16
//! LE or BE), else valid UTF-8, else the legacy encoding the whole file
//! reads best in (Windows-1252, CP949/EUC-KR, Shift-JIS, GBK, Big5, …).
//! The delimiter is a `sep=` first line's, or the one of `,` `;` tab `|`
//! that the header line and a bounded sample of the rows agree on; the
//! quote character (`"` or `'`) and whether the first line is a header
//! are told from the same sample. Files that could be read more than one
//! way are refused, never guessed; a [`Declared`] dialect says what
//! detection would not.

use std::borrow::Cow;
use std::io::{self, Write};

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

/// The delimiters a file may use, in the order they are preferred.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Rows the delimiter is judged on, at most; and bytes, roughly.
pub const SAMPLE_ROWS: usize = 200;
const SAMPLE_BYTES: u64 = 64 * 1024;

/// The text of a file and the encoding it was in.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub encoding: &'static Encoding,
    pub bom: bool,
}

/// The file's bytes as text: a byte-order mark decides, else UTF-8 when the
/// bytes are UTF-8, else the legacy encoding the whole file reads best in.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, String> {
    decode_as(bytes, None)
}

/// [`decode`], in `known` unless a byte-order mark says otherwise or the
/// bytes are not in it.
pub fn decode_as<'a>(
    bytes: &'a [u8],
    known: Option<&'static Encoding>,
) -> Result<Decoded<'a>, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok(Decoded {
                text: Cow::Borrowed(text),
                encoding: UTF_8,
                bom: true,
            }),
            Err(err) => Err(not_utf8(rest, &err)),
        };
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return with_bom(UTF_16LE, rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return with_bom(UTF_16BE, rest);
    }
    if let Some(text) = known
        .filter(|e| !is_unicode(e))
        .and_then(|e| e.decode_without_bom_handling_and_without_replacement(bytes))
    {
        return Ok(Decoded {
            text,
            encoding: known.unwrap_or(UTF_8),
            bom: false,
        });
    }
    let err = match std::str::from_utf8(bytes) {
        Ok(text) => {
            return Ok(Decoded {
                text: Cow::Borrowed(text),
                encoding: UTF_8,
                bom: false,
            })
        }
        Err(err) => err,
    };
    // UTF-8 characters before a byte that is not: a damaged UTF-8 file,
    // not a file in another encoding.
    if !bytes[..err.valid_up_to()].is_ascii() {
        return Err(not_utf8(bytes, &err));
    }
    // The first lines with other bytes guess; the guess stands if every
    // byte of the file reads in it and would be written back the same.
    // Else (or if those lines were all of them) the detector is given
    // every such line and decides.
    let (guess, seen_all) = detect_legacy(bytes, Some(GUESS_BYTES));
    if !seen_all {
        if let Some(text) = guess
            .decode_without_bom_handling_and_without_replacement(bytes)
            .filter(|text| encodes_back(guess, text, bytes))
        {
            return Ok(Decoded {
                text,
                encoding: guess,
                bom: false,
            });
        }
    }
    let encoding = if seen_all {
        guess
    } else {
        detect_legacy(bytes, None).0
    };
    match encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        // Only a file that would be written back byte for byte is read:
        // a rewrite must never change what was not edited.
        Some(text) if !encodes_back(encoding, &text, bytes) => Err(format!(
            "the file is not UTF-8, and reads closest to {} but not in a way it would be written back the same; convert the file to UTF-8",
            encoding.name()
        )),
        Some(text) => Ok(Decoded {
            text,
            encoding,
            bom: false,
        }),
        None => Err(format!(
            "{} (nor {}, which it reads closest to); save the file as UTF-8",
            not_utf8(bytes, &err).trim_end_matches(" (save the file as UTF-8)"),
            encoding.name()
        )),
    }
}

/// Bytes of lines that are not ASCII the detector guesses from first.
const GUESS_BYTES: usize = 64 * 1024;

/// The legacy encoding bytes read best in, and whether every line was
/// seen. Every line that holds a byte that is not ASCII goes to the
/// detector, whole (its ASCII neighbours tell single-byte encodings
/// apart), until `limit` bytes of them have; lines of ASCII alone carry
/// no evidence and are skipped.
fn detect_legacy(bytes: &[u8], limit: Option<usize>) -> (&'static Encoding, bool) {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let limit = limit.unwrap_or(usize::MAX);
    let mut fed = 0;
    // Runs of lines with other bytes are fed at once; between them, a
    // line end keeps the lines apart, as in the file.
    let mut run: Option<usize> = None;
    let mut start = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if fed + run.map_or(0, |from| start - from) >= limit {
            break;
        }
        let end = start + line.len();
        match (line.is_ascii(), run) {
            (false, None) => run = Some(start),
            (true, Some(from)) => {
                detector.feed(&bytes[from..start], false);
                fed += start - from;
                run = None;
            }
            _ => {}
        }
        start = end;
    }
    if let Some(from) = run {
        detector.feed(&bytes[from..start], false);
    }
    let seen_all = start == bytes.len();
    detector.feed(b"", true);
    (
        detector.guess(None, chardetng::Utf8Detection::Deny),
        seen_all,
    )
}

/// How many bytes the character starting with `lead` (then `next`) takes
/// in `encoding`, for the encodings whose characters stand alone (the
/// same bytes always read as the same character, written back so or not
/// wherever it is); `None` when that is not known.
fn width(encoding: &'static Encoding, lead: u8, next: Option<u8>) -> Option<usize> {
    use encoding_rs::{BIG5, EUC_JP, EUC_KR, GBK, SHIFT_JIS};
    if lead < 0x80 || encoding.is_single_byte() {
        return Some(1);
    }
    if encoding == EUC_KR || encoding == BIG5 {
        (lead >= 0x81).then_some(2)
    } else if encoding == GBK {
        match (lead, next) {
            (0x80, _) => Some(1),
            // Four-byte sequences: not known here.
            (_, Some(0x30..=0x39)) => None,
            _ => Some(2),
        }
    } else if encoding == SHIFT_JIS {
        match lead {
            0x80 | 0xA0..=0xDF | 0xFD..=0xFF => Some(1),
            _ => Some(2),
        }
    } else if encoding == EUC_JP {
        matches!(lead, 0x8E | 0xA1..=0xFE).then_some(2)
    } else {
        None
    }
}

/// Which characters of one or two bytes read and write back the same,
/// learnt as they are met (a file uses few of the 65,536).
struct Known {
    seen: Vec<u64>,
    good: Vec<u64>,
}

impl Known {
    fn new() -> Known {
        Known {
            seen: vec![0; 1024],
            good: vec![0; 1024],
        }
    }

    fn round_trips(&mut self, encoding: &'static Encoding, seq: &[u8]) -> bool {
        let key = match seq {
            [b] => usize::from(*b),
            [a, b] => (usize::from(*a) << 8) | usize::from(*b),
            _ => return false,
        };
        let (word, bit) = (key / 64, 1u64 << (key % 64));
        if self.seen[word] & bit == 0 {
            let good = encoding
                .decode_without_bom_handling_and_without_replacement(seq)
                .is_some_and(|text| *encoding.encode(&text).0 == *seq);
            self.seen[word] |= bit;
            if good {
                self.good[word] |= bit;
            }
        }
        self.good[word] & bit != 0
    }
}

/// Whether bytes' characters each write back as they read, when the
/// encoding's characters stand alone ([`width`]); `None` when they hold
/// one that is not known so.
fn line_round_trips(encoding: &'static Encoding, line: &[u8], known: &mut Known) -> Option<bool> {
    let mut i = 0;
    while i < line.len() {
        let lead = line[i];
        if lead < 0x80 {
            // Runs of ASCII, passed at once.
            i += line[i..]
                .iter()
                .position(|&b| b >= 0x80)
                .unwrap_or(line.len() - i);
            continue;
        }
        let n = width(encoding, lead, line.get(i + 1).copied())?;
        let seq = line.get(i..i + n)?;
        if !known.round_trips(encoding, seq) {
            return Some(false);
        }
        i += n;
    }
    Some(true)
}

/// Whether `text` (decoded from `bytes` in `encoding`) encodes back to
/// exactly `bytes`, checked a line at a time without a copy of the file.
/// A line end is the same byte in every encoding read here (never part of
/// a character), and an ASCII line reads as itself, so only the lines
/// with other bytes are encoded again.
fn encodes_back(encoding: &'static Encoding, text: &str, bytes: &[u8]) -> bool {
    let mut known = Known::new();
    // Characters that stand alone: each is checked where it is, with no
    // need to encode the text again.
    if let Some(same) = line_round_trips(encoding, bytes, &mut known) {
        return same;
    }
    let mut encoder = encoding.new_encoder();
    let mut out = Vec::new();
    let mut lines = bytes.split(|&b| b == b'\n');
    for line in text.split('\n') {
        let Some(original) = lines.next() else {
            return false;
        };
        if original.is_ascii() {
            if line.as_bytes() != original {
                return false;
            }
            continue;
        }
        match line_round_trips(encoding, original, &mut known) {
            Some(true) => continue,
            Some(false) => return false,
            None => {}
        }
        let room = encoder
            .max_buffer_length_from_utf8_without_replacement(line.len())
            .unwrap_or(line.len() * 4 + 16);
        out.clear();
        out.resize(room, 0);
        let (result, read, written) =
            encoder.encode_from_utf8_without_replacement(line, &mut out, false);
        if result != encoding_rs::EncoderResult::InputEmpty
            || read != line.len()
            || out[..written] != *original
        {
            return false;
        }
    }
    lines.next().is_none()
}

fn with_bom<'a>(encoding: &'static Encoding, rest: &'a [u8]) -> Result<Decoded<'a>, String> {
    match encoding.decode_without_bom_handling_and_without_replacement(rest) {
        Some(text) => Ok(Decoded {
            text,
            encoding,
            bom: true,
        }),
        None => Err(format!(
            "the file starts with a {} byte-order mark but is not valid {} (save the file as UTF-8)",
            encoding.name(),
            encoding.name()
        )),
    }
}

fn not_utf8(bytes: &[u8], err: &std::str::Utf8Error) -> String {
    let line = bytes[..err.valid_up_to()]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    format!("line {line}: the file is not valid UTF-8 (save the file as UTF-8)")
}

/// The encoding a charset label names: the WHATWG Encoding Standard's
/// labels, and the Windows code page names spreadsheets use (`cp949`,
/// `cp932`, `cp936`, `cp950`). `None` for one not known (or `replacement`).
pub fn charset(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches('"').to_ascii_lowercase();
    let label = match label.as_str() {
        "cp949" | "ms949" | "uhc" => "euc-kr",
        "cp932" | "ms932" => "shift_jis",
        "cp936" | "ms936" => "gbk",
        "cp950" | "ms950" => "big5",
        other => other,
    };
    Encoding::for_label(label.as_bytes()).filter(|e| *e != encoding_rs::REPLACEMENT)
}

/// A delimiter as a person reads it.
pub fn delimiter_name(delimiter: u8) -> String {
    match delimiter {
        b',' => "commas".to_string(),
        b';' => "semicolons".to_string(),
        b'\t' => "tabs".to_string(),
        other => format!("{:?}", char::from(other)),
    }
}

/// A `sep=X` first line (as spreadsheets write): the delimiter, and the
/// length of the line with its line end.
pub fn sep_line(text: &str) -> Option<(u8, usize)> {
    let rest = text.get(..4)?;
    if !rest.eq_ignore_ascii_case("sep=") {
        return None;
    }
    let delimiter = *text.as_bytes().get(4)?;
    if !DELIMITERS.contains(&delimiter) {
        return None;
    }
    let after = &text.as_bytes()[5..];
    let end = if after.starts_with(b"\r\n") {
        2
    } else if after.starts_with(b"\n") || after.starts_with(b"\r") {
        1
    } else if after.is_empty() {
        0
    } else {
        return None;
    };
    Some((delimiter, 5 + end))
}

/// What reading a file's header and sample said about its delimiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// This one, with the column count it gives the header.
    Delimiter(u8),
    /// More than one delimiter reads the header and sample equally well.
    Ambiguous(Vec<u8>),
}

/// What a file's dialect is declared to be (a request's `?delimiter=`,
/// `?quote=`, `?header=` and `charset=`; a metadata file's `dialect`).
/// Each part given is taken as it is; detection decides only the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    pub delimiter: Option<u8>,
    pub quote: Option<u8>,
    pub encoding: Option<&'static Encoding>,
    /// `Some(false)`: the first line is a row, not names.
    pub header: Option<bool>,
}

/// The quote characters a file may use, the first preferred.
pub const QUOTES: [u8; 2] = [b'"', b'\''];

/// A delimiter named in a request: itself, or `tab`.
pub fn delimiter_named(name: &str) -> Result<u8, String> {
    match name {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ => match name.as_bytes() {
            [d] if DELIMITERS.contains(d) => Ok(*d),
            _ => Err(format!("delimiter={name:?}: expected one of , ; | or tab")),
        },
    }
}

/// A quote character named in a request: `"` or `'`.
pub fn quote_named(name: &str) -> Result<u8, String> {
    match name.as_bytes() {
        [q] if QUOTES.contains(q) => Ok(*q),
        _ => Err(format!("quote={name:?}: expected \" or '")),
    }
}

/// A header switch named in a request: `1`/`true`/`yes` or `0`/`false`/`no`.
pub fn header_named(name: &str) -> Result<bool, String> {
    match name.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "present" => Ok(true),
        "0" | "false" | "no" | "absent" => Ok(false),
        _ => Err(format!(
            "header={name:?}: expected 1 (the first line names the columns) or 0 (it is a row)"
        )),
    }
}

/// What reading a file's header and sample said about its quote character.
#[derive(Debug, PartialEq, Eq)]
pub enum Quoted {
    /// This one.
    Quote(u8),
    /// Fields are quoted with both, and they read the file differently.
    Ambiguous,
}

/// Fields in a sample that open with `quote` at the start of a line or
/// after a delimiter and close with it before a delimiter or line end.
fn quoted_fields(text: &[u8], quote: u8) -> usize {
    let boundary = |b: u8| matches!(b, b'\n' | b'\r') || DELIMITERS.contains(&b);
    let mut count = 0;
    let mut i = 0;
    while i < text.len() {
        if text[i] == quote && (i == 0 || boundary(text[i - 1])) {
            let mut j = i + 1;
            let mut close = None;
            while j < text.len() {
                if text[j] == quote {
                    if text.get(j + 1) == Some(&quote) {
                        j += 2;
                        continue;
                    }
                    close = Some(j);
                    break;
                }
                j += 1;
            }
            if let Some(j) = close.filter(|&j| text.get(j + 1).is_none_or(|&b| boundary(b))) {
                count += 1;
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    count
}

/// The sample detection looks at: the whole header line, then about
/// [`SAMPLE_BYTES`] more.
fn sample(text: &[u8]) -> &[u8] {
    let header = text
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| i + 1);
    &text[..text.len().min(header + SAMPLE_BYTES as usize)]
}

/// Picks the quote character of CSV text (after any mark and `sep=`
/// line): `"` unless fields in the header line and sample open and close
/// with `'`, and reading with `'` fits more rows to the header exactly
/// (or quotes the whole header, with nothing quoted by `"`). Both quoting
/// fields, and reading differently: ambiguous.
pub fn sniff_quote(text: &[u8]) -> Quoted {
    let sample = sample(text);
    if quoted_fields(sample, b'\'') == 0 {
        return Quoted::Quote(b'"');
    }
    let (_, double) = score(sample, b'"');
    let (single_sniffed, single) = score(sample, b'\'');
    let doubles = quoted_fields(sample, b'"');
    if single > double {
        return if doubles == 0 {
            Quoted::Quote(b'\'')
        } else {
            Quoted::Ambiguous
        };
    }
    let header_quoted = match single_sniffed {
        Sniffed::Delimiter(d) => {
            let line = sample.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            !line.is_empty()
                && line
                    .split(|&b| b == d)
                    .all(|f| f.len() >= 2 && f[0] == b'\'' && f[f.len() - 1] == b'\'')
        }
        Sniffed::Ambiguous(_) => false,
    };
    if single == double && header_quoted && doubles == 0 {
        Quoted::Quote(b'\'')
    } else {
        Quoted::Quote(b'"')
    }
}

/// Picks the delimiter of CSV text (after any mark and `sep=` line): each
/// candidate splits the whole header line and up to [`SAMPLE_ROWS`] rows;
/// one that gives the header two columns or more and no row more fields
/// than the header is possible, and of those the one most rows fit
/// exactly wins. A tie is ambiguous. No candidate possible: commas (a
/// one-column file, or one whose rows are too long, as the full read says).
pub fn sniff(text: &[u8]) -> Sniffed {
    sniff_with(text, b'"')
}

/// [`sniff`], with fields quoted by `quote`.
pub fn sniff_with(text: &[u8], quote: u8) -> Sniffed {
    score(text, quote).0
}

/// [`sniff_with`], and how many rows the winner fits exactly.
fn score(text: &[u8], quote: u8) -> (Sniffed, usize) {
    let mut best: Vec<(u8, usize, usize)> = Vec::new();
    let mut fallback: Option<(u8, usize)> = None;
    for &delimiter in &DELIMITERS {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote)
            .flexible(true)
            .has_headers(false)
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let width = match reader.read_byte_record(&mut record) {
            Ok(true) => record.len(),
            _ => continue,
        };
        if width < 2 {
            continue;
        }
        let mut exact = 0;
        let mut fits = true;
        for _ in 0..SAMPLE_ROWS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                _ => break,
            }
            match record.len() {
                n if n == width => exact += 1,
                n if n > width => {
                    fits = false;
                    break;
                }
                _ => {}
            }
            if record.position().is_some_and(|p| p.byte() > SAMPLE_BYTES) {
                break;
            }
        }
        if !fits {
            if fallback.is_none_or(|(_, w)| width > w) {
                fallback = Some((delimiter, width));
            }
            continue;
        }
        best.push((delimiter, exact, width));
    }
    let Some(top) = best.iter().map(|&(_, exact, _)| exact).max() else {
        return (Sniffed::Delimiter(fallback.map_or(b',', |(d, _)| d)), 0);
    };
    let winners: Vec<u8> = best
        .iter()
        .filter(|&&(_, exact, _)| exact == top)
        .map(|&(d, _, _)| d)
        .collect();
    match winners[..] {
        [one] => (Sniffed::Delimiter(one), top),
        _ => (Sniffed::Ambiguous(winners), top),
    }
}

/// A cell that reads as a number: digits, with a sign, a decimal point
/// (or a decimal comma, in a file not separated by commas) and an
/// exponent. Not `inf` nor `NaN`, which name things.
pub fn is_number(cell: &str, delimiter: u8) -> bool {
    let cell = cell.trim();
    let cell = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (mantissa, exponent) = match cell.find(['e', 'E']) {
        Some(at) => (&cell[..at], Some(&cell[at + 1..])),
        None => (cell, None),
    };
    let mut digits = 0;
    let mut points = 0;
    for c in mantissa.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => points += 1,
            ',' if delimiter != b',' => points += 1,
            _ => return false,
        }
    }
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    digits > 0 && points <= 1 && exponent_ok
}

/// Whether the first line of CSV text reads as a row rather than names:
/// every cell of it that is not empty is a number, and the rows of the
/// sample have numbers (or nothing) in those columns too. What was seen,
/// said for a person, when it does. A header of names is never doubted:
/// only numbers over numbers (`1,2,3` above `4,5,6`) are taken for data.
pub fn headerless(text: &[u8], delimiter: u8, quote: u8) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .flexible(true)
        .has_headers(false)
        .from_reader(sample(text));
    let mut record = csv::StringRecord::new();
    if !matches!(reader.read_record(&mut record), Ok(true)) {
        return None;
    }
    let first: Vec<String> = record.iter().map(str::to_string).collect();
    if !first.iter().any(|c| !c.is_empty())
        || !first
            .iter()
            .all(|c| c.is_empty() || is_number(c, delimiter))
    {
        return None;
    }
    let mut rows = 0;
    for _ in 0..SAMPLE_ROWS {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            _ => break,
        }
        rows += 1;
        let text_under_number = first.iter().zip(record.iter()).any(|(head, cell)| {
            !head.is_empty() && !cell.is_empty() && !is_number(cell, delimiter)
        });
        if text_under_number {
            return None;
        }
    }
    let line = first
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(&char::from(delimiter).to_string());
    Some(if rows == 0 {
        format!("the only line {line:?} is numbers, not names of columns")
    } else {
        format!(
            "the first line {line:?} is numbers, as the rows below it are, not names of columns"
        )
    })
}

/// Which fields a file quotes, kept so that a rewrite quotes the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quoting {
    /// Only fields that need it (a delimiter, quote or line end inside).
    #[default]
    Needed,
    /// Every field.
    All,
    /// Every field that is not a number.
    NonNumeric,
}

/// How the header and first row of `text` quote their fields: every
/// field of both quoted is [`Quoting::All`]; every field of the header
/// and every one of the row but its numbers is [`Quoting::NonNumeric`];
/// anything else quotes only what it must.
pub fn quoting(text: &[u8], delimiter: u8, quote: u8) -> Quoting {
    let mut records: Vec<Vec<(bool, bool)>> = Vec::new();
    let mut fields = Vec::new();
    let mut i = 0;
    while i < text.len() && records.len() < 2 {
        // One field: quoted or not, and whether it reads as a number.
        let quoted = text[i] == quote;
        let start = i;
        if quoted {
            i += 1;
            while i < text.len() {
                if text[i] == quote {
                    if text.get(i + 1) == Some(&quote) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
        }
        while i < text.len() && !matches!(text[i], b'\r' | b'\n') && text[i] != delimiter {
            i += 1;
        }
        let cell = std::str::from_utf8(&text[start..i]).unwrap_or_default();
        let numeric = !quoted && !cell.is_empty() && cell.parse::<f64>().is_ok();
        fields.push((quoted, numeric));
        match text.get(i) {
            Some(&b) if b == delimiter => i += 1,
            _ => {
                while i < text.len() && matches!(text[i], b'\r' | b'\n') {
                    i += 1;
                }
                records.push(std::mem::take(&mut fields));
            }
        }
    }
    let [header, row] = &records[..] else {
        return Quoting::Needed;
    };
    if !header.iter().all(|&(quoted, _)| quoted) {
        return Quoting::Needed;
    }
    if row.iter().all(|&(quoted, _)| quoted) {
        Quoting::All
    } else if row.iter().all(|&(quoted, numeric)| quoted || numeric) {
        Quoting::NonNumeric
    } else {
        Quoting::Needed
    }
}

/// Whether every character of `text` can be written in `encoding`; the
/// first that cannot.
pub fn unencodable(encoding: &'static Encoding, text: &str) -> Option<char> {
    if is_unicode(encoding) || text.is_ascii() {
        return None;
    }
    let (_, _, errors) = encoding.encode(text);
    if !errors {
        return None;
    }
    let mut buf = [0u8; 4];
    text.chars()
        .find(|c| encoding.encode(c.encode_utf8(&mut buf)).2)
}

fn is_unicode(encoding: &'static Encoding) -> bool {
    encoding == UTF_8 || encoding == UTF_16LE || encoding == UTF_16BE
}

/// A writer that takes UTF-8 and writes it in another encoding; a
/// character the encoding has not is an error (nothing is replaced).
pub struct Encode<W: Write> {
    inner: W,
    encoding: &'static Encoding,
    encoder: encoding_rs::Encoder,
    /// The start of a character split between two writes.
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl<W: Write> Encode<W> {
    pub fn new(inner: W, encoding: &'static Encoding) -> Encode<W> {
        Encode {
            inner,
            encoding,
            encoder: encoding.new_encoder(),
            pending: Vec::new(),
            out: Vec::new(),
        }
    }

    fn encode(&mut self, text: &str) -> io::Result<()> {
        self.out.clear();
        if self.encoding == UTF_16LE || self.encoding == UTF_16BE {
            let le = self.encoding == UTF_16LE;
            for unit in text.encode_utf16() {
                let bytes = if le {
                    unit.to_le_bytes()
                } else {
                    unit.to_be_bytes()
                };
                self.out.extend_from_slice(&bytes);
            }
        } else {
            let room = self
                .encoder
                .max_buffer_length_from_utf8_without_replacement(text.len())
                .unwrap_or(text.len() * 4 + 16);
            self.out.resize(room, 0);
            let (result, _, written) =
                self.encoder
                    .encode_from_utf8_without_replacement(text, &mut self.out, false);
            if let encoding_rs::EncoderResult::Unmappable(c) = result {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{c:?} cannot be written in {}", self.encoding.name()),
                ));
            }
            self.out.truncate(written);
        }
        self.inner.write_all(&self.out)
    }
}

impl<W: Write> Write for Encode<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(buf);
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")),
        };
        let text = std::str::from_utf8(&pending[..valid]).unwrap_or_default();
        self.encode(text)?;
        pending.drain(..valid);
        self.pending = pending;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The byte-order mark of an encoding.
pub fn bom_of(encoding: &'static Encoding) -> &'static [u8] {
    if encoding == UTF_16LE {
        b"\xFF\xFE"
    } else if encoding == UTF_16BE {
        b"\xFE\xFF"
    } else if encoding == UTF_8 {
        b"\xEF\xBB\xBF"
    } else {
        b""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_told_from_header_and_rows() {
        assert_eq!(sniff(b"id,name\n1,kim\n"), Sniffed::Delimiter(b','));
        assert_eq!(sniff(b"id;name\n1;kim\n"), Sniffed::Delimiter(b';'));
        assert_eq!(sniff(b"id\tname\n1\tkim\n"), Sniffed::Delimiter(b'\t'));
        assert_eq!(sniff(b"id|name\n1|kim\n"), Sniffed::Delimiter(b'|'));
        // Decimal commas in a semicolon file; semicolons in comma cells.
        assert_eq!(sniff(b"id;price\n1;2,5\n2;3,0\n"), Sniffed::Delimiter(b';'));
        assert_eq!(sniff(b"id,note\n1,a;b\n"), Sniffed::Delimiter(b','));
        assert_eq!(sniff(b"id,a;b\n1,x\n"), Sniffed::Delimiter(b','));
        // One column: commas, whatever else is in the name.
        assert_eq!(sniff(b"name\nkim\n"), Sniffed::Delimiter(b','));
        assert_eq!(sniff(b""), Sniffed::Delimiter(b','));
        // Ragged rows still count for the delimiter they fit.
        assert_eq!(sniff(b"a;b;c\n1;2\n1;2;3\n"), Sniffed::Delimiter(b';'));
        // Quoted delimiters and newlines are inside cells.
        assert_eq!(
            sniff(b"id;text\n1;\"a,b\nc,d\"\n"),
            Sniffed::Delimiter(b';')
        );
    }

    #[test]
    fn a_header_that_reads_two_ways_with_nothing_to_decide_is_ambiguous() {
        assert_eq!(sniff(b"a;b,c\n"), Sniffed::Ambiguous(vec![b',', b';']));
        assert_eq!(
            sniff(b"a,b;c,d\n1,2;3,4\n"),
            Sniffed::Ambiguous(vec![b',', b';'])
        );
        // Rows decide.
        assert_eq!(sniff(b"a;b,c\n1;2\n"), Sniffed::Delimiter(b';'));
    }

    #[test]
    fn quoting_is_told_from_the_header_and_first_row() {
        assert_eq!(
            quoting(b"\"id\",\"name\"\n\"1\",\"kim\"\n", b',', b'"'),
            Quoting::All
        );
        assert_eq!(
            quoting(b"\"id\";\"name\"\r\n1;\"a;\"\"b\"\"\"\r\n", b';', b'"'),
            Quoting::NonNumeric
        );
        assert_eq!(quoting(b"id,name\n1,kim\n", b',', b'"'), Quoting::Needed);
        assert_eq!(
            quoting(b"\"id\",name\n\"1\",kim\n", b',', b'"'),
            Quoting::Needed
        );
        assert_eq!(quoting(b"\"id\"\n", b',', b'"'), Quoting::Needed);
    }

    #[test]
    fn quote_characters_are_told_from_header_and_rows() {
        assert_eq!(sniff_quote(b"id,name\n1,kim\n"), Quoted::Quote(b'"'));
        assert_eq!(sniff_quote(b"id,name\n1,\"a,b\"\n"), Quoted::Quote(b'"'));
        // Quoting with apostrophes that keeps delimiters inside cells.
        assert_eq!(
            sniff_quote(b"id;name\n1;'a;b'\n2;'c'\n"),
            Quoted::Quote(b'\'')
        );
        // A header quoted whole with apostrophes, nothing else to tell.
        assert_eq!(
            sniff_quote(b"'id','name'\n'1','kim'\n"),
            Quoted::Quote(b'\'')
        );
        // Apostrophes in text are text.
        assert_eq!(
            sniff_quote(b"name,era\nkim,'90s\nlee,rock 'n' roll'\n"),
            Quoted::Quote(b'"')
        );
        assert_eq!(sniff_quote(b"id,note\n1,'x'\n2,'y'\n"), Quoted::Quote(b'"'));
        // Both, reading differently: refused.
        assert_eq!(sniff_quote(b"id,a,b\n1,\"x\",'z,w'\n"), Quoted::Ambiguous);
    }

    #[test]
    fn a_first_line_of_numbers_over_numbers_is_not_a_header() {
        assert!(headerless(b"1,2,3\n4,5,6\n", b',', b'"').is_some());
        assert!(headerless(b"1;2,5\n4;5,0\n", b';', b'"').is_some());
        assert!(headerless(b"1,,3\n", b',', b'"').is_some());
        assert!(headerless(b"id,name\n1,kim\n", b',', b'"').is_none());
        assert!(headerless(b"name,2024\nkim,5\n", b',', b'"').is_none());
        assert!(headerless(b"2023,2024\nkim,lee\n", b',', b'"').is_none());
        assert!(headerless(b"inf,nan\n1,2\n", b',', b'"').is_none());
        assert!(headerless(b"", b',', b'"').is_none());
        assert!(headerless(b",\n1,2\n", b',', b'"').is_none());
        assert!(is_number("-1.5e3", b',') && is_number("2,5", b';'));
        assert!(!is_number("2,5", b',') && !is_number("1.2.3", b',') && !is_number("e5", b','));
    }

    #[test]
    fn declared_names() {
        assert_eq!(delimiter_named(";"), Ok(b';'));
        assert_eq!(delimiter_named("tab"), Ok(b'\t'));
        assert!(delimiter_named("x").is_err());
        assert_eq!(quote_named("'"), Ok(b'\''));
        assert!(quote_named("`").is_err());
        assert_eq!(header_named("0"), Ok(false));
        assert!(header_named("maybe").is_err());
    }

    #[test]
    fn sep_lines() {
        assert_eq!(sep_line("sep=;\r\na;b\r\n"), Some((b';', 7)));
        assert_eq!(sep_line("SEP=,\na\n"), Some((b',', 6)));
        assert_eq!(sep_line("sep=\t"), Some((b'\t', 5)));
        assert_eq!(sep_line("sep=;x\n"), None);
        assert_eq!(sep_line("sep,x\n"), None);
        assert_eq!(sep_line("se"), None);
    }

    #[test]
    fn encodings_are_told_from_the_bytes() {
        let d = decode("id,이름\n".as_bytes()).unwrap();
        assert_eq!((d.encoding, d.bom), (UTF_8, false));
        let d = decode(b"\xEF\xBB\xBFid\n").unwrap();
        assert_eq!((d.encoding, d.bom, &*d.text), (UTF_8, true, "id\n"));
        let d = decode(b"\xFF\xFEi\0d\0").unwrap();
        assert_eq!((d.encoding, &*d.text), (UTF_16LE, "id"));
        let d = decode(b"\xFE\xFF\0i\0d").unwrap();
        assert_eq!((d.encoding, &*d.text), (UTF_16BE, "id"));
        let korean = "이름,도시\n김민준,서울특별시\n이서연,부산광역시\n박지호,대구광역시\n";
        let (bytes, _, _) = encoding_rs::EUC_KR.encode(korean);
        let d = decode(&bytes).unwrap();
        assert_eq!((d.encoding, &*d.text), (encoding_rs::EUC_KR, korean));
        let latin = "name,city\nZoë,Zürich\nRenée,Besançon\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(latin);
        let d = decode(&bytes).unwrap();
        assert_eq!((d.encoding, &*d.text), (encoding_rs::WINDOWS_1252, latin));
        // Damaged UTF-8 is not taken for another encoding.
        let err = decode(b"a\n\xed\x95\x9c\nb\xff").err().unwrap();
        assert!(err.contains("line 3") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn a_large_legacy_file_is_guessed_from_its_first_lines_and_checked_whole() {
        let mut korean = String::from("이름,도시\n");
        for i in 0..40_000 {
            korean.push_str(&format!("김민준{i},서울특별시\n"));
        }
        let (bytes, _, _) = encoding_rs::EUC_KR.encode(&korean);
        assert!(bytes.len() > 2 * GUESS_BYTES);
        assert!(!detect_legacy(&bytes, Some(GUESS_BYTES)).1);
        let d = decode(&bytes).unwrap();
        assert_eq!((d.encoding, &*d.text), (encoding_rs::EUC_KR, &*korean));
        // A byte past the guessed part that the guess cannot read: the
        // whole file goes to the detector, and is refused as before.
        let mut broken = bytes.to_vec();
        broken.extend_from_slice(b"\xff\xff\n");
        assert!(decode(&broken).is_err());
        // Characters that would be written back otherwise are refused.
        let mut known = Known::new();
        assert_eq!(
            line_round_trips(
                encoding_rs::EUC_KR,
                &encoding_rs::EUC_KR.encode("김,x").0,
                &mut known
            ),
            Some(true)
        );
        assert_eq!(
            line_round_trips(encoding_rs::BIG5, b"\x88\x62", &mut known),
            Some(false)
        );
    }

    #[test]
    fn encoding_writes_refuse_what_they_cannot_write() {
        let mut out = Vec::new();
        let mut w = Encode::new(&mut out, encoding_rs::EUC_KR);
        // A character split across writes is kept whole.
        let bytes = "김,x\n".as_bytes();
        w.write_all(&bytes[..1]).unwrap();
        w.write_all(&bytes[1..]).unwrap();
        assert_eq!(out, encoding_rs::EUC_KR.encode("김,x\n").0.as_ref());
        let mut w = Encode::new(Vec::new(), encoding_rs::EUC_KR);
        assert!(w.write_all("🎉".as_bytes()).is_err());
        assert_eq!(unencodable(encoding_rs::EUC_KR, "a김🎉"), Some('🎉'));
        assert_eq!(unencodable(encoding_rs::EUC_KR, "a김"), None);
        assert_eq!(unencodable(UTF_16LE, "🎉"), None);
    }

    /// Random bytes: detection never panics, and always decides.
    #[test]
    fn random_bytes_always_get_a_decision() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b",;\t|\"'\r\n=sepa\xff\xfe\xef\xbb\xbf\xc0\xb0";
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            if let Ok(decoded) = decode(&bytes) {
                let text = decoded.text.as_bytes();
                let body = match sep_line(&decoded.text) {
                    Some((_, len)) => &text[len..],
                    None => text,
                };
                let _ = sniff(body);
            }
        }
    }
}
