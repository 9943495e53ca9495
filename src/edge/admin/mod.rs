//! The admin API at `/admin/v1` (see [`crate::admin`] for the rules it applies).
//!
//! Flow in the worker: [`handle`] names the endpoint → `openapi.json` is answered here (public,
//! it holds no data) → webhook routes: the registry says who the caller is, an Admin is passed
//! to the outbox ([`crate::edge::outbox::handle_admin`]), anyone else gets 403; a change the
//! outbox made is then reported to the registry's audit log → every other endpoint is forwarded
//! to the [`registry::Registry`] object, which answers it whole ([`crate::admin::api`]).
//!
//! No body is read before the registry has accepted the caller's token: a call with a body
//! first asks who the caller is (401 otherwise, the body unread), then reads the body with its
//! cap ([`super::body`]); the registry authenticates the forwarded call again.
//!
//! Organisations: operator routes (`/admin/v1/orgs…`) go to the `Platform` object
//! ([`platform`]) once the bearer is `ADMIN_TOKEN`'s; every other call goes to the registry
//! (and webhook routes to the outbox) of the organisation its token names
//! ([`org_of_token`]), addressed in that organisation's jurisdiction, with the organisation in
//! the [`ORG_HEADER`] header so the registry can refuse a call that is not for it.

mod platform;
mod ports;
mod registry;
mod sign_in;
mod sign_in_guard;
mod sso;

use super::body::{read_capped, BodyLease};
use crate::admin::api::{is_operator, WEBHOOK_CHANGED, WHOAMI};
use crate::admin::input::{admin_body_too_large, MAX_ADMIN_BODY_BYTES};
use crate::admin::membership::Standing;
use crate::admin::permission::{check, Action, Target};
use crate::admin::role::Principal;
use crate::admin::route::SESSIONS_PATH;
use crate::admin::route::{classify, Endpoint};
use crate::admin::session::request::{caller, clear_cookie, same_origin, Browser, Caller};
use crate::admin::session::store::expired as session_expired;
use crate::admin::session::{scope_of, Credential, CSRF_HEADER, OPERATOR_SCOPE};
use crate::admin::OPENAPI_JSON;
use crate::edge::objects::stub;
use crate::edge::respond::{internal, logged};
use crate::error::{ApiError, Code};
use crate::naming::registry_object;
use crate::naming::DEFAULT_ORG;
use crate::platform::org_id::{jurisdiction_of, org_of_token};

use crate::platform::route::is_operator_path;
use serde_json::{json, Value};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

/// Who-am-I, which the operator's session is checked with.
const CURRENT_SESSION_PATH: &str = "/admin/v1/sessions/current";

/// The header naming the organisation a call to a registry is for.
pub const ORG_HEADER: &str = "teamkeys-org";

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| internal("admin", e))?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (authorization, cookie, csrf) = (header("authorization"), header("cookie"), header(CSRF_HEADER));
    let (origin, fetch_site) = (header("origin"), header("sec-fetch-site"));
    let own_origin = url.origin().ascii_serialization();
    let method = req.method();
    let browser = Browser {
        method: method.as_ref(),
        authorization: authorization.as_deref(),
        cookie: cookie.as_deref(),
        csrf: csrf.as_deref(),
        origin: origin.as_deref(),
        fetch_site: fetch_site.as_deref(),
        own_origin: &own_origin,
    };
    if url.path() == SESSIONS_PATH && req.method() == Method::Post {
        same_origin(&browser)?;
        return sign_in::sign_in(req, env).await;
    }
    let admin_token = platform::admin_token(env);
    let (mut credential, by_cookie) = match caller(&browser)? {
        Caller::Bearer(token) => (Some(Credential::Token(token)), false),
        Caller::Session(id) => (Some(Credential::Session(id)), true),
        Caller::Anonymous => (None, false),
    };
    let operator = match credential {
        Some(Credential::Token(token)) => is_operator(token, admin_token.as_deref()),
        Some(Credential::Session(id)) => scope_of(id).ok_or_else(session_expired)? == OPERATOR_SCOPE,
        _ => false,
    };
    let session_path = url.path().starts_with(SESSIONS_PATH);
    if operator && by_cookie {
        // The operator's session is the platform's: checked there before anything else is read.
        let check = platform::ask(env, Method::Get, CURRENT_SESSION_PATH, credential, None).await?;
        if check.status_code() != 200 || (session_path && req.method() == Method::Get) {
            return Ok(check);
        }
    }
    if is_operator_path(url.path()) || (operator && session_path) {
        let answer = platform::forward(req, env, &url, credential).await?;
        return sign_out_clears_cookie(answer, by_cookie && session_path);
    }
    if operator && by_cookie {
        // Elsewhere the operator's session acts as `ADMIN_TOKEN`: the default organisation's
        // bootstrap Admin.
        credential = admin_token.as_deref().map(Credential::Token);
    }
    let authorization = credential.and_then(|credential| credential.header());
    let authorization = authorization.as_deref();
    let org = match credential {
        Some(Credential::Session(id)) => scope_of(id).unwrap_or(DEFAULT_ORG),
        Some(credential) => org_of_token(credential.token()),
        None => DEFAULT_ORG,
    }
    .to_owned();
    if session_path {
        let answer = ask(env, &org, req.method(), url.path(), authorization, None, None).await?;
        return sign_out_clears_cookie(answer, by_cookie);
    }
    match classify(req.method().as_ref(), url.path())? {
        Endpoint::OpenApi => {
            let headers = Headers::new();
            headers.set("content-type", "application/json").map_err(|e| internal("admin", e))?;
            Ok(Response::ok(OPENAPI_JSON).map_err(|e| internal("admin", e))?.with_headers(headers))
        }
        Endpoint::Webhooks => {
            let for_change = req.method() != Method::Get;
            let caller = match whoami(env, &org, authorization, for_change).await? {
                Ok(caller) => caller,
                Err(refusal) => return Ok(refusal),
            };
            check(&caller, Action::WebhooksManage, Standing::default(), Target::Org)?;
            let (method, path) = (req.method(), url.path().to_owned());
            let lease = BodyLease::default();
            let mut answer =
                crate::edge::outbox::handle_admin(req, env, &org, &lease).await.map_err(|e| internal("admin", e))?;
            if method != Method::Get && (200..300).contains(&answer.status_code()) {
                let body =
                    answer.cloned().map_err(|e| internal("admin", e))?.json::<Value>().await.unwrap_or(Value::Null);
                let changed = json!({ "method": method.to_string(), "path": path, "answer": body });
                let report = ask(
                    env,
                    &org,
                    Method::Post,
                    WEBHOOK_CHANGED,
                    authorization,
                    None,
                    Some(changed.to_string().into_bytes()),
                );
                match report.await {
                    Ok(response) if response.status_code() == 204 => {}
                    Ok(response) => {
                        worker::console_error!("audit of a webhook change refused: {}", response.status_code())
                    }
                    Err(e) => worker::console_error!("audit of a webhook change failed: {}", e.message),
                }
            }
            Ok(answer)
        }
        _ => {
            let lease = BodyLease::default();
            let body = match req.method() {
                Method::Get | Method::Delete => None,
                _ => {
                    if let Err(refusal) = whoami(env, &org, authorization, false).await? {
                        return Ok(refusal);
                    }
                    Some(read_capped(&mut req, MAX_ADMIN_BODY_BYTES, admin_body_too_large, &lease).await?)
                }
            };
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let idempotency_key = req.headers().get("idempotency-key").ok().flatten();
            ask(env, &org, req.method(), &path, authorization, idempotency_key.as_deref(), body).await
        }
    }
}

/// `answer` with a `Set-Cookie` that clears the session, if it is a sign-out's (204) made with
/// the cookie.
fn sign_out_clears_cookie(answer: Response, by_cookie: bool) -> Result<Response, ApiError> {
    if !(by_cookie && answer.status_code() == 204) {
        return Ok(answer);
    }
    let headers = Headers::new();
    headers.set("set-cookie", &clear_cookie()).map_err(|e| internal("admin", e))?;
    headers.set("cache-control", "no-store").map_err(|e| internal("admin", e))?;
    Ok(Response::empty().map_err(|e| internal("admin", e))?.with_status(204).with_headers(headers))
}

/// Organisation `org`'s registry's answer to `method path`, on behalf of the caller's
/// `Authorization`, with the caller's `Idempotency-Key`, if any.
pub(super) async fn ask(
    env: &Env,
    org: &str,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    idempotency_key: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Response, ApiError> {
    let headers = Headers::new();
    if let Some(authorization) = authorization {
        headers.set("authorization", authorization).map_err(|e| internal("admin", e))?;
    }
    if let Some(key) = idempotency_key {
        headers.set("idempotency-key", key).map_err(|e| internal("admin", e))?;
    }
    headers.set(ORG_HEADER, org).map_err(|e| internal("admin", e))?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(worker::js_sys::Uint8Array::from(&body[..]).into()));
    }
    let request =
        Request::new_with_init(&format!("https://registry{path}"), &init).map_err(|e| internal("admin", e))?;
    registry(env, org)?.fetch_with_request(request).await.map_err(unavailable)
}

/// Who the caller is, or the registry's refusal (401; 403 `organisation_suspended` when asked
/// `for_change` in a suspended organisation) to answer as is.
async fn whoami(
    env: &Env,
    org: &str,
    authorization: Option<&str>,
    for_change: bool,
) -> Result<Result<Principal, Response>, ApiError> {
    let method = if for_change { Method::Post } else { Method::Get };
    let mut response = ask(env, org, method, WHOAMI, authorization, None, None).await?;
    if response.status_code() != 200 {
        return Ok(Err(response));
    }
    Ok(Ok(response.json().await.map_err(unavailable)?))
}

/// Organisation `org`'s registry object, in its jurisdiction.
fn registry(env: &Env, org: &str) -> Result<Stub, ApiError> {
    stub(env, "REGISTRY", &registry_object(org), jurisdiction_of(org), None).map_err(unavailable)
}

pub(super) fn unavailable(e: worker::Error) -> ApiError {
    let answer = ApiError::new(Code::RegistryUnavailable, "The admin registry cannot be reached; retry shortly.");
    logged(answer.with_retry_after(1), "registry unreachable", e)
}
