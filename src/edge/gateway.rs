//! The request path, top to bottom: route → key → KV record → checks → ledger admission →
//! upstream → streamed answer, settled in the background. Every decision is made by the pure
//! core; this file only moves bytes between it and the platform. `/admin/…` goes to the admin
//! API (`super::admin`).

use super::body::read_capped;
use super::config::Config;
use super::held_refusals::{self, Held};
use super::ledger_client::LedgerClient;
use super::metered_body::MeteredBody;
use super::respond::error_response;
use super::settlement::{self, Ending, Meter, SharedMeter};
use super::upstream::{forward, Call};
use crate::admin::route::is_admin_path;
use crate::error::ApiError;
use crate::gateway::forwarding::forwards_response_header;
use crate::gateway::headers::limit_headers;
use crate::gateway::metering::Metering;
use crate::gateway::models_list::filter_models_list;
use crate::gateway::request::{body_too_large, inspect, MAX_BODY_BYTES};
use crate::gateway::route::{classify, Endpoint, Route};
use crate::ledger::{Command, Reply};
use crate::policy::key_hash::record_name;
use crate::policy::{authorize, extract_key, visible_models, CallFacts, KeyPolicy};
use crate::usage::{BodyKind, UsageScanner};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Context, Date, Env, Headers, Request, Response};

/// How long an edge location may serve a key record from its cache: 30 s, KV's minimum. A change
/// to a key's model rules, IP allowlist, routing groups or expiry reaches every edge within this
/// plus KV's own propagation (up to ~60 s). Revocation and limits do not wait for it: the key's
/// ledger object refuses revoked secrets and enforces the control plane's pushed limits at once.
const KEY_RECORD_CACHE_TTL_S: u64 = 30;

pub async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, ApiError> {
    let url = req.url().map_err(|_| ApiError::bad_request("invalid_url", "The request URL cannot be parsed."))?;
    if is_admin_path(url.path()) {
        return super::admin::handle(req, env).await;
    }
    let now_ms = Date::now().as_millis();
    let config = Config::get(env)?;
    let route = classify(req.method().as_ref(), url.path())?;

    let policy = authenticate(&req, env, &route).await?;
    let record = policy.record();
    let body = read_body(&mut req, &route).await?;
    let mut facts = inspect(&route, &body)?;
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten();
    let call_facts = CallFacts::new(&route, &facts, client_ip.as_deref());
    let resolved = authorize(&policy, &call_facts, &config.routing, now_ms)?;
    let price = facts.model.as_deref().and_then(|model| config.pricing.price(model)).copied();
    let metering = Metering::reserve(&route, &mut facts, &record.limits, price, config.unknown_members)?;

    if let Some(held) = held_refusals::held(&record.id, now_ms) {
        return refused(held.status, held.retry_after_s, held.body);
    }
    let ledger = LedgerClient::for_key(env, &record.id)?;
    let admit =
        Command::Admit { secret_version: record.secret_version, limits: record.limits.clone(), ask: metering.ask };
    let (reservation_id, headroom) = match ledger.call(&admit).await? {
        Reply::Admitted { reservation_id, headroom } => (reservation_id, headroom),
        Reply::Refused { status, retry_after_s, body, hold_until_ms } => {
            if let Some(until_ms) = hold_until_ms {
                let held = Held { until_ms, status, retry_after_s, body: body.clone() };
                held_refusals::hold(&record.id, held, now_ms);
            }
            return refused(status, retry_after_s, body);
        }
        Reply::Done | Reply::Report { .. } => {
            return Err(ApiError::unavailable("ledger_unavailable", "The ledger gave no admission."))
        }
    };

    let limits = record.limits.clone();
    let meter: SharedMeter = Rc::new(RefCell::new(None));
    let (mut settlement, settle) =
        settlement::open(ledger, &req, meter.clone(), move |ending| match metering.settle(ending) {
            Some(actual) => Command::Settle { reservation_id, limits, actual, usage: ending.usage() },
            None => Command::Release { reservation_id },
        });
    ctx.wait_until(settle);

    let call = Call {
        route: &route,
        facts: &facts,
        body: &body,
        query: url.query(),
        client_headers: req.headers(),
        timeout_ms: config.upstream_timeout_ms,
    };
    // Any early return from here drops `settlement`, which releases the reservation — unless
    // the handler is dropped while the upstream has the call (the client left): then the call
    // is charged its reservation, as the upstream bills it.
    settlement.upstream_working(true);
    let forwarded = forward(env, &call, &resolved.targets).await;
    settlement.upstream_working(false);
    let mut upstream = forwarded?;
    let status = upstream.status_code();
    let headers = response_headers(upstream.headers(), &limit_headers(&headroom, now_ms))?;
    if status >= 500 || status == 401 || status == 403 {
        return Err(upstream_failed(status));
    }

    if matches!(route.endpoint, Endpoint::ModelsList) && status == 200 {
        let body = upstream.bytes().await.map_err(|_| upstream_failed(status))?;
        let visible = |name: &str| visible_models(&policy, &config.routing, route.family, [name]).next().is_some();
        let filtered = filter_models_list(route.family, &body, visible).ok_or_else(|| upstream_failed(status))?;
        settlement.end(Ending::Answered { status, usage: None });
        return Ok(Response::from_bytes(filtered).map_err(internal)?.with_headers(headers));
    }

    let content_type = upstream.headers().get("content-type").ok().flatten().unwrap_or_default();
    let strip = facts.stream && !facts.include_usage_requested;
    let scanner = UsageScanner::new(route.family, BodyKind::from_content_type(&content_type), strip);
    *meter.borrow_mut() = Some(Meter { status, scanner });
    let metered = MeteredBody::new(upstream.stream().map_err(internal)?, meter, settlement);
    Ok(Response::from_stream(metered).map_err(internal)?.with_status(status).with_headers(headers))
}

/// The key's validated policy, from the KV record named by the key's hash.
async fn authenticate(req: &Request, env: &Env, route: &Route) -> Result<KeyPolicy, ApiError> {
    let headers = req.headers();
    let values: [(&str, Option<String>); 3] =
        ["authorization", "x-api-key", "x-goog-api-key"].map(|name| (name, headers.get(name).ok().flatten()));
    let header = |name: &str| values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_deref());
    let key = extract_key(route.family, header).ok_or_else(|| {
        ApiError::unauthenticated(
            "invalid_api_key",
            "No API key provided. Send your team key as 'Authorization: Bearer <key>' (or x-api-key on /anthropic, x-goog-api-key on /gemini).",
        )
    })?;
    let kv = env.kv("KEYS").map_err(|_| store_unavailable())?;
    let record = kv
        .get(&record_name(key))
        .cache_ttl(KEY_RECORD_CACHE_TTL_S)
        .bytes()
        .await
        .map_err(|_| store_unavailable())?
        .ok_or_else(|| ApiError::unauthenticated("invalid_api_key", "Incorrect API key provided."))?;
    KeyPolicy::from_json(&record).map_err(|invalid| {
        worker::console_error!("key record {} is invalid: {invalid}", invalid.key_id);
        ApiError::from(invalid)
    })
}

/// The request body (none on GET routes), refused past [`MAX_BODY_BYTES`].
async fn read_body(req: &mut Request, route: &Route) -> Result<Vec<u8>, ApiError> {
    if route.endpoint.method() == "GET" {
        return Ok(Vec::new());
    }
    read_capped(req, MAX_BODY_BYTES, body_too_large).await
}

fn response_headers(upstream: &Headers, limits: &[(&'static str, String)]) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    for (name, value) in upstream.entries() {
        if forwards_response_header(&name) {
            headers.append(&name, &value).map_err(internal)?;
        }
    }
    for (name, value) in limits {
        headers.set(name, value).map_err(internal)?;
    }
    Ok(headers)
}

fn refused(status: u16, retry_after_s: Option<u64>, body: String) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers.set("content-type", "application/json").map_err(internal)?;
    if let Some(seconds) = retry_after_s {
        headers.set("retry-after", &seconds.to_string()).map_err(internal)?;
    }
    Ok(Response::from_bytes(body.into_bytes()).map_err(internal)?.with_status(status).with_headers(headers))
}

/// An upstream answer the client must not see as is: a 5xx, or a 401/403 about the gateway's
/// own upstream credential (its message may quote that credential, and the client's key is
/// not what is wrong).
fn upstream_failed(status: u16) -> ApiError {
    let message = match status {
        401 | 403 => format!(
            "The upstream refused the gateway's credential (status {status}); an operator must check the upstream credential. Nothing was charged."
        ),
        _ => format!("The upstream failed to answer (status {status}). Nothing was charged."),
    };
    ApiError::new(502, crate::error::ErrorType::UpstreamError, "upstream_error", message)
}

fn store_unavailable() -> ApiError {
    ApiError::unavailable("key_store_unavailable", "The key store cannot be reached; retry shortly.")
        .with_retry_after(1)
}

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("internal error: {e}");
    ApiError::internal("internal_error", "The gateway failed while answering.")
}

/// Errors answered as their envelope.
pub fn answer(result: Result<Response, ApiError>) -> worker::Result<Response> {
    result.or_else(|error| error_response(&error))
}
