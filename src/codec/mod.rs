//! Request bodies in, representations out.
