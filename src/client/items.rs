//! Request items, the words after the URL, in HTTPie's syntax:
//! `name=kim`, `age:=30`, `q==kim`, `Header:value`, `Header;`,
//! `bio=@bio.txt`, `meta:=@meta.json`, `@body.csv`.
//!
//! Parsing is pure: files named by items are read later, when the request
//! is built, so that a typo is reported before any file is touched.

use std::path::PathBuf;

use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::error::ClientError;

/// One request item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `name=kim`: a string field of the body.
    Field { name: String, value: String },
    /// `bio=@bio.txt`: a string field holding a file's text.
    FieldFile { name: String, path: PathBuf },
    /// `age:=30`: a field holding any JSON value.
    Json { name: String, value: Value },
    /// `meta:=@meta.json`: a field holding a file's JSON.
    JsonFile { name: String, path: PathBuf },
    /// `q==kim`: a query parameter.
    Query { name: String, value: String },
    /// `Header:value` sets a header; `Header:` (value `None`) removes one
    /// the client would send by default; `Header;` sends it empty.
    Header {
        name: HeaderName,
        value: Option<HeaderValue>,
    },
    /// `@file`: the whole body, streamed from a file (`@-`: read from
    /// standard input).
    BodyFile(PathBuf),
    /// `photo@cat.png`: a file part of a multipart form;
    /// `photo@cat;type=image/png` names its content type.
    Upload {
        name: String,
        path: PathBuf,
        content_type: Option<HeaderValue>,
    },
}

/// The separators, longest first so that `:=@` wins over `:=` and `:`
/// where they start at the same place.
pub const SEPARATORS: [&str; 7] = [":=@", "==", ":=", "=@", "=", ":", ";"];

/// Those of a request item: the data separators and `@` (a file part).
const ITEM_SEPARATORS: [&str; 8] = [":=@", "==", ":=", "=@", "=", ":", ";", "@"];

const SYNTAX: &str = "expected name=text, name:=json, name==query, Header:value, \
                      name=@file, name:=@file.json, name@file or @file";

impl Item {
    /// Parses one item. The first separator in the text decides its kind
    /// (so `url=http://x` is a field and `X-Note:a=b` a header); a
    /// backslash makes the next character part of the name (`a\=b=c`).
    pub fn parse(text: &str) -> Result<Item, ClientError> {
        if let Some(path) = text.strip_prefix('@') {
            if path.is_empty() {
                return Err(ClientError::item(text, "`@` needs a file name after it"));
            }
            return Ok(Item::BodyFile(PathBuf::from(path)));
        }
        let (name, separator, value) =
            split(text).ok_or_else(|| ClientError::item(text, SYNTAX))?;
        Item::from_parts(text, name, separator, value)
    }

    /// The item a name, a separator and a value make; `text` is the item
    /// as typed, for messages.
    pub fn from_parts(
        text: &str,
        name: String,
        separator: &str,
        value: &str,
    ) -> Result<Item, ClientError> {
        if name.is_empty() {
            return Err(ClientError::item(
                text,
                "the name before the separator is empty",
            ));
        }
        let file = |what: &str| {
            if value.is_empty() {
                Err(ClientError::item(
                    text,
                    format!("`{what}` needs a file name after it"),
                ))
            } else {
                Ok(PathBuf::from(value))
            }
        };
        Ok(match separator {
            "=" => Item::Field {
                name,
                value: value.to_string(),
            },
            "=@" => Item::FieldFile {
                name,
                path: file("=@")?,
            },
            ":=" => Item::Json {
                name,
                value: parse_json(text, value)?,
            },
            ":=@" => Item::JsonFile {
                name,
                path: file(":=@")?,
            },
            "@" => {
                let (path, content_type) = match value.rsplit_once(";type=") {
                    Some((path, content_type)) => (path, Some(header_value(text, content_type)?)),
                    None => (value, None),
                };
                if path.is_empty() {
                    return Err(ClientError::item(text, "`@` needs a file name after it"));
                }
                Item::Upload {
                    name,
                    path: PathBuf::from(path),
                    content_type,
                }
            }
            "==" => Item::Query {
                name: plain(&name),
                value: value.to_string(),
            },
            ":" => Item::Header {
                name: header_name(text, &plain(&name))?,
                value: match value.trim() {
                    "" => None,
                    value => Some(header_value(text, value)?),
                },
            },
            _ if value.is_empty() => Item::Header {
                name: header_name(text, &plain(&name))?,
                value: Some(HeaderValue::from_static("")),
            },
            _ => return Err(ClientError::item(text, SYNTAX)),
        })
    }

    /// Whether the item puts something in the request body.
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Item::Field { .. }
                | Item::FieldFile { .. }
                | Item::Json { .. }
                | Item::JsonFile { .. }
                | Item::Upload { .. }
        )
    }
}

/// A name with the escapes kept for nested JSON paths (`\[`, `\]`, `\7`)
/// taken out: the name a form, a query or a header uses.
pub fn plain(name: &str) -> String {
    let mut plain = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek().filter(|&&next| kept_escape(next)) {
                plain.push(next);
                chars.next();
                continue;
            }
        }
        plain.push(c);
    }
    plain
}

/// The escaped characters whose backslash stays in a data field's name,
/// for the nested JSON path to read.
fn kept_escape(c: char) -> bool {
    matches!(c, '[' | ']' | '\\') || c.is_ascii_digit()
}

/// Finds the first separator, honouring backslash escapes in the name.
fn split(text: &str) -> Option<(String, &'static str, &str)> {
    let mut name = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, escaped)) => {
                    if kept_escape(escaped) {
                        name.push('\\');
                    }
                    name.push(escaped);
                }
                None => name.push(c),
            }
            continue;
        }
        if let Some(separator) = ITEM_SEPARATORS.iter().find(|s| text[at..].starts_with(*s)) {
            return Some((name, separator, &text[at + separator.len()..]));
        }
        name.push(c);
    }
    None
}

pub fn parse_json(item: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text)
        .map_err(|error| ClientError::item(item, format!("`{text}` is not JSON ({error})")))
}

fn header_name(item: &str, name: &str) -> Result<HeaderName, ClientError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ClientError::item(item, format!("`{name}` is not a valid header name")))
}

fn header_value(item: &str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| {
        ClientError::item(
            item,
            format!("`{value}` cannot be a header value (no control characters)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(text: &str) -> Item {
        Item::parse(text).expect(text)
    }

    fn field(name: &str, value: &str) -> Item {
        Item::Field {
            name: name.into(),
            value: value.into(),
        }
    }

    fn header(name: &'static str, value: Option<&'static str>) -> Item {
        Item::Header {
            name: HeaderName::from_static(name),
            value: value.map(HeaderValue::from_static),
        }
    }

    #[test]
    fn every_kind_of_item() {
        assert_eq!(item("name=kim"), field("name", "kim"));
        assert_eq!(
            item("age:=30"),
            Item::Json {
                name: "age".into(),
                value: json!(30)
            }
        );
        assert_eq!(
            item("q==kim"),
            Item::Query {
                name: "q".into(),
                value: "kim".into()
            }
        );
        assert_eq!(item("X-Note:hello"), header("x-note", Some("hello")));
        assert_eq!(item("X-Note: hello "), header("x-note", Some("hello")));
        assert_eq!(item("Accept:"), header("accept", None));
        assert_eq!(item("X-Empty;"), header("x-empty", Some("")));
        assert_eq!(
            item("bio=@bio.txt"),
            Item::FieldFile {
                name: "bio".into(),
                path: "bio.txt".into()
            }
        );
        assert_eq!(
            item("meta:=@m.json"),
            Item::JsonFile {
                name: "meta".into(),
                path: "m.json".into()
            }
        );
        assert_eq!(item("@people.csv"), Item::BodyFile("people.csv".into()));
        assert_eq!(
            item("photo@cat.png"),
            Item::Upload {
                name: "photo".into(),
                path: "cat.png".into(),
                content_type: None
            }
        );
        assert_eq!(
            item("photo@cat;type=image/png"),
            Item::Upload {
                name: "photo".into(),
                path: "cat".into(),
                content_type: Some(HeaderValue::from_static("image/png"))
            }
        );
    }

    #[test]
    fn the_first_separator_decides() {
        assert_eq!(item("url=http://x"), field("url", "http://x"));
        assert_eq!(item("X-Note:a=b"), header("x-note", Some("a=b")));
        assert_eq!(
            item("a==b=c").clone(),
            Item::Query {
                name: "a".into(),
                value: "b=c".into()
            }
        );
        assert_eq!(item("empty="), field("empty", ""));
        assert_eq!(
            item("tags:=[1, 2]"),
            Item::Json {
                name: "tags".into(),
                value: json!([1, 2])
            }
        );
    }

    #[test]
    fn backslashes_escape_separators_in_names() {
        assert_eq!(item(r"a\=b=c"), field("a=b", "c"));
        assert_eq!(item(r"a\:b=c"), field("a:b", "c"));
    }

    #[test]
    fn mistakes_are_explained() {
        let error = |text: &str| Item::parse(text).unwrap_err().to_string();
        assert!(error("kim").contains("expected name=text"));
        assert!(error("age:=3x").contains("`3x` is not JSON"));
        assert!(error("=kim").contains("name before the separator is empty"));
        assert!(error("Bad Header:x").contains("not a valid header name"));
        assert!(error("@").contains("needs a file name"));
        assert!(error("bio=@").contains("needs a file name"));
        assert!(error("photo@;type=image/png").contains("needs a file name"));
        assert!(error("x;y").contains("expected name=text"));
    }
}
