//! The data plane's Durable Objects and how any object of the worker is addressed.
//!
//! Classes: [`key_ledger::KeyLedger`] (one key's counters, leasing from the budgets above the key)
//! and [`budget_ledger::BudgetLedger`] (one project's or organisation's budget); their stubs:
//! [`key_ledger_stub`], [`budget_stub`]. The control plane's objects live with their adapters:
//! `edge::admin` (`Registry`, `Platform`, `SignInGuard`) and `edge::outbox` (`Outbox`).
//!
//! Addressing ([`stub`]): by name, in a jurisdiction and with a location hint.
//!
//! workers-rs 0.8.7 has no wrapper for `namespace.jurisdiction(name)` (a namespace whose ids are
//! all created in that jurisdiction), so it is called through `js_sys::Reflect` on the
//! namespace's JS object. The same name gives another object inside a jurisdiction than outside
//! one, which is why an organisation's id carries its jurisdiction
//! ([`crate::platform::org_id`]). A location hint matters only when the object is first created.
//!
//! workerd (`wrangler dev`, Miniflare) does not implement jurisdictions: it throws. There, and
//! only there, the var `IGNORE_JURISDICTIONS=true` addresses objects without their jurisdiction
//! (`make dev` and the end-to-end tests set it). Anywhere else a jurisdiction that cannot be
//! applied is an error, never silently dropped.

#[cfg(feature = "ledger-objects")]
pub mod budget_ledger;
#[cfg(feature = "ledger-objects")]
pub mod budget_stub;
#[cfg(feature = "ledger-objects")]
pub mod key_ledger;
pub mod key_ledger_stub;

use crate::policy::Jurisdiction;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Function, Reflect};
use worker::{Env, ObjectNamespace, Stub};

/// The stub of the object `name` of namespace `binding`, in `jurisdiction` if any.
pub fn stub(
    env: &Env,
    binding: &str,
    name: &str,
    jurisdiction: Option<Jurisdiction>,
    location_hint: Option<&str>,
) -> worker::Result<Stub> {
    let namespace = env.durable_object(binding)?;
    let ignored = env.var("IGNORE_JURISDICTIONS").is_ok_and(|v| v.to_string() == "true");
    let namespace = match jurisdiction {
        Some(jurisdiction) if !ignored => in_jurisdiction(&namespace, jurisdiction)?,
        _ => namespace,
    };
    let id = namespace.id_from_name(name)?;
    match location_hint {
        Some(hint) => id.get_stub_with_location_hint(hint),
        None => id.get_stub(),
    }
}

/// `namespace.jurisdiction(name)`.
fn in_jurisdiction(namespace: &ObjectNamespace, jurisdiction: Jurisdiction) -> worker::Result<ObjectNamespace> {
    let object: &JsValue = namespace.as_ref();
    let method: Function = Reflect::get(object, &JsValue::from_str("jurisdiction"))?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("the namespace has no jurisdiction()".to_owned()))?;
    let scoped = method.call1(object, &JsValue::from_str(jurisdiction.as_str()))?;
    Ok(ObjectNamespace::unchecked_from_js(scoped))
}
