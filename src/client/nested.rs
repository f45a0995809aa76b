//! Nested JSON from field names: `user[name]=kim` makes
//! `{"user": {"name": "kim"}}`, `tags[]=a` appends to an array, `rows[0][id]:=1`
//! sets an element by index, and a name that starts with `[` builds a
//! top-level array (`[]:=1 []:=2` is `[1, 2]`).
//!
//! A plain name set twice keeps the last value. A path that asks for an
//! object where an array is (or the other way round) is an error that
//! names the part at fault.

use serde_json::{Map, Value};

use super::error::ClientError;

/// Indexes above this are refused rather than filled with nulls.
const MAX_INDEX: usize = 100_000;

/// Paths deeper than this are refused (a body nested without end).
const MAX_DEPTH: usize = 100;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    Append,
}

impl Step {
    fn wants(&self) -> &'static str {
        match self {
            Step::Key(_) => "an object",
            Step::Index(_) | Step::Append => "an array",
        }
    }

    fn empty(&self) -> Value {
        match self {
            Step::Key(_) => Value::Object(Map::new()),
            Step::Index(_) | Step::Append => Value::Array(Vec::new()),
        }
    }
}

/// The steps a field name spells; `item` is the item as typed, for
/// messages.
fn parse(item: &str, name: &str) -> Result<Vec<Step>, ClientError> {
    let error = |what: String| ClientError::item(item, what);
    let mut steps = Vec::new();
    let mut chars = name.chars().peekable();
    // The root: text up to the first `[`, or a bracket right away.
    if chars.peek() != Some(&'[') {
        let (text, _) = segment(&mut chars);
        steps.push(Step::Key(text));
    }
    let mut root = steps.is_empty();
    while let Some(c) = chars.next() {
        if c != '[' {
            return Err(error(format!(
                "expected `[` after `]`, found `{c}` (escape a bracket that is part of a name: `\\[`)"
            )));
        }
        let (text, escaped) = segment(&mut chars);
        match chars.next() {
            Some(']') => {}
            Some(other) => return Err(error(format!("expected `]`, found `{other}`"))),
            None => return Err(error("a `[` is not closed by `]`".to_string())),
        }
        let step = if text.is_empty() && !escaped {
            Step::Append
        } else if !escaped && is_number(&text) {
            if text.starts_with('-') {
                return Err(error(format!(
                    "`[{text}]`: negative indexes are not supported"
                )));
            }
            match text.parse::<usize>() {
                Ok(index) if index <= MAX_INDEX => Step::Index(index),
                _ => return Err(error(format!("`[{text}]`: indexes go up to {MAX_INDEX}"))),
            }
        } else if root {
            return Err(error(format!(
                "a name starting with `[` builds a top-level array: expected `[]` or `[NUMBER]`, not `[{text}]`"
            )));
        } else {
            Step::Key(text)
        };
        root = false;
        steps.push(step);
        if steps.len() > MAX_DEPTH {
            return Err(error(format!("paths go {MAX_DEPTH} levels deep at most")));
        }
    }
    Ok(steps)
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Text up to an unescaped bracket; whether a backslash came in it (an
/// escaped number is a key, not an index).
fn segment(chars: &mut std::iter::Peekable<std::str::Chars>) -> (String, bool) {
    let mut text = String::new();
    let mut escaped = false;
    while let Some(&c) = chars.peek() {
        if c == '[' || c == ']' {
            break;
        }
        chars.next();
        if c == '\\' {
            if let Some(next) = chars.next() {
                escaped = true;
                text.push(next);
                continue;
            }
        }
        text.push(c);
    }
    (text, escaped)
}

/// The steps written back, up to (not including) `upto`.
fn spelled(steps: &[Step], upto: usize) -> String {
    steps[..upto]
        .iter()
        .map(|step| match step {
            Step::Key(key) if std::ptr::eq(step, &steps[0]) => key.clone(),
            Step::Key(key) => format!("[{key}]"),
            Step::Index(index) => format!("[{index}]"),
            Step::Append => "[]".to_string(),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds the body from `(item as typed, name, value)` in order.
pub fn build<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str, Value)>,
) -> Result<Value, ClientError> {
    let mut root: Option<Value> = None;
    for (item, name, value) in fields {
        let steps = parse(item, name)?;
        let mut cursor = root.get_or_insert_with(|| steps[0].empty());
        let mut value = Some(value);
        for (at, step) in steps.iter().enumerate() {
            let next = steps.get(at + 1);
            let mismatch = |have: &Value| {
                let place = if at == 0 {
                    "the body".to_string()
                } else {
                    format!("`{}`", spelled(&steps, at))
                };
                ClientError::item(
                    item,
                    format!(
                        "{place} is {} here, but `{}` needs {}",
                        kind(have),
                        spelled(&steps, at + 1),
                        step.wants()
                    ),
                )
            };
            cursor = match step {
                Step::Key(key) => {
                    let Value::Object(map) = cursor else {
                        return Err(mismatch(cursor));
                    };
                    match next {
                        None => {
                            map.insert(key.clone(), value.take().unwrap_or_default());
                            break;
                        }
                        Some(next) => map.entry(key.clone()).or_insert_with(|| next.empty()),
                    }
                }
                Step::Index(index) => {
                    let Value::Array(array) = cursor else {
                        return Err(mismatch(cursor));
                    };
                    if array.len() <= *index {
                        array.resize(index + 1, Value::Null);
                    }
                    match next {
                        None => {
                            array[*index] = value.take().unwrap_or_default();
                            break;
                        }
                        Some(next) => {
                            if array[*index].is_null() {
                                array[*index] = next.empty();
                            }
                            &mut array[*index]
                        }
                    }
                }
                Step::Append => {
                    let Value::Array(array) = cursor else {
                        return Err(mismatch(cursor));
                    };
                    match next {
                        None => {
                            array.push(value.take().unwrap_or_default());
                            break;
                        }
                        Some(next) => {
                            array.push(next.empty());
                            array.last_mut().expect("just pushed")
                        }
                    }
                }
            };
        }
    }
    Ok(root.unwrap_or_else(|| Value::Object(Map::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(fields: &[(&str, Value)]) -> Result<Value, String> {
        build(
            fields
                .iter()
                .map(|(name, value)| (*name, *name, value.clone())),
        )
        .map_err(|error| error.to_string())
    }

    #[test]
    fn paths_build_objects_and_arrays() {
        assert_eq!(
            body(&[("a[b]", json!("c")), ("a[d][e]", json!(1))]),
            Ok(json!({"a": {"b": "c", "d": {"e": 1}}}))
        );
        assert_eq!(
            body(&[("tags[]", json!("x")), ("tags[]", json!("y"))]),
            Ok(json!({"tags": ["x", "y"]}))
        );
        assert_eq!(
            body(&[
                ("a[0][x]", json!("y")),
                ("a[0][z]", json!(2)),
                ("a[2]", json!(3))
            ]),
            Ok(json!({"a": [{"x": "y", "z": 2}, null, 3]}))
        );
        assert_eq!(
            body(&[("[]", json!(1)), ("[]", json!(2))]),
            Ok(json!([1, 2]))
        );
        assert_eq!(body(&[("[1][a]", json!(1))]), Ok(json!([null, {"a": 1}])));
        assert_eq!(
            body(&[("a", json!(1)), ("a", json!(2))]),
            Ok(json!({"a": 2}))
        );
        assert_eq!(body(&[(r"a[\1]", json!(1))]), Ok(json!({"a": {"1": 1}})));
        assert_eq!(body(&[(r"a\[b\]", json!(1))]), Ok(json!({"a[b]": 1})));
        assert_eq!(body(&[("7", json!(1))]), Ok(json!({"7": 1})));
    }

    #[test]
    fn malformed_paths_and_clashes_are_explained() {
        let error = |fields: &[(&str, Value)]| body(fields).unwrap_err();
        assert!(error(&[("a[b", json!(1))]).contains("not closed"));
        assert!(error(&[("a[b]c", json!(1))]).contains("expected `[` after `]`"));
        assert!(error(&[("a[-1]", json!(1))]).contains("negative indexes"));
        assert!(error(&[("a[99999999]", json!(1))]).contains("indexes go up to"));
        assert!(error(&[("[x]", json!(1))]).contains("top-level array"));
        let deep = format!("a{}", "[]".repeat(100));
        assert!(error(&[(deep.as_str(), json!(1))]).contains("100 levels deep"));
        let deep = format!("a{}", "[]".repeat(99));
        assert!(body(&[(deep.as_str(), json!(1))]).is_ok());
        assert_eq!(
            error(&[("a[b]", json!(1)), ("a[]", json!(2))]),
            "invalid request item `a[]`: `a` is an object here, but `a[]` needs an array"
        );
        assert!(error(&[("a", json!("s")), ("a[b]", json!(2))])
            .contains("`a` is a string here, but `a[b]` needs an object"));
        assert!(error(&[("a", json!(1)), ("[]", json!(2))])
            .contains("the body is an object here, but `[]` needs an array"));
    }
}
