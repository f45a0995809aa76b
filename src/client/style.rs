//! How output looks: colours and formatting are for people at a terminal;
//! a pipe gets the bytes as they came.
//!
//! Colours are plain ANSI escapes: the handful used here does not earn a
//! dependency.

use std::borrow::Cow;
use std::io::IsTerminal;

use crate::cli::{Pretty, Theme};

/// What a piece of output is, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// `HTTP/1.1` and the request target.
    Protocol,
    Method,
    /// Status codes and reasons, by class.
    Success,
    Redirect,
    Failure,
    HeaderName,
    /// JSON object keys and table headings.
    Key,
    Text,
    Number,
    /// `true`, `false`, `null`.
    Literal,
    /// Table rules and notes about the output itself.
    Faint,
}

impl Paint {
    /// The SGR code of this paint in a theme.
    fn code(self, theme: Theme) -> &'static str {
        match theme {
            Theme::Auto => self.auto(),
            Theme::Bright => self.bright(),
            Theme::Solarized => self.solarized(),
            Theme::Mono => self.mono(),
        }
    }

    /// The bright variants of the 16 colours.
    fn bright(self) -> &'static str {
        match self {
            Paint::Protocol => "94",
            Paint::Method | Paint::Success => "1;92",
            Paint::Redirect => "1;93",
            Paint::Failure => "1;91",
            Paint::HeaderName | Paint::Number => "96",
            Paint::Key => "1;94",
            Paint::Text => "93",
            Paint::Literal => "95",
            Paint::Faint => "2",
        }
    }

    /// Solarized accents, from the 256-colour palette.
    fn solarized(self) -> &'static str {
        match self {
            Paint::Protocol => "38;5;33",
            Paint::Method | Paint::Success => "1;38;5;64",
            Paint::Redirect => "1;38;5;136",
            Paint::Failure => "1;38;5;160",
            Paint::HeaderName => "38;5;37",
            Paint::Key => "38;5;33",
            Paint::Text => "38;5;37",
            Paint::Number => "38;5;125",
            Paint::Literal => "38;5;166",
            Paint::Faint => "38;5;244",
        }
    }

    /// No colour: bold, underline and dim only.
    fn mono(self) -> &'static str {
        match self {
            Paint::Method | Paint::Success | Paint::Redirect | Paint::Key => "1",
            Paint::Failure => "1;4",
            Paint::HeaderName | Paint::Literal => "4",
            Paint::Protocol | Paint::Text | Paint::Number => "0",
            Paint::Faint => "2",
        }
    }

    fn auto(self) -> &'static str {
        match self {
            Paint::Protocol => "34",
            Paint::Method => "1;32",
            Paint::Success => "1;32",
            Paint::Redirect => "1;33",
            Paint::Failure => "1;31",
            Paint::HeaderName => "36",
            Paint::Key => "1;34",
            Paint::Text => "33",
            Paint::Number => "36",
            Paint::Literal => "35",
            Paint::Faint => "2",
        }
    }

    /// The paint for a status code.
    pub fn for_status(status: u16) -> Paint {
        match status {
            100..=299 => Paint::Success,
            300..=399 => Paint::Redirect,
            _ => Paint::Failure,
        }
    }
}

/// The names `--style` takes: csvd's four themes, and each of HTTPie 3's
/// style names (Pygments' styles and HTTPie's own `pie` ones) mapped onto
/// the theme nearest to it: dark-background styles onto `bright`, the
/// Solarized ones onto `solarized`, black-and-white onto `mono`, and the
/// light-background and default ones onto `auto`.
const NAMES: [(&str, Theme); 57] = [
    ("auto", Theme::Auto),
    ("bright", Theme::Bright),
    ("solarized", Theme::Solarized),
    ("mono", Theme::Mono),
    ("abap", Theme::Auto),
    ("algol", Theme::Mono),
    ("algol_nu", Theme::Mono),
    ("arduino", Theme::Auto),
    ("autumn", Theme::Auto),
    ("borland", Theme::Auto),
    ("bw", Theme::Mono),
    ("colorful", Theme::Auto),
    ("default", Theme::Auto),
    ("dracula", Theme::Bright),
    ("emacs", Theme::Auto),
    ("friendly", Theme::Auto),
    ("friendly_grayscale", Theme::Mono),
    ("fruity", Theme::Bright),
    ("github-dark", Theme::Bright),
    ("gruvbox-dark", Theme::Bright),
    ("gruvbox-light", Theme::Auto),
    ("igor", Theme::Auto),
    ("inkpot", Theme::Bright),
    ("lightbulb", Theme::Bright),
    ("lilypond", Theme::Auto),
    ("lovelace", Theme::Auto),
    ("manni", Theme::Auto),
    ("material", Theme::Bright),
    ("monokai", Theme::Bright),
    ("murphy", Theme::Auto),
    ("native", Theme::Bright),
    ("nord", Theme::Bright),
    ("nord-darker", Theme::Bright),
    ("one-dark", Theme::Bright),
    ("paraiso-dark", Theme::Bright),
    ("paraiso-light", Theme::Auto),
    ("pastie", Theme::Auto),
    ("perldoc", Theme::Auto),
    ("pie", Theme::Auto),
    ("pie-dark", Theme::Bright),
    ("pie-light", Theme::Auto),
    ("rainbow_dash", Theme::Auto),
    ("rrt", Theme::Bright),
    ("sas", Theme::Auto),
    ("solarized-dark", Theme::Solarized),
    ("solarized-light", Theme::Solarized),
    ("staroffice", Theme::Auto),
    ("stata", Theme::Auto),
    ("stata-dark", Theme::Bright),
    ("stata-light", Theme::Auto),
    ("tango", Theme::Auto),
    ("trac", Theme::Auto),
    ("vim", Theme::Bright),
    ("vs", Theme::Auto),
    ("xcode", Theme::Auto),
    ("zenburn", Theme::Bright),
    ("coffee", Theme::Bright),
];

/// `--style NAME`: one of [`NAMES`], in any case; an unknown name is an
/// error that lists them all.
pub fn parse_theme(text: &str) -> Result<Theme, String> {
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|(_, theme)| *theme)
        .ok_or_else(|| {
            let names: Vec<&str> = NAMES.iter().map(|(name, _)| *name).collect();
            format!("`{text}` is not a style: use one of {}", names.join(", "))
        })
}

/// Whether to colour, and whether to reformat (indent JSON, align CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub colors: bool,
    pub format: bool,
    /// Standard output is a terminal: binary bodies are not shown.
    pub terminal: bool,
    /// `--style`: the colours used.
    pub theme: Theme,
}

impl Style {
    /// Decides from `--pretty`, whether stdout is a terminal, and `NO_COLOR`
    /// (which an explicit `--pretty` overrides).
    pub fn detect(pretty: Option<Pretty>) -> Style {
        Style::for_output(pretty, std::io::stdout().is_terminal())
    }

    /// As [`Style::detect`], for an output that is a terminal or not
    /// (stderr while a download goes to a file; the file of `-o`).
    pub fn for_output(pretty: Option<Pretty>, terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style::choose(pretty, terminal, no_color)
    }

    fn choose(pretty: Option<Pretty>, terminal: bool, no_color: bool) -> Style {
        let chosen = pretty.unwrap_or(if terminal { Pretty::All } else { Pretty::None });
        Style {
            colors: matches!(chosen, Pretty::All | Pretty::Colors)
                && (pretty.is_some() || !no_color),
            format: matches!(chosen, Pretty::All | Pretty::Format),
            terminal,
            theme: Theme::Auto,
        }
    }

    /// The same, in the colours of `theme`.
    pub fn themed(self, theme: Theme) -> Style {
        Style { theme, ..self }
    }

    /// No colours, no formatting: bytes as they are.
    pub fn plain() -> Style {
        Style {
            colors: false,
            format: false,
            terminal: false,
            theme: Theme::Auto,
        }
    }

    pub fn paint<'a>(&self, paint: Paint, text: &'a str) -> Cow<'a, str> {
        if self.colors && !text.is_empty() {
            Cow::Owned(format!("\x1b[{}m{text}\x1b[0m", paint.code(self.theme)))
        } else {
            Cow::Borrowed(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminals_get_colours_and_formatting_pipes_get_bytes() {
        let terminal = Style::choose(None, true, false);
        assert!(terminal.colors && terminal.format);
        let pipe = Style::choose(None, false, false);
        assert!(!pipe.colors && !pipe.format);
    }

    #[test]
    fn no_color_turns_colours_off_unless_asked_for() {
        let style = Style::choose(None, true, true);
        assert!(!style.colors && style.format);
        assert!(Style::choose(Some(Pretty::Colors), true, true).colors);
        assert!(!Style::choose(Some(Pretty::Format), false, false).colors);
    }

    #[test]
    fn httpie_style_names_map_onto_the_themes() {
        assert_eq!(parse_theme("monokai"), Ok(Theme::Bright));
        assert_eq!(parse_theme("Solarized-Light"), Ok(Theme::Solarized));
        assert_eq!(parse_theme("bw"), Ok(Theme::Mono));
        assert_eq!(parse_theme("pie-light"), Ok(Theme::Auto));
        assert_eq!(parse_theme("mono"), Ok(Theme::Mono));
        let error = parse_theme("neon").unwrap_err();
        assert!(
            error.contains("auto, bright, solarized, mono, abap"),
            "{error}"
        );
        let names: std::collections::HashSet<&str> = NAMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), NAMES.len(), "a name is listed twice");
    }

    #[test]
    fn paint_wraps_only_when_colouring() {
        let on = Style::choose(Some(Pretty::All), false, false);
        assert_eq!(on.paint(Paint::Number, "30"), "\x1b[36m30\x1b[0m");
        assert_eq!(Style::plain().paint(Paint::Number, "30"), "30");
        let mono = Style {
            theme: Theme::Mono,
            ..on
        };
        assert_eq!(mono.paint(Paint::Key, "k"), "\x1b[1mk\x1b[0m");
        let solarized = Style {
            theme: Theme::Solarized,
            ..on
        };
        assert_eq!(
            solarized.paint(Paint::Number, "1"),
            "\x1b[38;5;125m1\x1b[0m"
        );
    }
}
