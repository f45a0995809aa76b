//! csvd: an HTTP/1.1 server that keeps tables of records as CSV files, and
//! an HTTP client with an interactive shell.
//!
//! Data flows one way: socket → [`server`] → [`codec`] → [`store`] → disk,
//! and back out through [`codec`]. The server never touches a file; the store
//! never knows about HTTP.
// No `unsafe` but in `store::row` (the packed rows' handles), `store::os`
// (system calls the standard library lacks) and `server::hangup` (a second
// look at a connection's socket), where every block says why it holds.
#![deny(unsafe_code)]

pub mod cli;
pub mod client;
pub mod codec;
pub mod compose;
pub mod copy;
pub mod feed;
pub mod jsondb;
pub mod page;
pub mod query;
pub mod server;
pub mod store;
