//! The web page: what a browser sees of csvd. Server-rendered HTML for the
//! table list, a table's rows and one row, the forms that change them, the
//! error page, and the stylesheet, script and icon they use, all compiled
//! into the binary: a page fetches nothing from elsewhere.
//!
//! A page is a client of the public HTTP API: its forms and its script send
//! the requests any client could. It never reads the store or a file, and
//! every text it shows is escaped (the templates escape by default, and
//! the Content-Security-Policy allows no inline script or style).

mod address;
pub mod assets;
mod forms;
mod layout;
mod list;
mod problem;
mod row;
mod rows;
mod signin;
mod table;
mod viewer;

pub use address::Address;
pub use layout::protect;
pub use list::render as table_list;
pub use problem::ProblemPage;
pub use row::RowPage;
pub use rows::write as write_row;
pub use signin::SignInPage;
pub use table::{body as table_body, TablePage};
pub use viewer::{sign_in_href, Viewer};
