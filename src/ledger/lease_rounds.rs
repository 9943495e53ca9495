//! The decisions of a key object answering one command under budgets ([`LeaseRounds`]): step
//! the command; while a step answers [`Reply::NeedsLease`], lease from that level's budget
//! object and step again, at most [`MAX_LEASE_ROUNDS`] leases; whatever the latest step answered
//! is the answer (an admission it recorded is never dropped). A level that declines to lease
//! ([`Received::Declined`]: its object remembers as many holders as it may) admits an `Admit`'s
//! call directly, exact ([`BudgetCall::admit`](super::budgets::BudgetCall::admit)), and the
//! command is stepped with that admission ([`KeyState::handle_with_direct`]); a direct admission
//! the answer does not keep is released ([`LeaseRounds::finish`]). For
//! [`DECLINED_HOLD_MS`](crate::budget::DECLINED_HOLD_MS) after a decline the step itself answers
//! [`Reply::NeedsDirect`] for that level: the call is admitted directly without a lease message.
//! An isolate's `Lease` whose cover a level declines is answered declined: the isolate asks the
//! call alone.
//!
//! Flow (the adapter, `src/edge/objects/key_ledger.rs`, and the host fake,
//! [`BudgetsInMemory`](super::budgets::in_memory::BudgetsInMemory), do only the I/O): step the
//! command → [`LeaseRounds::after_step`] says [`Next::Answer`], [`Next::Lease`] from a link or
//! [`Next::AdmitDirectly`] at one → the caller sends the message and takes the reply
//! ([`KeyState::lease_reply`] first for a lease) → [`LeaseRounds::after_reply`] /
//! [`LeaseRounds::after_direct`] say step again or what next → … → [`LeaseRounds::finish`]. A
//! message that cannot be asked or sent is [`LeaseRounds::unanswered`].
//!
//! [`KeyState::handle_with_direct`]: super::KeyState::handle_with_direct
//! [`KeyState::lease_reply`]: super::KeyState::lease_reply

use crate::budget::{BudgetReply, Received};
use crate::error::{ApiError, Code};
use crate::ledger::budgets::Direct;
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
    /// The levels whose objects admitted the call directly.
    direct: Vec<Direct>,
}

/// What the caller does next.
#[derive(Debug)]
pub enum Next {
    /// Answer this (persisting it as any step), after [`LeaseRounds::finish`].
    Answer(Handled),
    /// Lease from this budget object, then [`LeaseRounds::after_reply`].
    Lease(BudgetLink),
    /// Admit the call at this budget object ([`BudgetCall::admit`](super::budgets::BudgetCall::admit)),
    /// then [`LeaseRounds::after_direct`].
    AdmitDirectly(BudgetLink),
}

/// What a budget object's reply leaves to do.
#[derive(Debug)]
pub enum AfterReply {
    /// A lease or a direct admission came: step the command again (in the same synchronous
    /// step as the reply, so a new slice is there).
    StepAgain,
    Then(Box<Next>),
}

impl LeaseRounds {
    pub fn new(command: Command) -> LeaseRounds {
        LeaseRounds { command, leases: 0, direct: Vec::new() }
    }

    /// The command answered.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The direct admissions so far: step the command with them
    /// ([`KeyState::handle_with_direct`](super::KeyState::handle_with_direct)).
    pub fn direct(&self) -> &[Direct] {
        &self.direct
    }

    /// After a step answered `handled`: its answer, unless it asks for a lease the command may
    /// still take (else `budget_unavailable`, nothing counted: a step that asks for a lease
    /// changed no count).
    pub fn after_step(&mut self, handled: Handled) -> Next {
        let (level, lease) = match handled.reply {
            Reply::NeedsLease { level } => (level, true),
            Reply::NeedsDirect { level } => (level, false),
            _ => return Next::Answer(handled),
        };
        let link = self.command.budget_ask().and_then(|(links, _)| links.iter().find(|link| link.level == level));
        match link {
            Some(link) if lease && self.leases < MAX_LEASE_ROUNDS => {
                self.leases += 1;
                Next::Lease(link.clone())
            }
            // At most once per level: the step after it takes the level as admitted.
            Some(link) if !lease && self.direct.iter().all(|(at, _)| *at != level) => Next::AdmitDirectly(link.clone()),
            _ => Next::Answer(self.unanswered(budget_unavailable())),
        }
    }

    /// After the key's state took `link`'s object's reply to the lease (`received`).
    pub fn after_reply(&self, link: &BudgetLink, received: Received, now_ms: u64) -> AfterReply {
        let answer = |handled| AfterReply::Then(Box::new(Next::Answer(handled)));
        match received {
            Received::Granted => AfterReply::StepAgain,
            Received::Refused(denial) => answer(self.unanswered(denial.into_api_error(now_ms))),
            Received::Declined => match &self.command {
                Command::Admit { .. } => AfterReply::Then(Box::new(Next::AdmitDirectly(link.clone()))),
                Command::Lease { message, .. } => {
                    let reply = Command::declined(message.seq, link.level);
                    answer(Handled { reply, events: vec![], changed: false, end_user_changed: None })
                }
                _ => answer(self.unanswered(budget_unavailable())),
            },
            Received::Stopped | Received::Ignored | Received::Reported => answer(self.unanswered(budget_unavailable())),
        }
    }

    /// After `link`'s object answered the direct admission: admitted (step again with it), or
    /// refused naming its level and scope; anything else is `budget_unavailable`.
    pub fn after_direct(&mut self, link: &BudgetLink, reply: BudgetReply, now_ms: u64) -> AfterReply {
        let handled = match reply {
            BudgetReply::Admitted { call, .. } => {
                self.direct.push((link.level, call));
                return AfterReply::StepAgain;
            }
            BudgetReply::Refused { denial } => self.unanswered(denial.into_api_error(now_ms)),
            _ => self.unanswered(budget_unavailable()),
        };
        AfterReply::Then(Box::new(Next::Answer(handled)))
    }

    /// The answer, and the direct admissions it did not keep (to release: only an admission
    /// keeps them).
    pub fn finish(self, handled: Handled) -> (Handled, Vec<Direct>) {
        let kept = matches!(handled.reply, Reply::Admitted { .. });
        (handled, if kept { Vec::new() } else { self.direct })
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
    use crate::budget::{BudgetDenial, Declined, LeaseOutcome};
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
            other => panic!("not an answer: {other:?}"),
        }
    }

    fn answered(after: AfterReply) -> Option<Code> {
        let AfterReply::Then(next) = after else { panic!("not an answer") };
        code(*next)
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
            assert!(matches!(rounds.after_reply(&link, Received::Granted, 0), AfterReply::StepAgain));
            step = stepped(Reply::NeedsLease { level: Level::Project });
        }
        let Next::Answer(last) = rounds.after_step(stepped(admitted())) else { panic!("the answer") };
        assert_eq!((last.reply, last.changed), (admitted(), true), "recorded and answered");
        let mut exhausted = LeaseRounds { leases: MAX_LEASE_ROUNDS, ..LeaseRounds::new(admit()) };
        let more = exhausted.after_step(stepped(Reply::NeedsLease { level: Level::Organisation }));
        assert_eq!(code(more), Some(Code::BudgetUnavailable), "no fifth lease");
    }

    /// A level that declines to lease: an `Admit` is admitted directly there and stepped with
    /// that admission; refused there, the refusal names the level; an answer that is not an
    /// admission releases the direct admissions; an isolate's `Lease` is answered declined.
    #[test]
    fn a_declined_level_admits_directly_and_an_unkept_admission_is_released() {
        let org = link(Level::Organisation);
        let mut rounds = LeaseRounds::new(admit());
        let AfterReply::Then(next) = rounds.after_reply(&org, Received::Declined, 0) else { panic!() };
        assert!(matches!(*next, Next::AdmitDirectly(ref at) if at.level == Level::Organisation), "{next:?}");
        let headroom = crate::limits::Headroom { requests: None, tokens: None, spend: None };
        let direct = BudgetReply::Admitted { call: 41, headroom };
        assert!(matches!(rounds.after_direct(&org, direct, 0), AfterReply::StepAgain));
        assert_eq!(rounds.direct(), &[(Level::Organisation, 41)]);
        let refused =
            stepped(Reply::Refused(crate::ledger::Refusal { error: budget_unavailable(), hold_until_ms: None }));
        let (_, release) =
            LeaseRounds { direct: vec![(Level::Organisation, 41)], ..LeaseRounds::new(admit()) }.finish(refused);
        assert_eq!(release, vec![(Level::Organisation, 41)], "not kept: released");
        let (_, kept) = rounds.finish(stepped(admitted()));
        assert!(kept.is_empty(), "kept by the admission");
        let mut full = LeaseRounds::new(admit());
        let denial = BudgetDenial { level: Level::Organisation, denial: LimitDenial::InFlight { limit: 2, open: 2 } };
        let after = full.after_direct(&org, BudgetReply::Refused { denial }, 0);
        assert_eq!(answered(after), Some(Code::RateLimitExceeded));
        let lease = Command::Lease {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            message: crate::budget::HolderMessage {
                holder: "edge:1".into(),
                epoch: 0,
                seq: 3,
                leases: vec![],
                want: None,
            },
            budgets: vec![org.clone()],
        };
        let AfterReply::Then(next) = LeaseRounds::new(lease).after_reply(&org, Received::Declined, 0) else { panic!() };
        let Next::Answer(Handled { reply: Reply::Lease { reply }, .. }) = *next else { panic!("{next:?}") };
        assert_eq!(
            (reply.seq, reply.outcome),
            (3, LeaseOutcome::Declined { level: Level::Organisation, why: Declined::Cover })
        );
    }

    /// A refusal names its level; a stop, a stale or ignored reply, or a level the command does
    /// not name answers `budget_unavailable`.
    #[test]
    fn replies_that_grant_nothing_answer_the_command() {
        let rounds = LeaseRounds::new(admit());
        let org = link(Level::Organisation);
        let denial = BudgetDenial { level: Level::Organisation, denial: LimitDenial::TooManyInFlight { open: 3 } };
        assert_eq!(answered(rounds.after_reply(&org, Received::Refused(denial), 0)), Some(Code::TooManyInFlight));
        for received in [Received::Stopped, Received::Ignored, Received::Reported] {
            assert_eq!(answered(rounds.after_reply(&org, received, 0)), Some(Code::BudgetUnavailable));
        }
        let mut unnamed = LeaseRounds::new(admit_under(vec![]));
        assert_eq!(
            code(unnamed.after_step(stepped(Reply::NeedsLease { level: Level::Project }))),
            Some(Code::BudgetUnavailable)
        );
    }
}
