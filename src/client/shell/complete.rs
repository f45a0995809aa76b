//! Tab completion for the shell: methods and the shell's own commands
//! everywhere, and when the server is csvd, its table names (for paths)
//! and their columns (for fields and query parameters).
//!
//! What the server has is learnt from `GET /` (a JSON array of tables with
//! `name` and `columns`); any other answer just means no table completion.

use std::sync::{Arc, Mutex, MutexGuard};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use serde_json::Value;

use super::{words, COMMANDS, METHODS};

/// A table the server has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
}

/// The tables of a csvd server, read from its `GET /` answer.
pub fn tables_from_json(bytes: &[u8]) -> Option<Vec<Table>> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let list = match &value {
        Value::Array(list) => list,
        Value::Object(object) => object.get("tables")?.as_array()?,
        _ => return None,
    };
    list.iter()
        .map(|table| {
            let name = table.get("name")?.as_str()?.to_string();
            let columns = match table.get("columns") {
                Some(Value::Array(columns)) => columns
                    .iter()
                    .filter_map(|column| match column {
                        Value::String(name) => Some(name.clone()),
                        other => other.get("name")?.as_str().map(str::to_string),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Some(Table { name, columns })
        })
        .collect()
}

/// Which prompt is being answered, which decides what completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The main prompt: a method, a whole request or a `:command`.
    Command,
    /// The guided flow's path question.
    Path,
    /// The guided flow's body question, for a path.
    Body { path: String },
}

/// What completion knows; the shell updates it, the editor reads it.
#[derive(Debug)]
pub struct Knowledge {
    pub tables: Vec<Table>,
    pub prompt: Prompt,
}

/// The editor's helper.
#[derive(Clone)]
pub struct ShellHelper {
    knowledge: Arc<Mutex<Knowledge>>,
}

impl ShellHelper {
    pub fn new() -> ShellHelper {
        ShellHelper {
            knowledge: Arc::new(Mutex::new(Knowledge {
                tables: Vec::new(),
                prompt: Prompt::Command,
            })),
        }
    }

    pub fn knowledge(&self) -> MutexGuard<'_, Knowledge> {
        // Completion data is a convenience: after a panic elsewhere the
        // last state is as good as any.
        self.knowledge
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Knowledge {
    /// Candidates for the word ending at the cursor, and where it starts.
    /// Words are read as the shell reads them (quotes and all), so a
    /// quoted value before the cursor is one word.
    pub fn complete(&self, line: &str) -> (usize, Vec<String>) {
        let (mut words, unfinished) = words::partial(line);
        let (start, word) = match words.pop() {
            Some(last) if unfinished => (last.start, last.text),
            Some(last) => {
                words.push(last);
                (line.len(), String::new())
            }
            None => (line.len(), String::new()),
        };
        let before: Vec<&str> = words.iter().map(|word| word.text.as_str()).collect();
        let candidates = match (&self.prompt, before.as_slice()) {
            (Prompt::Path, _) => self.paths(),
            (Prompt::Body { path }, _) => self.fields(path, true),
            (Prompt::Command, []) => commands(&word),
            (Prompt::Command, [":verbose"]) => vec!["on".to_string(), "off".to_string()],
            (Prompt::Command, [":watch"]) => self.paths(),
            (Prompt::Command, [":watch", path, ..]) => self.fields(path, false),
            (Prompt::Command, [method]) if is_method(method) => self.paths(),
            (Prompt::Command, [method, path, ..]) if is_method(method) => {
                let writes =
                    ["POST", "PUT", "PATCH"].contains(&method.to_ascii_uppercase().as_str());
                self.fields(path, writes)
            }
            _ => Vec::new(),
        };
        let matching = candidates
            .into_iter()
            .filter(|candidate| candidate.starts_with(&word))
            .collect();
        (start, matching)
    }

    fn paths(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|table| format!("/{}", table.name))
            .collect()
    }

    /// `column=` for bodies, `column==` for queries.
    fn fields(&self, path: &str, body: bool) -> Vec<String> {
        let name = path
            .trim_start_matches('/')
            .split(['/', '?', '.'])
            .next()
            .unwrap_or("");
        let separator = if body { "=" } else { "==" };
        self.tables
            .iter()
            .filter(|table| table.name == name)
            .flat_map(|table| table.columns.iter())
            .map(|column| format!("{column}{separator}"))
            .collect()
    }
}

fn is_method(word: &str) -> bool {
    METHODS.contains(&word.to_ascii_uppercase().as_str())
}

/// Methods in the case the person started typing, then commands.
fn commands(word: &str) -> Vec<String> {
    let lower = word.chars().next().is_some_and(char::is_lowercase);
    METHODS
        .iter()
        .map(|method| {
            if lower {
                method.to_ascii_lowercase()
            } else {
                method.to_string()
            }
        })
        .chain(COMMANDS.iter().map(|command| command.to_string()))
        .collect()
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = self.knowledge().complete(&line[..pos]);
        let pairs = candidates
            .into_iter()
            .map(|candidate| {
                // A finished word gets its space; a field waits for its value.
                let replacement = if candidate.ends_with('=') {
                    candidate.clone()
                } else {
                    format!("{candidate} ")
                };
                Pair {
                    display: candidate,
                    replacement,
                }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn knowledge(prompt: Prompt) -> Knowledge {
        Knowledge {
            tables: tables_from_json(
                br#"[{"name":"people","rows":2,"columns":["id","name","age"]},{"name":"pets","columns":[]}]"#,
            )
            .unwrap(),
            prompt,
        }
    }

    fn complete(prompt: Prompt, line: &str) -> (usize, Vec<String>) {
        knowledge(prompt).complete(line)
    }

    #[test]
    fn reads_the_table_list_in_either_shape() {
        let tables =
            tables_from_json(br#"{"tables":[{"name":"a","columns":[{"name":"x"}]}]}"#).unwrap();
        assert_eq!(
            tables,
            [Table {
                name: "a".into(),
                columns: vec!["x".into()]
            }]
        );
        assert!(tables_from_json(b"<html>").is_none());
        assert!(tables_from_json(br#"[{"no":"name"}]"#).is_none());
    }

    #[test]
    fn methods_complete_in_the_case_typed() {
        assert_eq!(
            complete(Prompt::Command, "po"),
            (0, vec!["post".to_string()])
        );
        assert_eq!(
            complete(Prompt::Command, "P"),
            (0, vec!["POST".into(), "PUT".into(), "PATCH".into()])
        );
        assert_eq!(
            complete(Prompt::Command, ":ve"),
            (0, vec![":verbose".to_string()])
        );
        assert_eq!(complete(Prompt::Command, ":verbose o").1, ["on", "off"]);
    }

    #[test]
    fn tables_and_columns_complete_where_they_belong() {
        assert_eq!(
            complete(Prompt::Command, "get /pe"),
            (4, vec!["/people".into(), "/pets".into()])
        );
        assert_eq!(
            complete(Prompt::Command, "post /people na"),
            (13, vec!["name=".to_string()])
        );
        assert_eq!(
            complete(Prompt::Command, "get /people/3 a"),
            (14, vec!["age==".to_string()])
        );
        assert_eq!(
            complete(Prompt::Path, "/peo"),
            (0, vec!["/people".to_string()])
        );
        assert_eq!(
            complete(
                Prompt::Body {
                    path: "/people".into()
                },
                "name=kim a"
            ),
            (9, vec!["age=".to_string()])
        );
        assert!(complete(Prompt::Command, "nonsense /pe").1.is_empty());
        assert_eq!(
            complete(Prompt::Command, ":watch /pe"),
            (7, vec!["/people".into(), "/pets".into()])
        );
        assert_eq!(
            complete(Prompt::Command, ":watch /people na"),
            (15, vec!["name==".to_string()])
        );
    }

    #[test]
    fn words_are_read_as_the_shell_reads_them() {
        assert_eq!(
            complete(Prompt::Command, "post /people 'city=a b' na"),
            (24, vec!["name=".to_string()])
        );
        assert_eq!(
            complete(Prompt::Command, "post /people 'na"),
            (13, vec!["name=".to_string()])
        );
        assert_eq!(
            complete(Prompt::Command, "post /people "),
            (13, vec!["id=".into(), "name=".into(), "age=".into()])
        );
    }
}
