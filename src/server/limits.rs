//! Per-connection bounds: the connection cap (a new connection beyond it is
//! answered 503 at once and closed, never queued) and the idle deadline (a
//! connection silent in both directions for too long is dropped); and the
//! per-request time limit ([`Deadline`]). Neither deadline costs a timer
//! operation per request on a busy connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The answer to a connection over the cap: small, fixed, and sent without
/// reading the request, so a flood costs almost nothing.
fn busy() -> String {
    let body = r#"{"type":"urn:csvd:problem:busy","title":"Service Unavailable","status":503,"detail":"too many connections are open; retry in a second"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Tells a connection over the cap to come back later, and closes it.
pub async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(busy().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A connection that fails once no byte has moved either way for `limit`.
///
/// Bytes moving only note the time; the timer is moved on when it fires
/// before the connection's deadline, so a busy connection costs no timer
/// operation per request.
pub struct Idle<T> {
    inner: T,
    limit: Duration,
    /// When the connection last moved a byte, plus `limit`.
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> Idle<T> {
    pub fn new(inner: T, limit: Duration) -> Idle<T> {
        Idle {
            inner,
            limit,
            deadline: Instant::now() + limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn active(&mut self) {
        self.deadline = Instant::now() + self.limit;
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                // Bytes moved since the timer was set: wait until the
                // deadline they give.
                Poll::Ready(()) if self.timer.deadline() < self.deadline => {
                    let deadline = self.deadline;
                    self.timer.as_mut().reset(deadline);
                }
                Poll::Ready(()) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    ))
                }
            }
        }
    }
}

/// A message's `Content-Length`, when it has one that reads as a number.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<usize> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A body over `--max-body` (`limit`).
pub fn too_large(limit: usize) -> super::problem::Problem {
    super::problem::Problem::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

/// The time limit of a request (`--request-timeout`): as tower-http's
/// `TimeoutLayer`, an answer not ready within `limit` of the request is
/// replaced by a `503` (which the gate turns into a problem document).
/// But the timer is set only once the handler first has to wait: an
/// answer from memory, ready when first asked, costs none.
#[derive(Clone, Copy)]
pub struct Deadline {
    limit: Duration,
}

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        Deadline { limit }
    }
}

impl<S> tower::Layer<S> for Deadline {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> DeadlineService<S> {
        DeadlineService {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct DeadlineService<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> tower::Service<axum::http::Request<B>> for DeadlineService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        self.limit(answer)
    }
}

impl<S> DeadlineService<S> {
    /// `answer`, a request's answer made without the inner service, within
    /// the same limit.
    pub fn limit<F>(&self, answer: F) -> DeadlineFuture<F> {
        DeadlineFuture {
            inner: answer,
            limit: self.limit,
            deadline: None,
            timer: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, or a 503 once its deadline has passed. The
    /// deadline runs from the first poll, when the request is routed (after
    /// json-server's delay, say).
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        limit: Duration,
        deadline: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<axum::response::Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let limit = *this.limit;
        let deadline = *this.deadline.get_or_insert_with(|| Instant::now() + limit);
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                use axum::response::IntoResponse;
                Poll::Ready(Ok(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(err)),
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(err)),
            },
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer that is ready at once gets no timer; one that never comes
    /// is a 503 once the limit has passed.
    #[tokio::test]
    async fn the_deadline_sets_a_timer_only_for_answers_that_wait() {
        use axum::response::{IntoResponse, Response};
        use std::convert::Infallible;
        use tower::{Layer, ServiceExt};
        let request = || axum::http::Request::new(());
        let mut ready = Deadline::new(Duration::from_secs(5)).layer(tower::service_fn(
            |_: axum::http::Request<()>| async {
                Ok::<Response, Infallible>(axum::http::StatusCode::OK.into_response())
            },
        ));
        let mut future = std::pin::pin!(tower::Service::call(&mut ready, request()));
        let polled = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        match polled {
            Poll::Ready(Ok(response)) => assert_eq!(response.status(), 200),
            _ => panic!("the answer was ready at its first poll"),
        }
        assert!(
            future.timer.is_none(),
            "no timer for an answer ready at once"
        );
        let never = Deadline::new(Duration::from_millis(50)).layer(tower::service_fn(
            |_: axum::http::Request<()>| std::future::pending::<Result<Response, Infallible>>(),
        ));
        let answer = never.oneshot(request()).await.unwrap();
        assert_eq!(answer.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn busy_answer_is_well_formed() {
        let answer = busy();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 503);
    }
}
