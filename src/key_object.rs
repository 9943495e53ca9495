//! The pure behaviour of a key's Durable Object: one [`KeyState`] per key id, changed only by
//! [`KeyState::handle`], one command at a time.
//!
//! Flow: the edge sends `Admit` before forwarding a call (revocation is checked first, then the
//! ledger admits atomically), then exactly one of `Settle` (the upstream answered; true usage)
//! or `Release` (the upstream failed). The control plane sends `Control` on disable, enable,
//! rotate and delete. The object persists the state after every change and keeps the spend
//! events for delivery.

use crate::error::ApiError;
use crate::limits::{Actual, Ask, Headroom, Ledger, Limits, SpendEvent};
use crate::revocation::{Control, Revocation, Revoked};
use serde::{Deserialize, Serialize};

/// What the edge or the control plane asks of a key's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    Admit { secret_version: u32, limits: Limits, ask: Ask },
    Settle { reservation_id: u64, limits: Limits, actual: Actual },
    Release { reservation_id: u64 },
    Control { control: Control },
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reply {
    Admitted { reservation_id: u64, headroom: Headroom },
    /// A finished refusal: the status, `Retry-After` and the error envelope to send as is.
    Refused { status: u16, retry_after_s: Option<u64>, body: String },
    Done,
}

impl Reply {
    fn refused(error: ApiError) -> Reply {
        Reply::Refused { status: error.status, retry_after_s: error.retry_after_s, body: error.body() }
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
pub struct KeyState {
    #[serde(default)]
    revocation: Revocation,
    #[serde(default)]
    ledger: Ledger,
}

impl KeyState {
    pub fn handle(&mut self, command: Command, now_ms: u64) -> Handled {
        match command {
            Command::Admit { secret_version, limits, ask } => {
                if let Err(revoked) = self.revocation.check(secret_version, now_ms) {
                    return Handled { reply: Reply::refused(revoked_error(revoked)), events: vec![], changed: false };
                }
                match self.ledger.admit(&limits, ask, now_ms) {
                    Ok(admitted) => Handled {
                        reply: Reply::Admitted { reservation_id: admitted.reservation_id, headroom: admitted.headroom },
                        events: admitted.events,
                        changed: true,
                    },
                    Err(denial) => Handled {
                        reply: Reply::refused(denial.into_api_error(now_ms)),
                        events: vec![],
                        changed: false,
                    },
                }
            }
            Command::Settle { reservation_id, limits, actual } => {
                let outcome = self.ledger.settle(&limits, reservation_id, actual, now_ms);
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
        }
    }
}

/// The answer to a secret the object no longer honours: the same 401 as an unknown or disabled
/// key, so a stale KV copy at some edge never changes what the caller sees.
fn revoked_error(revoked: Revoked) -> ApiError {
    match revoked {
        Revoked::Disabled => ApiError::unauthenticated("key_disabled", "This API key has been disabled."),
        Revoked::Deleted | Revoked::Rotated => {
            ApiError::unauthenticated("invalid_api_key", "Incorrect API key provided.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        match admit(&mut state, &limits, 1) {
            Reply::Refused { status, retry_after_s, body } => {
                assert_eq!(status, 429);
                assert!(retry_after_s.is_some());
                assert!(body.contains("rate_limit_exceeded"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn disabled_key_is_refused_before_the_ledger_counts() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        state.handle(Command::Control { control: Control::Disable }, 0);
        match admit(&mut state, &limits, 1) {
            Reply::Refused { status, body, .. } => {
                assert_eq!(status, 401);
                assert!(body.contains("key_disabled"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        state.handle(Command::Control { control: Control::Enable }, 0);
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
    }

    #[test]
    fn settle_twice_counts_once() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let settle = Command::Settle { reservation_id, limits, actual: Actual { tokens: 3, cost_micros: 1 } };
        assert!(state.handle(settle.clone(), 2_000).changed);
        assert!(!state.handle(settle, 2_000).changed);
    }

    #[test]
    fn commands_round_trip_as_json() {
        let command = Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: Some(9) } };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
    }
}
