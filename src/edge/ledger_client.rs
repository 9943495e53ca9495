//! Calls to a key's ledger object. Fail closed: an object that cannot be reached or answers
//! nonsense is a 503, never an admission.

use crate::error::ApiError;
use crate::ledger::{Command, Reply};
use worker::{Env, Method, Request, RequestInit, Stub};

pub struct LedgerClient {
    stub: Stub,
}

impl LedgerClient {
    /// The object of key `key_id` (stable across rotations, so counters carry over).
    pub fn for_key(env: &Env, key_id: &str) -> Result<LedgerClient, ApiError> {
        let namespace = env.durable_object("LEDGER").map_err(unavailable)?;
        let stub = namespace.id_from_name(key_id).and_then(|id| id.get_stub()).map_err(unavailable)?;
        Ok(LedgerClient { stub })
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

    /// Settles or releases in the background; failures are logged (the object expires the
    /// reservation at its estimate after its time to live, so nothing is lost unbilled).
    pub async fn finish(self, command: Command) {
        if let Err(e) = self.call(&command).await {
            worker::console_error!("ledger: settlement failed: {}", e.message);
        }
    }
}

fn unavailable(e: worker::Error) -> ApiError {
    worker::console_error!("ledger unreachable: {e}");
    ApiError::unavailable(
        "ledger_unavailable",
        "The rate and spend ledger for this key cannot be reached; the request was not forwarded. Retry shortly.",
    )
    .with_retry_after(1)
}
