//! The admin API's webhook routes, answered by the organisation's outbox (control plane only).

use super::client::outbox;
use crate::admin::input::{admin_body_too_large, MAX_ADMIN_BODY_BYTES};
use crate::edge::body::{read_capped, BodyLease};
use crate::edge::respond::error_response;
use crate::events::webhook_route;
use worker::{Env, Method, Request, RequestInit, Response, Result};

/// Answers, from organisation `org_id`'s outbox, the webhook routes of the admin API (`/admin/v1/webhooks…`, see
/// [`crate::events::WebhookRoute`]); the caller has already checked that the principal is an
/// Admin. Any other path is a 404 here. A body is read with the admin API's cap, charged to
/// `lease`.
pub async fn handle_admin(mut req: Request, env: &Env, org_id: &str, lease: &BodyLease) -> Result<Response> {
    let method = req.method();
    let path = req.path();
    if let Err(error) = webhook_route(method.as_ref(), &path) {
        return error_response(&error);
    }
    let mut init = RequestInit::new();
    init.with_method(method.clone());
    if method == Method::Post {
        let body = match read_capped(&mut req, MAX_ADMIN_BODY_BYTES, admin_body_too_large, lease).await {
            Ok(body) => body,
            Err(error) => return error_response(&error),
        };
        init.with_body(Some(worker::js_sys::Uint8Array::from(&body[..]).into()));
    }
    outbox(env, org_id)?.fetch_with_request(Request::new_with_init(&format!("https://outbox{path}"), &init)?).await
}
