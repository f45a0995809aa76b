//! JSON for people: re-indented and coloured, working on tokens so that
//! numbers keep their exact digits and keys their order (parsing into a
//! value would round `12345678901234567890` and could reorder keys).

use super::style::{Paint, Style};

/// Four spaces, as HTTPie indents.
const INDENT: &str = "    ";

/// Whether to re-indent or keep the text's own whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Indent,
    Preserve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Space(&'a str),
    Open(char),
    Close(char),
    Colon,
    Comma,
    Text(&'a str),
    Scalar(&'a str),
}

/// Renders `bytes` if they are one valid JSON document; `None` otherwise,
/// so that the caller shows them as they are.
pub fn render(bytes: &[u8], layout: Layout, style: &Style) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(render_valid(text, layout, style))
}

fn render_valid(text: &str, layout: Layout, style: &Style) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    // One entry per open container: whether it is an object.
    let mut objects: Vec<bool> = Vec::new();
    let mut just_opened = false;
    let mut expect_key = false;
    for token in (Tokens { text, at: 0 }) {
        if let Token::Space(space) = token {
            if layout == Layout::Preserve {
                out.push_str(space);
            }
            continue;
        }
        if layout == Layout::Indent && std::mem::take(&mut just_opened) {
            if let Token::Close(close) = token {
                objects.pop();
                out.push(close);
                expect_key = false;
                continue;
            }
            newline(&mut out, objects.len());
        }
        match token {
            Token::Open(open) => {
                out.push(open);
                objects.push(open == '{');
                just_opened = true;
                expect_key = open == '{';
            }
            Token::Close(close) => {
                objects.pop();
                if layout == Layout::Indent {
                    newline(&mut out, objects.len());
                }
                out.push(close);
                expect_key = false;
            }
            Token::Comma => {
                out.push(',');
                if layout == Layout::Indent {
                    newline(&mut out, objects.len());
                }
                expect_key = objects.last().copied().unwrap_or(false);
            }
            Token::Colon => {
                out.push(':');
                if layout == Layout::Indent {
                    out.push(' ');
                }
            }
            Token::Text(string) => {
                let paint = if expect_key { Paint::Key } else { Paint::Text };
                out.push_str(&style.paint(paint, string));
                expect_key = false;
            }
            Token::Scalar(scalar) => {
                let paint = match scalar.as_bytes().first() {
                    Some(b't' | b'f' | b'n') => Paint::Literal,
                    _ => Paint::Number,
                };
                out.push_str(&style.paint(paint, scalar));
            }
            Token::Space(_) => {}
        }
    }
    out
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

/// Splits JSON text into tokens; strings keep their quotes and escapes.
struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = &self.text[self.at..];
        let first = rest.chars().next()?;
        let len = match first {
            '{' | '[' | '}' | ']' | ':' | ',' => 1,
            '"' => string_len(rest),
            c if c.is_whitespace() => rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len()),
            _ => rest
                .find(|c: char| c.is_whitespace() || "{}[]:,\"".contains(c))
                .unwrap_or(rest.len()),
        };
        let piece = &rest[..len];
        self.at += len;
        Some(match first {
            '{' | '[' => Token::Open(first),
            '}' | ']' => Token::Close(first),
            ':' => Token::Colon,
            ',' => Token::Comma,
            '"' => Token::Text(piece),
            c if c.is_whitespace() => Token::Space(piece),
            _ => Token::Scalar(piece),
        })
    }
}

/// Length of the string literal at the start of `text`, quotes included.
fn string_len(text: &str) -> usize {
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return at + 1,
            _ => {}
        }
    }
    text.len()
}

/// `bytes` as compact JSON with the keys of every object sorted (by their
/// text, escapes undone), numbers and strings kept exactly; `None` when
/// they are not one valid JSON document.
pub fn sort_keys(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let tokens: Vec<Token> = Tokens { text, at: 0 }
        .filter(|token| !matches!(token, Token::Space(_)))
        .collect();
    let mut out = String::with_capacity(text.len());
    write_node(&node(&tokens, &mut 0)?, &mut out);
    Some(out)
}

/// A JSON value as its tokens' text.
enum Node<'a> {
    Scalar(&'a str),
    Array(Vec<Node<'a>>),
    Object(Vec<(&'a str, Node<'a>)>),
}

/// The value whose tokens start at `at`, which moves past them.
fn node<'a>(tokens: &[Token<'a>], at: &mut usize) -> Option<Node<'a>> {
    let mut next = || {
        let token = tokens.get(*at).copied();
        *at += 1;
        token
    };
    Some(match next()? {
        Token::Text(text) | Token::Scalar(text) => Node::Scalar(text),
        Token::Open(open) => {
            let close = if open == '[' { ']' } else { '}' };
            let mut items = Vec::new();
            if tokens.get(*at) == Some(&Token::Close(close)) {
                *at += 1;
            } else {
                loop {
                    if open == '[' {
                        items.push(("", node(tokens, at)?));
                    } else {
                        let Some(Token::Text(key)) = tokens.get(*at).copied() else {
                            return None;
                        };
                        *at += 2; // the key and its colon
                        items.push((key, node(tokens, at)?));
                    }
                    *at += 1;
                    if tokens.get(*at - 1) != Some(&Token::Comma) {
                        break;
                    }
                }
            }
            if open == '[' {
                Node::Array(items.into_iter().map(|(_, item)| item).collect())
            } else {
                let text = |key: &str| serde_json::from_str::<String>(key).unwrap_or_default();
                items.sort_by_cached_key(|(key, _)| text(key));
                Node::Object(items)
            }
        }
        _ => return None,
    })
}

fn write_node(node: &Node, out: &mut String) {
    match node {
        Node::Scalar(text) => out.push_str(text),
        Node::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                write_node(item, out);
            }
            out.push(']');
        }
        Node::Object(entries) => {
            out.push('{');
            for (at, (key, value)) in entries.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push(':');
                write_node(value, out);
            }
            out.push('}');
        }
    }
}

/// Renders one NDJSON line (without its newline); lines that are not JSON
/// come back as they were.
pub fn render_line(line: &str, style: &Style) -> String {
    render(line.as_bytes(), Layout::Preserve, style).unwrap_or_else(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Style {
        Style::plain()
    }

    #[test]
    fn sorts_keys_at_every_depth_keeping_numbers() {
        let text =
            br#" {"b": [ {"z":1,"a":12345678901234567890123} , [] ], "a\u0062":{}, "a":"x"} "#;
        assert_eq!(
            sort_keys(text).unwrap(),
            r#"{"a":"x","a\u0062":{},"b":[{"a":12345678901234567890123,"z":1},[]]}"#
        );
        assert_eq!(sort_keys(b"[1,2]").unwrap(), "[1,2]");
        assert_eq!(sort_keys(b"7").unwrap(), "7");
        assert_eq!(sort_keys(b"{\"a\":"), None);
    }

    #[test]
    fn indents_like_httpie() {
        let text = br#"[{"id":1,"name":"kim","tags":[],"o":{}},{"id":2}]"#;
        let expected = "[\n    {\n        \"id\": 1,\n        \"name\": \"kim\",\n        \"tags\": [],\n        \"o\": {}\n    },\n    {\n        \"id\": 2\n    }\n]";
        assert_eq!(render(text, Layout::Indent, &plain()).unwrap(), expected);
    }

    #[test]
    fn keeps_numbers_and_strings_exactly() {
        let text = br#"{"big":12345678901234567890123,"s":"a\"b,c:{"}"#;
        let out = render(text, Layout::Indent, &plain()).unwrap();
        assert!(out.contains("12345678901234567890123"));
        assert!(out.contains(r#""a\"b,c:{""#));
    }

    #[test]
    fn preserve_keeps_whitespace() {
        let text = br#"{"a": [1,2] }"#;
        assert_eq!(
            render(text, Layout::Preserve, &plain()).unwrap(),
            r#"{"a": [1,2] }"#
        );
    }

    #[test]
    fn colours_keys_apart_from_values() {
        let style = Style {
            colors: true,
            format: true,
            terminal: true,
            theme: crate::cli::Theme::Auto,
        };
        let out = render(br#"{"k":"v","n":null}"#, Layout::Preserve, &style).unwrap();
        assert!(out.contains("\x1b[1;34m\"k\"\x1b[0m"));
        assert!(out.contains("\x1b[33m\"v\"\x1b[0m"));
        assert!(out.contains("\x1b[35mnull\x1b[0m"));
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(render(b"{", Layout::Indent, &plain()).is_none());
        assert!(render(b"\xff", Layout::Indent, &plain()).is_none());
        assert_eq!(render_line("not json", &plain()), "not json");
    }
}
