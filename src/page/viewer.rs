//! Who is looking at a page, as far as the page cares: what it may offer.
//! The server decides it from its access rules and the request; a page
//! only reads it, and draws no form for a write that would be refused.

use maud::{html, Markup};

use super::address::Address;

/// What the person looking at a page may do.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    /// The server takes no writes (`--read-only`).
    pub read_only: bool,
    /// The server has a token: a browser signs in to write (and, with
    /// `--private`, to read).
    pub guarded: bool,
    /// Signed in: the session's CSRF token, which the page's forms and
    /// script send with every write.
    pub csrf: Option<String>,
    /// The request carried the bearer token itself (an HTTP client asking
    /// for a page).
    pub bearer: bool,
    /// The page's own address (path and query), to come back to after
    /// signing in.
    pub here: String,
}

impl Viewer {
    /// Whether the page offers its forms that change data.
    pub fn may_write(&self) -> bool {
        !self.read_only && (!self.guarded || self.bearer || self.csrf.is_some())
    }

    /// Whether signing in would let this browser do more.
    pub fn may_sign_in(&self) -> bool {
        self.guarded && !self.read_only && self.csrf.is_none() && !self.bearer
    }

    /// Why the page offers no forms that change data, when it offers none.
    pub fn why_not(&self) -> Option<Markup> {
        if self.read_only {
            return Some(html! {
                p.note { "This server is read-only: its tables can be read here, not changed." }
            });
        }
        self.may_sign_in().then(|| {
            html! {
                p.note {
                    a href=(sign_in_href(&self.here)) { "Sign in" }
                    " to add, change or delete rows."
                }
            }
        })
    }

    /// What the top of every page says about signing in, on a server with
    /// a token: a way to sign in, or to sign out.
    pub fn account(&self) -> Markup {
        html! {
            @if let Some(csrf) = self.csrf.as_deref().filter(|_| self.guarded) {
                form.account method="post" action="/_signout" {
                    span { "Signed in" }
                    input type="hidden" name="_csrf" value=(csrf);
                    button.quiet type="submit" { "Sign out" }
                }
            } @else if self.may_sign_in() && !self.here.starts_with("/_signin") {
                a.account href=(sign_in_href(&self.here)) { "Sign in" }
            }
        }
    }

    /// A hidden field with the CSRF token, for a plain form's write.
    pub fn csrf_field(&self) -> Markup {
        html! {
            @if let Some(csrf) = &self.csrf {
                input type="hidden" name="_csrf" value=(csrf);
            }
        }
    }

    /// What to add to a page's entity tag: a page differs for each viewer
    /// (its forms, its token), so a browser's copy from before signing in
    /// is never taken for the page after.
    pub fn tag_suffix(&self) -> Option<String> {
        if !self.guarded && !self.read_only {
            return None;
        }
        let state = format!(
            "{}{}{}{}",
            u8::from(self.read_only),
            u8::from(self.bearer),
            u8::from(self.guarded),
            self.csrf.as_deref().unwrap_or_default()
        );
        Some(format!(
            "-v{:08x}",
            xxhash_rust::xxh3::xxh3_64(state.as_bytes()) as u32
        ))
    }
}

/// The sign-in page, coming back to `here` afterwards.
pub fn sign_in_href(here: &str) -> String {
    if here.is_empty() || here == "/" {
        return "/_signin".to_string();
    }
    Address::default().with("next", here).href("/_signin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_offered_only_where_they_would_be_taken() {
        assert!(Viewer::default().may_write());
        let read_only = Viewer {
            read_only: true,
            ..Viewer::default()
        };
        assert!(!read_only.may_write() && read_only.why_not().is_some());
        let stranger = Viewer {
            guarded: true,
            here: "/people?q=a b".into(),
            ..Viewer::default()
        };
        assert!(!stranger.may_write() && stranger.may_sign_in());
        let note = stranger.why_not().unwrap().into_string();
        assert!(
            note.contains("href=\"/_signin?next=%2Fpeople%3Fq%3Da+b\""),
            "{note}"
        );
        let signed_in = Viewer {
            csrf: Some("c0ffee".into()),
            ..stranger.clone()
        };
        assert!(signed_in.may_write() && signed_in.why_not().is_none());
        assert!(signed_in
            .account()
            .into_string()
            .contains("value=\"c0ffee\""));
        assert_ne!(signed_in.tag_suffix(), stranger.tag_suffix());
        assert_eq!(Viewer::default().tag_suffix(), None);
    }
}
