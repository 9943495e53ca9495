//! Sign-in at the worker (`POST /admin/v1/sessions`, see [`crate::admin::session`]): the body is
//! read (capped) → the client address's guard reserves a failed sign-in → the body names a token or, with the
//! `Cf-Access-Jwt-Assertion` header, an organisation → the platform (for `ADMIN_TOKEN`) or the
//! organisation's registry makes the session → on success the reservation is given back, the
//! session id goes into the cookie only, and the page gets the CSRF token and who-am-I.

use super::platform::{self, admin_token};
use super::sign_in_guard::Guard;
use super::{ask, unavailable};
use crate::admin::api::is_operator;
use crate::admin::input::{admin_body_too_large, parse, MAX_ADMIN_BODY_BYTES};
use crate::admin::route::SESSIONS_PATH;
use crate::admin::session::request::{set_cookie, SignIn};
use crate::admin::session::Credential;
use crate::edge::body::{read_capped, BodyLease};
use crate::edge::respond::internal;
use crate::error::ApiError;
use serde_json::Value;
use worker::{Env, Headers, Method, Request, Response};

/// The header Cloudflare Access adds to every request it lets through.
const ACCESS_HEADER: &str = "cf-access-jwt-assertion";

pub async fn sign_in(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    // The body (capped) is read first: a refusal answered before it would leave the client's
    // connection unusable.
    let body = read_capped(&mut req, MAX_ADMIN_BODY_BYTES, admin_body_too_large, &BodyLease::default()).await?;
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten();
    let guard = Guard::of(env, client_ip.as_deref())?;
    guard.reserve().await?;
    let sign_in: SignIn = parse(&body)?;
    let assertion = req.headers().get(ACCESS_HEADER).ok().flatten();
    let (credential, org) = sign_in.credential(assertion.as_deref())?;
    let mut answer = match credential {
        Credential::Token(token) if is_operator(token, admin_token(env).as_deref()) => {
            platform::ask(env, Method::Post, SESSIONS_PATH, Some(credential), Some(b"{}".to_vec())).await?
        }
        _ => {
            let header = credential.header();
            ask(env, org, Method::Post, SESSIONS_PATH, header.as_deref(), None, Some(b"{}".to_vec())).await?
        }
    };
    if answer.status_code() != 201 {
        return Ok(answer);
    }
    guard.release().await;
    let mut created: Value = answer.json().await.map_err(unavailable)?;
    let id = created.as_object_mut().and_then(|fields| fields.remove("session_id"));
    let id = id.as_ref().and_then(Value::as_str).ok_or_else(|| internal("sign-in", "no session id"))?;
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| internal("sign-in", e));
    set("content-type", "application/json")?;
    set("cache-control", "no-store")?;
    set("set-cookie", &set_cookie(id))?;
    let response = Response::from_bytes(created.to_string().into_bytes()).map_err(|e| internal("sign-in", e))?;
    Ok(response.with_status(201).with_headers(headers))
}
