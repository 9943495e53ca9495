//! Calls to a budget object (the [`BudgetLedger`](super::budget_ledger::BudgetLedger) Durable
//! Object of a project or the organisation), from a key's object (leases) and from the registry
//! (pushed limits). Addressed by name in the organisation's jurisdiction, with the budget's
//! location hint, which Cloudflare honours only when the object is first created
//! ([`crate::policy::LocationHint`]). Any failure is an error: the caller fails closed.

use super::stub;
use crate::budget::BudgetReply;
use crate::edge::js_body::read_reply;
use crate::edge::respond::logged;
use crate::error::ApiError;
use crate::ledger::budgets::BudgetCall;
use crate::ledger::lease_rounds::budget_unavailable;
use crate::policy::{Jurisdiction, LocationHint};
use worker::{Env, Method, Request, RequestInit};

/// Sends `call` to the budget object `object` and answers its reply.
pub async fn call_budget(
    env: &Env,
    object: &str,
    jurisdiction: Option<Jurisdiction>,
    location_hint: Option<LocationHint>,
    call: &BudgetCall,
) -> Result<BudgetReply, ApiError> {
    let failed = |e: worker::Error| logged(budget_unavailable(), "budget object unreachable", e);
    let stub = stub(env, "BUDGET", object, jurisdiction, location_hint.map(LocationHint::as_str)).map_err(failed)?;
    let body = serde_json::to_string(call).map_err(|e| failed(e.into()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request = Request::new_with_init("https://budget/", &init).map_err(failed)?;
    let response = stub.fetch_with_request(request).await.map_err(failed)?;
    let body = read_reply(&response).await;
    if response.status_code() != 200 {
        let text = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        return Err(failed(worker::Error::RustError(format!("status {}: {text}", response.status_code()))));
    }
    serde_json::from_slice(&body.map_err(failed)?).map_err(|e| failed(e.into()))
}
