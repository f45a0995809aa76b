//! Who may do what: `--read-only`, the bearer token (`--token`, for writes,
//! or for everything with `--private`) and CORS for browser origins.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use tower::{service_fn, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::problem::Problem;

/// The access rules of one server.
#[derive(Debug, Default)]
pub struct Access {
    pub read_only: bool,
    pub token: Option<String>,
    pub private: bool,
}

impl Access {
    /// Reads the token from `--token`/`CSVD_TOKEN` or from a file.
    pub fn from_args(args: &crate::cli::ServeArgs) -> anyhow::Result<Access> {
        let token = match (&args.token, &args.token_file) {
            (Some(token), _) => Some(token.trim().to_string()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        anyhow::anyhow!("cannot read --token-file {}: {e}", path.display())
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        if token.as_deref() == Some("") {
            anyhow::bail!("the token is empty");
        }
        if args.private && token.is_none() {
            anyhow::bail!("--private needs a token (--token, CSVD_TOKEN or --token-file)");
        }
        Ok(Access {
            read_only: args.read_only,
            token,
            private: args.private,
        })
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses writes on a read-only server (405) and requests without the
/// token where one is required (401). Liveness (`/_health`) stays open.
pub fn check(access: &Access, request: &Request) -> Result<(), Problem> {
    let read = is_read(request.method());
    if !read && access.read_only {
        return Err(
            Problem::method_not_allowed(request.method().as_str(), "GET, HEAD, OPTIONS")
                .with_detail("this server is read-only"),
        );
    }
    let needs_token = (!read || access.private) && request.uri().path() != "/_health";
    if let (true, Some(token)) = (needs_token, &access.token) {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        if !given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
            let detail = if given.is_some() {
                "the bearer token is wrong"
            } else {
                "this request needs a token: send Authorization: Bearer <token>"
            };
            let mut problem = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
            problem.challenge = true;
            return Err(problem);
        }
    }
    Ok(())
}

/// Compares secrets in time that depends only on their lengths.
fn same(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

/// The origins `--cors` lets in.
#[derive(Clone)]
enum Origins {
    Any,
    List(Vec<HeaderValue>),
}

impl Origins {
    fn parse(origins: &[String]) -> anyhow::Result<Origins> {
        if origins.iter().any(|o| o == "*") {
            return Ok(Origins::Any);
        }
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim())
                    .map_err(|_| anyhow::anyhow!("invalid --cors origin {o:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Origins::List(values))
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match (self, origin) {
            (Origins::Any, _) => Some(HeaderValue::from_static("*")),
            (Origins::List(list), Some(origin)) => list.contains(origin).then(|| origin.clone()),
            (Origins::List(_), None) => None,
        }
    }
}

/// The router with CORS for the given origins (`*`: any). A preflight
/// (`OPTIONS` with `Access-Control-Request-Method`) is answered by the CORS
/// layer; a plain `OPTIONS` is not a preflight and goes on to the routes,
/// which answer it 204 with `Allow`, as without `--cors`. The choice is
/// made before routing, so each request is routed once.
pub fn with_cors(router: Router, origins: &[String]) -> anyhow::Result<Router> {
    let origins = Origins::parse(origins)?;
    let cors = Arc::new(Cors {
        routed: router.clone().layer(cors(&origins)),
        plain: router,
        origins,
    });
    let steer = service_fn(move |request: Request| {
        let cors = cors.clone();
        async move { Ok::<_, Infallible>(cors.answer(request).await) }
    });
    Ok(Router::new().fallback_service(steer))
}

struct Cors {
    /// The routes behind the CORS layer.
    routed: Router,
    /// The same routes without it.
    plain: Router,
    origins: Origins,
}

impl Cors {
    async fn answer(&self, request: Request) -> Response {
        let preflight = request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if request.method() != Method::OPTIONS || preflight {
            return answer(self.routed.clone(), request).await;
        }
        let allow = self.origins.allow(request.headers().get(header::ORIGIN));
        let mut response = answer(self.plain.clone(), request).await;
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(allow) = allow {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("allow"),
            );
        }
        response
    }
}

async fn answer(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn cors(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(list.clone()),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
        ])
        .expose_headers([
            header::ALLOW,
            header::ETAG,
            header::LOCATION,
            header::LINK,
            header::LAST_MODIFIED,
            header::HeaderName::from_static("x-total-count"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
