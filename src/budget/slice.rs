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
        self.covers(used, open, &Tally::default().plus(ask))
    }

    /// Whether `more` (calls, each open at once, and their summed estimates) fits once `used`
    /// is admitted and `open` calls of this lease are in flight.
    pub fn covers(&self, used: &Tally, open: u64, more: &Tally) -> bool {
        let within = |limit: Option<u64>, used: u64, more: u64| limit.is_none_or(|l| used.saturating_add(more) <= l);
        within(self.requests, used.calls, more.calls)
            && within(self.tokens, used.charge.tokens, more.charge.tokens)
            && within(self.cost_micros, used.charge.cost_micros, more.charge.cost_micros)
            && within(self.slots, open, more.calls)
    }

    /// This slice narrowed to `cover` in every dimension `cover` limits (a dimension limited in
    /// neither stays unlimited).
    pub fn within(&self, cover: &Slice) -> Slice {
        let min = |mine: Option<u64>, cover: Option<u64>| match (mine, cover) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Slice {
            requests: min(self.requests, cover.requests),
            tokens: min(self.tokens, cover.tokens),
            cost_micros: min(self.cost_micros, cover.cost_micros),
            slots: min(self.slots, cover.slots),
        }
    }

    /// What a reservation of this whole slice holds: its calls (as many open at once) and its
    /// tokens and micro-dollars, zero in a dimension it leaves unlimited.
    pub fn as_tally(&self) -> Tally {
        Tally {
            calls: self.requests.unwrap_or(0),
            charge: Charge { tokens: self.tokens.unwrap_or(0), cost_micros: self.cost_micros.unwrap_or(0) },
        }
    }

    /// What is left of each limited dimension once `used` is admitted and `open` calls of this
    /// lease are in flight.
    pub fn left(&self, used: &Tally, open: u64) -> Slice {
        let less = |limit: Option<u64>, used: u64| limit.map(|l| l.saturating_sub(used));
        Slice {
            requests: less(self.requests, used.calls),
            tokens: less(self.tokens, used.charge.tokens),
            cost_micros: less(self.cost_micros, used.charge.cost_micros),
            slots: less(self.slots, open),
        }
    }
}

/// What a holder's current lease still holds, and when it stops admitting (the holder's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceLeft {
    #[serde(flatten)]
    pub left: Slice,
    pub ends_at_ms: u64,
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
        Tally {
            calls: self.calls.saturating_add(1),
            charge: Charge {
                tokens: self.charge.tokens.saturating_add(charge.tokens),
                cost_micros: self.charge.cost_micros.saturating_add(charge.cost_micros),
            },
        }
    }

    /// What one call of it averages (zero for no call).
    pub fn per_call(&self) -> Charge {
        match self.calls {
            0 => Charge::ZERO,
            n => Charge { tokens: self.charge.tokens.div_ceil(n), cost_micros: self.charge.cost_micros.div_ceil(n) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_fits_every_limited_dimension_or_none() {
        let slice = Slice { requests: Some(2), tokens: Some(100), cost_micros: None, slots: Some(1) };
        let one = Tally::default().plus(Charge { tokens: 60, cost_micros: 1_000_000 });
        assert!(slice.fits(&Tally::default(), 0, Charge { tokens: 100, cost_micros: u64::MAX }));
        assert!(!slice.fits(&one, 0, Charge { tokens: 41, cost_micros: 0 }), "tokens");
        assert!(slice.fits(&one, 0, Charge { tokens: 40, cost_micros: 0 }));
        assert!(!slice.fits(&one, 1, Charge::ZERO), "slots");
        assert!(!slice.fits(&one.plus(Charge::ZERO), 0, Charge::ZERO), "requests");
        assert!(Slice::default().fits(&one, 7, Charge { tokens: u64::MAX, cost_micros: 1 }), "nothing limited");
        assert_eq!(
            one.plus(Charge { tokens: 1, cost_micros: 0 }).per_call(),
            Charge { tokens: 31, cost_micros: 500_000 }
        );
        assert_eq!(Tally::default().per_call(), Charge::ZERO);
        let left = Slice { requests: Some(1), tokens: Some(40), cost_micros: None, slots: Some(0) };
        assert_eq!(slice.left(&one, 1), left, "what the call took, of each limited dimension");
    }
}
