//! The [`Upstream`] adapter: one built request sent with `fetch`, aborted after its timeout.
//! Which targets, in which order, and what each request carries are the core's decisions
//! ([`crate::gateway::fallback`]).

use crate::gateway::ports::{Upstream, UpstreamAnswer, UpstreamFailure, UpstreamRequest};
use futures_util::future::{select, Either};
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use worker::{AbortController, ByteStream, Delay, Env, Fetch, Headers, Method, Request, RequestInit};

/// The upstreams, with their credentials from the worker's secrets.
pub struct FetchUpstream<'a>(pub &'a Env);

impl Upstream for FetchUpstream<'_> {
    type Body = UpstreamBody;
    type BodyError = worker::Error;

    fn credential(&self, secret_name: &str) -> Option<String> {
        let secret = self.0.secret(secret_name).map(|s| s.to_string()).ok();
        if secret.is_none() {
            worker::console_error!("secret {secret_name} is not set");
        }
        secret
    }

    async fn send(&self, request: &UpstreamRequest<'_>) -> Result<UpstreamAnswer<UpstreamBody>, UpstreamFailure> {
        let controller = AbortController::default();
        let fetch = Fetch::Request(build(request)?);
        let signal = controller.signal();
        let send = std::pin::pin!(fetch.send_with_signal(&signal));
        let timeout = std::pin::pin!(Delay::from(Duration::from_millis(request.timeout_ms)));
        let mut response = match select(send, timeout).await {
            Either::Left((Ok(response), _)) => response,
            Either::Left((Err(e), _)) => return Err(UpstreamFailure::Unreachable(e.to_string())),
            Either::Right(_) => {
                controller.abort();
                return Err(UpstreamFailure::TimedOut);
            }
        };
        let headers = response.headers().entries().collect();
        Ok(UpstreamAnswer { status: response.status_code(), headers, body: UpstreamBody(response.stream().ok()) })
    }
}

fn build(request: &UpstreamRequest<'_>) -> Result<Request, UpstreamFailure> {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        headers.append(name, value).map_err(unbuildable)?;
    }
    let mut init = RequestInit::new();
    let method = if request.method == "GET" { Method::Get } else { Method::Post };
    init.with_method(method).with_headers(headers);
    if !request.body.is_empty() {
        init.with_body(Some(worker::js_sys::Uint8Array::from(request.body).into()));
    }
    Request::new_with_init(&request.url, &init).map_err(unbuildable)
}

fn unbuildable(e: worker::Error) -> UpstreamFailure {
    worker::console_error!("building the upstream request: {e}");
    UpstreamFailure::Unbuildable
}

/// An upstream answer's body; an answer without one (204, 304) is an empty body.
pub struct UpstreamBody(Option<ByteStream>);

impl Stream for UpstreamBody {
    type Item = worker::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.as_mut() {
            Some(stream) => Pin::new(stream).poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}
