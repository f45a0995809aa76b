//! The address of a table page: its query parameters, read for what the
//! page shows (search, filters, sort, which rows) and rewritten for its
//! links and forms. Every view is a URL that can be shared.
//!
//! This reads parameters only to draw them; what they select is decided by
//! the query module when the request is answered, and a parameter it would
//! refuse never reaches a page (the request is answered 400).

/// Rows per page when an address names no window: enough to fill a
/// screen, few enough that a page of a large table loads at once.
pub const DEFAULT_PAGE_ROWS: usize = 25;

/// The rows a page may hold, offered by the page-size menu.
pub const PAGE_SIZES: [usize; 5] = [10, 25, 50, 100, 500];

/// Rows per page when `_page` is given without `_limit` (json-server's).
const PAGE_ROWS_WITHOUT_LIMIT: usize = 10;

/// The parameters that choose the part of the rows shown.
pub const WINDOW: [&str; 5] = ["_page", "_limit", "_per_page", "_start", "_end"];

/// Filter operators by parameter suffix, as a person reads them.
const OPERATORS: [(&str, &str); 6] = [
    ("_ne", "≠"),
    ("_lte", "≤"),
    ("_lt", "<"),
    ("_gte", "≥"),
    ("_gt", ">"),
    ("_like", "matches"),
];

/// A page's query parameters, decoded, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    params: Vec<(String, String)>,
}

/// The part of the matching rows a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Offset of the first row shown, from 0.
    pub start: usize,
    /// Rows per page.
    pub size: usize,
}

impl Window {
    /// The page shown, from 1.
    pub fn page(self) -> usize {
        self.start / self.size.max(1) + 1
    }

    /// How many pages `matching` rows fill (at least one, even when empty).
    pub fn pages(self, matching: usize) -> usize {
        matching.div_ceil(self.size.max(1)).max(1)
    }
}

/// One column filter of an address, for showing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub column: &'a str,
    pub operator: &'static str,
}

impl Address {
    /// Reads a raw query string (`a=1&b=x+y`).
    pub fn parse(raw: &str) -> Address {
        Address {
            params: form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The address a browser's page of a table is answered from: the one
    /// asked for, or when it names no window, its first page. A page never
    /// draws a whole large table by surprise.
    pub fn paged(raw: &str) -> String {
        let named = Address::parse(raw)
            .params
            .iter()
            .any(|(key, _)| WINDOW.contains(&key.as_str()));
        if named {
            return raw.to_string();
        }
        let first = format!("_page=1&_limit={DEFAULT_PAGE_ROWS}");
        if raw.is_empty() {
            first
        } else {
            format!("{raw}&{first}")
        }
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// This address without the parameters named.
    pub fn without(&self, keys: &[&str]) -> Address {
        Address {
            params: self
                .params
                .iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// This address without one parameter's one value.
    pub fn without_pair(&self, key: &str, value: &str) -> Address {
        Address {
            params: self
                .params
                .iter()
                .filter(|(k, v)| !(k == key && v == value))
                .cloned()
                .collect(),
        }
    }

    /// This address with a parameter set to one value: in place of its
    /// first occurrence (others dropped), or appended.
    pub fn with(&self, key: &str, value: &str) -> Address {
        let mut params = Vec::with_capacity(self.params.len() + 1);
        let mut set = false;
        for (k, v) in &self.params {
            if k != key {
                params.push((k.clone(), v.clone()));
            } else if !set {
                params.push((k.clone(), value.to_string()));
                set = true;
            }
        }
        if !set {
            params.push((key.to_string(), value.to_string()));
        }
        Address { params }
    }

    /// The query string, encoded as a form encodes it.
    pub fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.params)
            .finish()
    }

    /// `path`, with the query when there is one.
    pub fn href(&self, path: &str) -> String {
        if self.params.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.query())
        }
    }

    /// The sort keys: column names, each with whether it is descending
    /// (`_sort=a,-b`, or `_order=desc` paired with a key).
    pub fn sort(&self) -> Vec<(&str, bool)> {
        let Some(sort) = self.get("_sort") else {
            return Vec::new();
        };
        let mut orders = self.get("_order").unwrap_or_default().split(',');
        sort.split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| {
                let order = orders.next().unwrap_or_default().trim();
                match key.strip_prefix('-') {
                    Some(name) => (name, true),
                    None => (key, order.eq_ignore_ascii_case("desc")),
                }
            })
            .collect()
    }

    /// The rows shown, of `matching` rows that the filters let through.
    pub fn window(&self, matching: usize) -> Window {
        let number = |key| self.get(key).and_then(|v| v.trim().parse::<usize>().ok());
        let limit = number("_limit").or_else(|| number("_per_page"));
        if let Some(page) = number("_page") {
            let size = limit.unwrap_or(PAGE_ROWS_WITHOUT_LIMIT).max(1);
            return Window {
                start: page.saturating_sub(1).saturating_mul(size),
                size,
            };
        }
        let start = number("_start").unwrap_or(0);
        let size = match (limit, number("_end")) {
            (Some(limit), _) => limit,
            (None, Some(end)) => end.saturating_sub(start),
            (None, None) => matching.saturating_sub(start),
        };
        Window {
            start,
            size: size.max(1),
        }
    }

    /// The column filters (`col=v`, `col_gte=v`, …), read against the
    /// table's columns; other parameters are not filters.
    pub fn filters<'a>(&'a self, columns: &'a [String]) -> Vec<Filter<'a>> {
        self.params
            .iter()
            .filter(|(key, _)| key != "_" && !crate::query::RESERVED.contains(&key.as_str()))
            .filter_map(|(key, value)| {
                let (column, operator) = operator(key, columns)?;
                Some(Filter {
                    key,
                    value,
                    column,
                    operator,
                })
            })
            .collect()
    }
}

/// A filter parameter's column and operator: the whole key when it names
/// a column, else the key less an operator suffix.
fn operator<'a>(key: &'a str, columns: &'a [String]) -> Option<(&'a str, &'static str)> {
    if columns.iter().any(|c| c == key) {
        return Some((key, "="));
    }
    OPERATORS.iter().find_map(|(suffix, shown)| {
        let column = key.strip_suffix(suffix)?;
        columns
            .iter()
            .any(|c| c == column)
            .then_some((column, *shown))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_what_they_do_not_change() {
        let address = Address::parse("q=kim+lee&_sort=-age&city=Seoul&city=Busan&_page=3");
        assert_eq!(address.get("q"), Some("kim lee"));
        assert_eq!(
            address.with("_page", "1").query(),
            "q=kim+lee&_sort=-age&city=Seoul&city=Busan&_page=1"
        );
        assert_eq!(
            address.without(&["_page"]).with("_sort", "name").query(),
            "q=kim+lee&_sort=name&city=Seoul&city=Busan"
        );
        assert_eq!(
            address.without_pair("city", "Seoul").href("/people"),
            "/people?q=kim+lee&_sort=-age&city=Busan&_page=3"
        );
        assert_eq!(Address::parse("").href("/people"), "/people");
        assert_eq!(
            Address::parse("").with("a&b", "<&>").query(),
            "a%26b=%3C%26%3E"
        );
    }

    #[test]
    fn pages_by_default() {
        assert_eq!(Address::paged(""), "_page=1&_limit=25");
        assert_eq!(Address::paged("q=x"), "q=x&_page=1&_limit=25");
        assert_eq!(Address::paged("_start=0"), "_start=0");
        assert_eq!(Address::paged("_limit=5"), "_limit=5");
    }

    #[test]
    fn windows() {
        let window = Address::parse("_page=3&_limit=20").window(100);
        assert_eq!(
            window,
            Window {
                start: 40,
                size: 20
            }
        );
        assert_eq!((window.page(), window.pages(100)), (3, 5));
        assert_eq!(
            Address::parse("_page=2").window(100),
            Window {
                start: 10,
                size: 10
            }
        );
        assert_eq!(
            Address::parse("_start=5&_end=15").window(100),
            Window { start: 5, size: 10 }
        );
        let all = Address::parse("_start=0").window(0);
        assert_eq!((all.size, all.pages(0)), (1, 1));
    }

    #[test]
    fn sort_keys() {
        assert_eq!(
            Address::parse("_sort=a,-b").sort(),
            vec![("a", false), ("b", true)]
        );
        assert_eq!(
            Address::parse("_sort=a,b&_order=desc,asc").sort(),
            vec![("a", true), ("b", false)]
        );
        assert!(Address::parse("q=1").sort().is_empty());
    }

    #[test]
    fn filters_by_column() {
        let columns: Vec<String> = ["id", "age", "name_like"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let address = Address::parse("age_gte=30&name_like=x&q=k&_page=2&zip=1&id_ne=3");
        let shown: Vec<_> = address
            .filters(&columns)
            .iter()
            .map(|f| (f.column, f.operator, f.value))
            .collect();
        assert_eq!(
            shown,
            [
                ("age", "≥", "30"),
                ("name_like", "=", "x"),
                ("id", "≠", "3")
            ]
        );
    }
}
