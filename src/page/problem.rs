//! The page a browser gets instead of a problem document: the status, what
//! happened, and a way on that works in a browser — never a link back to
//! the page that failed, nor advice only an HTTP client could follow.

use maud::{html, Markup};

use super::forms;
use super::layout::{self, Step};
use super::viewer::{sign_in_href, Viewer};
use crate::codec::repr::encode_segment;

/// An error answered to a browser's request for `path`.
pub struct ProblemPage<'a> {
    pub status: u16,
    pub title: &'a str,
    /// The problem's kind (`no-table`), which decides the way on.
    pub kind: &'a str,
    /// What happened, in the words for a person at a page.
    pub detail: &'a str,
    pub path: &'a str,
    pub viewer: &'a Viewer,
}

impl ProblemPage<'_> {
    pub fn render(&self) -> String {
        let heading = format!("{} {}", self.status, self.title);
        let trail = [Step {
            label: &heading,
            href: None,
        }];
        let main = html! {
            div.problem {
                h1 { (heading) }
                p.detail { (self.detail) }
                (self.way_on())
            }
        };
        layout::document(&heading, &trail, self.viewer, main).into_string()
    }

    /// The table the request was about, when its name is one.
    fn table(&self) -> Option<&str> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .and_then(|segment| segment.split('.').next())
            .filter(|name| crate::store::validate_table_name(name).is_ok())
    }

    fn way_on(&self) -> Markup {
        let table = self.table();
        // Only a table that is there and can be shown is a way back.
        let back = table.filter(|_| {
            !matches!(
                self.kind,
                "no-table" | "not-found" | "invalid-table-name" | "broken-table"
            )
        });
        html! {
            @if let (Some(table), "broken-table") = (table, self.kind) {
                (self.repair(table))
            } @else if self.kind == "no-table" && self.viewer.may_write() {
                p { "The table list can create a table or make one from a CSV file." }
            }
            @if let Some(why) = self.viewer.why_not().filter(|_| self.kind == "method-not-allowed") {
                (why)
            }
            @if self.kind == "unauthorized" && self.viewer.guarded {
                p {
                    a href=(sign_in_href(&self.viewer.here)) { "Sign in" }
                    " with the server's token, then try again."
                }
            } @else if self.kind == "forbidden" {
                p { "Reload the page you came from and try again." }
            }
            p.actions {
                @if let Some(table) = back {
                    a href=(format!("/{}", encode_segment(table))) { "Back to " (table) }
                }
                a href="/" { "All tables" }
            }
        }
    }

    /// How a person repairs a table whose file cannot be read.
    fn repair(&self, table: &str) -> Markup {
        let path = format!("/{}", encode_segment(table));
        html! {
            p {
                "Fix the file " code { (table) ".csv" } " in the data directory and reload this \
                 page (from a spreadsheet: save it as CSV UTF-8, comma-separated)"
                @if self.viewer.may_write() { ", or replace the table's rows with a CSV file." }
                @else { "." }
            }
            @if self.viewer.may_write() {
                (forms::replace_rows(&path, table, "*", true))
                (forms::needs_script("Replacing rows from a file"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(status: u16, kind: &str, detail: &str, path: &str, viewer: &Viewer) -> String {
        ProblemPage {
            status,
            title: "T",
            kind,
            detail,
            path,
            viewer,
        }
        .render()
    }

    #[test]
    fn says_what_and_leads_on() {
        let open = Viewer::default();
        let page = render(
            404,
            "no-row",
            "there is no row with id \"<9>\"",
            "/people/9",
            &open,
        );
        assert!(page.contains("<h1>404 T</h1>"));
        assert!(page.contains("id &quot;&lt;9&gt;&quot;"), "{page}");
        assert!(page.contains("href=\"/people\">Back to people"));
        let page = render(400, "invalid-table-name", "x", "/bad%20name", &open);
        assert!(!page.contains("Back to"));
        // No way back to the page that was not found.
        let page = render(404, "no-table", "there is no table", "/nosuch", &open);
        assert!(!page.contains("Back to"), "{page}");
        assert!(page.contains("href=\"/\">All tables") && page.contains("create a table"));
    }

    #[test]
    fn a_broken_table_is_repaired_in_the_browser() {
        let open = Viewer::default();
        let page = render(500, "broken-table", "cannot be read", "/semi", &open);
        assert!(!page.contains("Back to") && !page.contains("PUT"), "{page}");
        assert!(page.contains("data-url=\"/semi\" data-tag=\"*\""), "{page}");
        assert!(page.contains("save it as CSV UTF-8"));
        let read_only = Viewer {
            read_only: true,
            ..Viewer::default()
        };
        let page = render(500, "broken-table", "cannot be read", "/semi", &read_only);
        assert!(!page.contains("data-upload"), "{page}");
    }
}
