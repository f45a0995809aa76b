//! How cells compare: the rule behind `_lt`/`_gte` filters and `_sort`.
//!
//! Cells are text. A cell is compared as a number when the typing rule
//! shows it as one in JSON (`30`, `-2.5`; not `007`), which is what a
//! json-server user sees and what json-server compares; text compares by
//! its bytes (Unicode code point order).

use std::cmp::Ordering;

use crate::codec::cell;

/// An operand of a comparison filter, as given in the URL.
#[derive(Debug, Clone)]
pub struct Operand {
    pub text: String,
    /// Its value when it reads as a number (`7`, `007`, `1e3`, ` 2.5`).
    pub number: Option<f64>,
}

impl Operand {
    pub fn new(text: String) -> Operand {
        // As JavaScript reads it when comparing with a number: empty is 0.
        let number = loose_number(&text);
        Operand { text, number }
    }
}

/// The comparison operators of filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Op {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering.is_lt(),
            Op::Lte => ordering.is_le(),
            Op::Gt => ordering.is_gt(),
            Op::Gte => ordering.is_ge(),
        }
    }
}

/// Whether `cell <op> operand` holds: numerically when the cell is a number
/// (or a boolean) by the typing rule and the operand reads as a number, else
/// as text.
pub fn holds(cell: &str, op: Op, operand: &Operand) -> bool {
    let ordering = match (operand.number, typed_number(cell)) {
        (Some(wanted), Some(value)) => value.partial_cmp(&wanted),
        _ => Some(cell.cmp(operand.text.as_str())),
    };
    ordering.is_some_and(|o| op.accepts(o))
}

/// The number a cell stands for in JSON, where JavaScript compares it as
/// one: a number by the typing rule, or a boolean (`true` is 1, `false` 0).
pub fn typed_number(cell: &str) -> Option<f64> {
    match cell::classify(cell) {
        cell::Typed::Number(n) => n.parse().ok(),
        cell::Typed::Bool(b) => Some(f64::from(u8::from(b))),
        cell::Typed::Text(_) => None,
    }
}

/// Reads text as a number the way JavaScript's `Number()` does for decimal
/// text: surrounding white space ignored, empty text is 0, `007` is 7,
/// exponents allowed. Sorting uses it to place such cells among numbers
/// exactly where json-server's comparisons put them. Never NaN.
pub fn loose_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0.0);
    }
    match text.trim_start_matches(['+', '-']) {
        "Infinity" => {
            return Some(if text.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        // Rust reads `inf` and `nan`; JavaScript does not.
        rest if !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') => return None,
        _ => {}
    }
    text.parse::<f64>().ok().filter(|n| !n.is_nan())
}

/// A sort key's class: in a column holding numbers, numbers come first
/// (in numeric order), then text that does not read as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Number,
    Text,
}

/// Compares two cells of a column in the order `_sort` uses. In a numeric
/// column (`numeric`: it holds a number or a boolean by the typing rule)
/// cells compare as numbers when they read as numbers (so an empty cell
/// sorts as 0 and `true` as 1, as in json-server), other text after them;
/// in a text column, as text.
pub fn sort_order(a: &str, b: &str, numeric: bool) -> Ordering {
    if !numeric {
        return a.cmp(b);
    }
    match (sort_number(a), sort_number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// A cell's sort key compressed into 64 bits, comparable as an integer
/// within its class: a number's order-preserving bit pattern, or text's
/// first 8 bytes (equal keys of text must then compare in full).
pub fn sort_key(cell: &str, numeric: bool) -> (Class, u64) {
    if numeric {
        if let Some(n) = sort_number(cell) {
            return (Class::Number, ordered_bits(n));
        }
    }
    let mut prefix = [0u8; 8];
    let len = cell.len().min(8);
    prefix[..len].copy_from_slice(&cell.as_bytes()[..len]);
    (Class::Text, u64::from_be_bytes(prefix))
}

/// A cell's value among numbers, as JavaScript compares it with a number.
pub fn sort_number(cell: &str) -> Option<f64> {
    match cell {
        "true" => Some(1.0),
        "false" => Some(0.0),
        _ => loose_number(cell),
    }
}

/// Maps a double (not NaN) to an integer of the same order.
fn ordered_bits(n: f64) -> u64 {
    // -0 and 0 are the same number.
    let n = if n == 0.0 { 0.0 } else { n };
    let bits = n.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(text: &str) -> Operand {
        Operand::new(text.to_string())
    }

    #[test]
    fn numbers_compare_as_numbers() {
        assert!(holds("30", Op::Gte, &op("30")));
        assert!(holds("30", Op::Gt, &op("9")));
        assert!(holds("-2.5", Op::Lt, &op("0")));
        assert!(holds("100", Op::Gte, &op("1e2")));
        assert!(!holds("30", Op::Lt, &op("30")));
    }

    #[test]
    fn text_compares_as_text() {
        // `007` is text by the typing rule, so "007" < "7" as text.
        assert!(holds("007", Op::Lt, &op("7")));
        assert!(holds("kim", Op::Gte, &op("k")));
        assert!(!holds("Kim", Op::Gte, &op("k")));
        // A number against a word: text.
        assert!(holds("30", Op::Lt, &op("abc")));
        assert!(holds("", Op::Lt, &op("0")));
        // Booleans are 1 and 0 against numbers; an empty operand is 0.
        assert!(holds("true", Op::Gte, &op("1")));
        assert!(!holds("false", Op::Gte, &op("1")));
        assert!(holds("5", Op::Gte, &op("")));
        assert!(!holds("-5", Op::Gte, &op("")));
    }

    #[test]
    fn loose_numbers_read_like_javascript() {
        assert_eq!(loose_number("007"), Some(7.0));
        assert_eq!(loose_number(" 2.5 "), Some(2.5));
        assert_eq!(loose_number(""), Some(0.0));
        assert_eq!(loose_number("1e3"), Some(1000.0));
        assert_eq!(loose_number("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(loose_number("inf"), None);
        assert_eq!(loose_number("nan"), None);
        assert_eq!(loose_number("12abc"), None);
        assert_eq!(loose_number("true"), None);
    }

    #[test]
    fn sort_order_places_text_after_numbers() {
        assert_eq!(sort_order("9", "10", true), Ordering::Less);
        assert_eq!(sort_order("9", "10", false), Ordering::Greater);
        assert_eq!(sort_order("", "-1", true), Ordering::Greater);
        assert_eq!(sort_order("n/a", "1000", true), Ordering::Greater);
        assert_eq!(sort_order("b", "a", true), Ordering::Greater);
        assert_eq!(sort_order("true", "0.5", true), Ordering::Greater);
        assert_eq!(sort_order("false", "", true), Ordering::Equal);
        assert_eq!(sort_order("false", "", false), Ordering::Greater);
    }

    #[test]
    fn sort_keys_agree_with_sort_order() {
        let cells = [
            "-Infinity",
            "-3",
            "-0",
            "0",
            "",
            "0.5",
            "2",
            "10",
            "1e3",
            "a",
            "abcdefgh",
            "abcdefghi",
            "b",
        ];
        for numeric in [true, false] {
            for a in cells {
                for b in cells {
                    let by_key = sort_key(a, numeric).cmp(&sort_key(b, numeric));
                    let full = sort_order(a, b, numeric);
                    // Keys may tie where full text differs, never disagree.
                    assert!(by_key == full || by_key.is_eq(), "{a:?} {b:?} {numeric}");
                }
            }
        }
    }
}
