//! The [`Upstream`] adapter: one built request sent with `fetch`, aborted after its timeout.
//! Which targets, in which order, and what each request carries are the core's decisions
//! ([`crate::gateway::fallback`]).
//!
//! An answer's body ([`UpstreamBody`]) has an idle timeout: when the upstream sends nothing for
//! `idle_timeout_ms` (`UPSTREAM_IDLE_TIMEOUT_MS`), the body ends with an error and its stream is
//! cancelled (the connection closed). The core's metered body then settles the call as a stream
//! cut short: usage not final, charged its reservation. One timer runs per body at a time; it is
//! re-armed for the rest of the idle span when chunks arrived meanwhile, not per chunk.

use super::js_body::JsBody;
use crate::gateway::ports::{Upstream, UpstreamAnswer, UpstreamFailure, UpstreamRequest};
use futures_util::future::{select, Either};
use futures_util::task::{waker, ArcWake, AtomicWaker};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use worker::{AbortController, Date, Delay, Env, Fetch, Headers, Method, Request, RequestInit, ResponseBody};

/// The upstreams, with their credentials from the worker's secrets.
pub struct FetchUpstream<'a> {
    pub env: &'a Env,
    /// How long an answer's body may send nothing before it is ended.
    pub idle_timeout_ms: u64,
}

impl Upstream for FetchUpstream<'_> {
    type Body = UpstreamBody;
    type BodyError = worker::Error;

    fn credential(&self, secret_name: &str) -> Option<String> {
        let secret = self.env.secret(secret_name).map(|s| s.to_string()).ok();
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
        let response = match select(send, timeout).await {
            Either::Left((Ok(response), _)) => response,
            Either::Left((Err(e), _)) => return Err(UpstreamFailure::Unreachable(e.to_string())),
            Either::Right(_) => {
                controller.abort();
                return Err(UpstreamFailure::TimedOut);
            }
        };
        let headers = response.headers().entries().collect();
        let stream = match response.body() {
            ResponseBody::Stream(stream) => JsBody::new(stream).ok(),
            ResponseBody::Empty | ResponseBody::Body(_) => None,
        };
        let body = UpstreamBody::new(stream, self.idle_timeout_ms);
        Ok(UpstreamAnswer { status: response.status_code(), headers, body })
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

/// An upstream answer's body; an answer without one (204, 304) is an empty body. Ends with an
/// error, its stream cancelled, once nothing arrived for `idle_timeout_ms`.
pub struct UpstreamBody {
    stream: Option<JsBody>,
    idle_timeout_ms: u64,
    /// When the answer's headers or its last chunk arrived.
    last_arrival_ms: u64,
    /// Fires at the end of the idle span as known when it was set.
    timer: Option<Pin<Box<Delay>>>,
    /// The waker the timer wakes: the latest poll's (a `Delay` keeps the waker of its first
    /// poll, and each read of the body may come from another task).
    wake_latest: Arc<WakeLatest>,
}

/// Wakes whichever waker registered last.
#[derive(Default)]
struct WakeLatest(AtomicWaker);

impl ArcWake for WakeLatest {
    fn wake_by_ref(this: &Arc<Self>) {
        this.0.wake();
    }
}

impl UpstreamBody {
    fn new(stream: Option<JsBody>, idle_timeout_ms: u64) -> Self {
        UpstreamBody {
            stream,
            idle_timeout_ms,
            last_arrival_ms: Date::now().as_millis(),
            timer: None,
            wake_latest: Arc::default(),
        }
    }

    /// Pending until the body has been idle for its timeout (the timer re-armed for what is left
    /// of the span whenever it fires early).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.wake_latest.0.register(cx.waker());
        let waker = waker(self.wake_latest.clone());
        let mut timer_cx = Context::from_waker(&waker);
        loop {
            let idle_ms = Date::now().as_millis().saturating_sub(self.last_arrival_ms);
            if idle_ms >= self.idle_timeout_ms {
                return Poll::Ready(());
            }
            let rest = Duration::from_millis(self.idle_timeout_ms - idle_ms);
            let timer = self.timer.get_or_insert_with(|| Box::pin(Delay::from(rest)));
            match timer.as_mut().poll(&mut timer_cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => self.timer = None,
            }
        }
    }
}

impl Stream for UpstreamBody {
    type Item = worker::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(stream) = this.stream.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(item) = Pin::new(stream).poll_next(cx) {
            this.last_arrival_ms = Date::now().as_millis();
            if item.is_none() {
                this.stream = None;
                this.timer = None;
            }
            return Poll::Ready(item);
        }
        match this.poll_idle(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                this.stream = None;
                worker::console_warn!("upstream body idle for {} ms: ended", this.idle_timeout_ms);
                Poll::Ready(Some(Err(worker::Error::RustError("the upstream stopped sending".into()))))
            }
        }
    }
}
