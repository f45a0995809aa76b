//! The HTTP client: one-shot commands, the interactive shell, raw mode.

use std::process::ExitCode;

use crate::cli::Command;

/// Runs a client command and returns the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("{command:?}: the client is not built yet")
}
