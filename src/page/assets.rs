//! The stylesheet, script and icon of the pages, compiled into the binary
//! and served from `/_assets/<name>`: a page needs nothing from elsewhere,
//! and its Content-Security-Policy allows nothing from elsewhere.
//!
//! Pages link each asset with its content hash in the query (`?v=…`), so a
//! browser may keep it for long: a new binary with new assets links new URLs.

use std::sync::LazyLock;

use xxhash_rust::xxh3::xxh3_64;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/icon.svg"),
    },
];

/// Each asset's content hash, computed once.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("{:016x}", xxh3_64(a.body)))
        .collect()
});

/// A year: assets are linked by content hash, so a cached copy is never stale.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    ASSETS
        .iter()
        .zip(HASHES.iter())
        .find(|(a, _)| a.name == name)
        .map(|(a, h)| (a, h.as_str()))
}

/// The URL a page links an asset by.
pub fn href(name: &str) -> String {
    match find(name) {
        Some((_, hash)) => format!("/_assets/{name}?v={}", &hash[..12]),
        None => format!("/_assets/{name}"),
    }
}

/// An asset and its strong entity tag, for `GET /_assets/<name>`.
pub fn get(name: &str) -> Option<(&'static Asset, String)> {
    find(name).map(|(asset, hash)| (asset, format!("\"{hash}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_linked_by_content() {
        for asset in &ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
            assert!(href(asset.name).starts_with(&format!("/_assets/{}?v=", asset.name)));
            let (_, tag) = get(asset.name).unwrap();
            assert_eq!(tag.len(), 18);
        }
        assert!(get("nothing.css").is_none());
    }
}
