//! CSV as a table a person can read at a terminal: columns aligned by
//! display width (so `김` counts as two), numbers right-aligned, the
//! header set apart by a rule. Pipes never see this: they get the CSV.

use unicode_width::UnicodeWidthStr;

use super::style::{Paint, Style};

/// Between columns.
const GAP: &str = "  ";

/// Renders `bytes` as an aligned table, or `None` when they are not
/// UTF-8 CSV (the caller then shows them as they are).
pub fn render(bytes: &[u8], style: &Style) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        rows.push(record.ok()?.iter().map(visible).collect());
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = (0..columns)
        .map(|column| is_numeric(rows.iter().skip(1).filter_map(|row| row.get(column))))
        .collect();

    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        let heading = index == 0;
        let mut line = String::new();
        for (column, width) in widths.iter().enumerate() {
            let cell = row.get(column).map(String::as_str).unwrap_or("");
            let pad = " ".repeat(width - cell.width());
            if column > 0 {
                line.push_str(GAP);
            }
            let painted = if heading {
                style.paint(Paint::Key, cell)
            } else {
                cell.into()
            };
            if numeric[column] && !heading {
                line.push_str(&pad);
                line.push_str(&painted);
            } else {
                line.push_str(&painted);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
        if heading {
            let rule: Vec<String> = widths.iter().map(|width| "─".repeat(*width)).collect();
            out.push_str(&style.paint(Paint::Faint, &rule.join(GAP)));
            out.push('\n');
        }
    }
    Some(out)
}

/// A cell on one line: line breaks and tabs shown as escapes, so that a
/// multi-line cell cannot break the table.
fn visible(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    for c in cell.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A column of numbers (empty cells allowed) reads best right-aligned.
fn is_numeric<'a>(cells: impl Iterator<Item = &'a String>) -> bool {
    let mut any = false;
    for cell in cells.filter(|cell| !cell.is_empty()) {
        if cell.parse::<f64>().is_err() {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> String {
        render(csv.as_bytes(), &Style::plain()).expect("csv")
    }

    #[test]
    fn aligns_columns_and_right_aligns_numbers() {
        let out = table("id,name,age\n1,kim,30\n12,lee,7\n");
        assert_eq!(
            out,
            "id  name  age\n──  ────  ───\n 1  kim    30\n12  lee     7\n"
        );
    }

    #[test]
    fn wide_characters_count_double() {
        let out = table("name,x\n김민,1\nab,2\n");
        assert_eq!(out, "name  x\n────  ─\n김민  1\nab    2\n");
    }

    #[test]
    fn multi_line_and_quoted_cells_stay_on_one_line() {
        let out = table("a,b\n\"x, \"\"y\"\"\",\"one\ntwo\"\n");
        assert_eq!(out, "a       b\n──────  ────────\nx, \"y\"  one\\ntwo\n");
    }

    #[test]
    fn ragged_rows_and_empty_input() {
        assert_eq!(table("a,b\n1\n"), "a  b\n─  ─\n1\n");
        assert_eq!(table(""), "");
        assert!(render(b"a,b\n\xff,1\n", &Style::plain()).is_none());
    }
}
