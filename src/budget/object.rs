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

use super::budget::Budget;
use super::denial::{BudgetDenial, BudgetEvent};
use super::protocol::{HolderMessage, UpperReply};
use crate::limits::{Actual, Ask, Headroom, Level, LimitUse, Limits, NewestLimits, VersionedLimits};
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// What holders, callers and the control plane ask of an upper level's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BudgetCommand {
    Lease { message: HolderMessage },
    Admit { ask: Ask },
    Settle { call: u64, actual: Actual },
    /// The level's limits and their policy version; older versions than one seen are ignored.
    PushLimits {
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
    },
    /// Stop (`false`) or resume granting leases.
    Granting { granting: bool },
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
