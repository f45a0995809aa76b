//! Row filters: `col=v`, `col_ne`, `col_lt`/`_lte`/`_gt`/`_gte`,
//! `col_like` and the full-text `q`, with json-server's semantics: repeating
//! a parameter means "any of" (but "none of" for `_ne`), different
//! parameters must all hold.

use regex::{Regex, RegexBuilder};

use super::compare::{holds, Op, Operand};
use crate::codec::cell;
use crate::store::Row;

/// Largest compiled size of one `_like` or `q` expression: enough for any
/// pattern a person types, small enough that no URL can make the server
/// build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One condition on one column.
#[derive(Debug, Clone)]
pub struct Filter {
    pub column: usize,
    pub test: Test,
}

#[derive(Debug, Clone)]
pub enum Test {
    /// The cell is one of these texts, exactly.
    Equals(Vec<String>),
    /// The cell is none of these texts.
    NotEquals(Vec<String>),
    /// The comparison holds for one of these operands.
    Compare(Op, Vec<Operand>),
    /// One of these expressions matches somewhere in the cell.
    Like(Vec<Regex>),
    /// The cell is text (not a number or a boolean by the typing rule)
    /// and, ignoring case, holds this lower-cased text where `TextOp` says.
    Text(TextOp, String),
    /// The test holds for the value at this path of keys inside the JSON
    /// object (or array) the cell holds; never when there is none.
    Path(Vec<String>, Box<Test>),
}

/// Where `contains`, `startsWith` and `endsWith` look for their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl Filter {
    /// Whether the filter accepts a row whose cell in its column is `cell`.
    pub fn accepts(&self, cell: &str) -> bool {
        self.test.accepts(cell)
    }
}

impl Test {
    /// Whether a cell passes the test.
    pub fn accepts(&self, cell: &str) -> bool {
        match self {
            Test::Path(path, test) => reach(cell, path).is_some_and(|value| test.accepts(&value)),
            Test::Equals(values) => values.iter().any(|v| v == cell),
            Test::NotEquals(values) => values.iter().all(|v| v != cell),
            Test::Compare(op, operands) => operands.iter().any(|o| holds(cell, *op, o)),
            Test::Like(patterns) => patterns.iter().any(|p| p.is_match(cell)),
            Test::Text(op, needle) => {
                if !matches!(cell::classify(cell), cell::Typed::Text(_)) {
                    return false;
                }
                let cell = cell.to_lowercase();
                match op {
                    TextOp::Contains => cell.contains(needle.as_str()),
                    TextOp::StartsWith => cell.starts_with(needle.as_str()),
                    TextOp::EndsWith => cell.ends_with(needle.as_str()),
                }
            }
        }
    }
}

/// The value at `path` inside a cell that holds a JSON object or array,
/// as a cell's text (a string's text, a number or boolean as JSON writes
/// it, `null` as the empty cell, an object or array as its JSON); `None`
/// when the cell holds none or the path leads nowhere.
pub fn reach(cell: &str, path: &[String]) -> Option<String> {
    if !cell.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(cell).ok()?;
    let mut at = &value;
    for key in path {
        at = match at {
            serde_json::Value::Object(fields) => fields.get(key)?,
            serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match at {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Compiles a `_like` pattern: a regular expression, matched anywhere in
/// the cell, ignoring case (as json-server's `new RegExp(value, 'i')`).
pub fn like(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// `q`: text searched in every cell of a row, ignoring case the way
/// json-server does: the lower-cased text is looked for in each lower-cased
/// cell.
#[derive(Debug, Clone)]
pub struct Search {
    needle: String,
}

impl Search {
    /// `None` for empty text, which json-server ignores.
    pub fn new(text: &str) -> Option<Search> {
        (!text.is_empty()).then(|| Search {
            needle: text.to_lowercase(),
        })
    }

    pub fn accepts(&self, row: &Row, width: usize) -> bool {
        row.cells(width)
            .any(|cell| searchable(cell) && self.found_in(cell))
    }

    fn found_in(&self, cell: &str) -> bool {
        if cell.is_ascii() {
            // Lower-casing ASCII text leaves it ASCII: compare bytes, no copy.
            self.needle.is_ascii()
                && contains_ascii_lowercase(cell.as_bytes(), self.needle.as_bytes())
        } else {
            cell.to_lowercase().contains(&self.needle)
        }
    }
}

/// Whether `hay`, lower-cased, contains `needle` (ASCII, lower case).
fn contains_ascii_lowercase(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if needle.len() > hay.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i].to_ascii_lowercase() == first
            && hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest)
    })
}

/// json-server skips cells whose JSON value is falsy (`0`, `false`, empty)
/// when it searches; so do we, so that `q` finds the same rows.
fn searchable(cell: &str) -> bool {
    !matches!(cell, "" | "0" | "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        Row::from_cells(cells)
    }

    #[test]
    fn equals_is_any_of_and_exact() {
        let f = Filter {
            column: 1,
            test: Test::Equals(vec!["kim".into(), "lee".into()]),
        };
        assert!(f.accepts("lee"));
        assert!(!f.accepts("Kim"));
        assert!(!f.accepts(""));
    }

    #[test]
    fn not_equals_is_none_of() {
        let f = Filter {
            column: 0,
            test: Test::NotEquals(vec!["a".into(), "b".into()]),
        };
        assert!(f.accepts("c"));
        assert!(!f.accepts("b"));
    }

    #[test]
    fn like_ignores_case_and_is_unanchored() {
        let f = Filter {
            column: 0,
            test: Test::Like(vec![like("^k.m").unwrap(), like("zz").unwrap()]),
        };
        assert!(f.accepts("KIM"));
        assert!(f.accepts("buzz"));
        assert!(!f.accepts("skim"));
        assert!(like("(").is_err());
        assert!(like(&"a{1000}{1000}".repeat(3)).is_err());
    }

    #[test]
    fn search_looks_in_every_cell_ignoring_case() {
        let q = Search::new("SEO").unwrap();
        assert!(q.accepts(&row(&["1", "x", "in seoul"]), 3));
        assert!(!q.accepts(&row(&["1", "x", "in seoul"]), 2));
        assert!(!q.accepts(&row(&["1", "busan"]), 2));
        let dot = Search::new("a.b").unwrap();
        assert!(!dot.accepts(&row(&["axb"]), 1));
        assert!(Search::new("").is_none());
        let zero = Search::new("0").unwrap();
        assert!(!zero.accepts(&row(&["0"]), 1));
        assert!(zero.accepts(&row(&["10"]), 1));
        // Unicode text is lower-cased as a whole, as JavaScript does.
        let accented = Search::new("ÉCOLE").unwrap();
        assert!(accented.accepts(&row(&["une école"]), 1));
        assert!(!accented.accepts(&row(&["ecole"]), 1));
        let ascii = Search::new("ab").unwrap();
        assert!(ascii.accepts(&row(&["XAB"]), 1));
        assert!(ascii.accepts(&row(&["ÀAb"]), 1));
        assert!(!ascii.accepts(&row(&["a"]), 1));
    }
}
