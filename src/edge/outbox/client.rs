//! Calls into the outbox from the rest of the worker.

use crate::edge::objects::stub;
use crate::events::{Batch, Event};
use crate::naming::outbox_object;
use crate::platform::org_id::jurisdiction_of;
use worker::{Env, Method, Request, RequestInit, Result, Stub};

/// Organisation `org_id`'s outbox object, in its jurisdiction.
pub(super) fn outbox(env: &Env, org_id: &str) -> Result<Stub> {
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
