//! Queries on a table, compatible with json-server: filters (`col=v`,
//! `col_ne`, `col_lt`…, `col_like`, `q`), sorting (`_sort`, `_order`),
//! windows (`_page`/`_limit`, `_start`/`_end`) and `_fields`.
//!
//! A query is parsed against the table's columns first ([`parse`]), so a
//! mistake is a precise 400 before any row is read; it is then evaluated
//! on a [`TableView`] ([`select`]) into the positions of the rows to show.
//! This module never renders and never touches a file: the server streams
//! the selected rows through the codecs, and the rows come from the store.

mod column;
mod compare;
mod filter;
mod index;
mod params;
mod select;
mod sort;
mod view;
mod window;

pub use compare::{sort_number, typed_number, Op, Operand};
pub use filter::{Filter, Search, Test, TextOp};
pub use params::{parse, Query, QueryError, RESERVED};
pub use select::{select, select_apart, Picked, Selection};
pub use sort::SortKey;
pub use view::{Snapshots, TableView, Views};
pub use window::{links, with_params, Window};
