//! Who is looking at a page, as far as the page cares: what it may offer.
//! The server decides it from its access rules and the request; a page
//! only reads it, and draws no form for a write that would be refused.

/// What the person looking at a page may do.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    /// The server takes no writes (`--read-only`).
    pub read_only: bool,
}

impl Viewer {
    /// Whether the page offers its forms that change data.
    pub fn may_write(&self) -> bool {
        !self.read_only
    }

    /// Why the page offers no forms that change data, when it offers none.
    pub fn why_not(&self) -> Option<&'static str> {
        self.read_only
            .then_some("This server is read-only: its tables can be read here, not changed.")
    }
}
