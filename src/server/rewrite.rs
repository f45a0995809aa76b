//! json-server 0.17's `--routes routes.json`: rules that rewrite a request's
//! path (and query) before it is routed, as express-urlrewrite does with
//! path-to-regexp 1.x patterns.
//!
//! - `"/api/*": "/$1"`: `*` captures anything (slashes and the query string
//!   included); `$1`, `$2`… are the captures in order.
//! - `"/blog/:resource/:id/show": "/:resource/:id"`: `:name` captures one
//!   segment (no `/`); `:name?` may be absent, `:name*` and `:name+` repeat;
//!   `:name(\d+)` gives the pattern.
//! - The pattern matches the whole target, path and query as sent
//!   (case-insensitively, a trailing `/` allowed): `/posts/:id` also takes
//!   `/posts/1?x=1`, with `:id` = `1?x=1`, as in json-server.
//! - Every rule is tried in the file's order, each on the target the rules
//!   before it left: `"/a/*": "/b/$1"` then `"/b/*": "/$1"` turn `/a/x` into
//!   `/x`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use regex::Regex;
use serde_json::Value;

/// One rule: its pattern and what it becomes.
#[derive(Debug)]
struct Rule {
    pattern: Regex,
    /// The destination, as parts: text, or the capture group to put there.
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Group(usize),
}

/// The rules of a routes file, in order.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    /// The file's object, for `GET /__rules`.
    pub source: Value,
}

/// A parameter of a pattern: its name (a number for `*` and groups).
struct Key {
    name: String,
}

impl Rules {
    /// Reads a routes file; a mistake names the file and the rule.
    pub fn load(path: &Path) -> anyhow::Result<Arc<Rules>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --routes {}", path.display()))?;
        Rules::parse(&text)
            .with_context(|| format!("--routes {}", path.display()))
            .map(Arc::new)
    }

    pub fn parse(text: &str) -> anyhow::Result<Rules> {
        let source: Value = serde_json::from_str(text).context(
            "not valid JSON: expected an object of rules, such as {\"/api/*\": \"/$1\"}",
        )?;
        let Value::Object(map) = &source else {
            anyhow::bail!("not a JSON object: expected rules such as {{\"/api/*\": \"/$1\"}}");
        };
        let mut rules = Vec::with_capacity(map.len());
        for (from, to) in map {
            let Value::String(to) = to else {
                anyhow::bail!("rule {from:?}: the destination must be a string, such as \"/$1\"");
            };
            rules.push(compile(from, to).with_context(|| format!("rule {from:?}: {to:?}"))?);
        }
        Ok(Rules { rules, source })
    }

    /// The target after every rule (`None`: no rule matched).
    pub fn rewrite(&self, target: &str) -> Option<String> {
        let mut current: Option<String> = None;
        for rule in &self.rules {
            let now = current.as_deref().unwrap_or(target);
            let Some(captures) = rule.pattern.captures(now) else {
                continue;
            };
            let mut out = String::new();
            for part in &rule.parts {
                match part {
                    Part::Text(text) => out.push_str(text),
                    Part::Group(i) => {
                        out.push_str(captures.get(*i).map_or("", |m| m.as_str()));
                    }
                }
            }
            current = Some(out);
        }
        current
    }
}

/// path-to-regexp 1.x's tokens: an escaped character, or a parameter
/// (`:name`, `(group)` or `*`) with its prefix and modifier.
fn tokenizer() -> Regex {
    Regex::new(
        r"(\\.)|([/.])?(?:(?::(\w+)(?:\(((?:\\.|[^\\()])+)\))?|\(((?:\\.|[^\\()])+)\))([+*?])?|(\*))",
    )
    .expect("a valid pattern")
}

fn compile(from: &str, to: &str) -> anyhow::Result<Rule> {
    let mut keys: Vec<Key> = Vec::new();
    let mut route = String::new();
    let mut path = String::new();
    // The literal text last added, for a parameter without prefix.
    let mut last_text = String::new();
    let mut index = 0;
    let mut numbered = 0;
    for m in tokenizer().captures_iter(from) {
        let whole = m.get(0).expect("match");
        path.push_str(&from[index..whole.start()]);
        index = whole.end();
        if let Some(escaped) = m.get(1) {
            path.push_str(&escaped.as_str()[1..]);
            continue;
        }
        if !path.is_empty() {
            route.push_str(&regex::escape(&path));
            last_text = std::mem::take(&mut path);
        }
        let next = from[index..].chars().next();
        let prefix = m.get(2).map(|p| p.as_str());
        let modifier = m.get(6).map(|p| p.as_str());
        let asterisk = m.get(7).is_some();
        let name = match m.get(3) {
            Some(name) => name.as_str().to_string(),
            None => {
                numbered += 1;
                (numbered - 1).to_string()
            }
        };
        let partial = prefix.is_some_and(|p| next.is_some_and(|n| n.to_string() != p));
        let repeat = matches!(modifier, Some("+") | Some("*"));
        let optional = matches!(modifier, Some("?") | Some("*"));
        let prev_text = prefix.map(str::to_string).unwrap_or(last_text.clone());
        let pattern = match (m.get(4).or(m.get(5)), asterisk) {
            (Some(custom), _) => custom.as_str().to_string(),
            (None, true) => ".*".to_string(),
            (None, false) if prev_text.is_empty() || prev_text.contains('/') => {
                "[^/]+?".to_string()
            }
            (None, false) => anyhow::bail!(
                "the parameter :{name} follows {prev_text:?} without a `/`: csvd reads \
                 parameters that start a path segment (such as /:{name}) or follow a `/`"
            ),
        };
        let prefix = regex::escape(prefix.unwrap_or(""));
        let mut capture = format!("(?:{pattern})");
        if repeat {
            capture = format!("{capture}(?:{prefix}{capture})*");
        }
        let capture = if optional {
            if partial {
                format!("{prefix}({capture})?")
            } else {
                format!("(?:{prefix}({capture}))?")
            }
        } else {
            format!("{prefix}({capture})")
        };
        route.push_str(&capture);
        keys.push(Key { name });
        last_text.clear();
    }
    path.push_str(&from[index..]);
    if !path.is_empty() {
        route.push_str(&regex::escape(&path));
    }
    // Not strict: a slash at the end of the target is allowed.
    let route = route.strip_suffix("/").unwrap_or(&route).to_string();
    let pattern = Regex::new(&format!("(?i)^{route}/?$"))
        .map_err(|e| anyhow::anyhow!("the pattern cannot be read: {e}"))?;
    // The destination: `$n` is capture n, `:name` the named parameter.
    let mut parts = Vec::new();
    let references = Regex::new(r"\$(\d+)|:(\w+)").expect("a valid pattern");
    let mut at = 0;
    for m in references.captures_iter(to) {
        let whole = m.get(0).expect("match");
        parts.push(Part::Text(to[at..whole.start()].to_string()));
        at = whole.end();
        let group = match (m.get(1), m.get(2)) {
            (Some(n), _) => {
                let n: usize = n.as_str().parse().unwrap_or(usize::MAX);
                anyhow::ensure!(
                    n <= keys.len(),
                    "${n} names capture {n}, and the pattern has {}",
                    keys.len()
                );
                n
            }
            (None, Some(name)) => {
                let name = name.as_str();
                1 + keys.iter().position(|k| k.name == name).ok_or_else(|| {
                    anyhow::anyhow!("the destination names :{name}, which the pattern lacks")
                })?
            }
            _ => unreachable!("one of the two groups matched"),
        };
        parts.push(Part::Group(group));
    }
    parts.push(Part::Text(to[at..].to_string()));
    Ok(Rule { pattern, parts })
}

/// Rewrites each request's target by `rules` before it is routed (a
/// target the rules make unreadable is left as it came).
pub fn layer<B>(
    rules: Option<Arc<Rules>>,
) -> impl Fn(axum::http::Request<B>) -> axum::http::Request<B> + Clone {
    move |mut request| {
        let Some(rules) = &rules else {
            return request;
        };
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        if let Some(rewritten) = rules.rewrite(&target) {
            match rewritten.parse::<axum::http::Uri>() {
                Ok(uri) => *request.uri_mut() = uri,
                Err(_) => {
                    tracing::debug!(%target, %rewritten, "a routes.json rule made no valid target")
                }
            }
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse(text).unwrap()
    }

    #[test]
    fn json_server_examples() {
        let r = rules(
            r#"{"/api/*": "/$1", "/:resource/:id/show": "/:resource/:id",
                "/articles\\?id=:id": "/posts/:id"}"#,
        );
        assert_eq!(r.rewrite("/api/posts").as_deref(), Some("/posts"));
        assert_eq!(r.rewrite("/api/posts/1").as_deref(), Some("/posts/1"));
        assert_eq!(
            r.rewrite("/api/posts?_page=2").as_deref(),
            Some("/posts?_page=2")
        );
        assert_eq!(r.rewrite("/posts/1/show").as_deref(), Some("/posts/1"));
        let c = rules(r#"{"/posts/:category": "/posts?category=:category"}"#);
        assert_eq!(
            c.rewrite("/posts/javascript").as_deref(),
            Some("/posts?category=javascript")
        );
        assert_eq!(r.rewrite("/articles?id=1").as_deref(), Some("/posts/1"));
        assert_eq!(r.rewrite("/other"), None);
        assert_eq!(r.rewrite("/API/posts/").as_deref(), Some("/posts/"));
    }

    #[test]
    fn rules_apply_one_after_another() {
        let r = rules(r#"{"/a/*": "/b/$1", "/b/*": "/$1"}"#);
        assert_eq!(r.rewrite("/a/posts/1").as_deref(), Some("/posts/1"));
        // A query after a segment parameter's segment stops the match.
        let r = rules(r#"{"/blog/:id/show": "/posts/:id"}"#);
        assert_eq!(r.rewrite("/blog/1/show?x=1"), None);
        let r = rules(r#"{"/p/:id?": "/posts/:id"}"#);
        assert_eq!(r.rewrite("/p").as_deref(), Some("/posts/"));
        assert_eq!(r.rewrite("/p/3").as_deref(), Some("/posts/3"));
    }

    #[test]
    fn mistakes_name_the_rule() {
        for (text, said) in [
            (r#"{"/a/:id": "/:name"}"#, ":name, which the pattern lacks"),
            (r#"{"/a/*": "/$2"}"#, "$2 names capture 2"),
            (r#"{"/a": 3}"#, "must be a string"),
            ("[1]", "not a JSON object"),
            ("{", "not valid JSON"),
        ] {
            let err = format!("{:#}", Rules::parse(text).unwrap_err());
            assert!(err.contains(said), "{text}: {err}");
        }
        let err = format!("{:#}", Rules::parse(r#"{"/a/*": "/$2"}"#).unwrap_err());
        assert!(err.contains("rule \"/a/*\""), "{err}");
    }
}
