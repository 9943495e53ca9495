//! Budget objects in memory ([`BudgetsInMemory`]), running the real [`BudgetState`], and a key's
//! side of leasing from them as its object's adapter does it (`src/edge/objects/key_ledger.rs`,
//! both driven by [`LeaseRounds`]): for the host tests and the gateway's fakes.

use super::BudgetCall;
use crate::budget::{BudgetReply, BudgetState};
use crate::ledger::lease_rounds::{budget_unavailable, AfterReply, LeaseRounds, Next};
use crate::ledger::{Command, Handled, KeyState, Reply};
use crate::policy::BudgetLink;
use std::collections::BTreeMap;

/// Budget objects in memory, by name, running the real [`BudgetState`]: what a key's object
/// reaches when it leases, for the host tests and the gateway's fakes.
#[derive(Debug, Default)]
pub struct BudgetsInMemory {
    pub objects: BTreeMap<String, BudgetState>,
    /// Budget objects that cannot be reached: a lease message to one is lost.
    pub unreachable: Vec<String>,
    /// How many of the next leases granted are used up by other calls of the key (the same
    /// command, admitted) before the waiting call steps again, as concurrent calls may while
    /// it awaits the reply.
    pub slices_taken: usize,
}

impl BudgetsInMemory {
    /// Answers `command` as the key's object `name` does (`src/edge/objects/key_ledger.rs`): the
    /// steps and leases [`LeaseRounds`] asks for.
    pub fn answer(&mut self, key: &mut KeyState, name: &str, command: Command, now_ms: u64) -> Reply {
        let mut rounds = LeaseRounds::new(command);
        let mut handled = key.handle(rounds.command().clone(), now_ms);
        loop {
            handled = match rounds.after_step(handled) {
                Next::Answer(handled) => return handled.reply,
                Next::Lease(link) => self.lease(key, name, &rounds, &link, now_ms),
            };
        }
    }

    /// One lease from `link`'s object and the step after its reply.
    fn lease(
        &mut self,
        key: &mut KeyState,
        name: &str,
        rounds: &LeaseRounds,
        link: &BudgetLink,
        now_ms: u64,
    ) -> Handled {
        let Some((_, ask)) = rounds.command().budget_ask() else { return rounds.unanswered(budget_unavailable()) };
        let Some(message) = key.lease_request(name, link, ask, now_ms) else {
            return rounds.unanswered(budget_unavailable());
        };
        if self.unreachable.contains(&link.object) {
            return rounds.unanswered(budget_unavailable());
        }
        let upper = self.objects.entry(link.object.clone()).or_insert_with(|| BudgetState::new(link.level));
        let BudgetReply::Lease(reply) = BudgetCall::lease(link, message).apply(upper, now_ms).reply else {
            return rounds.unanswered(budget_unavailable());
        };
        let received = key.lease_reply(link.level, reply, now_ms);
        match rounds.after_reply(received, now_ms) {
            AfterReply::StepAgain => {
                if self.slices_taken > 0 {
                    self.slices_taken -= 1;
                    // Every call the slice covers (a slice of at most a thousand requests, as in the tests).
                    for _ in 0..1_000 {
                        if !matches!(key.handle(rounds.command().clone(), now_ms).reply, Reply::Admitted { .. }) {
                            break;
                        }
                    }
                }
                key.handle(rounds.command().clone(), now_ms)
            }
            AfterReply::Answer(handled) => *handled,
        }
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
