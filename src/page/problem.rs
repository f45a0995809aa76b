//! The page a browser gets instead of a problem document: the status,
//! what was wrong (the problem's detail), and the way back.

use maud::html;

use super::layout::{self, Step};

/// The page for an error answered to a request for `path`.
pub fn render(status: u16, title: &str, detail: &str, path: &str) -> String {
    let heading = format!("{status} {title}");
    // The table the request was about, to go back to, when it has one.
    let table = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .and_then(|segment| segment.split('.').next())
        .filter(|name| crate::store::validate_table_name(name).is_ok());
    let trail = [Step {
        label: &heading,
        href: None,
    }];
    let main = html! {
        div.problem {
            h1 { (heading) }
            p.detail { (detail) }
            p.actions {
                @if let Some(table) = table {
                    a href=(format!("/{table}")) { "Back to " (table) }
                    " · "
                }
                a href="/" { "All tables" }
            }
        }
    };
    layout::document(&heading, &trail, main).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_and_leads_back() {
        let page = render(
            404,
            "Not Found",
            "there is no row with id \"<9>\"",
            "/people/9",
        );
        assert!(page.contains("<h1>404 Not Found</h1>"));
        assert!(page.contains("id &quot;&lt;9&gt;&quot;"), "{page}");
        assert!(page.contains("href=\"/people\""));
        let page = render(400, "Bad Request", "x", "/bad%20name");
        assert!(!page.contains("Back to"));
    }
}
