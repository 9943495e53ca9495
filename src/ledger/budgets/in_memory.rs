//! Budget objects in memory ([`BudgetsInMemory`]), running the real [`BudgetState`], and a key's
//! side of leasing from them as its object's adapter does it (`src/edge/objects/key_ledger.rs`,
//! both driven by [`LeaseRounds`]): for the host tests and the gateway's fakes.

use super::BudgetCall;
use crate::budget::{BudgetReply, BudgetState};
use crate::ledger::lease_rounds::{budget_unavailable, AfterReply, LeaseRounds, Next};
use crate::ledger::{Command, KeyState, Reply};
use crate::policy::BudgetLink;
use std::collections::BTreeMap;

/// Budget objects in memory, by name, running the real [`BudgetState`]: what a key's object
/// reaches when it leases, for the host tests and the gateway's fakes.
#[derive(Debug, Default)]
pub struct BudgetsInMemory {
    pub objects: BTreeMap<String, BudgetState>,
    /// Budget objects that cannot be reached: a message to one is lost.
    pub unreachable: Vec<String>,
    /// How many of the next leases granted are used up by other calls of the key (the same
    /// command, admitted) before the waiting call steps again, as concurrent calls may while
    /// it awaits the reply.
    pub slices_taken: usize,
    /// The calls the budget objects were sent (reachable or not).
    pub calls: usize,
}

impl BudgetsInMemory {
    /// Answers `command` as the key's object `name` does (`src/edge/objects/key_ledger.rs`): the
    /// steps, leases and direct admissions [`LeaseRounds`] asks for; a direct admission the
    /// answer does not keep is released with the key's next settles ([`BudgetsInMemory::flush`]).
    pub fn answer(&mut self, key: &mut KeyState, name: &str, command: Command, now_ms: u64) -> Reply {
        let mut rounds = LeaseRounds::new(command);
        let mut next = rounds.after_step(key.handle(rounds.command().clone(), now_ms));
        let handled = loop {
            next = match next {
                Next::Answer(handled) => break handled,
                Next::Lease(link) => self.lease(key, name, &mut rounds, &link, now_ms),
                Next::AdmitDirectly(link) => self.admit_directly(key, &mut rounds, &link, now_ms),
            };
        };
        let (handled, release) = rounds.finish(handled);
        key.release_direct(&release);
        handled.reply
    }

    /// One lease from `link`'s object and the step after its reply.
    fn lease(
        &mut self,
        key: &mut KeyState,
        name: &str,
        rounds: &mut LeaseRounds,
        link: &BudgetLink,
        now_ms: u64,
    ) -> Next {
        let Some((_, ask)) = rounds.command().budget_ask() else {
            return Next::Answer(rounds.unanswered(budget_unavailable()));
        };
        let Some(message) = key.lease_request(name, link, ask, now_ms) else {
            return Next::Answer(rounds.unanswered(budget_unavailable()));
        };
        let Some(BudgetReply::Lease(reply)) = self.call(link, BudgetCall::lease(link, message), now_ms) else {
            return Next::Answer(rounds.unanswered(budget_unavailable()));
        };
        let received = key.lease_reply(link.level, reply, now_ms);
        match rounds.after_reply(link, received, now_ms) {
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
                rounds.after_step(key.handle_with_direct(rounds.command().clone(), rounds.direct(), now_ms))
            }
            AfterReply::Then(next) => *next,
        }
    }

    /// The call admitted directly at `link`'s object, and the step after its reply.
    fn admit_directly(&mut self, key: &mut KeyState, rounds: &mut LeaseRounds, link: &BudgetLink, now_ms: u64) -> Next {
        let Some((_, ask)) = rounds.command().budget_ask() else {
            return Next::Answer(rounds.unanswered(budget_unavailable()));
        };
        let Some(reply) = self.call(link, BudgetCall::admit(link, ask), now_ms) else {
            return Next::Answer(rounds.unanswered(budget_unavailable()));
        };
        match rounds.after_direct(link, reply, now_ms) {
            AfterReply::StepAgain => {
                rounds.after_step(key.handle_with_direct(rounds.command().clone(), rounds.direct(), now_ms))
            }
            AfterReply::Then(next) => *next,
        }
    }

    /// `call` applied by `link`'s object (created on first use); `None` if it is unreachable.
    fn call(&mut self, link: &BudgetLink, call: BudgetCall, now_ms: u64) -> Option<BudgetReply> {
        self.calls += 1;
        if self.unreachable.contains(&link.object) {
            return None;
        }
        let upper = self.objects.entry(link.object.clone()).or_insert_with(|| BudgetState::new(link.level));
        Some(call.apply(upper, now_ms).reply)
    }

    /// Sends the reports due from `key` to their budget objects, and the settles of its direct
    /// calls.
    pub fn flush(&mut self, key: &mut KeyState, now_ms: u64) {
        for (link, message) in key.budget_flushes(now_ms) {
            if let Some(BudgetReply::Lease(reply)) = self.call(&link, BudgetCall::lease(&link, message), now_ms) {
                key.lease_reply(link.level, reply, now_ms);
            }
        }
        for (link, call, actual) in key.direct_settles() {
            self.call(&link, BudgetCall::settle(&link, call, actual), now_ms);
        }
    }
}
