//! The HTTP layer.

use std::process::ExitCode;

use crate::cli::ServeArgs;

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("{args:?}: the server is not built yet")
}
