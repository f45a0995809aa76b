//! The one-shot commands' configuration: default options, a base URL and
//! default headers, from the user's `csvd/config.toml` (under
//! `$XDG_CONFIG_HOME`, else `~/.config`) and the nearest `.csvd.toml` in
//! the current directory or one of its parents. The project's file wins
//! over the user's, key by key (headers name by name).
//!
//! ```toml
//! default_options = ["--follow", "-p", "hb"]
//! base_url = "http://127.0.0.1:8080"
//! [headers]
//! X-Team = "data"
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use toml::Spanned;

use super::items::Item;
use super::url::Url;

/// The commands whose options a configuration file may give.
const COMMANDS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "request",
];

/// The flag that ignores every configuration file.
pub const NO_CONFIG: &str = "--no-config";

/// One file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default_options: Option<Spanned<Vec<String>>>,
    base_url: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// What the files say, merged.
#[derive(Debug, Default)]
pub struct Config {
    /// Put before the command line's own options.
    pub default_options: Vec<String>,
    /// The file and line `default_options` came from, for messages.
    options_from: Option<(PathBuf, usize)>,
    /// What a URL that is a path (`/people`, `:/people`) is under.
    pub base_url: Option<Url>,
    /// Sent unless the command line names the same header.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|line| format!(": line {line}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

static CURRENT: OnceLock<Config> = OnceLock::new();

/// The configuration [`with_defaults`] loaded (empty before, or with
/// `--no-config`).
pub fn current() -> &'static Config {
    CURRENT.get_or_init(Config::default)
}

/// The command line with the configured default options put after the
/// command's name (so that those typed win, as later flags do); loads the
/// files once for [`current`]. Other commands, and `--no-config`, leave it
/// as it is.
pub fn with_defaults(mut args: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let is_request = args
        .get(1)
        .and_then(|command| command.to_str())
        .is_some_and(|command| COMMANDS.contains(&command));
    let refused = args
        .iter()
        .skip(2)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == NO_CONFIG);
    if !is_request || refused {
        return Ok(args);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = Config::load(user_file().as_deref(), project_file(&cwd).as_deref())?;
    let command = args[1].to_str().unwrap_or_default().to_string();
    config.check_options(&command)?;
    let defaults = config.default_options.iter().map(OsString::from);
    args.splice(2..2, defaults);
    let _ = CURRENT.set(config);
    Ok(args)
}

/// `$XDG_CONFIG_HOME` (when absolute), else `~/.config`.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir.join("csvd")),
        _ => std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".config").join("csvd")),
    }
}

fn user_file() -> Option<PathBuf> {
    config_dir()
        .map(|dir| dir.join("config.toml"))
        .filter(|path| path.is_file())
}

/// The nearest `.csvd.toml` in `dir` or a parent.
fn project_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|dir| dir.join(".csvd.toml"))
        .find(|path| path.is_file())
}

impl Config {
    /// Reads the user's file, then the project's over it.
    pub fn load(user: Option<&Path>, project: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for path in [user, project].into_iter().flatten() {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
                path: path.to_path_buf(),
                line: None,
                reason: format!("cannot be read: {error}"),
            })?;
            config.merge(path, &text)?;
        }
        Ok(config)
    }

    /// Lays one file's text over what is there.
    fn merge(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let fail = |offset: Option<usize>, reason: String| ConfigError {
            path: path.to_path_buf(),
            line: offset.map(line_of),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|error| {
            fail(
                error.span().map(|span| span.start),
                error.message().trim_end().replace('\n', " "),
            )
        })?;
        if let Some(options) = file.default_options {
            self.options_from = Some((path.to_path_buf(), line_of(options.span().start)));
            self.default_options = options.into_inner();
        }
        if let Some(base) = file.base_url {
            let start = base.span().start;
            let text = base.into_inner();
            if !text.contains("://") {
                return Err(fail(
                    Some(start),
                    format!(
                        "base_url `{text}` needs a scheme: http://HOST[:PORT][/PATH] or https://…"
                    ),
                ));
            }
            let url = Url::parse(&text).map_err(|error| fail(Some(start), error.to_string()))?;
            self.base_url = Some(url);
        }
        for (name, value) in file.headers.unwrap_or_default() {
            let start = value.span().start;
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                fail(
                    Some(start),
                    format!("`{name}` is not a header name (letters, digits and !#$%&'*+-.^_`|~)"),
                )
            })?;
            let value = HeaderValue::from_str(value.get_ref()).map_err(|_| {
                fail(
                    Some(start),
                    format!("the value of header `{name}` holds a control character"),
                )
            })?;
            self.headers.retain(|(known, _)| *known != header);
            self.headers.push((header, value));
        }
        Ok(())
    }

    /// Refuses default options that `command` would not take, naming the
    /// file they came from and the option: parsed as the command line is,
    /// with only a URL (and a method for `request`) after them.
    fn check_options(&self, command: &str) -> Result<(), ConfigError> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        use clap::CommandFactory as _;
        let Some((path, line)) = &self.options_from else {
            return Ok(());
        };
        let mut args = vec!["csvd", command];
        args.extend(self.default_options.iter().map(String::as_str));
        if command == "request" {
            args.push("GET");
        }
        args.push("http://localhost/");
        let Err(error) = crate::cli::Cli::command().try_get_matches_from(args) else {
            return Ok(());
        };
        let text = |kind| match error.get(kind) {
            Some(ContextValue::String(text)) => Some(text.clone()),
            _ => None,
        };
        let reason = match error.kind() {
            ErrorKind::UnknownArgument => {
                let option = text(ContextKind::InvalidArg).unwrap_or_default();
                match text(ContextKind::SuggestedArg) {
                    Some(like) => format!("unknown option {option} (did you mean {like}?)"),
                    None => format!("unknown option {option} (see `csvd {command} --help`)"),
                }
            }
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                "--help and --version cannot be default options".to_string()
            }
            _ => {
                let rendered = error.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                first.trim_start_matches("error: ").to_string()
            }
        };
        Err(ConfigError {
            path: path.clone(),
            line: Some(*line),
            reason: format!("default_options: {reason}"),
        })
    }

    /// The URL of a command line: a path (`/people`, `:/people`) goes
    /// under `base_url` when there is one.
    pub fn url(&self, text: &str) -> Result<Url, super::ClientError> {
        match &self.base_url {
            Some(base) if text.starts_with('/') => base.join(text),
            Some(base) if text.starts_with(":/") => base.join(&text[1..]),
            _ => Url::parse(text),
        }
    }

    /// The items of a command line, after the configured headers that it
    /// does not name.
    pub fn items(&self, items: Vec<Item>) -> Vec<Item> {
        let named = |header: &HeaderName| {
            items
                .iter()
                .any(|item| matches!(item, Item::Header { name, .. } if name == header))
        };
        let mut all: Vec<Item> = self
            .headers
            .iter()
            .filter(|(name, _)| !named(name))
            .map(|(name, value)| Item::Header {
                name: name.clone(),
                value: Some(value.clone()),
            })
            .collect();
        all.extend(items);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(files: &[&str]) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for (n, text) in files.iter().enumerate() {
            config.merge(Path::new(&format!("file{n}.toml")), text)?;
        }
        Ok(config)
    }

    #[test]
    fn the_nearer_file_wins_key_by_key() {
        let config = merged(&[
            "default_options = [\"--follow\"]\nbase_url = \"http://a:1\"\n[headers]\nX-A = \"1\"\nX-B = \"2\"\n",
            "base_url = \"https://b/api\"\n[headers]\nx-b = \"3\"\n",
        ])
        .unwrap();
        assert_eq!(config.default_options, ["--follow"]);
        assert_eq!(
            config.url("/people").unwrap().to_string(),
            "https://b/api/people"
        );
        assert_eq!(
            config.url(":/people?q=1").unwrap().to_string(),
            "https://b/api/people?q=1"
        );
        let headers: Vec<_> = config
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect();
        assert_eq!(headers, ["x-a: 1", "x-b: 3"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let error = merged(&["base_url = \"http://a\"\n\nnope = 3\n"]).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(
            error.to_string().starts_with("file0.toml: line 3: "),
            "{error}"
        );
        let error = merged(&["[headers]\n\"bad name\" = \"x\"\n"]).unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        let error = merged(&["base_url = \"people\"\n"]).unwrap_err();
        assert!(error.to_string().contains("needs a scheme"), "{error}");
        let error = merged(&["default_options = \"--follow\"\n"]).unwrap_err();
        assert_eq!(error.line, Some(1), "{error}");
    }

    #[test]
    fn default_options_the_command_would_refuse_are_named() {
        let config = merged(&["\ndefault_options = [\"--colour\"]\n"]).unwrap();
        let error = config.check_options("get").unwrap_err().to_string();
        assert!(
            error.starts_with("file0.toml: line 2: default_options: unknown option --colour"),
            "{error}"
        );
        let config = merged(&["default_options = [\"--style\", \"plaid\"]\n"]).unwrap();
        let error = config.check_options("post").unwrap_err().to_string();
        assert!(
            error.contains("default_options: invalid value 'plaid'"),
            "{error}"
        );
        let config = merged(&["default_options = [\"--follow\", \"-p\", \"hb\"]\n"]).unwrap();
        config.check_options("request").unwrap();
        config.check_options("get").unwrap();
    }

    #[test]
    fn headers_given_on_the_command_line_win() {
        let config = merged(&["[headers]\nX-A = \"1\"\nX-B = \"2\"\n"]).unwrap();
        let items = config.items(vec![Item::parse("X-A:typed").unwrap()]);
        assert_eq!(
            items,
            [
                Item::parse("X-B:2").unwrap(),
                Item::parse("X-A:typed").unwrap()
            ]
        );
    }
}
