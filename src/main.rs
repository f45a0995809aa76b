//! The `csvd` binary: parse arguments, run the server or a client command,
//! turn errors into one line and an exit code.

use clap::Parser;
use csvd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    // The client's configuration files may add default options.
    let args = match csvd::client::config::with_defaults(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("csvd: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Serve(args) => csvd::compose::serve(*args),
        Command::Copy(args) => csvd::copy::run(args),
        other => csvd::client::run(other),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("csvd: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
