//! The table list, the page at `/`: each table's name, rows, columns and
//! last change, and the forms that create a table or upload a CSV file.

use maud::{html, Markup};

use super::forms;
use super::layout::{self, count, Step};
use super::viewer::Viewer;
use crate::codec::repr::encode_segment;
use crate::store::TableInfo;

/// Renders the page of every table.
pub fn render(tables: &[TableInfo], viewer: &Viewer) -> Vec<u8> {
    let trail: [Step; 0] = [];
    layout::document("Tables", &trail, viewer, main(tables, viewer))
        .into_string()
        .into_bytes()
}

fn main(tables: &[TableInfo], viewer: &Viewer) -> Markup {
    html! {
        div.heading { h1 { "Tables" } }
        @if tables.is_empty() {
            p.empty {
                @if viewer.may_write() {
                    "No tables yet. Create one below, upload a CSV file, or drop one into the data directory."
                } @else {
                    "No tables yet."
                }
            }
        } @else {
            div.scroll {
                table.list {
                    thead {
                        tr {
                            th scope="col" { "Table" }
                            th.num scope="col" { "Rows" }
                            th scope="col" { "Columns" }
                            th scope="col" { "Last change" }
                        }
                    }
                    tbody {
                        @for info in tables { (entry(info)) }
                    }
                }
            }
        }
        @if viewer.may_write() {
            (create())
            (upload())
            (forms::needs_script("Creating and uploading tables"))
        } @else if let Some(why) = viewer.why_not() {
            (why)
        }
    }
}

fn entry(info: &TableInfo) -> Markup {
    html! {
        tr {
            td { a href=(format!("/{}", encode_segment(&info.name))) { (info.name) } }
            @match &info.error {
                Some(error) => td.error colspan="2" { "Cannot be read: " (error) },
                None => {
                    td.num { (count(info.rows)) }
                    td.columns { (info.columns.join(", ")) }
                }
            }
            td { (layout::moment(info.modified)) }
        }
        @if let Some(notice) = &info.notice {
            tr.notice { td colspan="4" { (notice) } }
        }
    }
}

/// A new, empty table: `PUT /<name>` with its header line, and
/// `If-None-Match: *` so an existing table is never replaced by mistake.
fn create() -> Markup {
    html! {
        section aria-labelledby="create" {
            h2 #create { "Create a table" }
            form.inline data-create {
                div.field {
                    label for="create-name" { "Name" }
                    input #create-name type="text" name="name" required
                        pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}"
                        title="1 to 64 letters, digits, _ or -, starting with a letter or digit"
                        autocomplete="off" spellcheck="false";
                }
                div.field.wide {
                    label for="create-columns" { "Columns, separated by commas" }
                    input #create-columns type="text" name="columns" required
                        placeholder="name, email, city" autocomplete="off";
                }
                button.primary type="submit" disabled data-script { "Create table" }
                p.status role="status" {}
            }
        }
    }
}

/// A table from a CSV file: `PUT /<name>` with the file as it is (the
/// server checks it), creating the table, or replacing it when asked.
fn upload() -> Markup {
    html! {
        section aria-labelledby="upload" {
            h2 #upload { "Upload a CSV file" }
            form.inline data-upload {
                div.field {
                    label for="upload-file" { "CSV file" }
                    input #upload-file type="file" name="file" accept=".csv,.tsv,.txt,text/csv,text/tab-separated-values" required;
                }
                div.field {
                    label for="upload-name" { "Table name" }
                    input #upload-name type="text" name="name"
                        pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}"
                        placeholder="from the file's name" autocomplete="off" spellcheck="false";
                }
                div.field.check {
                    input #upload-replace type="checkbox" name="replace";
                    label for="upload-replace" { "Replace the table if it exists" }
                }
                (forms::upload_preview("upload"))
                button.primary type="submit" disabled data-script { "Upload" }
                p.status role="status" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn lists_tables_escaped() {
        let tables = [
            TableInfo {
                name: "people".into(),
                rows: 1234,
                columns: vec!["id".into(), "<i>".into()],
                modified: SystemTime::UNIX_EPOCH,
                version: 1,
                error: None,
                notice: None,
            },
            TableInfo {
                name: "broken".into(),
                rows: 0,
                columns: vec![],
                modified: SystemTime::UNIX_EPOCH,
                version: 2,
                error: Some("line 3: <bad>".into()),
                notice: None,
            },
        ];
        let page = String::from_utf8(render(&tables, &Viewer::default())).unwrap();
        assert!(page.contains("<a href=\"/people\">people</a>"));
        assert!(page.contains("1,234") && page.contains("id, &lt;i&gt;"));
        assert!(
            page.contains("Cannot be read: line 3: &lt;bad&gt;"),
            "{page}"
        );
        assert!(String::from_utf8(render(&[], &Viewer::default()))
            .unwrap()
            .contains("No tables yet"));
        let read_only = Viewer {
            read_only: true,
            ..Viewer::default()
        };
        let page = String::from_utf8(render(&tables, &read_only)).unwrap();
        assert!(
            !page.contains("<form") && page.contains("read-only"),
            "{page}"
        );
    }
}
