//! What a person types at the guided flow's body question, read the way
//! it is meant.
//!
//! JSON (`{…}` or `[…]`) is sent as typed. Anything else is fields:
//! `key:value` and `key=value` pairs (the seed's format, several on one
//! line), separated by spaces or commas, and the request items of the
//! one-shot commands (`age:=30`, `bio=@bio.txt`, `q==kim`, `@body.csv`).
//! Words are split as on request lines, so a quoted value keeps its
//! spaces and commas, and a quoted or escaped separator is text. A word
//! that is not a pair continues the value before it: `name:kim lee` is
//! one field, as the seed read it.
//!
//! Nothing here reads a file or talks to a server: the items are built
//! into a request like any others.

use bytes::Bytes;

use super::super::items::{Item, SEPARATORS};
use super::words::{self, Word};

/// What was typed at the body question.
#[derive(Debug, PartialEq)]
pub enum Body {
    /// JSON, sent as it was typed.
    Json(Bytes),
    /// Fields and other items (none for an empty answer).
    Items(Vec<Item>),
}

pub fn parse(text: &str) -> Result<Body, String> {
    let text = text.trim();
    if text.starts_with(['{', '[']) {
        return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Ok(Body::Json(Bytes::from(text.to_string()))),
            Err(error) => Err(format!("the body is not valid JSON: {error}")),
        };
    }
    let mut pairs: Vec<Pair> = Vec::new();
    for part in parts(words::words(text)?) {
        match Pair::starting(&part) {
            Some(pair) => pairs.push(pair),
            None => match pairs.last_mut() {
                Some(pair) => {
                    pair.value.push_str(&part.gap);
                    pair.value.push_str(&part.text);
                }
                None => {
                    return Err(format!(
                        "`{}` is not a field: type key:value or key=value pairs (quote values \
                         with spaces), request items such as age:=30, or JSON",
                        part.text
                    ))
                }
            },
        }
    }
    pairs
        .into_iter()
        .map(Pair::item)
        .collect::<Result<_, _>>()
        .map(Body::Items)
}

/// A piece of the answer between separators (spaces and unquoted commas).
#[derive(Debug)]
struct Part {
    text: String,
    literal: Vec<bool>,
    /// The separators before it, as typed (collapsed to one space and the
    /// commas), for a part that continues a value.
    gap: String,
}

/// Breaks the words at unquoted commas.
fn parts(words: Vec<Word>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut gap = String::new();
    for word in words {
        if !parts.is_empty() {
            gap.push(' ');
        }
        let mut part: Option<Part> = None;
        for (_, c, literal) in word.chars() {
            if c == ',' && !literal {
                parts.extend(part.take());
                gap.push(',');
                continue;
            }
            let part = part.get_or_insert_with(|| Part {
                text: String::new(),
                literal: Vec::new(),
                gap: std::mem::take(&mut gap),
            });
            part.text.push(c);
            part.literal.push(literal);
        }
        parts.extend(part);
    }
    parts
}

/// A field (or item) being read: its name, separator and value.
#[derive(Debug)]
struct Pair {
    name: String,
    /// `@` for a body file (which has no name).
    separator: &'static str,
    value: String,
}

impl Pair {
    /// The pair a part starts, if it starts one: a name, then the first
    /// unquoted separator; or `@file`.
    fn starting(part: &Part) -> Option<Pair> {
        if part.text.starts_with('@') && !part.literal[0] {
            return Some(Pair {
                name: String::new(),
                separator: "@",
                value: part.text[1..].to_string(),
            });
        }
        let chars: Vec<(usize, char, bool)> = part
            .text
            .char_indices()
            .zip(part.literal.iter().copied())
            .map(|((at, c), literal)| (at, c, literal))
            .collect();
        for (index, &(at, _, _)) in chars.iter().enumerate() {
            let unquoted = |separator: &str| {
                separator.chars().enumerate().all(|(offset, expected)| {
                    chars
                        .get(index + offset)
                        .is_some_and(|&(_, c, literal)| c == expected && !literal)
                })
            };
            // `Header;` is no field: only the separators of data.
            let found = SEPARATORS
                .iter()
                .filter(|separator| **separator != ";")
                .find(|separator| unquoted(separator));
            if let Some(separator) = found {
                if at == 0 {
                    return None;
                }
                return Some(Pair {
                    name: part.text[..at].to_string(),
                    separator,
                    value: part.text[at + separator.len()..].to_string(),
                });
            }
        }
        None
    }

    /// `key:value` is a text field here (a header only on request lines).
    fn item(self) -> Result<Item, String> {
        match self.separator {
            ":" | "=" => Ok(Item::Field {
                name: self.name,
                value: self.value,
            }),
            "@" => Item::parse(&format!("@{}", self.value)).map_err(|error| error.to_string()),
            separator => {
                let text = format!("{}{separator}{}", self.name, self.value);
                Item::from_parts(&text, self.name, separator, &self.value)
                    .map_err(|error| error.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items(text: &str) -> Vec<Item> {
        match parse(text).expect(text) {
            Body::Items(items) => items,
            Body::Json(json) => panic!("{text}: JSON {json:?}"),
        }
    }

    fn field(name: &str, value: &str) -> Item {
        Item::Field {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn several_pairs_separated_by_spaces_or_commas() {
        let expected = [field("name", "kim"), field("age", "30")];
        for text in [
            "name:kim age:30",
            "name=kim age=30",
            "name:kim, age:30",
            "name=kim,age:30",
            " name:kim ,  age:30 ",
        ] {
            assert_eq!(items(text), expected, "{text}");
        }
    }

    #[test]
    fn quoted_values_keep_their_spaces_and_commas() {
        assert_eq!(
            items(r#"name:"kim lee", city:'Seoul, Korea' note=a\,b"#),
            [
                field("name", "kim lee"),
                field("city", "Seoul, Korea"),
                field("note", "a,b")
            ]
        );
        assert_eq!(items(r"'a:b':c"), [field("a:b", "c")]);
        assert_eq!(items("url:http://x/a=b"), [field("url", "http://x/a=b")]);
    }

    #[test]
    fn a_word_that_is_no_pair_continues_the_value_before_it() {
        assert_eq!(
            items("name:kim lee age:30"),
            [field("name", "kim lee"), field("age", "30")]
        );
        assert_eq!(items("city:Seoul, Korea"), [field("city", "Seoul, Korea")]);
        assert_eq!(
            items("tags:=[1, 2]"),
            [Item::Json {
                name: "tags".into(),
                value: json!([1, 2])
            }]
        );
    }

    #[test]
    fn the_request_items_of_one_shot_commands() {
        assert_eq!(
            items("name=kim age:=30 q==x bio=@bio.txt"),
            [
                field("name", "kim"),
                Item::Json {
                    name: "age".into(),
                    value: json!(30)
                },
                Item::Query {
                    name: "q".into(),
                    value: "x".into()
                },
                Item::FieldFile {
                    name: "bio".into(),
                    path: "bio.txt".into()
                },
            ]
        );
        assert_eq!(items("@people.csv"), [Item::BodyFile("people.csv".into())]);
        assert!(items("").is_empty());
    }

    #[test]
    fn json_is_sent_as_typed() {
        assert_eq!(
            parse(r#" {"name": "kim"} "#).unwrap(),
            Body::Json(Bytes::from_static(br#"{"name": "kim"}"#))
        );
        assert!(parse("{oops").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(parse("kim").unwrap_err().contains("`kim` is not a field"));
        assert!(parse("=kim").unwrap_err().contains("`=kim` is not a field"));
        assert!(parse("age:=3x").unwrap_err().contains("`3x` is not JSON"));
        assert!(parse("name:'kim").unwrap_err().contains("not closed"));
        assert!(parse("bio=@").unwrap_err().contains("needs a file name"));
    }
}
