//! The frame every page shares: the document head (stylesheet, script,
//! icon), the trail back to the table list, the place for notices, and the
//! security headers every HTML answer carries.

use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderValue};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::viewer::Viewer;

/// Only the server's own stylesheet, script and images; no inline script
/// or style (so nothing a cell holds could ever run), no frames, and
/// forms that send only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Adds the headers every page carries: its policy, no type sniffing,
/// and no address leaked to other sites.
pub fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// One step of the trail at the top of a page; the last has no link.
pub struct Step<'a> {
    pub label: &'a str,
    pub href: Option<String>,
}

/// A whole page: `title` names it in the tab, `trail` leads back up; the
/// top says whether `viewer` is signed in, and the head carries the CSRF
/// token the page's script sends with its writes.
pub fn document(title: &str, trail: &[Step], viewer: &Viewer, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · csvd" }
                link rel="icon" type="image/svg+xml" href=(assets::href("icon.svg"));
                link rel="stylesheet" href=(assets::href("style.css"));
                script src=(assets::href("app.js")) defer {}
                @if let Some(csrf) = &viewer.csrf {
                    meta name="csrf-token" content=(csrf);
                }
            }
            body {
                header.top {
                    nav aria-label="Trail" {
                        ol.trail {
                            li { a.home href="/" { "csvd" } }
                            @for step in trail {
                                li {
                                    @match &step.href {
                                        Some(href) => a href=(href) { (step.label) },
                                        None => span aria-current="page" { (step.label) },
                                    }
                                }
                            }
                        }
                    }
                    (viewer.account())
                }
                main {
                    p #notice .notice role="status" hidden {}
                    (main)
                }
            }
        }
        "\n"
    }
}

/// A moment as a person reads it (`2026-11-25 15:09 UTC`), machine-readable too.
pub fn moment(time: SystemTime) -> Markup {
    let stamp = humantime::format_rfc3339_seconds(time).to_string();
    let shown = stamp
        .get(..16)
        .map(|minutes| format!("{} UTC", minutes.replace('T', " ")))
        .unwrap_or_else(|| stamp.clone());
    html! { time datetime=(stamp) { (shown) } }
}

/// A count with thousands separated (`12,345`), for reading.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// "1 row", "2 rows".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_moments_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(plural(1, "row", "rows"), "1 row");
        assert_eq!(plural(1000, "row", "rows"), "1,000 rows");
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(90);
        assert_eq!(
            moment(time).into_string(),
            "<time datetime=\"1970-01-01T00:01:30Z\">1970-01-01 00:01 UTC</time>"
        );
    }

    #[test]
    fn pages_escape_their_titles_and_load_only_their_own_assets() {
        let page = document(
            "<x>",
            &[Step {
                label: "<y>",
                href: None,
            }],
            &Viewer::default(),
            html! {},
        )
        .into_string();
        assert!(!page.contains("<x>") && !page.contains("<y>"), "{page}");
        assert!(!page.contains("style=") && !page.contains("<style"));
        for attribute in ["href=\"", "src=\""] {
            for link in page.split(attribute).skip(1) {
                assert!(link.starts_with('/'), "{link}");
            }
        }
    }
}
