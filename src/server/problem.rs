//! Errors as HTTP answers: one type, [`Problem`], that every handler error
//! becomes, rendered as RFC 9457 `application/problem+json`. This is the
//! one place where store and codec errors meet status codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::codec::body::BodyError;
use crate::store;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: status, a short kind, and a detail saying what was
/// wrong and what was expected.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// A stable, machine-readable name (`id-taken`), part of the `type` URI.
    pub kind: &'static str,
    pub detail: String,
    /// The `Allow` header, for 405.
    pub allow: Option<&'static str>,
    /// Whether to send the bearer challenge (`WWW-Authenticate`), for 401.
    pub challenge: bool,
    /// What happened in the words for a person at a web page, when the
    /// detail gives advice only an HTTP client can follow.
    pub page_detail: Option<String>,
    /// Members of the document beyond RFC 9457's (`oldest_seq` of a 410).
    pub members: Vec<(&'static str, serde_json::Value)>,
}

impl Problem {
    /// 408: a request body that did not arrive in time.
    pub fn body_timeout(limit: std::time::Duration) -> Problem {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            format!("the body did not arrive within {} s", limit.as_secs()),
        )
    }

    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind,
            detail: detail.into(),
            allow: None,
            challenge: false,
            page_detail: None,
            members: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn method_not_allowed(method: &str, allow: &'static str) -> Problem {
        let mut problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{method} is not allowed here; allowed: {allow}"),
        );
        problem.allow = Some(allow);
        problem
    }

    /// The same problem with another detail.
    pub fn with_detail(self, detail: impl Into<String>) -> Problem {
        Problem {
            detail: detail.into(),
            ..self
        }
    }

    /// A write's error: an unreadable table file is a conflict to resolve
    /// (fix or replace the file), not a server fault.
    pub fn for_write(self) -> Problem {
        if self.kind == "broken-table" {
            Problem {
                status: StatusCode::CONFLICT,
                ..self
            }
        } else {
            self
        }
    }

    pub fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The JSON document of this problem.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "type": format!("urn:csvd:problem:{}", self.kind),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        for (name, value) in &self.members {
            body[*name] = value.clone();
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(status = self.status.as_u16(), "{}", self.detail);
        }
        let mut body = self.body().to_string();
        body.push('\n');
        let mut response = (self.status, body).into_response();
        // For the page a browser gets instead (see the middleware).
        response.extensions_mut().insert(self.clone());
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(
            self.kind,
            "storage-unavailable" | "outcome-unknown" | "busy"
        ) {
            // The store retries recovery on its own, within seconds; large
            // writes in flight take seconds.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"csvd\""),
            );
        }
        response
    }
}

impl From<store::Error> for Problem {
    fn from(err: store::Error) -> Problem {
        use store::Error as E;
        let (status, kind) = match &err {
            E::InvalidTableName(_) => (StatusCode::BAD_REQUEST, "invalid-table-name"),
            E::NoTable(_) => (StatusCode::NOT_FOUND, "no-table"),
            E::NoRow(_) => (StatusCode::NOT_FOUND, "no-row"),
            E::IdTaken(_) => (StatusCode::CONFLICT, "id-taken"),
            E::IdMismatch { .. } => (StatusCode::BAD_REQUEST, "id-mismatch"),
            E::InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid-id"),
            E::InvalidField(_) => (StatusCode::BAD_REQUEST, "invalid-field"),
            E::Declared(_) => (StatusCode::BAD_REQUEST, "declared-columns"),
            E::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "not-implemented"),
            E::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "precondition-failed"),
            E::Unencodable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unencodable"),
            E::Query(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            E::BrokenTable { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "broken-table"),
            E::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage-unavailable"),
            E::OutcomeUnknown(_) => (StatusCode::SERVICE_UNAVAILABLE, "outcome-unknown"),
        };
        let mut problem = Problem::new(status, kind, err.to_string());
        if let E::BrokenTable { table, reason } = &err {
            problem.page_detail = Some(format!(
                "The file of the table {table} cannot be read as CSV: {reason}."
            ));
        }
        problem
    }
}

impl From<BodyError> for Problem {
    fn from(err: BodyError) -> Problem {
        match err {
            BodyError::Unsupported(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                err.to_string(),
            ),
            BodyError::Invalid(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-body", err.to_string())
            }
        }
    }
}
