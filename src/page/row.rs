//! A row's page: its fields as a form to edit in place, saved with PATCH
//! and `If-Match` (an edit made on a copy someone has changed since is
//! refused with 412, and the page says so, rather than lost), and a guarded
//! delete.

use maud::{html, Markup};

use super::forms::{self, Delete};
use super::layout::{self, Step};
use super::viewer::Viewer;
use crate::codec::repr::encode_segment;
use crate::store::Row;

/// What a row's page shows.
pub struct RowPage<'a> {
    pub table: &'a str,
    pub columns: &'a [String],
    /// The id column, shown but not editable (a row's id is its address).
    pub id_col: Option<usize>,
    pub row: &'a Row,
    /// The row's entity tag, sent as `If-Match` by saves and deletes.
    pub tag: &'a str,
    /// The change feed's last sequence number, read before the row: the
    /// page follows the row's changes after it.
    pub since: u64,
    pub viewer: &'a Viewer,
}

impl RowPage<'_> {
    pub fn render(&self) -> Vec<u8> {
        let id = self.id_col.map(|c| self.row.get(c)).unwrap_or_default();
        let table_path = format!("/{}", encode_segment(self.table));
        let url = format!("{table_path}/{}", encode_segment(id));
        let trail = [
            Step {
                label: self.table,
                href: Some(table_path.clone()),
            },
            Step {
                label: id,
                href: None,
            },
        ];
        let title = format!("{} {id}", self.table);
        layout::document(
            &title,
            &trail,
            self.viewer,
            self.main(id, &table_path, &url),
        )
        .into_string()
        .into_bytes()
    }

    fn main(&self, id: &str, table_path: &str, url: &str) -> Markup {
        let feed = format!(
            "/_changes/{}/{}?since={}",
            encode_segment(self.table),
            encode_segment(id),
            self.since
        );
        html! {
            div.heading data-row-feed=(feed) {
                h1 { (self.table) " " span.id { (id) } }
                p.downloads {
                    "Download "
                    a href=(format!("{url}.json")) download=(format!("{}-{id}.json", self.table)) { "JSON" }
                }
            }
            @if self.viewer.may_write() {
                (self.edit(id, table_path, url))
            } @else {
                div.fields {
                    @for (i, (column, value)) in self.columns.iter()
                        .zip(self.row.cells(self.columns.len())).enumerate() {
                        (forms::field(&format!("field-{i}"), column, value, true))
                    }
                }
                @if let Some(why) = self.viewer.why_not() { (why) }
                p.actions { a href=(table_path) { "Back to " (self.table) } }
            }
        }
    }

    /// The row as a form to change it, and its guarded delete.
    fn edit(&self, id: &str, table_path: &str, url: &str) -> Markup {
        html! {
            form.edit-row data-edit=(url) data-tag=(self.tag) {
                div.fields {
                    @for (i, (column, value)) in self.columns.iter()
                        .zip(self.row.cells(self.columns.len())).enumerate() {
                        (forms::field(&format!("field-{i}"), column, value, Some(i) == self.id_col))
                    }
                }
                (forms::new_columns("edit-new"))
                div.actions {
                    button.primary type="submit" disabled data-script { "Save changes" }
                    a href=(table_path) { "Back to " (self.table) }
                }
                p.status role="status" {}
            }
            (forms::delete(&Delete {
                summary: "Delete this row…",
                warning: &format!("Row {id} of {} will be deleted. This cannot be undone.", self.table),
                button: &format!("Delete row {id}"),
                url,
                tag: self.tag,
                then: table_path,
                done: &format!("Row {id} was deleted."),
            }))
            (forms::needs_script("Saving and deleting"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_a_form_of_its_fields() {
        let columns: Vec<String> = vec!["id".into(), "note".into()];
        let row = Row::from_cells(["a b", "<script>x</script>"]);
        let page = String::from_utf8(
            RowPage {
                table: "t",
                columns: &columns,
                id_col: Some(0),
                row: &row,
                tag: "\"00000000000000ff\"",
                since: 9,
                viewer: &Viewer::default(),
            }
            .render(),
        )
        .unwrap();
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("data-edit=\"/t/a%20b\""), "{page}");
        assert!(page.contains("data-row-feed=\"/_changes/t/a%20b?since=9\""));
        assert!(page.contains("data-tag=\"&quot;00000000000000ff&quot;\""));
        assert!(
            page.contains("name=\"id\" value=\"a b\" readonly"),
            "{page}"
        );
        assert!(page.contains("<label for=\"field-1\">note</label>"));
    }
}
