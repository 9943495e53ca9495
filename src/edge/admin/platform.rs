//! `Platform`, the Durable Object holding the directory of organisations (one instance,
//! [`PLATFORM_OBJECT`], SQLite), and the worker's forwarding of operator calls to it. What it
//! answers and why is [`crate::platform`]; this is the adapter.
//!
//! Flow of an operator call: the worker checks the bearer is `ADMIN_TOKEN`'s (401 otherwise,
//! the body unread) → reads the body with its cap → forwards to the object → the object runs
//! [`api::Platform::serve`] with the clock, randomness and [`RegistryStubs`], which sends each
//! order to the organisation's registry, addressed in its jurisdiction with its location hint.

use super::registry::respond;
use super::{unavailable, ORG_HEADER};
use crate::admin::api::step::Answer;
use crate::admin::api::{bearer, is_operator, Call};
use crate::admin::input::{admin_body_too_large, MAX_ADMIN_BODY_BYTES};
use crate::admin::session::Credential;
use crate::edge::body::{read_capped, BodyLease};
use crate::edge::objects::stub;
use crate::edge::respond::{error_response, internal, logged};
use crate::edge::sql::ObjectSql;
use crate::error::{ApiError, Code};
use crate::naming::PLATFORM_OBJECT;
use crate::platform::api::{self, Registries};
use crate::platform::directory::OrgEntry;
use crate::platform::order::{Order, ORDER_PATH};
use crate::platform::store::PlatformStore;
use serde_json::Value;
use worker::{durable_object, Date, DurableObject, Env, Headers, Method, Request, RequestInit, Response, State, Url};

#[durable_object]
pub struct Platform {
    env: Env,
    platform: api::Platform,
}

impl DurableObject for Platform {
    fn new(state: State, env: Env) -> Self {
        let store = PlatformStore::open(ObjectSql::boxed(state.storage().sql(), "platform"))
            .expect("create the platform table");
        Platform { env, platform: api::Platform::new(store) }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        match self.serve(req).await {
            Ok(answer) => respond(answer),
            Err(error) => error_response(&error),
        }
    }
}

impl Platform {
    async fn serve(&self, mut req: Request) -> Result<Answer, ApiError> {
        let url = req.url().map_err(|e| internal("platform", e))?;
        let method = req.method();
        let authorization = req.headers().get("authorization").ok().flatten();
        let credential = Credential::parse(authorization.as_deref())?;
        let body = match method {
            Method::Get | Method::Delete => Vec::new(),
            _ => req
                .bytes()
                .await
                .map_err(|_| ApiError::new(Code::InvalidBody, "The request body could not be read."))?,
        };
        let admin_token = admin_token(&self.env);
        let call = Call {
            method: method.as_ref(),
            path: url.path(),
            query: url.query(),
            credential,
            body: &body,
            idempotency_key: None,
            org: "",
        };
        let registries = RegistryStubs { env: &self.env, admin_token: admin_token.as_deref().unwrap_or_default() };
        let mut random = |bytes: &mut [u8]| getrandom::fill(bytes).expect("the platform's random number generator");
        self.platform.serve(&call, admin_token.as_deref(), &registries, Date::now().as_millis(), &mut random).await
    }
}

pub(super) fn admin_token(env: &Env) -> Option<String> {
    env.secret("ADMIN_TOKEN").map(|s| s.to_string()).ok()
}

/// Forwards an operator call to the platform object: with a bearer token once it is
/// `ADMIN_TOKEN`'s (401 otherwise, the body unread), or with the operator's session, which the
/// worker has checked with the platform already.
pub async fn forward(
    mut req: Request,
    env: &Env,
    url: &Url,
    credential: Option<Credential<'_>>,
) -> Result<Response, ApiError> {
    match credential {
        Some(Credential::Session(_)) => {}
        credential => {
            let header = credential.and_then(|credential| credential.header());
            let token = bearer(header.as_deref())?;
            if !is_operator(token, admin_token(env).as_deref()) {
                return Err(ApiError::new(Code::InvalidAdminToken, "Unknown admin token."));
            }
        }
    }
    let method = req.method();
    let body = match method {
        Method::Get | Method::Delete => None,
        _ => Some(read_capped(&mut req, MAX_ADMIN_BODY_BYTES, admin_body_too_large, &BodyLease::default()).await?),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    ask(env, method, &path, credential, body).await
}

/// The platform object's answer to `method path` on behalf of `credential`.
pub async fn ask(
    env: &Env,
    method: Method,
    path: &str,
    credential: Option<Credential<'_>>,
    body: Option<Vec<u8>>,
) -> Result<Response, ApiError> {
    let headers = Headers::new();
    if let Some(header) = credential.and_then(|credential| credential.header()) {
        headers.set("authorization", &header).map_err(|e| internal("admin", e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(worker::js_sys::Uint8Array::from(&body[..]).into()));
    }
    let request =
        Request::new_with_init(&format!("https://platform{path}"), &init).map_err(|e| internal("admin", e))?;
    let platform = stub(env, "PLATFORM", PLATFORM_OBJECT, None, None).map_err(unavailable)?;
    platform.fetch_with_request(request).await.map_err(unavailable)
}

/// The organisations' registries, as the platform object reaches them.
struct RegistryStubs<'a> {
    env: &'a Env,
    admin_token: &'a str,
}

impl Registries for RegistryStubs<'_> {
    async fn order(&self, org: &OrgEntry, order: &Order) -> Result<Answer, ApiError> {
        let registry = stub(self.env, "REGISTRY", &org.registry, org.jurisdiction, org.location_hint.as_deref())
            .map_err(unavailable)?;
        let headers = Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| internal("platform", e));
        set("authorization", &format!("Bearer {}", self.admin_token))?;
        set(ORG_HEADER, &org.id)?;
        let mut init = RequestInit::new();
        let body = serde_json::to_string(order).expect("orders serialize");
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
        let request = Request::new_with_init(&format!("https://registry{ORDER_PATH}"), &init)
            .map_err(|e| internal("platform", e))?;
        let mut response = registry.fetch_with_request(request).await.map_err(unavailable)?;
        let status = response.status_code();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(Answer { status, body, propagation_pending: false, replayed: false });
        }
        serde_json::from_value::<ApiError>(body["error"].clone())
            .map_err(|e| logged(unavailable_error(), "registry answered an unreadable refusal", e))
            .and_then(Err)
    }
}

fn unavailable_error() -> ApiError {
    ApiError::new(Code::RegistryUnavailable, "The admin registry cannot be reached; retry shortly.")
}
