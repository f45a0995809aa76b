//! The sign-in page, for a server with a token: a browser cannot send
//! `Authorization: Bearer`, so a person types the token here once and the
//! server keeps the browser signed in with a cookie.

use maud::html;

use super::layout::{self, Step};
use super::viewer::Viewer;

/// The sign-in page, leading on to `next` once signed in.
pub struct SignInPage<'a> {
    pub next: &'a str,
    /// Why the last try failed.
    pub error: Option<&'a str>,
    /// Whether reading needs the token too (`--private`).
    pub private: bool,
    pub viewer: &'a Viewer,
}

impl SignInPage<'_> {
    pub fn render(&self) -> String {
        let trail = [Step {
            label: "Sign in",
            href: None,
        }];
        let main = html! {
            div.heading { h1 { "Sign in" } }
            @if self.viewer.csrf.is_some() {
                p { "You are signed in on this browser." }
                p.actions { a href=(self.next) { "Go on" } a href="/" { "All tables" } }
            } @else {
                p {
                    @if self.private { "This server shows its tables only to those who have its token." }
                    @else if self.viewer.read_only { "This server is read-only: signing in changes nothing here." }
                    @else { "Anyone may read this server's tables; changing them needs its token." }
                    " Give it once: this browser stays signed in for a week, or until you sign out."
                }
                @if let Some(error) = self.error {
                    p.error role="alert" { (error) }
                }
                form.signin method="post" action="/_signin" {
                    input type="hidden" name="next" value=(self.next);
                    div.field {
                        label for="token" { "Token" }
                        input #token type="password" name="token" required
                            autocomplete="current-password" autofocus;
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }
        };
        layout::document("Sign in", &trail, self.viewer, main).into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_the_token_once() {
        let viewer = Viewer {
            guarded: true,
            ..Viewer::default()
        };
        let page = SignInPage {
            next: "/people?q=<x>",
            error: Some("the token is wrong"),
            private: false,
            viewer: &viewer,
        }
        .render();
        assert!(page.contains("type=\"password\" name=\"token\""), "{page}");
        assert!(page.contains("value=\"/people?q=&lt;x&gt;\""), "{page}");
        assert!(page.contains("role=\"alert\">the token is wrong"), "{page}");
    }
}
