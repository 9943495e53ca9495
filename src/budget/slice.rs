//! What a lease grants ([`Slice`]) and what a holder counts of the calls it admitted from one
//! ([`Tally`]).
//!
//! A dimension of a slice is `None` when the upper level has no limit in it (no request window
//! set, no token window, no hard spend cap, no `max_in_flight`): the holder admits without
//! counting it down, and the upper counts what the holder reports.

use crate::limits::Charge;
use serde::{Deserialize, Serialize};

/// The headroom one lease hands a holder: calls it may admit, tokens and micro-dollars their
/// estimates may reserve, calls it may have open at once.
///
/// Invariant (of a slice granted by [`Budget`](super::Budget)): every `Some` dimension is at
/// least what one call of the asked size needs (`requests ≥ 1`, `slots ≥ 1`, `tokens ≥ ask.tokens`,
/// `cost_micros ≥ ask.cost_micros`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    /// In-flight slots: calls admitted from this lease and not settled, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u64>,
}

impl Slice {
    /// Whether a call estimated at `ask` fits once `used` is admitted and `open` calls of this
    /// lease are in flight.
    pub fn fits(&self, used: &Tally, open: u64, ask: Charge) -> bool {
        let _ = (used, open, ask);
        todo!()
    }
}

/// Calls and their summed estimates (or actuals): what a holder admitted from a lease, or
/// settled of it. Cumulative over the lease's life, so a repeated or lost report never counts
/// twice or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub calls: u64,
    #[serde(default)]
    pub charge: Charge,
}

impl Tally {
    /// This tally with one more call of `charge`.
    pub fn plus(self, charge: Charge) -> Tally {
        let _ = charge;
        todo!()
    }
}
