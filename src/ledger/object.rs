//! The pure behaviour of a key's Durable Object: one [`KeyState`] per key id, changed only by
//! [`KeyState::handle`], one command at a time.
//!
//! Flow: the edge sends `Admit` before forwarding a call (revocation is checked first, then the
//! ledger admits atomically), then exactly one of `Settle` (the upstream answered; true usage)
//! or `Release` (the upstream failed). The control plane sends `Control` on disable, enable,
//! rotate and delete, `PushLimits` whenever the key's effective limits change, and `Report`
//! (read-only) for usage. The object persists the state after every change and keeps the spend
//! events for delivery.
//!
//! The state is stored as a versioned JSON document ([`STATE_FORMAT`], [`crate::versioned`]):
//! states saved before versions existed are version 1.
//!
//! Limits: every edge command carries the limits of the KV record it read, which an edge cache
//! may hold for up to a minute. Once the control plane has pushed limits, they are the ones the
//! object enforces, so a tightened boundary applies from the key's next request.

use crate::error::{ApiError, Code};
use crate::ledger::refusal::Refusal;
use crate::ledger::revocation::{Control, Revocation, Revoked};
use crate::ledger::usage_book::{UsageBook, UsageTotals};
use crate::limits::{Actual, Ask, Headroom, Ledger, LimitUse, Limits, SpendEvent};
use crate::usage::Usage;
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// What the edge or the control plane asks of a key's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    Admit {
        secret_version: u32,
        limits: Limits,
        ask: Ask,
    },
    /// `usage` is what the upstream reported (input/output split), if it reported any.
    Settle {
        reservation_id: u64,
        limits: Limits,
        actual: Actual,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    Release {
        reservation_id: u64,
    },
    Control {
        control: Control,
    },
    /// The key's effective limits, from the control plane.
    PushLimits {
        limits: Limits,
    },
    /// Usage totals and the state of each limit (`limits` unless limits were pushed); read-only.
    Report {
        limits: Limits,
    },
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reply {
    Admitted {
        reservation_id: u64,
        headroom: Headroom,
    },
    /// A refusal for the edge to render (its members: [`Refusal`]).
    Refused(Refusal),
    Done,
    Report {
        usage: UsageTotals,
        limits: Vec<LimitUse>,
        headroom: Headroom,
    },
}

/// The longest an edge may repeat a refusal without asking the object: a full request window
/// stays full until its reset, but the control plane may raise the limit meanwhile, and a
/// raised limit must apply within this time.
pub const REFUSAL_HOLD_MAX_MS: u64 = 1_000;

impl Reply {
    fn refused(error: ApiError, hold_until_ms: Option<u64>) -> Reply {
        Reply::Refused(Refusal { error, hold_until_ms })
    }
}

/// The result of one command: the reply, the spend events it raised and whether the state changed.
#[derive(Debug)]
pub struct Handled {
    pub reply: Reply,
    pub events: Vec<SpendEvent>,
    pub changed: bool,
}

/// Everything one key's object remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct KeyState {
    #[serde(default)]
    revocation: Revocation,
    #[serde(default)]
    ledger: Ledger,
    #[serde(default)]
    usage: UsageBook,
    /// The limits the control plane pushed last; they override those a command carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pushed_limits: Option<Limits>,
}

/// The state's stored format: version 1, today's members.
pub const STATE_FORMAT: Format =
    Format { version: 1, members: &["revocation", "ledger", "usage", "pushed_limits"], critical: &[] };
stored_serde!(KeyState, STATE_FORMAT);

impl KeyState {
    pub fn handle(&mut self, command: Command, now_ms: u64) -> Handled {
        match command {
            Command::Admit { secret_version, limits, ask } => {
                if let Err(revoked) = self.revocation.check(secret_version, now_ms) {
                    return Handled {
                        reply: Reply::refused(revoked_error(revoked), None),
                        events: vec![],
                        changed: false,
                    };
                }
                let limits = self.pushed_limits.clone().unwrap_or(limits);
                match self.ledger.admit(&limits, ask, now_ms) {
                    Ok(admitted) => {
                        self.usage.count_request(now_ms);
                        Handled {
                            reply: Reply::Admitted {
                                reservation_id: admitted.reservation_id,
                                headroom: admitted.headroom,
                            },
                            events: admitted.events,
                            changed: true,
                        }
                    }
                    Err(denial) => Handled {
                        reply: Reply::refused(
                            denial.clone().into_api_error(now_ms),
                            denial.refuses_every_request_until().map(|reset| reset.min(now_ms + REFUSAL_HOLD_MAX_MS)),
                        ),
                        events: vec![],
                        changed: false,
                    },
                }
            }
            Command::Settle { reservation_id, limits, actual, usage } => {
                let limits = self.pushed_limits.clone().unwrap_or(limits);
                let outcome = self.ledger.settle(&limits, reservation_id, actual, now_ms);
                if outcome.settled {
                    self.usage.count_settled(now_ms, actual.tokens, actual.cost_micros, usage);
                }
                Handled { reply: Reply::Done, events: outcome.events, changed: outcome.settled }
            }
            Command::Release { reservation_id } => {
                let released = self.ledger.release(reservation_id, now_ms);
                Handled { reply: Reply::Done, events: vec![], changed: released }
            }
            Command::Control { control } => {
                self.revocation.apply(&control);
                Handled { reply: Reply::Done, events: vec![], changed: true }
            }
            Command::PushLimits { limits } => {
                self.pushed_limits = Some(limits);
                Handled { reply: Reply::Done, events: vec![], changed: true }
            }
            Command::Report { limits } => {
                let limits = self.pushed_limits.as_ref().unwrap_or(&limits);
                let reply = Reply::Report {
                    usage: self.usage.report(now_ms),
                    limits: self.ledger.limit_uses(limits, now_ms),
                    headroom: self.ledger.headroom(limits, now_ms),
                };
                Handled { reply, events: vec![], changed: false }
            }
        }
    }
}

/// The answer to a secret the object no longer honours: the same 401 as an unknown or disabled
/// key, so a stale KV copy at some edge never changes what the caller sees.
fn revoked_error(revoked: Revoked) -> ApiError {
    match revoked {
        Revoked::Disabled => ApiError::new(Code::KeyDisabled, "This API key has been disabled."),
        Revoked::Deleted | Revoked::Rotated => ApiError::new(Code::InvalidApiKey, "Incorrect API key provided."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioned::check;
    use proptest::prelude::*;
    use std::num::NonZeroU64;

    fn admit(state: &mut KeyState, limits: &Limits, version: u32) -> Reply {
        let ask = Ask { tokens: 10, cost_micros: 5 };
        state.handle(Command::Admit { secret_version: version, limits: limits.clone(), ask }, 1_000).reply
    }

    #[test]
    fn admits_then_refuses_over_rpm() {
        let limits = Limits { rpm: NonZeroU64::new(1), ..Limits::default() };
        let mut state = KeyState::default();
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
        let Reply::Refused(Refusal { error, hold_until_ms }) = admit(&mut state, &limits, 1) else {
            panic!("expected a refusal")
        };
        assert_eq!((error.code(), error.retry_after_s().is_some()), (Code::RateLimitExceeded, true));
        // A full request window: the edge may repeat it, for at most the hold's maximum.
        assert_eq!(hold_until_ms, Some(1_000 + REFUSAL_HOLD_MAX_MS));
    }

    /// The code and hold of a refusal.
    fn refused(reply: Reply) -> Option<(Code, Option<u64>)> {
        match reply {
            Reply::Refused(Refusal { error, hold_until_ms }) => Some((error.code(), hold_until_ms)),
            _ => None,
        }
    }

    #[test]
    fn only_request_window_refusals_may_be_held() {
        let limits = Limits { tpm: NonZeroU64::new(15), ..Limits::default() };
        let mut state = KeyState::default();
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
        // Tokens can free early (a settle below the estimate): never held.
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::TokenLimitExceeded, None)));
        state.handle(Command::Control { control: Control::Disable }, 0);
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::KeyDisabled, None)));
    }

    #[test]
    fn disabled_key_is_refused_before_the_ledger_counts() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        state.handle(Command::Control { control: Control::Disable }, 0);
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::KeyDisabled, None)));
        state.handle(Command::Control { control: Control::Enable }, 0);
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
    }

    #[test]
    fn settle_twice_counts_once() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let settle =
            Command::Settle { reservation_id, limits, actual: Actual { tokens: 3, cost_micros: 1 }, usage: None };
        assert!(state.handle(settle.clone(), 2_000).changed);
        assert!(!state.handle(settle, 2_000).changed);
    }

    fn report(state: &mut KeyState, limits: &Limits) -> (UsageTotals, Vec<LimitUse>) {
        match state.handle(Command::Report { limits: limits.clone() }, 3_000) {
            Handled { reply: Reply::Report { usage, limits, .. }, changed: false, .. } => (usage, limits),
            other => panic!("expected a report, got {other:?}"),
        }
    }

    #[test]
    fn usage_counts_admissions_and_settled_tokens() {
        let limits = Limits { rpm: NonZeroU64::new(5), ..Limits::default() };
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let Reply::Admitted { reservation_id: released, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let usage = Some(Usage::new(7, 0, 3));
        let actual = Actual { tokens: 10, cost_micros: 4 };
        state.handle(Command::Settle { reservation_id, limits: limits.clone(), actual, usage }, 2_000);
        state.handle(Command::Release { reservation_id: released }, 2_000);
        let (usage, uses) = report(&mut state, &limits);
        let total = usage.total;
        assert_eq!(
            (total.requests, total.tokens, total.input_tokens, total.output_tokens, total.cost_micros),
            (2, 10, 7, 3, 4)
        );
        assert_eq!((uses[0].scope.as_str(), uses[0].limit, uses[0].used), ("rpm", 5, 2));
    }

    #[test]
    fn pushed_limits_override_the_records_copy() {
        let stale = Limits::default();
        let mut state = KeyState::default();
        state.handle(Command::PushLimits { limits: Limits { rpm: NonZeroU64::new(1), ..Limits::default() } }, 0);
        assert!(matches!(admit(&mut state, &stale, 1), Reply::Admitted { .. }));
        assert_eq!(refused(admit(&mut state, &stale, 1)).map(|(code, _)| code), Some(Code::RateLimitExceeded));
        assert_eq!(report(&mut state, &stale).1[0].limit, 1);
    }

    #[test]
    fn commands_round_trip_as_json() {
        let command = Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: Some(9) } };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
    }

    /// A state as saved before versions existed (version 1, no `v`).
    const SAVED: &str = r#"{"revocation":{"disabled":false,"deleted":false,"min_version":2,"grace":[1,9000]},
        "pushed_limits":{"rpm":1}}"#;

    #[test]
    fn states_saved_before_versions_read() {
        let state: KeyState = serde_json::from_str(SAVED).unwrap();
        assert_eq!(state.pushed_limits, Some(Limits { rpm: NonZeroU64::new(1), ..Limits::default() }));
        assert_eq!(state.revocation.check(1, 8_999), Ok(()));
        assert!(serde_json::from_str::<KeyState>(r#"{"pushed_limit":{}}"#).is_err(), "unknown members are refused");
    }

    /// A state with every member set, by commands.
    fn busy_state() -> KeyState {
        let limits = Limits { rpm: NonZeroU64::new(100), ..Limits::default() };
        let mut state = KeyState::default();
        admit(&mut state, &limits, 1);
        state.handle(Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: Some(5) } }, 0);
        state.handle(Command::PushLimits { limits }, 0);
        state
    }

    #[test]
    fn the_state_follows_the_version_rule() {
        let state = busy_state();
        check::members_match(&STATE_FORMAT, &state);
        check::version_rule(&STATE_FORMAT, &state, "leases", serde_json::json!([{"id": 1}]));
    }

    /// One command of a generated history: admissions, settles and releases of earlier ones
    /// (by index), controls and pushed limits.
    fn command() -> impl Strategy<Value = (u8, u64, u64, Option<u64>)> {
        (0..5u8, 0..20u64, 0..10_000u64, prop::option::of(1..50u64))
    }

    proptest! {
        #[test]
        fn states_round_trip(history in prop::collection::vec(command(), 0..40)) {
            let mut state = KeyState::default();
            let mut now_ms = 0;
            let limits = Limits { tpm: NonZeroU64::new(5_000), ..Limits::default() };
            for (op, n, step_ms, limit) in history {
                now_ms += step_ms;
                let command = match op {
                    0 => Command::Admit { secret_version: 1, limits: limits.clone(), ask: Ask { tokens: n * 10, cost_micros: n } },
                    1 => Command::Settle {
                        reservation_id: n,
                        limits: limits.clone(),
                        actual: Actual { tokens: n, cost_micros: n },
                        usage: Some(Usage::new(n, 0, n)),
                    },
                    2 => Command::Release { reservation_id: n },
                    3 => Command::Control { control: Control::Rotate { new_version: 1 + n as u32, grace_until_ms: limit } },
                    _ => Command::PushLimits { limits: Limits { rpm: limit.and_then(NonZeroU64::new), ..limits.clone() } },
                };
                state.handle(command, now_ms);
            }
            let json = serde_json::to_string(&state).unwrap();
            prop_assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), state);
        }
    }
}
