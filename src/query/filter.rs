//! Row filters: `col=v`, `col_ne`, `col_lt`/`_lte`/`_gt`/`_gte`,
//! `col_like` and the full-text `q`, with json-server's semantics: repeating
//! a parameter means "any of" (but "none of" for `_ne`), different
//! parameters must all hold.

use regex::{Regex, RegexBuilder};

use super::compare::{holds, Op, Operand};
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
}

impl Filter {
    /// Whether the filter accepts a row whose cell in its column is `cell`.
    pub fn accepts(&self, cell: &str) -> bool {
        match &self.test {
            Test::Equals(values) => values.iter().any(|v| v == cell),
            Test::NotEquals(values) => values.iter().all(|v| v != cell),
            Test::Compare(op, operands) => operands.iter().any(|o| holds(cell, *op, o)),
            Test::Like(patterns) => patterns.iter().any(|p| p.is_match(cell)),
        }
    }
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

/// `q`: text searched in every cell of a row, ignoring case.
#[derive(Debug, Clone)]
pub struct Search {
    needle: Regex,
}

impl Search {
    /// `None` for empty text, which json-server ignores.
    pub fn new(text: &str) -> Result<Option<Search>, regex::Error> {
        if text.is_empty() {
            return Ok(None);
        }
        // A literal, case-insensitive expression: the regex engine's
        // literal search is much faster than lower-casing every cell.
        let needle = like(&regex::escape(text))?;
        Ok(Some(Search { needle }))
    }

    pub fn accepts(&self, row: &Row, width: usize) -> bool {
        row.cells(width)
            .any(|cell| searchable(cell) && self.needle.is_match(cell))
    }
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
        let q = Search::new("SEO").unwrap().unwrap();
        assert!(q.accepts(&row(&["1", "x", "in seoul"]), 3));
        assert!(!q.accepts(&row(&["1", "x", "in seoul"]), 2));
        assert!(!q.accepts(&row(&["1", "busan"]), 2));
        let dot = Search::new("a.b").unwrap().unwrap();
        assert!(!dot.accepts(&row(&["axb"]), 1));
        assert!(Search::new("").unwrap().is_none());
        let zero = Search::new("0").unwrap().unwrap();
        assert!(!zero.accepts(&row(&["0"]), 1));
        assert!(zero.accepts(&row(&["10"]), 1));
    }
}
