//! Calls to a key's key ledger (the [`KeyLedger`](super::key_ledger::KeyLedger) Durable Object)
//! through its stub: the [`ports::KeyLedger`] adapter. Fail closed: a key ledger that cannot be
//! reached or answers nonsense is a 503, never an admission.
//!
//! The object is addressed by its [`LedgerAddress`]: its name, in its organisation's
//! jurisdiction when it has one ([`super::stub`], which every object of the worker is
//! addressed through, says how, and how a local run without jurisdictions is told so). The same
//! name in another jurisdiction is another object, so a key's jurisdiction never changes (the
//! control plane sets it at creation). Any failure fails closed (503).

use super::stub;
use crate::edge::js_body::read_reply;
use crate::edge::respond::logged;
use crate::error::ApiError;
use crate::gateway::call::ledger_unavailable;
use crate::gateway::ports::{self, LedgerAddress, Unreachable};
use crate::ledger::{Command, Reply};
use worker::{Env, Method, Request, RequestInit, Stub};

pub struct KeyLedgerStub {
    stub: Stub,
}

impl KeyLedgerStub {
    /// The key ledger at `address`.
    pub fn at(env: &Env, address: &LedgerAddress) -> Result<KeyLedgerStub, ApiError> {
        let stub = stub(env, "LEDGER", &address.object, address.jurisdiction, None).map_err(unavailable)?;
        Ok(KeyLedgerStub { stub })
    }

    /// The key ledger behind `stub` (addressed by the caller, e.g. in a jurisdiction).
    #[cfg(feature = "control-plane")]
    pub fn from_stub(stub: Stub) -> KeyLedgerStub {
        KeyLedgerStub { stub }
    }

    pub async fn call(&self, command: &Command) -> Result<Reply, ApiError> {
        let body = serde_json::to_string(command).map_err(|e| unavailable(e.into()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://ledger/", &init).map_err(unavailable)?;
        let response = self.stub.fetch_with_request(request).await.map_err(unavailable)?;
        let body = read_reply(&response).await;
        if response.status_code() != 200 {
            let text = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
            return Err(unavailable(worker::Error::RustError(format!("status {}: {text}", response.status_code()))));
        }
        serde_json::from_slice(&body.map_err(unavailable)?).map_err(|e| unavailable(e.into()))
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

fn unavailable(e: worker::Error) -> ApiError {
    logged(ledger_unavailable(), "key ledger unreachable", e)
}
