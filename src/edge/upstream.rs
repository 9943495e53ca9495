//! Forwarding a checked call to its routing group's targets, in order.
//!
//! For each target: the body (model renamed by the target's `model_map`, usage requested on
//! OpenAI streams), the client's forwardable headers plus the target's credential in the
//! family's header, the query without any `key` parameter. A connect error, a timeout, a 5xx or
//! a 429 moves on to the next target; the last target's answer is final. Errors are tagged by
//! source: unreachable → 502, timed out → 504, upstream 5xx → 502 (the caller maps it).

use crate::error::{ApiError, ErrorType};
use crate::gateway::forwarding::{credential_header, forwarded_query, forwarded_request_header};
use crate::gateway::request::{forward_body, RequestFacts};
use crate::gateway::route::Route;
use crate::policy::Target;
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Env, Fetch, Headers, Method, Request, RequestInit, Response};

pub struct Call<'a> {
    pub route: &'a Route,
    pub facts: &'a RequestFacts,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
    pub client_headers: &'a Headers,
    pub timeout_ms: u64,
}

/// The first acceptable answer from `targets` (see the module doc), or the error of the last.
pub async fn forward(env: &Env, call: &Call<'_>, targets: &[&Target]) -> Result<Response, ApiError> {
    let mut last_error = None;
    for (index, target) in targets.iter().enumerate() {
        let is_last = index + 1 == targets.len();
        match attempt(env, call, target).await {
            Ok(response) if is_last || !retryable(response.status_code()) => return Ok(response),
            Ok(response) => {
                worker::console_warn!(
                    "upstream {} answered {}; trying the next target",
                    target.base_url,
                    response.status_code()
                )
            }
            Err(error) => {
                worker::console_warn!("upstream {}: {}", target.base_url, error.message);
                last_error = Some(error);
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| ApiError::internal("no_target", "The routing group has no target for this API family.")))
}

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

async fn attempt(env: &Env, call: &Call<'_>, target: &Target) -> Result<Response, ApiError> {
    let upstream_model = call.facts.model.as_deref().map(|model| target.upstream_model(model));
    let body = forward_body(call.route, call.facts, call.body, upstream_model)?;
    let path = upstream_model.map_or(call.route.upstream_path.as_str().into(), |m| call.route.upstream_path_for(m));
    let mut url = target.url_for(&path);
    if let Some(query) = forwarded_query(call.query) {
        url.push('?');
        url.push_str(&query);
    }

    let secret = env.secret(&target.credential_secret).map(|s| s.to_string()).map_err(|_| {
        worker::console_error!("secret {} is not set", target.credential_secret);
        ApiError::internal(
            "upstream_credential_missing",
            format!(
                "The gateway has no credential for this upstream (secret '{}' is not set).",
                target.credential_secret
            ),
        )
    })?;
    let headers = Headers::new();
    for (name, value) in call.client_headers.entries() {
        if let Some(value) = forwarded_request_header(&name, &value) {
            headers.append(&name, &value).map_err(internal)?;
        }
    }
    let (name, value) = credential_header(target.family, &secret);
    headers.set(name, &value).map_err(internal)?;

    let controller = AbortController::default();
    let mut init = RequestInit::new();
    init.with_method(method(call.route)).with_headers(headers);
    if !body.is_empty() {
        init.with_body(Some(worker::js_sys::Uint8Array::from(&body[..]).into()));
    }
    let request = Request::new_with_init(&url, &init).map_err(internal)?;
    let fetch = Fetch::Request(request);
    let signal = controller.signal();
    let send = std::pin::pin!(fetch.send_with_signal(&signal));
    let timeout = std::pin::pin!(Delay::from(Duration::from_millis(call.timeout_ms)));
    match select(send, timeout).await {
        Either::Left((Ok(response), _)) => Ok(response),
        Either::Left((Err(e), _)) => Err(ApiError::new(
            502,
            ErrorType::UpstreamError,
            "upstream_unreachable",
            format!("The upstream could not be reached: {e}"),
        )),
        Either::Right(_) => {
            controller.abort();
            Err(ApiError::new(
                504,
                ErrorType::UpstreamError,
                "upstream_timeout",
                format!("The upstream did not answer within {} ms.", call.timeout_ms),
            ))
        }
    }
}

fn method(route: &Route) -> Method {
    match route.endpoint.method() {
        "GET" => Method::Get,
        _ => Method::Post,
    }
}

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("building the upstream request: {e}");
    ApiError::internal("internal_error", "The gateway failed to build the upstream request.")
}
