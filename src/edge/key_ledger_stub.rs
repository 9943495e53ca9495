//! Calls to a key's key ledger (the [`KeyLedger`](super::key_ledger::KeyLedger) Durable Object)
//! through its stub: the [`ports::KeyLedger`] adapter. Fail closed: a key ledger that cannot be
//! reached or answers nonsense is a 503, never an admission.
//!
//! The object is addressed by its [`LedgerAddress`]: its name, in its organisation's
//! jurisdiction when it has one (`env.LEDGER.jurisdiction("eu").idFromName(name)`, called
//! through `js_sys::Reflect`: workers-rs has no wrapper). Cloudflare creates an object in a
//! jurisdiction there and keeps it there; the same name in another jurisdiction is another
//! object, so a key's jurisdiction must never change (the control plane sets it at creation).
//! Locally, workerd (under Miniflare and `wrangler dev`) refuses the call ("Jurisdiction
//! restrictions are not implemented in workerd."): there alone the object is addressed without
//! a jurisdiction, with a warning, since a local run places nothing anywhere. Any other failure
//! fails closed (503).

use super::respond::logged;
use crate::error::ApiError;
use crate::gateway::call::ledger_unavailable;
use crate::gateway::ports::{self, LedgerAddress, Unreachable};
use crate::ledger::{Command, Reply};
use crate::policy::Jurisdiction;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, Env, Method, ObjectNamespace, Request, RequestInit, Stub};

pub struct KeyLedgerStub {
    stub: Stub,
}

impl KeyLedgerStub {
    /// The key ledger at `address`.
    pub fn at(env: &Env, address: &LedgerAddress) -> Result<KeyLedgerStub, ApiError> {
        let mut namespace = env.durable_object("LEDGER").map_err(unavailable)?;
        if let Some(jurisdiction) = address.jurisdiction {
            namespace = in_jurisdiction(&namespace, jurisdiction).map_err(unavailable)?;
        }
        let stub = namespace.id_from_name(&address.object).and_then(|id| id.get_stub()).map_err(unavailable)?;
        Ok(KeyLedgerStub { stub })
    }

    /// The key ledger behind `stub` (addressed by the caller, e.g. in a jurisdiction).
    pub fn from_stub(stub: Stub) -> KeyLedgerStub {
        KeyLedgerStub { stub }
    }

    pub async fn call(&self, command: &Command) -> Result<Reply, ApiError> {
        let body = serde_json::to_string(command).map_err(|e| unavailable(e.into()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://ledger/", &init).map_err(unavailable)?;
        let mut response = self.stub.fetch_with_request(request).await.map_err(unavailable)?;
        if response.status_code() != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(unavailable(worker::Error::RustError(format!("status {}: {text}", response.status_code()))));
        }
        response.json().await.map_err(unavailable)
    }
}

impl ports::KeyLedger for KeyLedgerStub {
    async fn send(&self, command: &Command) -> Result<Reply, Unreachable> {
        self.call(command).await.map_err(|_| Unreachable)
    }
}

/// The key ledgers of the `LEDGER` namespace.
pub struct KeyLedgerStubs<'a>(pub &'a Env);

impl ports::KeyLedgers for KeyLedgerStubs<'_> {
    type Ledger = KeyLedgerStub;

    fn ledger(&self, address: &LedgerAddress) -> Result<KeyLedgerStub, Unreachable> {
        KeyLedgerStub::at(self.0, address).map_err(|_| Unreachable)
    }
}

/// What workerd answers `namespace.jurisdiction(…)` with: it runs only locally.
const LOCAL_RUNTIME_REFUSAL: &str = "not implemented in workerd";

/// `namespace.jurisdiction(name)`: the namespace whose objects are created and kept in
/// `jurisdiction`; the namespace itself where the local runtime has no jurisdictions.
fn in_jurisdiction(namespace: &ObjectNamespace, jurisdiction: Jurisdiction) -> worker::Result<ObjectNamespace> {
    let this: &JsValue = namespace.as_ref();
    let method: js_sys::Function = js_sys::Reflect::get(this, &JsValue::from_str("jurisdiction"))?.dyn_into()?;
    match method.call1(this, &JsValue::from_str(jurisdiction.as_str())) {
        Ok(restricted) => Ok(restricted.unchecked_into()),
        Err(error) => {
            let message = js_sys::Error::from(error.clone()).message().as_string().unwrap_or_default();
            if !message.contains(LOCAL_RUNTIME_REFUSAL) {
                return Err(error.into());
            }
            worker::console_warn!("key ledger: jurisdiction {jurisdiction} ignored by the local runtime: {message}");
            Ok(namespace.clone())
        }
    }
}

fn unavailable(e: worker::Error) -> ApiError {
    logged(ledger_unavailable(), "key ledger unreachable", e)
}
