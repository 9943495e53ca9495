//! The platform's orders to a registry ([`Order`]), each applied in one step with its audit
//! entry (actor `operator`) and the work it leaves:
//! - `open`: the registry becomes the organisation's, its first Admin is created (the answer
//!   carries the token, once), its KV record is projected;
//! - `suspend` / `resume`: the status changes, the record is re-projected, and every live key's
//!   ledger object is told ([`Control::Suspend`] / [`Control::Resume`]) through the key's
//!   ledger lane, so each refuses at once when told;
//! - `settings`: whether the platform's routing serves it; the record is re-projected;
//! - `pricing`: the operator's price overrides; audited before and after, the record
//!   re-projected (the request path prices with it from then on);
//! - `reseal_credentials`: the master-key rotation's job ([`super::org::reseal_credentials`]);
//! - `delete`: every live key is deleted (its KV records removed, its ledger object told), the
//!   record is removed, then the registry's tables are emptied ([`Work::Purge`]).

use super::directory::create_principal;
use super::org::{reseal_credentials, save};
use super::step::{internal, Answer, Step};
use crate::admin::audit::Change;
use crate::admin::key::Key;
use crate::admin::lifecycle::Status;
use crate::admin::work::Work;
use crate::error::ApiError;
use crate::ledger::revocation::Control;
use crate::platform::order::Order;
use crate::policy::OrgStatus;
use serde_json::json;

/// Applies `order` in `step`, whose organisation is the one the order concerns (for `open`,
/// the one it opens; the step's body then is the first Admin's `{"name","role"}`).
pub fn apply(step: &Step, order: Order) -> Result<Answer, ApiError> {
    let before = step.org.summary();
    let mut state = step.org.clone();
    let (action, control) = match order {
        Order::Open { .. } => {
            step.store.set_org_state(&state)?;
            step.audit(Change::new("orgs.open", "org", &state.id, None, Some(&before)))?;
            step.work([Work::ProjectOrg])?;
            return create_principal(step);
        }
        Order::Suspend => {
            state.status = OrgStatus::Suspended;
            ("orgs.suspend", Some(Control::Suspend))
        }
        Order::Resume => {
            state.status = OrgStatus::Active;
            ("orgs.resume", Some(Control::Resume))
        }
        Order::Settings { platform_routing } => {
            state.platform_routing = platform_routing;
            ("orgs.settings", None)
        }
        Order::Pricing { pricing } => {
            step.audit(Change::new(
                "orgs.pricing",
                "org_pricing",
                &state.id,
                state.pricing.as_ref(),
                pricing.as_ref(),
            ))?;
            state.pricing = pricing;
            save(step, &state)?;
            return Ok(Answer::ok(&json!({ "pricing": state.pricing })));
        }
        Order::ResealCredentials => return reseal_credentials(step),
        Order::Delete => {
            state.deleted = true;
            ("orgs.delete", Some(Control::Delete))
        }
    };
    step.store.set_org_state(&state)?;
    step.audit(Change::new(action, "org", &state.id, Some(&before), Some(&state.summary())))?;
    let told = match &control {
        Some(control) => step.store.live_key_ids()?.into_iter().map(|id| (id, control.clone())).collect(),
        None => Vec::new(),
    };
    for (key_id, control) in told {
        step.work([Work::Control { key_id: key_id.clone(), control }])?;
        if state.deleted {
            let key = step.store.key(&key_id)?.ok_or_else(internal)?;
            step.store.put_key(&Key { status: Status::Deleted, ..key })?;
            step.work([Work::Project { key_id }])?;
        }
    }
    step.work([Work::ProjectOrg])?;
    if state.deleted {
        step.work([Work::Purge])?;
    }
    Ok(Answer::ok(&state.summary()))
}

/// The body a registry being opened runs its first Admin's creation with.
pub fn first_admin_body(admin_name: &str) -> Vec<u8> {
    json!({ "name": admin_name, "role": "admin" }).to_string().into_bytes()
}
