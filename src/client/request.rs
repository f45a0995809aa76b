//! From a method, a URL and request items to a request ready to send:
//! the body encoded (JSON, form or CSV), the default headers in place
//! (`Accept-Encoding` names what the client decodes), the files named by
//! items read or checked.
//!
//! A [`Prepared`] request can be turned into a hyper request more than
//! once, so that a request whose reused connection died under it can be
//! sent again on a fresh one.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::Method;
use serde_json::{Map, Value};

use super::decode::ACCEPT_ENCODING;
use super::error::ClientError;
use super::items::{parse_json, plain, Item};
use super::nested;
use super::upload::Part;
use super::url::Url;

pub const USER_AGENT: &str = concat!("csvd/", env!("CARGO_PKG_VERSION"));

/// What HTTPie sends to say "JSON, or whatever you have".
const ACCEPT_JSON: &str = "application/json, */*;q=0.5";
const ACCEPT_CSV: &str = "text/csv, */*;q=0.5";

/// How data fields become a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// JSON when there are data fields; no opinion otherwise.
    #[default]
    Auto,
    /// JSON, and ask for JSON back even without a body.
    Json,
    Form,
    /// multipart/form-data (also what `--form` becomes with a file part).
    Multipart,
    /// A one-row CSV, and ask for CSV back.
    Csv,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Empty,
    Bytes(Bytes),
    /// Streamed from disk when sent; `len` was the size when prepared.
    File {
        path: PathBuf,
        len: u64,
    },
    /// A multipart body with file parts, streamed when sent; `len` when
    /// every part's size is known (else it goes chunked).
    Parts {
        parts: Vec<Part>,
        len: Option<u64>,
    },
}

/// A request with everything decided.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub method: Method,
    pub url: Url,
    /// In the order they are sent.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub payload: Payload,
}

impl Prepared {
    pub fn new(
        method: Method,
        mut url: Url,
        items: &[Item],
        encoding: Encoding,
    ) -> Result<Prepared, ClientError> {
        let queries = grouped(items.iter().filter_map(|item| match item {
            Item::Query { name, value } => Some((name.clone(), value.clone())),
            _ => None,
        }));
        url.append_query(&queries);

        let (payload, content_type) = body(items, encoding)?;
        let accept = match (encoding, &payload) {
            (Encoding::Csv, _) => ACCEPT_CSV,
            (Encoding::Json, _)
            | (Encoding::Auto, Payload::Bytes(_) | Payload::File { .. } | Payload::Parts { .. }) => {
                ACCEPT_JSON
            }
            _ => "*/*",
        };
        let mut headers = vec![
            (header::HOST, header_value(&url.authority())?),
            (header::USER_AGENT, HeaderValue::from_static(USER_AGENT)),
            (header::ACCEPT, HeaderValue::from_static(accept)),
            (
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(ACCEPT_ENCODING),
            ),
        ];
        if let Some(content_type) = content_type {
            headers.push((header::CONTENT_TYPE, content_type));
        }
        // Servers may insist on a length for these methods (411), so an
        // empty body is said out loud.
        let empty = matches!(payload, Payload::Empty | Payload::File { len: 0, .. });
        if empty && [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            headers.push((header::CONTENT_LENGTH, HeaderValue::from_static("0")));
        }
        // A file is a bulk import: the rows need not come back (the
        // server keeps the status and `Location`). `Prefer:` undoes it.
        if matches!(payload, Payload::File { .. })
            && [Method::POST, Method::PUT, Method::PATCH].contains(&method)
        {
            headers.push((
                HeaderName::from_static("prefer"),
                HeaderValue::from_static("return=minimal"),
            ));
        }
        apply_header_items(&mut headers, items);
        Ok(Prepared {
            method,
            url,
            headers,
            payload,
        })
    }

    /// Replaces the body with text typed as it is (JSON at the shell's
    /// body question), labelled unless the person set a content type.
    pub fn with_body(mut self, body: Bytes, content_type: &'static str) -> Prepared {
        self.headers
            .retain(|(name, _)| *name != header::CONTENT_LENGTH);
        if self.header(&header::CONTENT_TYPE).is_none() {
            self.headers
                .push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
        }
        self.payload = Payload::Bytes(body);
        self
    }

    /// Asks for JSON, or whatever the server has (a `--raw` JSON body).
    pub fn set_accept_json(&mut self) {
        for (name, value) in &mut self.headers {
            if *name == header::ACCEPT {
                *value = HeaderValue::from_static(ACCEPT_JSON);
            }
        }
    }

    /// The value of a header, if it is set.
    pub fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value)
    }
}

/// Header items replace the defaults of the same name (the first one does;
/// later ones add values), or remove them (`Name:`).
fn apply_header_items(headers: &mut Vec<(HeaderName, HeaderValue)>, items: &[Item]) {
    let mut replaced: Vec<HeaderName> = Vec::new();
    for item in items {
        let Item::Header { name, value } = item else {
            continue;
        };
        if !replaced.contains(name) {
            headers.retain(|(have, _)| have != name);
            replaced.push(name.clone());
        }
        if let Some(value) = value {
            headers.push((name.clone(), value.clone()));
        }
    }
}

fn header_value(text: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(text).map_err(|_| ClientError::url(text, "not usable in a Host header"))
}

/// The body and its content type.
fn body(items: &[Item], encoding: Encoding) -> Result<(Payload, Option<HeaderValue>), ClientError> {
    let files: Vec<&PathBuf> = items
        .iter()
        .filter_map(|item| match item {
            Item::BodyFile(path) => Some(path),
            _ => None,
        })
        .collect();
    let has_data = items.iter().any(Item::is_data);
    let typed = |bytes: Vec<u8>, content_type: &'static str| {
        (
            Payload::Bytes(Bytes::from(bytes)),
            Some(HeaderValue::from_static(content_type)),
        )
    };
    match files.as_slice() {
        // `--multipart` sends a form even with no field in it.
        [] if !has_data && encoding != Encoding::Multipart => Ok((Payload::Empty, None)),
        [] => {
            let uploads = items.iter().any(|item| matches!(item, Item::Upload { .. }));
            Ok(match encoding {
                Encoding::Multipart => multipart(items)?,
                Encoding::Form if uploads => multipart(items)?,
                _ if uploads => {
                    let Some(Item::Upload { name, path, .. }) = items
                        .iter()
                        .find(|item| matches!(item, Item::Upload { .. }))
                    else {
                        unreachable!("an upload was found")
                    };
                    return Err(ClientError::item(
                        &format!("{name}@{}", path.display()),
                        "a file part (`name@file`) needs --form or --multipart",
                    ));
                }
                Encoding::Auto | Encoding::Json => typed(
                    json_body(items)?.to_string().into_bytes(),
                    "application/json",
                ),
                Encoding::Form => typed(form(items)?, "application/x-www-form-urlencoded"),
                Encoding::Csv => typed(csv_row(&fields(items)?)?, "text/csv"),
            })
        }
        [path] if !has_data && path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|error| ClientError::file("standard input", error))?;
            let content_type = stdin_content_type(&bytes, encoding);
            Ok(typed(bytes, content_type))
        }
        [path] if !has_data => {
            let len = std::fs::metadata(path)
                .and_then(|meta| {
                    if meta.is_dir() {
                        Err(std::io::Error::other("it is a directory"))
                    } else {
                        Ok(meta.len())
                    }
                })
                .map_err(|error| ClientError::file(*path, error))?;
            std::fs::File::open(path).map_err(|error| ClientError::file(*path, error))?;
            Ok((
                Payload::File {
                    path: path.to_path_buf(),
                    len,
                },
                Some(HeaderValue::from_static(content_type_of(path))),
            ))
        }
        [path] => Err(ClientError::item(
            &format!("@{}", path.display()),
            "a body from a file cannot be combined with data fields",
        )),
        [_, second, ..] => Err(ClientError::item(
            &format!("@{}", second.display()),
            "only one `@file` body can be sent",
        )),
    }
}

/// A data item's value: its text, a file's text, its JSON or a file's
/// JSON; `None` for items that are not values.
fn value_of(item: &Item) -> Result<Option<(&str, Value)>, ClientError> {
    Ok(Some(match item {
        Item::Field { name, value } => (name, Value::String(value.clone())),
        Item::FieldFile { name, path } => (name, Value::String(read_text(path)?)),
        Item::Json { name, value } => (name, value.clone()),
        Item::JsonFile { name, path } => {
            let text = read_text(path)?;
            (
                name,
                parse_json(&format!("{name}:=@{}", path.display()), text.trim())?,
            )
        }
        _ => return Ok(None),
    }))
}

/// The JSON body: names are paths (`a[b]`, `a[]`, `a[0]`), a repeated
/// plain name keeps its last value.
fn json_body(items: &[Item]) -> Result<Value, ClientError> {
    let mut fields = Vec::new();
    for item in items {
        if let Some((name, value)) = value_of(item)? {
            fields.push((item_text(item), name, value));
        }
    }
    nested::build(
        fields
            .iter()
            .map(|(text, name, value)| (text.as_str(), *name, value.clone())),
    )
}

/// An item as it was typed, near enough for a message.
fn item_text(item: &Item) -> String {
    match item {
        Item::Field { name, value } => format!("{name}={value}"),
        Item::FieldFile { name, path } => format!("{name}=@{}", path.display()),
        Item::Json { name, value } => format!("{name}:={value}"),
        Item::JsonFile { name, path } => format!("{name}:=@{}", path.display()),
        Item::Upload { name, path, .. } => format!("{name}@{}", path.display()),
        _ => String::new(),
    }
}

/// The data fields in order, files read, names as written; a repeated
/// name keeps its last value.
fn fields(items: &[Item]) -> Result<Map<String, Value>, ClientError> {
    let mut fields = Map::new();
    for item in items {
        if let Some((name, value)) = value_of(item)? {
            fields.insert(plain(name), value);
        }
    }
    Ok(fields)
}

/// The text fields of a form, every value of a repeated name sent; JSON
/// items are refused rather than guessed at.
fn text_fields(items: &[Item]) -> Result<Vec<(String, String)>, ClientError> {
    let mut fields = Vec::new();
    for item in items {
        match item {
            Item::Json { .. } | Item::JsonFile { .. } => {
                return Err(ClientError::item(
                    &item_text(item),
                    "`:=` fields are JSON and cannot be sent in a form; use `name=text`",
                ))
            }
            Item::Field { name, value } => fields.push((plain(name), value.clone())),
            Item::FieldFile { name, path } => fields.push((plain(name), read_text(path)?)),
            _ => {}
        }
    }
    Ok(fields)
}

/// A urlencoded form, its repeated names grouped (see [`grouped`]).
fn form(items: &[Item]) -> Result<Vec<u8>, ClientError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in grouped(text_fields(items)?) {
        form.append_pair(&name, &value);
    }
    Ok(form.finish().into_bytes())
}

/// Pairs in the order their names first appear, the values of a repeated
/// name together in the order given (`a=1 b=2 a=3` is `a=1&a=3&b=2`).
fn grouped(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in pairs {
        match groups.iter_mut().find(|(have, _)| *have == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(name, values)| values.into_iter().map(move |value| (name.clone(), value)))
        .collect()
}

/// A multipart/form-data body: text fields and file parts in the order
/// given, between a random boundary. Files are not read here: the body
/// streams them when it is sent, its length known from their sizes.
fn multipart(items: &[Item]) -> Result<(Payload, Option<HeaderValue>), ClientError> {
    let mut random = [0u8; 16];
    getrandom::getrandom(&mut random).map_err(|error| {
        ClientError::item("--multipart", format!("no random boundary: {error}"))
    })?;
    let boundary: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut body = Vec::new();
    let mut parts = Vec::new();
    let quoted = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let mut texts = text_fields(items)?.into_iter();
    for item in items {
        match item {
            Item::Field { .. } | Item::FieldFile { .. } => {
                let (name, value) = texts.next().expect("one text field per item");
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        quoted(&name)
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            Item::Upload {
                name,
                path,
                content_type,
            } => {
                let len = part_size(path)?;
                let filename = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                        quoted(&plain(name)),
                        quoted(&filename),
                        content_type
                            .as_ref()
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_else(|| part_type_of(path))
                    )
                    .as_bytes(),
                );
                parts.push(Part::Bytes(Bytes::from(std::mem::take(&mut body))));
                parts.push(Part::File {
                    path: path.clone(),
                    len,
                });
                body.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .expect("hex is a valid header value");
    if parts.is_empty() {
        return Ok((Payload::Bytes(Bytes::from(body)), Some(content_type)));
    }
    parts.push(Part::Bytes(Bytes::from(body)));
    let len = super::upload::parts_len(&parts);
    Ok((Payload::Parts { parts, len }, Some(content_type)))
}

/// A file part's size, `None` when it has none to tell (a pipe, a
/// terminal); opened now so that a file that cannot be read is said
/// before anything is sent.
fn part_size(path: &Path) -> Result<Option<u64>, ClientError> {
    let meta = std::fs::metadata(path).map_err(|error| ClientError::file(path, error))?;
    if meta.is_dir() {
        return Err(ClientError::file(
            path,
            std::io::Error::other("it is a directory"),
        ));
    }
    std::fs::File::open(path).map_err(|error| ClientError::file(path, error))?;
    Ok(meta.is_file().then_some(meta.len()))
}

/// The content type of a file part, by its extension.
fn part_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("xml") => "application/xml",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("md") => "text/markdown",
        _ => content_type_of(path),
    }
}

fn read_text(path: &Path) -> Result<String, ClientError> {
    let bytes = std::fs::read(path).map_err(|error| ClientError::file(path, error))?;
    String::from_utf8(bytes).map_err(|_| {
        ClientError::file(
            path,
            std::io::Error::other("it is not UTF-8 text (send it as the body with @file)"),
        )
    })
}

/// A header line and one row; JSON values become the text a CSV cell
/// would hold (`30`, `true`, empty for null).
fn csv_row(fields: &Map<String, Value>) -> Result<Vec<u8>, ClientError> {
    let cell = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = writer
        .write_record(fields.keys())
        .and_then(|()| writer.write_record(fields.values().map(cell)));
    let bytes = written
        .map_err(|error| ClientError::item("--csv", error.to_string()))
        .and_then(|()| {
            writer
                .into_inner()
                .map_err(|error| ClientError::item("--csv", error.to_string()))
        })?;
    Ok(bytes)
}

/// Standard input has no extension: JSON is recognised, CSV is what
/// `--csv` says, and anything else is text (which csvd reads as
/// `key:value` lines).
fn stdin_content_type(bytes: &[u8], encoding: Encoding) -> &'static str {
    if encoding == Encoding::Csv {
        "text/csv"
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        "application/json"
    } else {
        "text/plain"
    }
}

/// The content type of a body file, by its extension.
fn content_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("ndjson" | "jsonl") => "application/x-ndjson",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(method: Method, items: &[&str], encoding: Encoding) -> Prepared {
        let items: Vec<Item> = items
            .iter()
            .map(|text| Item::parse(text).unwrap())
            .collect();
        Prepared::new(
            method,
            Url::parse(":8080/people").unwrap(),
            &items,
            encoding,
        )
        .unwrap()
    }

    fn header<'a>(prepared: &'a Prepared, name: &str) -> Option<&'a str> {
        prepared
            .headers
            .iter()
            .find(|(have, _)| have.as_str() == name)
            .and_then(|(_, value)| value.to_str().ok())
    }

    fn body(prepared: &Prepared) -> &[u8] {
        match &prepared.payload {
            Payload::Bytes(bytes) => bytes,
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn data_fields_make_a_json_object_in_order() {
        let p = prepare(
            Method::POST,
            &["name=kim", "age:=30", "ok:=true"],
            Encoding::Auto,
        );
        assert_eq!(body(&p), br#"{"name":"kim","age":30,"ok":true}"#);
        assert_eq!(header(&p, "content-type"), Some("application/json"));
        assert_eq!(header(&p, "accept"), Some(ACCEPT_JSON));
        assert_eq!(header(&p, "host"), Some("localhost:8080"));
        assert_eq!(header(&p, "accept-encoding"), Some("gzip, deflate, br"));
    }

    #[test]
    fn no_data_no_body_but_a_length_for_post() {
        let get = prepare(Method::GET, &["q==kim"], Encoding::Auto);
        assert_eq!(get.payload, Payload::Empty);
        assert_eq!(get.url.target(), "/people?q=kim");
        assert_eq!(header(&get, "accept"), Some("*/*"));
        assert_eq!(header(&get, "content-length"), None);
        let post = prepare(Method::POST, &[], Encoding::Auto);
        assert_eq!(header(&post, "content-length"), Some("0"));
    }

    #[test]
    fn form_and_csv_encodings() {
        let form = prepare(Method::POST, &["name=kim lee", "city=a&b"], Encoding::Form);
        assert_eq!(body(&form), b"name=kim+lee&city=a%26b");
        assert_eq!(
            header(&form, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let csv = prepare(
            Method::POST,
            &["name=kim, jr", "age:=30", "x:=null"],
            Encoding::Csv,
        );
        assert_eq!(body(&csv), b"name,age,x\n\"kim, jr\",30,\n");
        assert_eq!(header(&csv, "accept"), Some(ACCEPT_CSV));
    }

    #[test]
    fn header_items_replace_remove_and_add() {
        let p = prepare(
            Method::GET,
            &["Accept:text/csv", "User-Agent:", "X-A:1", "X-A:2"],
            Encoding::Auto,
        );
        let names: Vec<&str> = p.headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["host", "accept-encoding", "accept", "x-a", "x-a"]);
        assert_eq!(header(&p, "accept"), Some("text/csv"));
    }

    #[test]
    fn standard_input_is_typed_by_its_content() {
        assert_eq!(
            stdin_content_type(b"{\"a\": 1}\n", Encoding::Auto),
            "application/json"
        );
        assert_eq!(stdin_content_type(b"a,b\n1,2\n", Encoding::Csv), "text/csv");
        assert_eq!(
            stdin_content_type(b"name:kim\n", Encoding::Auto),
            "text/plain"
        );
    }

    #[test]
    fn json_is_refused_in_forms() {
        let items = [Item::parse("age:=30").unwrap()];
        let url = Url::parse(":1/").unwrap();
        let error = Prepared::new(Method::POST, url, &items, Encoding::Form).unwrap_err();
        assert!(error.to_string().contains("cannot be sent in a form"));
    }

    #[test]
    fn files_are_read_or_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bio = dir.path().join("bio.txt");
        std::fs::write(&bio, "hello\n").unwrap();
        let people = dir.path().join("people.CSV");
        std::fs::write(&people, "name\nkim\n").unwrap();
        let url = Url::parse(":1/").unwrap();
        let items = [Item::parse(&format!("bio=@{}", bio.display())).unwrap()];
        let p = Prepared::new(Method::POST, url.clone(), &items, Encoding::Auto).unwrap();
        assert_eq!(body(&p), br#"{"bio":"hello\n"}"#);

        let items = [Item::BodyFile(people.clone())];
        let p = Prepared::new(Method::POST, url.clone(), &items, Encoding::Auto).unwrap();
        assert_eq!(
            p.payload,
            Payload::File {
                path: people,
                len: 9
            }
        );
        assert_eq!(header(&p, "content-type"), Some("text/csv"));
        assert_eq!(header(&p, "prefer"), Some("return=minimal"));

        let items = [
            Item::BodyFile(dir.path().join("people.CSV")),
            Item::parse("Prefer:return=representation").unwrap(),
        ];
        let p = Prepared::new(Method::POST, url.clone(), &items, Encoding::Auto).unwrap();
        assert_eq!(header(&p, "prefer"), Some("return=representation"));
        let items = [
            Item::BodyFile(dir.path().join("people.CSV")),
            Item::parse("Prefer:").unwrap(),
        ];
        let p = Prepared::new(Method::POST, url.clone(), &items, Encoding::Auto).unwrap();
        assert_eq!(header(&p, "prefer"), None);

        let items = [Item::BodyFile(dir.path().join("missing.csv"))];
        let error = Prepared::new(Method::POST, url.clone(), &items, Encoding::Auto).unwrap_err();
        assert!(error.to_string().contains("missing.csv`: No such file"));

        let items = [Item::BodyFile(bio), Item::parse("a=b").unwrap()];
        let error = Prepared::new(Method::POST, url, &items, Encoding::Auto).unwrap_err();
        assert!(error.to_string().contains("cannot be combined"));
    }
}
