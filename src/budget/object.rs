//! The pure behaviour of an upper level's Durable Object (a project's or organisation's budget):
//! one [`BudgetState`], changed only by [`BudgetState::handle`], one command at a time.
//!
//! Flow: holders (key objects) send `Lease` with their [`HolderMessage`]; a direct call (a key
//! that does not lease) sends `Admit` then `Settle`; the control plane sends `PushLimits`
//! whenever the level's budget changes, `Granting` to stop or resume granting, and `Report`
//! (read-only) for the usage of each limit; an alarm sends `Alarm` so leases past their TTL are
//! charged even when no holder speaks. The object persists the state after every change and
//! delivers the [`BudgetEvent`]s as webhooks.
//!
//! The state is stored as a versioned JSON document ([`STATE_FORMAT`], [`crate::versioned`]).

use super::denial::{BudgetDenial, BudgetEvent};
use super::ledger::Budget;
use super::protocol::{HolderMessage, UpperReply};
use crate::limits::{Actual, Ask, Headroom, Level, LimitUse, Limits, NewestLimits, VersionedLimits};
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// What holders, callers and the control plane ask of an upper level's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BudgetCommand {
    Lease {
        message: HolderMessage,
    },
    Admit {
        ask: Ask,
    },
    Settle {
        call: u64,
        actual: Actual,
    },
    /// The level's limits and their policy version; older versions than one seen are ignored.
    PushLimits {
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
    },
    /// Stop (`false`) or resume granting leases.
    Granting {
        granting: bool,
    },
    Alarm,
    Report,
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BudgetReply {
    Lease(UpperReply),
    Admitted { call: u64, headroom: Headroom },
    Refused { denial: BudgetDenial },
    Done,
    Report { limits: Vec<LimitUse>, headroom: Headroom },
}

/// The result of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub reply: BudgetReply,
    pub events: Vec<BudgetEvent>,
    pub changed: bool,
}

/// Everything an upper level's object remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct BudgetState {
    level: Level,
    #[serde(default, skip_serializing_if = "NewestLimits::is_empty")]
    limits: NewestLimits,
    #[serde(default = "yes")]
    granting: bool,
    #[serde(default)]
    budget: Budget,
}

fn yes() -> bool {
    true
}

/// The state's stored format, version 1.
pub const STATE_FORMAT: Format =
    Format { version: 1, members: &["level", "limits", "granting", "budget"], critical: &[] };
stored_serde!(BudgetState, STATE_FORMAT);

impl BudgetState {
    /// A new object of `level`, with no limits until pushed (then nothing is limited).
    pub fn new(level: Level) -> BudgetState {
        BudgetState { level, limits: NewestLimits::default(), granting: true, budget: Budget::new() }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn handle(&mut self, command: BudgetCommand, now_ms: u64) -> Answered {
        // Commands carry no limits: the pushed ones are in force (none pushed: nothing limited).
        let limits = self.limits.peek(&VersionedLimits { version: 0, limits: Limits::default() }).clone();
        let level = self.level;
        let (reply, events, changed) = match command {
            BudgetCommand::Lease { message } => {
                let handled = self.budget.handle(&limits, level, message, self.granting, now_ms);
                (BudgetReply::Lease(handled.reply), handled.events, handled.changed)
            }
            BudgetCommand::Admit { ask } => match self.budget.admit_call(&limits, ask, now_ms) {
                Ok(call) => {
                    let headroom = self.budget.headroom(&limits, now_ms);
                    (BudgetReply::Admitted { call, headroom }, self.budget.catch_up(&limits, now_ms), true)
                }
                Err(denial) => (BudgetReply::Refused { denial: BudgetDenial { level, denial } }, Vec::new(), false),
            },
            BudgetCommand::Settle { call, actual } => {
                let (settled, events) = self.budget.settle_call(&limits, call, actual, now_ms);
                (BudgetReply::Done, events, settled)
            }
            BudgetCommand::PushLimits { limits, policy_version } => {
                let changed = self.limits.push(VersionedLimits { version: policy_version, limits });
                (BudgetReply::Done, Vec::new(), changed)
            }
            BudgetCommand::Granting { granting } => {
                let changed = self.granting != granting;
                self.granting = granting;
                (BudgetReply::Done, Vec::new(), changed)
            }
            BudgetCommand::Alarm => {
                let before = self.budget.clone();
                let events = self.budget.catch_up(&limits, now_ms);
                let changed = self.budget != before;
                (BudgetReply::Done, events, changed)
            }
            BudgetCommand::Report => {
                let reply = BudgetReply::Report {
                    limits: self.budget.limit_uses(&limits, now_ms),
                    headroom: self.budget.headroom(&limits, now_ms),
                };
                (reply, Vec::new(), false)
            }
        };
        // An event fired is remembered as fired: the state changed.
        let changed = changed || !events.is_empty();
        let events = events.into_iter().map(|spend| BudgetEvent { level, spend }).collect();
        Answered { reply, events, changed }
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::{LeaseOutcome, Want};
    use super::*;
    use crate::limits::{Charge, LimitDenial, SpendPeriod};
    use crate::versioned::check;

    const CALL: Charge = Charge { tokens: 10, cost_micros: 600 };

    fn budget(daily_micros: u64) -> Limits {
        Limits { rpm: None, ..super::super::ledger::tests::limits(1, daily_micros) }
    }

    fn lease(state: &mut BudgetState, seq: u64, now: u64) -> LeaseOutcome {
        let want = Some(Want { ask: CALL, interval_ms: 2_000, exact: false });
        let message = HolderMessage { holder: "key_1".into(), epoch: 0, seq, leases: vec![], want };
        match state.handle(BudgetCommand::Lease { message }, now).reply {
            BudgetReply::Lease(reply) => reply.outcome,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_project_budget_leases_refuses_naming_its_level_and_raises_events() {
        let mut state = BudgetState::new(Level::Project);
        assert!(matches!(lease(&mut state, 1, 0), LeaseOutcome::Granted(_)), "nothing pushed: nothing limited");
        assert!(state.handle(BudgetCommand::PushLimits { limits: budget(1_000), policy_version: 2 }, 0).changed);
        assert!(!state.handle(BudgetCommand::PushLimits { limits: budget(9_000), policy_version: 1 }, 0).changed);
        let answered = state.handle(BudgetCommand::Admit { ask: CALL }, 10);
        let BudgetReply::Admitted { call, .. } = answered.reply else { panic!("{answered:?}") };
        let answered = state.handle(BudgetCommand::Settle { call, actual: CALL }, 20);
        assert_eq!(
            answered.events.iter().map(|e| (e.level, e.spend.threshold_percent)).collect::<Vec<_>>(),
            [(Level::Project, 50)]
        );
        let LeaseOutcome::Refused { denial, .. } = lease(&mut state, 2, 30) else { panic!("over the cap") };
        assert_eq!(denial.level, Level::Project);
        assert!(matches!(denial.denial, LimitDenial::Spend { period: SpendPeriod::Daily, .. }));
        let BudgetReply::Refused { denial } = state.handle(BudgetCommand::Admit { ask: CALL }, 40).reply else {
            panic!()
        };
        assert_eq!(denial.level, Level::Project);
        let BudgetReply::Report { limits, .. } = state.handle(BudgetCommand::Report, 50).reply else { panic!() };
        assert_eq!((limits[0].scope.as_str(), limits[0].used), ("spend_daily", 600));
    }

    #[test]
    fn a_stopped_upper_grants_nothing_until_resumed() {
        let mut state = BudgetState::new(Level::Key);
        assert!(state.handle(BudgetCommand::Granting { granting: false }, 0).changed);
        assert_eq!(lease(&mut state, 1, 0), LeaseOutcome::Stopped);
        state.handle(BudgetCommand::Granting { granting: true }, 0);
        assert!(matches!(lease(&mut state, 2, 0), LeaseOutcome::Granted(_)));
    }

    #[test]
    fn the_stored_state_is_versioned() {
        let mut state = BudgetState::new(Level::Organisation);
        state.handle(BudgetCommand::PushLimits { limits: budget(5_000), policy_version: 1 }, 0);
        lease(&mut state, 1, 0);
        state.handle(BudgetCommand::Granting { granting: false }, 0);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<BudgetState>(&json).unwrap(), state);
        check::members_match(&STATE_FORMAT, &state);
        check::version_rule(&STATE_FORMAT, &state, "later", serde_json::json!(1));
        let minimal: BudgetState = serde_json::from_str(r#"{"level":"project"}"#).unwrap();
        assert_eq!(minimal, BudgetState::new(Level::Project));
    }
}
