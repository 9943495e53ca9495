//! The decisions of a key object answering one command under budgets ([`LeaseRounds`]): step
//! the command; while a step answers [`Reply::NeedsLease`], lease from that level's budget
//! object and step again, at most [`MAX_LEASE_ROUNDS`] leases; whatever the latest step answered
//! is the answer (an admission it recorded is never dropped).
//!
//! Flow (the adapter, `src/edge/objects/key_ledger.rs`, and the host fake,
//! [`BudgetsInMemory`](super::budgets::in_memory::BudgetsInMemory), do only the I/O): step the
//! command → [`LeaseRounds::after_step`] says [`Next::Answer`] or [`Next::Lease`] from a link →
//! the caller sends the lease message and takes the reply into the key's state
//! ([`KeyState::lease_reply`](super::KeyState::lease_reply)) → [`LeaseRounds::after_reply`]
//! says step again or answer (a refusal naming its level; `budget_unavailable` for anything
//! else) → … A lease that cannot be asked or sent is [`LeaseRounds::unanswered`].

use crate::budget::Received;
use crate::error::{ApiError, Code};
use crate::ledger::{Command, Handled, Reply};
use crate::policy::BudgetLink;

/// The most leases one command may take (one per level, each at most twice) before it is
/// refused `budget_unavailable`.
pub const MAX_LEASE_ROUNDS: usize = 4;

/// One command's way through the budgets above its key.
#[derive(Debug)]
pub struct LeaseRounds {
    command: Command,
    /// The leases taken so far.
    leases: usize,
}

/// What the caller does next.
#[derive(Debug)]
pub enum Next {
    /// Answer this (persisting it as any step).
    Answer(Handled),
    /// Lease from this budget object, then [`LeaseRounds::after_reply`].
    Lease(BudgetLink),
}

/// What a budget object's reply to a lease leaves to do.
#[derive(Debug)]
pub enum AfterReply {
    /// A lease came: step the command again (in the same synchronous step as the reply, so the
    /// new slice is there).
    StepAgain,
    Answer(Box<Handled>),
}

impl LeaseRounds {
    pub fn new(command: Command) -> LeaseRounds {
        LeaseRounds { command, leases: 0 }
    }

    /// The command answered.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// After a step answered `handled`: its answer, unless it asks for a lease the command may
    /// still take (else `budget_unavailable`, nothing counted: a step that asks for a lease
    /// changed no count).
    pub fn after_step(&mut self, handled: Handled) -> Next {
        let Reply::NeedsLease { level } = handled.reply else { return Next::Answer(handled) };
        let link = self.command.budget_ask().and_then(|(links, _)| links.iter().find(|link| link.level == level));
        match link {
            Some(link) if self.leases < MAX_LEASE_ROUNDS => {
                self.leases += 1;
                Next::Lease(link.clone())
            }
            _ => Next::Answer(self.unanswered(budget_unavailable())),
        }
    }

    /// After the key's state took a budget object's reply to the lease (`received`).
    pub fn after_reply(&self, received: Received, now_ms: u64) -> AfterReply {
        match received {
            Received::Granted => AfterReply::StepAgain,
            Received::Refused(denial) => AfterReply::Answer(Box::new(self.unanswered(denial.into_api_error(now_ms)))),
            Received::Declined | Received::Stopped | Received::Ignored | Received::Reported => {
                AfterReply::Answer(Box::new(self.unanswered(budget_unavailable())))
            }
        }
    }

    /// The command left unanswered by a budget with `error` ([`Command::unanswered`]), nothing
    /// changed.
    pub fn unanswered(&self, error: ApiError) -> Handled {
        Handled { reply: self.command.unanswered(error), events: vec![], changed: false, end_user_changed: None }
    }
}

/// 503 `budget_unavailable`: nothing beyond the key's current slice is admitted.
pub fn budget_unavailable() -> ApiError {
    ApiError::new(
        Code::BudgetUnavailable,
        "A budget above this key cannot be reached and the key's share of it does not cover this request; it was not forwarded. Retry shortly.",
    )
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::BudgetDenial;
    use crate::limits::{Ask, Level, LimitDenial, Limits};
    use crate::policy::BudgetLink;

    fn link(level: Level) -> BudgetLink {
        BudgetLink {
            level,
            object: format!("budget:{level:?}"),
            limits: Limits::default(),
            version: 1,
            jurisdiction: None,
            location_hint: None,
        }
    }

    fn admit() -> Command {
        admit_under(vec![link(Level::Project), link(Level::Organisation)])
    }

    fn admit_under(budgets: Vec<BudgetLink>) -> Command {
        Command::Admit {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            ask: Ask { tokens: 1, cost_micros: 1 },
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets,
        }
    }

    fn stepped(reply: Reply) -> Handled {
        Handled { reply, events: vec![], changed: true, end_user_changed: None }
    }

    fn admitted() -> Reply {
        Reply::Admitted {
            reservation_id: 7,
            headroom: crate::limits::Headroom { requests: None, tokens: None, spend: None },
        }
    }

    fn code(next: Next) -> Option<Code> {
        match next {
            Next::Answer(Handled { reply: Reply::Refused(refusal), .. }) => Some(refusal.error.code()),
            Next::Answer(_) => None,
            Next::Lease(link) => panic!("a lease from {link:?}"),
        }
    }

    /// Every lease is granted but other calls take each slice before this one steps again, so
    /// the call is admitted by the step after its last allowed lease: that admission is the
    /// answer (it was counted; answering 503 would drop it), and one more lease is not asked.
    #[test]
    fn an_admission_after_the_last_allowed_lease_is_the_answer() {
        let mut rounds = LeaseRounds::new(admit());
        let mut step = stepped(Reply::NeedsLease { level: Level::Project });
        for _ in 0..MAX_LEASE_ROUNDS {
            let Next::Lease(link) = rounds.after_step(step) else { panic!("a lease") };
            assert_eq!(link.level, Level::Project);
            assert!(matches!(rounds.after_reply(Received::Granted, 0), AfterReply::StepAgain));
            step = stepped(Reply::NeedsLease { level: Level::Project });
        }
        let Next::Answer(last) = rounds.after_step(stepped(admitted())) else { panic!("the answer") };
        assert_eq!((last.reply, last.changed), (admitted(), true), "recorded and answered");
        let mut exhausted = LeaseRounds { leases: MAX_LEASE_ROUNDS, ..LeaseRounds::new(admit()) };
        let more = exhausted.after_step(stepped(Reply::NeedsLease { level: Level::Organisation }));
        assert_eq!(code(more), Some(Code::BudgetUnavailable), "no fifth lease");
    }

    /// A refusal names its level; a stop, a stale or ignored reply, or a level the command does
    /// not name answers `budget_unavailable`; a `Lease` command unanswered is `Stopped`.
    #[test]
    fn replies_that_grant_nothing_answer_the_command() {
        let rounds = LeaseRounds::new(admit());
        let denial = BudgetDenial { level: Level::Organisation, denial: LimitDenial::TooManyInFlight { open: 3 } };
        let AfterReply::Answer(refused) = rounds.after_reply(Received::Refused(denial), 0) else { panic!() };
        assert!(matches!(&refused.reply, Reply::Refused(r) if r.error.code() == Code::TooManyInFlight));
        for received in [Received::Stopped, Received::Ignored, Received::Reported] {
            let AfterReply::Answer(handled) = rounds.after_reply(received, 0) else { panic!() };
            assert_eq!(code(Next::Answer(*handled)), Some(Code::BudgetUnavailable));
        }
        let mut unnamed = LeaseRounds::new(admit_under(vec![]));
        assert_eq!(
            code(unnamed.after_step(stepped(Reply::NeedsLease { level: Level::Project }))),
            Some(Code::BudgetUnavailable)
        );
    }
}
