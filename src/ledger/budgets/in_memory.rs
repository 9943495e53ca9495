//! Budget objects in memory ([`BudgetsInMemory`]), running the real [`BudgetState`], and a key's
//! side of leasing from them as its object's adapter does it (`src/edge/objects/key_ledger.rs`): for the
//! host tests and the gateway's fakes.

use super::BudgetCall;
use crate::budget::{BudgetReply, BudgetState, Received};
use crate::error::{ApiError, Code};
use crate::ledger::{Command, KeyState, Reply};
use std::collections::BTreeMap;

/// Budget objects in memory, by name, running the real [`BudgetState`]: what a key's object
/// reaches when it leases, for the host tests and the gateway's fakes.
#[derive(Debug, Default)]
pub struct BudgetsInMemory {
    pub objects: BTreeMap<String, BudgetState>,
    /// Budget objects that cannot be reached: a lease message to one is lost.
    pub unreachable: Vec<String>,
}

impl BudgetsInMemory {
    /// Answers `command` as the key's object `name` does (`src/edge/objects/key_ledger.rs`): step it,
    /// lease from the budget object a step asks for, step again with the lease's reply, at most
    /// four rounds; whatever the last round answered is the answer.
    pub fn answer(&mut self, key: &mut KeyState, name: &str, command: Command, now_ms: u64) -> Reply {
        let mut reply = key.handle(command.clone(), now_ms).reply;
        for round in 0..=4 {
            let (Reply::NeedsLease { level }, Some((budgets, ask))) = (&reply, command.budget_ask()) else {
                return reply;
            };
            if round == 4 {
                break;
            }
            let Some(link) = budgets.iter().find(|link| link.level == *level) else { break };
            let Some(message) = key.lease_request(name, link, ask, now_ms) else { break };
            if self.unreachable.contains(&link.object) {
                break;
            }
            let upper = self.objects.entry(link.object.clone()).or_insert_with(|| BudgetState::new(link.level));
            let BudgetReply::Lease(upper_reply) = BudgetCall::lease(link, message).apply(upper, now_ms).reply else {
                break;
            };
            reply = match key.lease_reply(*level, upper_reply, now_ms) {
                Received::Granted => key.handle(command.clone(), now_ms).reply,
                Received::Refused(denial) => command.unanswered(denial.into_api_error(now_ms)),
                Received::Stopped | Received::Ignored | Received::Reported => break,
            };
        }
        command.unanswered(ApiError::new(Code::BudgetUnavailable, "No lease."))
    }

    /// Sends the reports due from `key` (named `name`) to their budget objects.
    pub fn flush(&mut self, key: &mut KeyState, now_ms: u64) {
        for (link, message) in key.budget_flushes(now_ms) {
            let upper = self.objects.entry(link.object.clone()).or_insert_with(|| BudgetState::new(link.level));
            if let BudgetReply::Lease(reply) = BudgetCall::lease(&link, message).apply(upper, now_ms).reply {
                key.lease_reply(link.level, reply, now_ms);
            }
        }
    }
}
