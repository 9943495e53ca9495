//! The registry's ports at the edge: the `KEYS` KV namespace and the ledger objects of keys and
//! budgets (in their organisation's jurisdiction).

use crate::admin::api::ports::{BudgetAddress, KeyRecords, LedgerAddress, LedgerObjects};
use crate::budget::{BudgetCommand, BudgetReply};
use crate::edge::objects::budget_stub::call_budget;
use crate::edge::objects::key_ledger_stub::KeyLedgerStub;
use crate::edge::objects::stub;
use crate::edge::respond::logged;
use crate::error::ApiError;
use crate::gateway::call::ledger_unavailable;
use crate::ledger::budgets::BudgetCall;
use crate::ledger::{Command, Reply};
use crate::limits::{LimitUse, Limits};
use worker::kv::KvStore;
use worker::Env;

/// The `KEYS` namespace.
pub struct Kv<'a>(pub &'a Env);

impl Kv<'_> {
    fn store(&self) -> Result<KvStore, String> {
        self.0.kv("KEYS").map_err(|e| e.to_string())
    }
}

impl KeyRecords for Kv<'_> {
    async fn put(&self, name: &str, record: String) -> Result<(), String> {
        self.store()?.put(name, record).map_err(|e| e.to_string())?.execute().await.map_err(|e| e.to_string())
    }

    async fn delete(&self, name: &str) -> Result<(), String> {
        self.store()?.delete(name).await.map_err(|e| e.to_string())
    }
}

/// The `LEDGER` namespace's objects.
pub struct Ledgers<'a>(pub &'a Env);

impl LedgerObjects for Ledgers<'_> {
    async fn call(&self, ledger: &LedgerAddress, command: &Command) -> Result<Reply, ApiError> {
        let stub = stub(self.0, "LEDGER", &ledger.object, ledger.jurisdiction, None)
            .map_err(|e| logged(ledger_unavailable(), "key ledger unreachable", e))?;
        KeyLedgerStub::from_stub(stub).call(command).await
    }

    async fn push_budget(&self, budget: &BudgetAddress, limits: &Limits, version: u64) -> Result<(), ApiError> {
        let call = BudgetCall::push(limits.clone(), version);
        match call_budget(self.0, &budget.object, budget.jurisdiction, budget.location_hint, &call).await? {
            BudgetReply::Done => Ok(()),
            other => Err(logged(ledger_unavailable(), "budget push", format!("unexpected answer {other:?}"))),
        }
    }

    async fn budget_report(&self, budget: &BudgetAddress) -> Result<Vec<LimitUse>, ApiError> {
        let call = BudgetCall { carried: None, command: BudgetCommand::Report };
        match call_budget(self.0, &budget.object, budget.jurisdiction, budget.location_hint, &call).await? {
            BudgetReply::Report { limits, .. } => Ok(limits),
            other => Err(logged(ledger_unavailable(), "budget report", format!("unexpected answer {other:?}"))),
        }
    }
}
