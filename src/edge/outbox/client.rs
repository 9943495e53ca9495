//! Calls into the outbox from the rest of the worker.

use crate::admin::input::{admin_body_too_large, MAX_ADMIN_BODY_BYTES};
use crate::edge::body::{read_capped, BodyLease};
use crate::edge::objects::stub;
use crate::edge::respond::error_response;
use crate::events::{webhook_route, Batch, Event};
use crate::naming::outbox_object;
use crate::platform::org_id::jurisdiction_of;
use worker::{Env, Method, Request, RequestInit, Response, Result, Stub};

/// Organisation `org_id`'s outbox object, in its jurisdiction.
fn outbox(env: &Env, org_id: &str) -> Result<Stub> {
    stub(env, "OUTBOX", &outbox_object(org_id), jurisdiction_of(org_id), None)
}

/// Hands `events` to the outbox; `Ok` once it has stored them (events it already has are
/// ignored, so a retried hand-off is harmless). A caller that must not lose events on an error
/// keeps them and retries, as [`super::PendingEvents`] does.
pub async fn enqueue(env: &Env, org_id: &str, events: &[Event]) -> Result<()> {
    let body = serde_json::to_string(&Batch { events }).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response =
        outbox(env, org_id)?.fetch_with_request(Request::new_with_init("https://outbox/enqueue", &init)?).await?;
    match response.status_code() {
        200 => Ok(()),
        status => Err(worker::Error::RustError(format!(
            "outbox answered {status}: {}",
            response.text().await.unwrap_or_default()
        ))),
    }
}

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
