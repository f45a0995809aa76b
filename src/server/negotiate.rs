//! Content negotiation: which representation an `Accept` header (or a URL
//! suffix such as `/people.csv`) asks for.

use crate::codec::repr::Format;

/// The preferred acceptable format, or `None` when the client accepts none
/// of ours (406). No `Accept` (or `*/*`) means JSON.
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Format::Json);
    };
    let mut best: Option<(f32, u8, usize, Format)> = None;
    for (order, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        for (format, specificity) in matches(&media) {
            // Higher q wins; then the more specific range; then the earlier one.
            let candidate = (q, specificity, usize::MAX - order, format);
            let better = match &best {
                None => true,
                Some((bq, bs, bo, _)) => (q, specificity, usize::MAX - order) > (*bq, *bs, *bo),
            };
            if better {
                best = Some(candidate);
            }
        }
    }
    best.map(|(_, _, _, format)| format)
}

/// Our formats a media range covers, with how specific the match is.
fn matches(media: &str) -> Vec<(Format, u8)> {
    match media {
        "*/*" => vec![(Format::Json, 0)],
        "application/*" => vec![(Format::Json, 1)],
        "text/*" => vec![(Format::Csv, 1)],
        "application/xhtml+xml" => vec![(Format::Html, 2)],
        "application/jsonl" => vec![(Format::Ndjson, 2)],
        // Tab-separated CSV: the table's read tells it by `Accept`.
        "text/tab-separated-values" => vec![(Format::Csv, 2)],
        _ => Format::ALL
            .into_iter()
            .filter(|f| f.media_type() == media)
            .map(|f| (f, 2))
            .collect(),
    }
}

/// Whether a client would rather read HTML than JSON (a browser), for
/// choosing how to show an error.
pub fn prefers_html(accept: Option<&str>) -> bool {
    negotiate(accept) == Some(Format::Html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_accept() {
        assert_eq!(negotiate(None), Some(Format::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Format::Json));
        assert_eq!(negotiate(Some("text/csv")), Some(Format::Csv));
        assert_eq!(
            negotiate(Some("application/x-ndjson")),
            Some(Format::Ndjson)
        );
        assert_eq!(negotiate(Some("application/xml")), None);
        assert_eq!(
            negotiate(Some("text/csv;q=0.5, application/json")),
            Some(Format::Json)
        );
        assert_eq!(negotiate(Some("application/json;q=0")), None);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert_eq!(negotiate(Some(browser)), Some(Format::Html));
        assert_eq!(
            negotiate(Some("application/json, */*;q=0.5")),
            Some(Format::Json)
        );
    }
}
