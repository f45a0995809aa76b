//! A table's page: its rows, with a search box, column filters, sorting by
//! a click on a column's header and pages, all kept in the page's own
//! query parameters (the API's), so every view is a link to share; below
//! the rows, the forms that add a row, replace the table from a CSV file
//! and delete it.
//!
//! The page is drawn as two halves around its rows ([`TablePage::frame`]),
//! so that the rows can stream between them in chunks ([`body`]).

use std::time::SystemTime;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use maud::{html, Markup, PreEscaped};

use super::address::{Address, Window, PAGE_SIZES, WINDOW};
use super::forms::{self, Delete};
use super::layout::{self, count, plural, Step};
use super::viewer::Viewer;
use crate::codec::repr::encode_segment;

/// Where the rows go. Every text a page shows is escaped, so this comment
/// can only appear where the template put it.
const ROWS: &str = "<!--rows-->";

/// Parameters that neither filter nor search: a view keeps them when its
/// search is cleared.
const VIEW: [&str; 5] = ["_sort", "_order", "_limit", "_per_page", "_fields"];

/// Parameters that order or window a list, which a change feed refuses.
const LIST_ONLY: [&str; 7] = [
    "_sort",
    "_order",
    "_page",
    "_limit",
    "_per_page",
    "_start",
    "_end",
];

/// What a table's page shows besides its rows.
pub struct TablePage<'a> {
    /// The table's name.
    pub name: &'a str,
    /// Every column of the table, for the form that adds a row.
    pub columns: &'a [String],
    /// The columns of the rows shown (`_fields` may pick some).
    pub shown: &'a [String],
    /// The name of the id column, when the table has one.
    pub id_column: Option<&'a str>,
    /// The table's entity tag, sent as `If-Match` when replacing or
    /// deleting it, so a table changed meanwhile is not lost.
    pub tag: &'a str,
    /// Rows in the table.
    pub rows: usize,
    /// Rows the filters and search let through, before paging.
    pub matching: usize,
    pub modified: SystemTime,
    /// The query string the rows were selected by.
    pub query: &'a str,
    /// The change feed's last sequence number, read before the rows: the
    /// page follows the changes after it.
    pub since: u64,
    pub viewer: &'a Viewer,
}

impl TablePage<'_> {
    /// The page before its first row and after its last.
    pub fn frame(&self) -> (Bytes, Bytes) {
        let trail = [Step {
            label: self.name,
            href: None,
        }];
        let page = layout::document(self.name, &trail, self.viewer, self.main()).into_string();
        match page.split_once(ROWS) {
            Some((head, tail)) => (Bytes::from(head.to_string()), Bytes::from(tail.to_string())),
            None => (Bytes::from(page), Bytes::new()),
        }
    }

    fn path(&self) -> String {
        format!("/{}", encode_segment(self.name))
    }

    /// The change feed of this view: its filters, search and `_fields`,
    /// from the position read before its rows.
    fn feed(&self, address: &Address) -> String {
        let kept = address.without(&LIST_ONLY);
        let mut url = format!(
            "/_changes/{}?since={}",
            encode_segment(self.name),
            self.since
        );
        if kept.params().next().is_some() {
            url.push('&');
            url.push_str(&kept.query());
        }
        url
    }

    fn main(&self) -> Markup {
        let address = Address::parse(self.query);
        let window = address.window(self.matching);
        // The rows shown end the table in its own order: new rows join them.
        let end = address.sort().is_empty()
            && window.start < self.matching.max(1)
            && window.start.saturating_add(window.size) >= self.matching;
        let filtered = address
            .without(&LIST_ONLY)
            .params()
            .any(|(key, _)| key != "_fields");
        let id_shown = self
            .id_column
            .filter(|id| self.shown.iter().any(|c| c == id));
        html! {
            div.heading {
                h1 { (self.name) }
                (self.downloads(&address))
            }
            p.meta {
                span data-count="rows" { (plural(self.rows, "row", "rows")) } " · "
                (plural(self.columns.len(), "column", "columns")) " · changed "
                (layout::moment(self.modified))
            }
            (self.search(&address))
            (self.chips(&address))
            div.scroll {
                table.rows data-feed=(self.feed(&address)) data-table=(self.path())
                    data-id-column=[id_shown] data-start=(window.start) data-size=(window.size)
                    data-rows=(self.rows) data-matching=(self.matching)
                    data-end[end] data-filtered[filtered] {
                    caption.visually-hidden { "Rows of " (self.name) }
                    thead {
                        tr { @for column in self.shown { (self.header(column, &address)) } }
                        (self.filter_row(&address))
                    }
                    tbody { (PreEscaped(ROWS)) }
                }
            }
            @if self.matching == 0 {
                p.empty {
                    @if self.rows == 0 { "This table has no rows yet." }
                    @else { "No rows match. " a href=(self.cleared(&address)) { "Show all rows" } }
                }
            } @else if window.start >= self.matching {
                p.empty {
                    "There are fewer rows than this page needs. "
                    a href=(self.page_href(&address, window, 1)) { "Go to the first page" }
                }
            }
            (self.pager(&address, window))
            (self.hint())
            (self.changes())
        }
    }

    /// The forms that change the table, when the viewer may change it;
    /// else why not.
    fn changes(&self) -> Markup {
        html! {
            @if !self.viewer.may_write() {
                @if let Some(why) = self.viewer.why_not() { (why) }
            } @else {
                (self.add_row())
                (forms::replace_rows(&self.path(), self.name, self.tag, false))
                (forms::delete(&Delete {
                    summary: "Delete this table…",
                    warning: &format!(
                        "The table {} and its {} will be deleted, with its file. This cannot be undone.",
                        self.name, plural(self.rows, "row", "rows")),
                    button: &format!("Delete the table {}", self.name),
                    url: &self.path(),
                    tag: self.tag,
                    then: "/",
                    done: &format!("The table {} was deleted.", self.name),
                }))
                (forms::needs_script("Replacing rows from a file and deleting the table"))
            }
        }
    }

    fn downloads(&self, address: &Address) -> Markup {
        let all = address.without(&WINDOW);
        html! {
            p.downloads {
                "Download "
                a href=(all.href(&format!("{}.csv", self.path())))
                    download=(format!("{}.csv", self.name)) { "CSV" }
                " "
                a href=(all.href(&format!("{}.json", self.path())))
                    download=(format!("{}.json", self.name)) { "JSON" }
                " "
                a href=(excel(&all.href(&format!("{}.csv", self.path()))))
                    download=(format!("{}.csv", self.name)) { "Download for Excel" }
            }
        }
    }

    /// The search box. Its form also carries the filter row's fields, and
    /// the view's other parameters as hidden fields, so a search keeps the
    /// sort, page size and filters (and starts at the first page).
    fn search(&self, address: &Address) -> Markup {
        let mut drop = vec![
            "q".to_string(),
            "_page".into(),
            "_start".into(),
            "_end".into(),
        ];
        drop.extend(self.shown.iter().map(|c| format!("{c}_like")));
        let drop: Vec<&str> = drop.iter().map(String::as_str).collect();
        let kept = address.without(&drop);
        html! {
            form #query .search role="search" method="get" action=(self.path()) data-query {
                label for="q" { "Search" }
                input #q type="search" name="q" value=[address.get("q")]
                    placeholder="text in any column";
                (hidden(&kept))
                button type="submit" { "Search" }
                @if self.filtered(address) {
                    a.clear href=(self.cleared(address)) { "Clear search and filters" }
                }
            }
        }
    }

    fn filtered(&self, address: &Address) -> bool {
        address.get("q").is_some_and(|q| !q.is_empty())
            || address
                .filters(self.columns)
                .iter()
                .any(|f| !(f.operator == "matches" && f.value.is_empty()))
    }

    /// This view without its search and filters, at its first page.
    fn cleared(&self, address: &Address) -> String {
        let mut kept = Address::default();
        for (key, value) in address.params() {
            if VIEW.contains(&key) {
                kept = kept.with(key, value);
            }
        }
        kept.href(&self.path())
    }

    /// The filters the filter row does not show, each with a link that
    /// removes it.
    fn chips(&self, address: &Address) -> Markup {
        let filters: Vec<_> = address
            .filters(self.columns)
            .into_iter()
            .filter(|f| !(f.operator == "matches" && self.shown.iter().any(|c| c == f.column)))
            .collect();
        html! {
            @if !filters.is_empty() {
                ul.chips aria-label="Filters" {
                    @for filter in &filters {
                        li {
                            span { (filter.column) " " (filter.operator) " " (filter.value) }
                            a href=(address.without_pair(filter.key, filter.value)
                                    .without(&["_page", "_start", "_end"]).href(&self.path()))
                                aria-label=(format!("Remove the filter {} {} {}",
                                    filter.column, filter.operator, filter.value)) { "×" }
                        }
                    }
                }
            }
        }
    }

    /// A column's header: a link that sorts by it (ascending, or
    /// descending when it is sorted ascending already).
    fn header(&self, column: &str, address: &Address) -> Markup {
        let sort = address.sort();
        let current = sort.iter().position(|(c, _)| *c == column);
        let descending = current.map(|i| sort[i].1);
        let next = match (current, descending) {
            (Some(0), Some(false)) => format!("-{column}"),
            _ => column.to_string(),
        };
        let href = address
            .without(&["_page", "_order", "_start", "_end"])
            .with("_sort", &next)
            .href(&self.path());
        let (aria, arrow) = match descending {
            Some(true) => (Some("descending"), "▼"),
            Some(false) => (Some("ascending"), "▲"),
            None => (None, ""),
        };
        html! {
            th scope="col" aria-sort=[aria] data-column=(column) {
                a.sort href=(href) title=(format!("Sort by {column}")) {
                    (column)
                    @if !arrow.is_empty() { span.arrow aria-hidden="true" { (arrow) } }
                }
            }
        }
    }

    /// A filter box under each header: `col_like`, text the column's cells
    /// contain (a regular expression, ignoring case). Its fields belong to
    /// the search form.
    fn filter_row(&self, address: &Address) -> Markup {
        html! {
            @if !self.shown.is_empty() {
                tr.filters {
                    @for (i, column) in self.shown.iter().enumerate() {
                        @let key = format!("{column}_like");
                        @let id = format!("filter-{i}");
                        td {
                            label.visually-hidden for=(id) { "Filter " (column) }
                            input id=(id) type="search" form="query" name=(key)
                                value=[address.get(&key)] placeholder="filter"
                                title=(format!("Rows whose {column} contains this text \
                                    (a regular expression; case is ignored)"));
                        }
                    }
                }
            }
        }
    }

    fn pager(&self, address: &Address, window: Window) -> Markup {
        let pages = window.pages(self.matching);
        let page = window.page();
        let to = |n: usize| self.page_href(address, window, n);
        let first = window.start.min(self.matching);
        let last = window.start.saturating_add(window.size).min(self.matching);
        html! {
            nav.pager aria-label="Pages" {
                p.range data-range {
                    @if first == last { "No rows" }
                    @else { "Rows " (count(first + 1)) "–" (count(last)) " of " (count(self.matching)) }
                    @if self.matching != self.rows { " (of " (count(self.rows)) " in the table)" }
                }
                ul.pages {
                    (step(page > 1, to(1), "first", "« First"))
                    (step(page > 1, to((page - 1).min(pages)), "prev", "‹ Previous"))
                    li.current { "Page " (count(page)) " of " (count(pages)) }
                    (step(page < pages, to(page + 1), "next", "Next ›"))
                    (step(page < pages, to(pages), "last", "Last »"))
                }
                form.page-size method="get" action=(self.path()) {
                    (hidden(&address.without(&WINDOW)))
                    label for="page-size" { "Rows per page" }
                    select #page-size name="_limit" {
                        @for size in sizes(window.size) {
                            option value=(size) selected[size == window.size] { (size) }
                        }
                    }
                    button type="submit" { "Show" }
                }
            }
        }
    }

    /// How to reach a row, for someone new to the page.
    fn hint(&self) -> Markup {
        let linked = self
            .id_column
            .is_some_and(|id| self.shown.iter().any(|c| c == id));
        html! {
            @if self.matching > 0 {
                p.note {
                    @if linked && self.viewer.may_write() {
                        "Open a row by its id to edit or delete it. "
                    } @else if linked {
                        "Open a row by its id to see it on its own. "
                    } @else if self.id_column.is_none() {
                        "This table has no id column yet: its rows get ids, and pages of \
                         their own, at its first change. "
                    }
                    "Click a column's name to sort by it."
                }
            }
        }
    }

    /// The address of page `n` (from 1) of this view, at its page size.
    fn page_href(&self, address: &Address, window: Window, n: usize) -> String {
        address
            .without(&["_start", "_end", "_per_page"])
            .with("_limit", &window.size.to_string())
            .with("_page", &n.to_string())
            .href(&self.path())
    }

    /// The form that adds a row. A plain form posts it (the answer leads
    /// to the new row's page); the script sends the same, with any new
    /// columns, and says on this page what was wrong if it fails.
    fn add_row(&self) -> Markup {
        html! {
            section.add-row aria-labelledby="add-row" {
                h2 #add-row { "Add a row" }
                form method="post" action=(self.path()) data-add-row {
                    (self.viewer.csrf_field())
                    div.fields {
                        @for (i, column) in self.columns.iter().enumerate() {
                            @if Some(column.as_str()) == self.id_column {
                                div.field {
                                    label for=(format!("add-{i}")) { (column) }
                                    input id=(format!("add-{i}")) type="text" name=(column)
                                        placeholder="given by the server";
                                }
                            } @else {
                                (forms::field(&format!("add-{i}"), column, "", false))
                            }
                        }
                    }
                    (forms::new_columns("add-new"))
                    button.primary type="submit" { "Add row" }
                    p.status role="status" {}
                }
            }
        }
    }
}

/// A link to another page, or its words alone when there is none.
fn step(enabled: bool, href: String, rel: &str, label: &str) -> Markup {
    html! {
        li {
            @if enabled { a href=(href) rel=(rel) { (label) } }
            @else { span.disabled aria-disabled="true" { (label) } }
        }
    }
}

/// The page sizes offered, with the current one among them.
fn sizes(current: usize) -> Vec<usize> {
    let mut sizes = PAGE_SIZES.to_vec();
    if !sizes.contains(&current) {
        sizes.push(current);
        sizes.sort_unstable();
    }
    sizes
}

/// An address's parameters as hidden fields of a form.
fn hidden(address: &Address) -> Markup {
    html! {
        @for (key, value) in address.params() {
            input type="hidden" name=(key) value=(value);
        }
    }
}

/// A whole page: its first half, the rows (a stream), its second half.
pub fn body((head, tail): (Bytes, Bytes), rows: Body) -> Body {
    let head = futures_util::stream::once(async move { Ok(head) });
    let tail = futures_util::stream::once(async move { Ok(tail) });
    Body::from_stream(head.chain(rows.into_data_stream()).chain(tail))
}

/// A CSV download's address, as UTF-8 with a byte-order mark (which
/// Excel needs to read it as UTF-8).
fn excel(href: &str) -> String {
    let join = if href.contains('?') { '&' } else { '?' };
    format!("{href}{join}bom=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    fn frame(query: &str, matching: usize) -> String {
        let all = columns(&["id", "name", "<b>"]);
        let page = TablePage {
            name: "people",
            columns: &all,
            shown: &all,
            id_column: Some("id"),
            tag: "\"00000000000000ff\"",
            rows: 120,
            matching,
            modified: SystemTime::UNIX_EPOCH,
            query,
            since: 7,
            viewer: &Viewer::default(),
        };
        let (head, tail) = page.frame();
        format!(
            "{}{ROWS}{}",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&tail)
        )
    }

    #[test]
    fn headers_sort_and_keep_the_view() {
        let page = frame("q=kim&_sort=name&_page=3&_limit=10", 40);
        assert!(
            page.contains("href=\"/people?q=kim&amp;_sort=-name&amp;_limit=10\""),
            "{page}"
        );
        assert!(page.contains("aria-sort=\"ascending\""));
        assert!(page.contains("href=\"/people?q=kim&amp;_sort=id&amp;_limit=10\""));
        assert!(page.contains("Page 3 of 4"));
        assert!(page.contains("Rows 21–30 of 40"));
        assert!(page.contains("href=\"/people?q=kim&amp;_sort=name&amp;_page=4&amp;_limit=10\""));
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
    }

    #[test]
    fn filters_show_and_search_keeps_them() {
        let page = frame("city=Seoul&name_like=ki&_limit=10", 3);
        assert!(page.contains("<input type=\"hidden\" name=\"city\" value=\"Seoul\">"));
        assert!(page.contains("name=\"name_like\" value=\"ki\""), "{page}");
        assert!(page.contains("Clear search and filters"));
        assert!(page.contains("href=\"/people?_limit=10\""), "{page}");
    }

    #[test]
    fn a_page_past_the_last_leads_back() {
        let page = frame("_page=9&_limit=10", 40);
        assert!(
            page.contains(">No rows (of 120 in the table)</p>"),
            "{page}"
        );
        assert!(page.contains("Page 9 of 4"));
        assert!(page.contains("href=\"/people?_page=1&amp;_limit=10\">Go to the first page"));
        assert!(page.contains("href=\"/people?_page=4&amp;_limit=10\" rel=\"prev\""));
    }

    #[test]
    fn the_feed_follows_the_view_without_its_order_or_window() {
        let page = frame(
            "city=Seoul&_sort=-name&_page=2&_limit=10&q=k+m&_fields=id,name",
            40,
        );
        assert!(
            page.contains("data-feed=\"/_changes/people?since=7&amp;city=Seoul&amp;q=k+m&amp;_fields=id%2Cname\""),
            "{page}"
        );
        assert!(
            page.contains("data-filtered") && !page.contains("data-end"),
            "{page}"
        );
        let page = frame("_page=4&_limit=10", 40);
        assert!(
            page.contains("data-feed=\"/_changes/people?since=7\""),
            "{page}"
        );
        assert!(
            page.contains("data-end") && !page.contains("data-filtered"),
            "{page}"
        );
        assert!(page.contains("data-id-column=\"id\""));
        assert!(!frame("_page=3&_limit=10", 40).contains("data-end"));
    }

    #[test]
    fn downloads_take_every_matching_row() {
        let page = frame("q=kim&_page=2&_limit=10", 40);
        assert!(page.contains("href=\"/people.csv?q=kim\""), "{page}");
        assert!(
            page.contains("href=\"/people.csv?q=kim&amp;bom=1\""),
            "{page}"
        );
        assert!(page.contains("href=\"/people.json?q=kim\""));
    }
}
