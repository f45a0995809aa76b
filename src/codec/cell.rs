//! The cell typing rule: how a CSV cell (always text) is shown in JSON, and
//! how a JSON value becomes a cell.
//!
//! A cell is a JSON number only when reading it as a number and writing it
//! back gives the very same text (`30`, `-2.5`; not `007`, `1e5`, `2.50`,
//! `+1` or integers beyond 2^53), so typing never changes a value. `true` and
//! `false` are booleans; everything else, the empty cell included, is a
//! string.

use serde_json::Value;

use crate::store::schema::Datatype;

/// Largest integer a JSON reader holds exactly in a double (2^53).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// How one cell is rendered in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed<'a> {
    Number(&'a str),
    Bool(bool),
    Text(&'a str),
}

/// Applies the typing rule to one cell.
pub fn classify(cell: &str) -> Typed<'_> {
    match cell {
        "true" => Typed::Bool(true),
        "false" => Typed::Bool(false),
        _ if is_canonical_number(cell) => Typed::Number(cell),
        _ => Typed::Text(cell),
    }
}

fn is_canonical_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    // Most text is told apart by its first byte.
    if !digits.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let int_ok = int == "0" || (!int.is_empty() && !int.starts_with('0'));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !int_ok || !all_digits(int) {
        return false;
    }
    if let Some(frac) = frac {
        if !all_digits(frac) || frac.ends_with('0') {
            return false;
        }
    }
    if cell == "-0" {
        return false;
    }
    // Up to 15 significant digits always survive a trip through a double
    // (and canonical text is then the shortest form), so only longer text
    // needs the costly check; queries test millions of cells.
    if significant_digits(int, frac) <= 15 {
        return true;
    }
    // The text must survive a trip through a double unchanged.
    match cell.parse::<f64>() {
        Ok(n) if n.abs() <= MAX_EXACT_INT => format_number(n) == cell,
        _ => false,
    }
}

/// Digits of a syntactically canonical number, leading zeros of a
/// fraction below 1 aside (`0.05` has one).
fn significant_digits(int: &str, frac: Option<&str>) -> usize {
    match frac {
        Some(frac) if int == "0" => frac.trim_start_matches('0').len(),
        Some(frac) => int.len() + frac.len(),
        None => int.len(),
    }
}

/// The shortest text that reads back as `n`, without exponent.
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INT {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Writes one cell as a JSON value.
pub fn write_json(out: &mut Vec<u8>, cell: &str) {
    match classify(cell) {
        Typed::Number(n) => out.extend_from_slice(n.as_bytes()),
        Typed::Bool(true) => out.extend_from_slice(b"true"),
        Typed::Bool(false) => out.extend_from_slice(b"false"),
        Typed::Text(text) => write_json_string(out, text),
    }
}

/// Writes one cell as a JSON value by its column's declared datatype
/// (`None`: the typing rule). An empty cell of a declared type other than
/// `string` is `null`; a cell that is not a value of its type (a hand
/// edit) is shown as the string it is, never hidden.
pub fn write_typed(out: &mut Vec<u8>, cell: &str, datatype: Option<Datatype>) {
    let Some(datatype) = datatype else {
        return write_json(out, cell);
    };
    if cell.is_empty() && datatype != Datatype::String {
        out.extend_from_slice(b"null");
        return;
    }
    match datatype {
        Datatype::String | Datatype::Date | Datatype::DateTime => write_json_string(out, cell),
        Datatype::Boolean => match cell {
            "true" => out.extend_from_slice(b"true"),
            "false" => out.extend_from_slice(b"false"),
            _ => write_json_string(out, cell),
        },
        Datatype::Integer | Datatype::Number => match number_value(cell, datatype) {
            Some(n) => {
                let _ = serde_json::to_writer(&mut *out, &n);
            }
            None => write_json_string(out, cell),
        },
        Datatype::Json => match json_value(cell) {
            Some(value) => {
                let _ = serde_json::to_writer(&mut *out, &value);
            }
            None => write_json(out, cell),
        },
    }
}

/// The JSON value of a cell of a declared datatype, as [`write_typed`]
/// writes it.
pub fn to_json_typed(cell: &str, datatype: Option<Datatype>) -> Value {
    let mut out = Vec::new();
    write_typed(&mut out, cell, datatype);
    serde_json::from_slice(&out).unwrap_or_else(|_| Value::String(cell.into()))
}

/// A cell of an `integer` or `number` column as a JSON number, if it is one.
fn number_value(cell: &str, datatype: Datatype) -> Option<serde_json::Number> {
    if !datatype.accepts(cell) {
        return None;
    }
    let text = cell.strip_prefix('+').unwrap_or(cell);
    if let Ok(i) = text.parse::<i64>() {
        // Beyond 2^53 a JSON reader would round it: shown as its text.
        return (i.unsigned_abs() <= MAX_EXACT_INT as u64).then(|| i.into());
    }
    if datatype == Datatype::Integer {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// A cell holding a JSON object or array, parsed.
fn json_value(cell: &str) -> Option<Value> {
    let first = cell.trim_start().as_bytes().first()?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    serde_json::from_str(cell).ok()
}

/// Writes a JSON string literal.
///
/// Escapes as serde_json does (the two are tested to agree): `"`, `\` and
/// the control characters, by their short escapes where JSON has one and
/// as `\u00xx` otherwise; everything else, non-ASCII included, verbatim.
/// Written out because it runs for every cell and name of every row
/// rendered: runs that need no escape are copied whole.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut plain = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[plain..at]);
        plain = at + 1;
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// For each byte, the letter of its escape in a JSON string after the
/// backslash (`u`: `\u00xx`), or 0 when it stands for itself.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// The cell a JSON value is stored as: strings verbatim, numbers in their
/// shortest form, `null` as the empty cell, arrays and objects as their
/// JSON text.
pub fn from_json(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format_number(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// The JSON value a cell is rendered as.
pub fn to_json(cell: &str) -> Value {
    match classify(cell) {
        Typed::Bool(b) => Value::Bool(b),
        Typed::Number(n) => serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.into())),
        Typed::Text(t) => Value::String(t.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut texts: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            [
                "",
                "plain",
                "kim, \"k\"\nnext",
                "a\\b",
                "tab\there\r\n",
                "\u{7f}\u{80}é€😀",
                "\u{1}\u{1f}\u{8}\u{c}",
                "ends with quote\"",
            ]
            .map(String::from),
        );
        for text in texts {
            let mut ours = Vec::new();
            write_json_string(&mut ours, &text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers_are_only_canonical_ones() {
        for n in [
            "0",
            "30",
            "-2.5",
            "0.1",
            "123456789",
            "9007199254740992",
            "-0.5",
        ] {
            assert_eq!(classify(n), Typed::Number(n), "{n}");
        }
        for s in [
            "007",
            "1e5",
            "2.50",
            "+1",
            "-0",
            ".5",
            "5.",
            "1.",
            "",
            " 1",
            "1 ",
            "0x10",
            "NaN",
            "inf",
            "12345678901234567890",
            "1_000",
            "--1",
            "1.2.3",
        ] {
            assert_eq!(classify(s), Typed::Text(s), "{s:?}");
        }
    }

    #[test]
    fn long_numbers_are_checked_in_full() {
        assert_eq!(classify("0.000001"), Typed::Number("0.000001"));
        assert_eq!(
            classify("123456789012345"),
            Typed::Number("123456789012345")
        );
        // 17 significant digits that a double cannot hold as written.
        assert_eq!(
            classify("0.10000000000000001"),
            Typed::Text("0.10000000000000001")
        );
        assert_eq!(
            classify("9007199254740993"),
            Typed::Text("9007199254740993")
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(classify("true"), Typed::Bool(true));
        assert_eq!(classify("True"), Typed::Text("True"));
    }

    #[test]
    fn json_values_become_cells() {
        assert_eq!(from_json(&json!(null)), "");
        assert_eq!(from_json(&json!(30)), "30");
        assert_eq!(from_json(&json!(-2.5)), "-2.5");
        assert_eq!(from_json(&json!(1e5)), "100000");
        assert_eq!(from_json(&json!(true)), "true");
        assert_eq!(from_json(&json!("007")), "007");
        assert_eq!(from_json(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
    }

    #[test]
    fn cells_become_json() {
        let mut out = Vec::new();
        for cell in ["30", "007", "true", "a \"q\"\n"] {
            write_json(&mut out, cell);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "30 \"007\" true \"a \\\"q\\\"\\n\" "
        );
        assert_eq!(to_json("-2.5"), json!(-2.5));
    }

    #[test]
    fn declared_types_render_their_values() {
        use Datatype::*;
        for (cell, t, value) in [
            ("10001", Some(String), json!("10001")),
            ("", Some(String), json!("")),
            ("", Some(Integer), json!(null)),
            ("007", Some(Integer), json!(7)),
            ("9007199254740993", Some(Integer), json!("9007199254740993")),
            ("x7", Some(Integer), json!("x7")),
            ("2.50", Some(Number), json!(2.5)),
            ("1e3", Some(Number), json!(1000.0)),
            ("true", Some(Boolean), json!(true)),
            ("yes", Some(Boolean), json!("yes")),
            ("2024-01-02", Some(Date), json!("2024-01-02")),
            (r#"{"name":"kim"}"#, Some(Json), json!({"name": "kim"})),
            ("[1,2]", Some(Json), json!([1, 2])),
            ("{oops", Some(Json), json!("{oops")),
            ("30", Some(Json), json!(30)),
            (r#"{"a":1}"#, None, json!(r#"{"a":1}"#)),
        ] {
            assert_eq!(to_json_typed(cell, t), value, "{cell:?} {t:?}");
        }
    }
}
