//! The audit log endpoint (every change, newest first, for Admins) and the entries of webhook
//! endpoint changes, reported by the worker after the outbox made them.

use super::step::{Answer, Step};
use crate::admin::audit::webhook_change;
use crate::admin::input::parse;
use crate::admin::membership::Standing;
use crate::admin::permission::{check, Action, Target};
use crate::admin::query::Query;
use crate::error::ApiError;

pub fn list(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::AuditRead, Standing::default(), Target::Org)?;
    let query = Query::parse(step.query, &["limit", "cursor"])?;
    Ok(Answer::list(step.store.list_audit(query.page()?)?))
}

/// What the worker reports of a webhook endpoint change.
#[derive(serde::Deserialize)]
struct WebhookChanged {
    method: String,
    path: String,
    answer: serde_json::Value,
}

pub fn webhook_changed(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::WebhooksManage, Standing::default(), Target::Org)?;
    let changed: WebhookChanged = parse(step.body)?;
    step.audit(webhook_change(&changed.method, &changed.path, changed.answer))?;
    Ok(Answer::no_content())
}
