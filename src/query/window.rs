//! Which part of the matching rows to answer with (`_page`/`_limit`,
//! `_start`/`_end`, `_start`/`_limit`), and the `Link` header that leads
//! to the neighbouring parts.

use std::ops::Range;

/// Rows per page when `_page` is given without `_limit`, as in json-server.
const DEFAULT_PAGE_SIZE: usize = 10;

/// The part of the matching rows to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    All,
    /// `_page` (from 1) of `size` rows (`_limit` or `_per_page`).
    Page { number: usize, size: usize },
    /// `_limit` rows from `_start` (0 when absent).
    Limit { start: usize, limit: usize },
    /// `_start` to `_end` (exclusive; to the last row when absent).
    Slice { start: usize, end: Option<usize> },
}

impl Window {
    /// Reads the window parameters: `_page` wins over `_start`/`_end`,
    /// `_end` over `_limit`, as in json-server, but giving ones that would
    /// be ignored is an error rather than a surprise.
    pub fn from_params(
        page: Option<&str>,
        limit: Option<(&str, &str)>,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Window, String> {
        let limit = limit.map(|(name, value)| count(name, value)).transpose()?;
        let start = start.map(|v| count("_start", v)).transpose()?;
        let end = end.map(|v| count("_end", v)).transpose()?;
        if let Some(page) = page {
            if start.is_some() || end.is_some() {
                return Err("give _page (with _limit) or _start/_end, not both".into());
            }
            let number = page
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("_page: expected a page number (1 or more: pages are numbered from 1), got {page:?}")
                })?;
            let size = limit.unwrap_or(DEFAULT_PAGE_SIZE);
            if size == 0 {
                return Err("_limit: a page holds at least 1 row".into());
            }
            return Ok(Window::Page { number, size });
        }
        match (start, end, limit) {
            (_, Some(_), Some(_)) => Err("give _end or _limit, not both".into()),
            (start, None, Some(limit)) => Ok(Window::Limit {
                start: start.unwrap_or(0),
                limit,
            }),
            (None, None, None) => Ok(Window::All),
            (start, end, None) => Ok(Window::Slice {
                start: start.unwrap_or(0),
                end,
            }),
        }
    }

    /// The rows to answer with, out of `total` matching rows.
    pub fn range(self, total: usize) -> Range<usize> {
        let (start, end) = match self {
            Window::All => (0, total),
            Window::Page { number, size } => {
                let start = (number - 1).saturating_mul(size);
                (start, start.saturating_add(size))
            }
            Window::Limit { start, limit } => (start, start.saturating_add(limit)),
            Window::Slice { start, end } => (start, end.unwrap_or(total)),
        };
        let end = end.min(total);
        start.min(end)..end
    }

    /// How many rows, from the first in order, the answer needs.
    pub fn needed(self, total: usize) -> usize {
        self.range(total).end
    }

    /// Whether the answer is a part, so it gets a `Link` header.
    fn is_part(self) -> bool {
        !matches!(self, Window::All | Window::Slice { end: None, .. })
    }
}

/// The `Link` header value for a windowed answer: `first`, `prev`, `next`
/// and `last` as absolute paths keeping every other parameter as given.
/// A part that holds every matching row still links to itself as `first`
/// and `last`, so that a client paging through sees where the pages end.
/// `None` when the answer is not a part (or parts of 0 rows).
pub fn links(path: &str, raw_query: &str, window: Window, total: usize) -> Option<String> {
    if !window.is_part() {
        return None;
    }
    let (current, size) = match window {
        Window::Page { number, size } => (number - 1, size),
        Window::Limit { start, limit } => (start, limit),
        Window::Slice { start, end } => (start, end.unwrap_or(total).saturating_sub(start)),
        Window::All => return None,
    };
    if size == 0 {
        return None;
    }
    // Positions are page numbers (from 0) for pages, row offsets otherwise.
    let pages = total.saturating_sub(1) / size;
    let (step, last) = match window {
        Window::Page { .. } => (1, pages),
        _ => (size, pages * size),
    };
    let mut rels = vec![("first", 0)];
    if current > 0 {
        rels.push(("prev", current.saturating_sub(step).min(last)));
    }
    if current < last {
        rels.push(("next", current + step));
    }
    rels.push(("last", last));
    let parts: Vec<String> = rels
        .into_iter()
        .map(|(rel, at)| {
            let query = match window {
                Window::Page { .. } => with_params(raw_query, &[("_page", at + 1)]),
                Window::Slice { .. } => {
                    with_params(raw_query, &[("_start", at), ("_end", at + size)])
                }
                _ => with_params(raw_query, &[("_start", at)]),
            };
            format!("<{path}?{query}>; rel=\"{rel}\"")
        })
        .collect();
    Some(parts.join(", "))
}

/// The raw query with these parameters set (in place when present, else
/// appended); other parameters are kept byte for byte.
pub fn with_params(raw_query: &str, set: &[(&str, usize)]) -> String {
    let mut done = vec![false; set.len()];
    let mut parts: Vec<String> = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let key = form_urlencoded::parse(part.as_bytes())
            .next()
            .map(|(key, _)| key)
            .unwrap_or_default();
        match set.iter().position(|(name, _)| *name == key) {
            Some(i) if !done[i] => {
                done[i] = true;
                parts.push(format!("{}={}", set[i].0, set[i].1));
            }
            Some(_) => {}
            None => parts.push(part.to_string()),
        }
    }
    for (i, (name, value)) in set.iter().enumerate() {
        if !done[i] {
            parts.push(format!("{name}={value}"));
        }
    }
    parts.join("&")
}

/// A count parameter: a whole number, 0 or more.
fn count(name: &str, value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("{name}: expected a whole number (0 or more), got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(
        page: Option<&str>,
        limit: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Window, String> {
        Window::from_params(page, limit.map(|l| ("_limit", l)), start, end)
    }

    #[test]
    fn parameters_choose_a_window() {
        assert_eq!(window(None, None, None, None), Ok(Window::All));
        assert_eq!(
            window(Some("2"), None, None, None),
            Ok(Window::Page {
                number: 2,
                size: 10
            })
        );
        assert_eq!(
            window(Some("3"), Some("5"), None, None),
            Ok(Window::Page { number: 3, size: 5 })
        );
        assert_eq!(
            window(None, Some("5"), Some("10"), None),
            Ok(Window::Limit {
                start: 10,
                limit: 5
            })
        );
        assert_eq!(
            window(None, None, Some("10"), Some("20")),
            Ok(Window::Slice {
                start: 10,
                end: Some(20)
            })
        );
        assert_eq!(
            window(None, None, Some("10"), None),
            Ok(Window::Slice {
                start: 10,
                end: None
            })
        );
        for bad in [
            window(Some("0"), None, None, None),
            window(Some("x"), None, None, None),
            window(Some("-1"), None, None, None),
            window(Some("1"), Some("0"), None, None),
            window(Some("1"), None, Some("0"), None),
            window(None, Some("1"), None, Some("2")),
            window(None, Some("1.5"), None, None),
        ] {
            assert!(bad.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_stay_inside_the_rows() {
        assert_eq!(
            Window::Page {
                number: 2,
                size: 10
            }
            .range(25),
            10..20
        );
        assert_eq!(
            Window::Page {
                number: 3,
                size: 10
            }
            .range(25),
            20..25
        );
        assert_eq!(
            Window::Page {
                number: 9,
                size: 10
            }
            .range(25),
            25..25
        );
        assert_eq!(Window::Limit { start: 5, limit: 0 }.range(25), 5..5);
        assert_eq!(
            Window::Slice {
                start: 20,
                end: Some(10)
            }
            .range(25),
            10..10
        );
        assert_eq!(
            Window::Slice {
                start: 20,
                end: None
            }
            .range(25),
            20..25
        );
        assert_eq!(
            Window::Page {
                number: usize::MAX,
                size: usize::MAX
            }
            .range(3),
            3..3
        );
    }

    #[test]
    fn page_links_keep_other_parameters() {
        let link = links(
            "/people",
            "name=kim&_page=2&_limit=10",
            Window::Page {
                number: 2,
                size: 10,
            },
            35,
        );
        assert_eq!(
            link.as_deref(),
            Some(
                "</people?name=kim&_page=1&_limit=10>; rel=\"first\", \
                 </people?name=kim&_page=1&_limit=10>; rel=\"prev\", \
                 </people?name=kim&_page=3&_limit=10>; rel=\"next\", \
                 </people?name=kim&_page=4&_limit=10>; rel=\"last\""
            )
        );
        let first = links(
            "/t",
            "_page=1",
            Window::Page {
                number: 1,
                size: 10,
            },
            11,
        )
        .unwrap();
        assert!(!first.contains("prev") && first.contains("_page=2>; rel=\"next\""));
        // One page holds every row: it is the first and the last.
        for total in [0, 10] {
            assert_eq!(
                links(
                    "/t",
                    "_page=1&_limit=20",
                    Window::Page {
                        number: 1,
                        size: 20
                    },
                    total
                )
                .as_deref(),
                Some("</t?_page=1&_limit=20>; rel=\"first\", </t?_page=1&_limit=20>; rel=\"last\"")
            );
        }
        assert_eq!(
            links("/t", "_limit=0", Window::Limit { start: 0, limit: 0 }, 5),
            None
        );
        assert_eq!(links("/t", "", Window::All, 100), None);
    }

    #[test]
    fn offset_links_move_the_start() {
        let link = links(
            "/t",
            "_limit=10&q=a%20b",
            Window::Limit {
                start: 0,
                limit: 10,
            },
            25,
        )
        .unwrap();
        assert_eq!(
            link,
            "</t?_limit=10&q=a%20b&_start=0>; rel=\"first\", \
             </t?_limit=10&q=a%20b&_start=10>; rel=\"next\", \
             </t?_limit=10&q=a%20b&_start=20>; rel=\"last\""
        );
        let slice = links(
            "/t",
            "_start=10&_end=20",
            Window::Slice {
                start: 10,
                end: Some(20),
            },
            25,
        )
        .unwrap();
        assert!(
            slice.contains("</t?_start=0&_end=10>; rel=\"prev\""),
            "{slice}"
        );
        assert!(
            slice.contains("</t?_start=20&_end=30>; rel=\"last\""),
            "{slice}"
        );
        let encoded = links(
            "/t",
            "%5Fpage=2",
            Window::Page {
                number: 2,
                size: 10,
            },
            30,
        )
        .unwrap();
        assert!(
            encoded.starts_with("</t?_page=1>; rel=\"first\""),
            "{encoded}"
        );
    }
}
