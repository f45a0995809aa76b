//! The line editor: where the history lives, saving it after each line,
//! and asking a question at the prompt.
//!
//! It never reads what was typed: a line goes back to the caller as it is.

use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use super::complete::{Prompt, ShellHelper};
use super::session::Shell;

/// `$XDG_STATE_HOME/csvd/history`, else `~/.local/state/csvd/history`.
pub(super) fn default_history() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(state.join("csvd").join("history"))
}

pub(super) fn save_history(editor: &mut Editor<ShellHelper, FileHistory>, path: &PathBuf) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Appending keeps what other sessions wrote meanwhile.
    if let Err(error) = editor.append_history(path) {
        complain!(
            "csvd: cannot save the history to {}: {error}",
            path.display()
        );
    }
}

/// What a prompt got.
pub(super) enum Answer {
    Line(String),
    /// Ctrl-C: drop this line (or this guided request).
    Cancelled,
    /// Ctrl-D or the end of input: leave.
    Done,
}

impl Shell<'_> {
    pub(super) fn ask(
        &self,
        editor: &mut Editor<ShellHelper, FileHistory>,
        prompt: Prompt,
        text: &str,
    ) -> Answer {
        self.helper.knowledge().prompt = prompt;
        match editor.readline(text) {
            Ok(line) => Answer::Line(line),
            Err(ReadlineError::Interrupted) => Answer::Cancelled,
            Err(ReadlineError::Eof) => Answer::Done,
            Err(error) => {
                complain!("csvd: cannot read the terminal: {error}");
                Answer::Done
            }
        }
    }
}
