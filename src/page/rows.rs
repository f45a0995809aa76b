//! The rows of a table page, each a `<tr>`: every cell escaped, numbers
//! aligned as numbers, the id a link to the row's own page (and the row's
//! `data-id`, by which the page's script redraws it when it changes). Rows are
//! written one at a time into the chunk being streamed, so a page of any
//! number of rows is never built whole.

use maud::html;

use crate::codec::cell::{classify, Typed};
use crate::codec::repr::encode_segment;
use crate::store::Row;

/// Appends one row of `table` (its first `width` cells) to `out`.
pub fn write(out: &mut Vec<u8>, table: &str, width: usize, id_col: Option<usize>, row: &Row) {
    let id = id_col.map(|c| row.get(c)).filter(|id| !id.is_empty());
    let markup = html! {
        tr data-id=[id] {
            @for (i, cell) in row.cells(width).enumerate() {
                @if Some(i) == id_col && !cell.is_empty() {
                    td {
                        a href=(format!("/{}/{}", encode_segment(table), encode_segment(cell))) {
                            (cell)
                        }
                    }
                } @else if matches!(classify(cell), Typed::Number(_)) {
                    td.num { (cell) }
                } @else {
                    td { (cell) }
                }
            }
        }
    };
    out.extend_from_slice(markup.into_string().as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_and_ids_linked() {
        let mut out = Vec::new();
        let row = Row::from_cells(["a/b", "<script>alert(1)</script>", "30"]);
        write(&mut out, "t", 3, Some(0), &row);
        let html = String::from_utf8(out).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/t/a%2Fb\">a/b</a>"), "{html}");
        // The page's script finds a row by its id to redraw it.
        assert!(html.starts_with("<tr data-id=\"a/b\">"), "{html}");
        assert!(html.contains("<td class=\"num\">30</td>"), "{html}");
        assert!(html.contains("<td>&lt;script&gt;"), "{html}");
    }
}
