//! `_sort`/`_order`: ordering the selected rows.
//!
//! Rows are never moved: the sort orders small entries (a 64-bit key of the
//! first sort column, its class, the row's position), so comparing two rows
//! rarely touches their text. Ties keep table order, as json-server's
//! stable sort does, which also makes the order total, so unstable sorts
//! and partial selection give the same answer as a full stable sort.

use std::cmp::Ordering;

use super::column::Cells;
use super::compare::{sort_key, sort_order, typed_number, Class};
use super::params::{locate, no_column};

/// One column of `_sort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub column: usize,
    pub descending: bool,
    /// A path into the JSON objects the column's cells hold
    /// (`_sort=author.name`); empty for the cells themselves.
    pub path: Vec<String>,
}

/// `_sort=a,-b` with `_order=desc,asc`: a `-` before a name, or the
/// matching `_order` entry, sorts that column in descending order.
pub fn keys(sort: &str, order: Option<&str>, columns: &[String]) -> Result<Vec<SortKey>, String> {
    let names: Vec<&str> = sort.split(',').map(str::trim).collect();
    let directions = order.map(directions).transpose()?.unwrap_or_default();
    if directions.len() > names.len() {
        return Err(format!(
            "_order gives {} directions for {} _sort columns",
            directions.len(),
            names.len()
        ));
    }
    let mut keys = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let ((column, path), minus) = match locate(columns, name) {
            Some(target) => (target, false),
            None => {
                let bare = name.strip_prefix('-').unwrap_or(name);
                let target = locate(columns, bare)
                    .filter(|_| bare != *name)
                    .ok_or_else(|| no_column(bare, Some("_sort"), columns).to_string())?;
                (target, true)
            }
        };
        let descending = minus || directions.get(i).copied().unwrap_or(false);
        keys.push(SortKey {
            column,
            descending,
            path,
        });
    }
    Ok(keys)
}

/// `_order=asc,desc` → whether each is descending.
pub fn directions(order: &str) -> Result<Vec<bool>, String> {
    order
        .split(',')
        .map(|d| match d.trim().to_ascii_lowercase().as_str() {
            "asc" | "" => Ok(false),
            "desc" => Ok(true),
            other => Err(format!(
                "_order: {other:?} is not a direction; use asc or desc"
            )),
        })
        .collect()
}

/// One row to sort: its position and the first key's compressed value.
#[derive(Clone, Copy)]
struct Entry {
    key: u64,
    class: Class,
    position: u32,
}

/// Puts `positions` in sort order by `keys`, whose cells are `columns`;
/// only the first `needed` must be right (the rest of the slice is left in
/// no particular order).
pub fn sort(positions: &mut [u32], keys: &[SortKey], columns: &[Cells<'_>], needed: usize) {
    let (Some(first), Some(&head)) = (keys.first(), columns.first()) else {
        return;
    };
    let numeric: Vec<bool> = columns
        .iter()
        .map(|cells| {
            positions
                .iter()
                .any(|&p| typed_number(cells.get(p)).is_some())
        })
        .collect();
    let mut entries: Vec<Entry> = positions
        .iter()
        .map(|&position| {
            let (class, key) = sort_key(head.get(position), numeric[0]);
            Entry {
                key,
                class,
                position,
            }
        })
        .collect();
    let compare = |a: &Entry, b: &Entry| {
        let order = (a.class, a.key).cmp(&(b.class, b.key)).then_with(|| {
            if a.class == Class::Text {
                head.get(a.position).cmp(head.get(b.position))
            } else {
                Ordering::Equal
            }
        });
        let order = if first.descending {
            order.reverse()
        } else {
            order
        };
        order
            .then_with(|| {
                keys.iter()
                    .zip(columns.iter().zip(&numeric))
                    .skip(1)
                    .map(|(k, (cells, numeric))| {
                        let o = sort_order(cells.get(a.position), cells.get(b.position), *numeric);
                        if k.descending {
                            o.reverse()
                        } else {
                            o
                        }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
            .then(a.position.cmp(&b.position))
    };
    // A short page of a long list: select its rows first, then sort just those.
    if needed < entries.len() / 2 {
        if needed > 0 {
            entries.select_nth_unstable_by(needed - 1, compare);
            entries[..needed].sort_unstable_by(compare);
        }
    } else {
        entries.sort_unstable_by(compare);
    }
    for (slot, entry) in positions.iter_mut().zip(&entries) {
        *slot = entry.position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Row;

    fn cols() -> Vec<String> {
        ["id", "name", "-odd"]
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn keys_read_minus_and_order() {
        let k = keys("name,-id", Some("desc"), &cols()).unwrap();
        assert_eq!(
            k,
            [
                SortKey {
                    column: 1,
                    descending: true,
                    path: Vec::new(),
                },
                SortKey {
                    column: 0,
                    descending: true,
                    path: Vec::new(),
                },
            ]
        );
        let k = keys("-odd", None, &cols()).unwrap();
        assert_eq!(
            k,
            [SortKey {
                column: 2,
                descending: false,
                path: Vec::new(),
            }]
        );
        // Either way of asking for descending order is enough.
        let both = keys("-id", Some("desc"), &cols()).unwrap();
        assert!(both[0].descending);
        assert!(keys("id", Some("asc,desc"), &cols()).is_err());
        assert!(keys("-nope", None, &cols())
            .unwrap_err()
            .contains("no column \"nope\""));
        assert_eq!(directions("DESC,asc").unwrap(), [true, false]);
    }

    fn table(cells: &[[&str; 2]]) -> Vec<Row> {
        cells.iter().map(Row::from_cells).collect()
    }

    fn sorted(rows: &[Row], keys: &[SortKey], needed: usize) -> Vec<u32> {
        let mut positions: Vec<u32> = (0..rows.len() as u32).collect();
        let columns: Vec<Cells> = keys.iter().map(|k| Cells::Rows(rows, k.column)).collect();
        sort(&mut positions, keys, &columns, needed);
        positions.truncate(needed);
        positions
    }

    #[test]
    fn numbers_sort_numerically_and_ties_keep_table_order() {
        let rows = table(&[["10", "b"], ["9", "a"], ["", "b"], ["n/a", "a"], ["9", "c"]]);
        let by_first = [SortKey {
            column: 0,
            descending: false,
            path: Vec::new(),
        }];
        assert_eq!(sorted(&rows, &by_first, 5), [2, 1, 4, 0, 3]);
        let desc = [SortKey {
            column: 0,
            descending: true,
            path: Vec::new(),
        }];
        assert_eq!(sorted(&rows, &desc, 5), [3, 0, 1, 4, 2]);
        let two = [
            SortKey {
                column: 1,
                descending: false,
                path: Vec::new(),
            },
            SortKey {
                column: 0,
                descending: true,
                path: Vec::new(),
            },
        ];
        assert_eq!(sorted(&rows, &two, 5), [3, 1, 0, 2, 4]);
    }

    #[test]
    fn text_columns_sort_as_text() {
        let rows = table(&[
            ["abcdefghz", ""],
            ["abcdefgha", ""],
            ["B", ""],
            ["a", ""],
            ["007", ""],
        ]);
        let keys = [SortKey {
            column: 0,
            descending: false,
            path: Vec::new(),
        }];
        assert_eq!(sorted(&rows, &keys, 5), [4, 2, 3, 1, 0]);
    }

    #[test]
    fn partial_selection_matches_a_full_sort() {
        let cells: Vec<[String; 2]> = (0..500)
            .map(|i| [((i * 7919) % 101).to_string(), (i % 7).to_string()])
            .collect();
        let rows: Vec<Row> = cells.iter().map(Row::from_cells).collect();
        let keys = [
            SortKey {
                column: 1,
                descending: true,
                path: Vec::new(),
            },
            SortKey {
                column: 0,
                descending: false,
                path: Vec::new(),
            },
        ];
        let full = sorted(&rows, &keys, 500);
        for needed in [0, 1, 20, 249] {
            assert_eq!(sorted(&rows, &keys, needed), full[..needed], "{needed}");
        }
    }
}
