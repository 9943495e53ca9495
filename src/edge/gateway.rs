//! The request path's edge: converts a `worker::Request` into the core's [`ClientRequest`],
//! runs [`Gateway::call`] over the platform's adapters (KV, the key ledgers' stubs, fetch, the
//! request's abort signal, `ctx.wait_until`) and converts its [`Answer`] into a
//! `worker::Response`. Every decision is the core's (`crate::gateway::call`). `/console/…` goes to
//! the console's assets (`super::console`), `/admin/…` to the admin API (`super::admin`); a
//! data-plane build (without the `control-plane` feature) has neither, and refuses those paths
//! like any unknown route.

use super::body::{read_capped, BodyLease};
use super::config::Config;
use super::key_store::KvKeyStore;
use super::objects::key_ledger_stub::KeyLedgerStubs;
use super::respond::{error_response, internal};
use super::upstream::{FetchUpstream, UpstreamBody};
use crate::error::{ApiError, Code};
use crate::gateway::call::Gateway;
use crate::gateway::exchange::{Answer, AnswerBody, ClientRequest};
use crate::gateway::isolate::Isolate;
use crate::gateway::ports::{RequestBody, Runtime};
use crate::gateway::request::body_too_large;
use std::future::Future;
use std::rc::Rc;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Context, Date, Env, Headers, Request, Response};

thread_local! {
    /// What this isolate keeps between calls: held refusals, memoized records.
    static ISOLATE: Rc<Isolate> = Rc::new(Isolate::new(isolate_id()));
}

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Result<Response, ApiError> {
    let url = req.url().map_err(|_| ApiError::new(Code::InvalidUrl, "The request URL cannot be parsed."))?;
    #[cfg(feature = "control-plane")]
    {
        if let Some(answer) = super::console::handle(&req, env, &url).await {
            return answer;
        }
        if crate::admin::route::is_admin_path(url.path()) {
            return super::admin::handle(req, env).await;
        }
    }
    let now_ms = Date::now().as_millis();
    let config = Config::get(env)?;
    let isolate = ISOLATE.with(Rc::clone);
    let gateway = Gateway {
        keys: &KvKeyStore(env),
        ledgers: &KeyLedgerStubs(env),
        upstream: &FetchUpstream { env, idle_timeout_ms: config.upstream_idle_timeout_ms },
        runtime: &EdgeRuntime(ctx),
        routing: &config.routing,
        keyring: config.keyring.as_ref(),
        pricing: &config.pricing,
        upstream_timeout_ms: config.upstream_timeout_ms,
        unknown_members: config.unknown_members,
        isolate: &isolate,
    };
    let client_gone = client_gone(&req);
    let lease = BodyLease::default();
    let request = ClientRequest {
        method: req.method().as_ref().to_owned(),
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        headers: req.headers().entries().collect(),
        body: ClientBody(req, &lease),
    };
    response(gateway.call(request, client_gone, now_ms).await?)
}

fn response(answer: Answer<UpstreamBody>) -> Result<Response, ApiError> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.append(name, value).map_err(|e| internal("gateway", e))?;
    }
    // A status that may not carry a body (an upstream's 204, 205 or 304) is answered without
    // one: the runtime refuses to build such a response with a body, and the conversion would
    // panic. A streamed body left unread is dropped, which settles the call as cut short.
    let response = match answer.body {
        _ if matches!(answer.status, 204 | 205 | 304) => Response::empty(),
        AnswerBody::Bytes(bytes) => Response::from_bytes(bytes),
        AnswerBody::Streamed(body) => Response::from_stream(body),
    };
    Ok(response.map_err(|e| internal("gateway", e))?.with_status(answer.status).with_headers(headers))
}

/// The client's body, read with the gateway's cap and charged to the call's lease.
struct ClientBody<'a>(Request, &'a BodyLease);

impl RequestBody for ClientBody<'_> {
    async fn read(mut self, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        read_capped(&mut self.0, max_bytes, body_too_large, self.1).await
    }
}

/// Background tasks in `ctx.wait_until`, log lines on the console.
struct EdgeRuntime<'a>(&'a Context);

impl Runtime for EdgeRuntime<'_> {
    fn wait_until(&self, task: impl Future<Output = ()> + 'static) {
        self.0.wait_until(task);
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = u64> + 'static {
        async move {
            worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            Date::now().as_millis()
        }
    }

    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }

    fn warn(&self, line: &str) {
        worker::console_warn!("{line}");
    }

    fn error(&self, line: &str) {
        worker::console_error!("{line}");
    }
}

/// Resolves when the client disconnects (never, where the runtime gives requests no signal).
/// Nothing is registered with the signal until the settlement task first waits on it, so a
/// call refused before admission costs nothing here.
fn client_gone(request: &Request) -> impl Future<Output = ()> + 'static {
    let signal = request.inner().signal();
    async move {
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            if signal.aborted() {
                let _ = resolve.call0(&JsValue::NULL);
            } else {
                signal.set_onabort(Some(&resolve));
            }
        });
        let _ = JsFuture::from(promise).await;
    }
}

/// A random name for this isolate (16 hex digits): a restarted isolate is a new lease holder.
fn isolate_id() -> String {
    let mut bytes = [0u8; 8];
    // Two isolates sharing a name would close each other's leases: no name without randomness.
    getrandom::fill(&mut bytes).expect("the platform's random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Errors answered as their envelope.
pub fn answer(result: Result<Response, ApiError>) -> worker::Result<Response> {
    result.or_else(|error| error_response(&error))
}
