//! Request bodies in, representations out.
//!
//! The typing rule ([`cell`]) is shared by both directions: a JSON value
//! becomes a cell on the way in, a cell becomes a JSON value on the way out.

pub mod body;
pub mod cell;
pub mod repr;
