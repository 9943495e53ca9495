//! How large a slice is: sized to the holder's observed rate, capped by a fair share of the
//! headroom, never below the waiting call, and shrinking to exactly that call as headroom runs
//! low.
//!
//! Rule, per limited dimension (requests, tokens, micro-dollars, in-flight slots):
//! * demand: what the holder's previous lease used, doubled if it used it all before it ended
//!   (at least one call; the first lease: one call), in calls of the size the holder's calls
//!   averaged (at least the waiting call's);
//! * fair share: the free headroom (limit − committed − reserved − outstanding leases) divided
//!   by twice the holders active in the last [`ACTIVE_MS`];
//! * the slice is the smaller of the two, but at least the waiting call; if the waiting call
//!   alone does not fit, the dimension refuses.
//!
//! So when the free headroom is below two calls per active holder, a slice is exactly what the
//! waiting call needs: admission is exact per call.

/// An edge isolate's lease of a hot key's object: 1 s, which bounds revocation for leased keys.
pub const EDGE_LEASE_MS: u64 = 1_000;
/// A key object's lease of its project's and organisation's objects.
pub const KEY_LEASE_MS: u64 = 2_000;
/// The longest lease an upper level grants, whatever a holder asks.
pub const MAX_LEASE_MS: u64 = 5_000;
/// A holder counts as active for fair shares this long after its latest lease.
pub const ACTIVE_MS: u64 = 10_000;

use super::slice::{Slice, Tally};
use crate::limits::Charge;
use serde::{Deserialize, Serialize};

/// The most calls one slice is sized for, whatever the rate.
pub const MAX_DEMAND_CALLS: u64 = 1 << 20;

/// The headroom free at a grant in each limited dimension (`None`: not limited): limit minus
/// everything counted, outstanding leases included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Free {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_micros: Option<u64>,
    pub slots: Option<u64>,
}

/// What a holder is expected to use in its next lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    pub calls: u64,
    /// What its calls averaged.
    #[serde(default)]
    pub per_call: Charge,
}

impl Default for Demand {
    /// A holder never seen: one call.
    fn default() -> Self {
        Demand { calls: 1, per_call: Charge::ZERO }
    }
}

impl Demand {
    /// After a lease that ended with `used`: twice what it used if it ran out (`exhausted`:
    /// asked again before it ended), else what it used and one more.
    pub fn after(self, used: &Tally, exhausted: bool) -> Demand {
        let calls = if exhausted { used.calls.saturating_mul(2) } else { used.calls.saturating_add(1) };
        let per_call = if used.calls > 0 { used.per_call() } else { self.per_call };
        Demand { calls: calls.clamp(1, MAX_DEMAND_CALLS), per_call }
    }
}

/// The slice for a call of `need` that fits `free`, for a holder of `demand` among `active`
/// holders (at least 1); exactly `need` when `exact`.
pub fn size(free: &Free, demand: &Demand, need: Charge, active: u64, exact: bool) -> Slice {
    let calls = if exact { 1 } else { demand.calls };
    let per_call = Charge {
        tokens: demand.per_call.tokens.max(need.tokens),
        cost_micros: demand.per_call.cost_micros.max(need.cost_micros),
    };
    let share = |free: u64| free / active.max(1).saturating_mul(2);
    // Between what one call needs and the larger of that and the fair share, never above free.
    let dimension = |free: Option<u64>, one: u64, wanted: u64| {
        free.map(|free| if exact { one } else { wanted.min(share(free).max(one)).max(one).min(free.max(one)) })
    };
    Slice {
        requests: dimension(free.requests, 1, calls),
        tokens: dimension(free.tokens, need.tokens, calls.saturating_mul(per_call.tokens)),
        cost_micros: dimension(free.cost_micros, need.cost_micros, calls.saturating_mul(per_call.cost_micros)),
        slots: dimension(free.slots, 1, calls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(n: u64) -> Free {
        Free { requests: Some(n), tokens: Some(n * 100), cost_micros: Some(n * 10), slots: Some(n) }
    }

    const CALL: Charge = Charge { tokens: 100, cost_micros: 10 };

    #[test]
    fn demand_doubles_when_used_up_and_follows_use_otherwise() {
        let used = Tally { calls: 8, charge: Charge { tokens: 800, cost_micros: 80 } };
        let d = Demand::default().after(&used, true);
        assert_eq!(d, Demand { calls: 16, per_call: CALL });
        assert_eq!(d.after(&Tally { calls: 3, ..used }, false).calls, 4);
        assert_eq!(d.after(&Tally::default(), false), Demand { calls: 1, per_call: CALL }, "idle: one call");
        assert_eq!(Demand::default().after(&Tally { calls: u64::MAX, ..used }, true).calls, MAX_DEMAND_CALLS);
    }

    #[test]
    fn a_slice_is_the_demand_capped_by_a_fair_share() {
        let demand = Demand { calls: 10, per_call: CALL };
        let s = size(&free(1_000), &demand, CALL, 4, false);
        assert_eq!(s, Slice { requests: Some(10), tokens: Some(1_000), cost_micros: Some(100), slots: Some(10) });
        let s = size(&free(40), &demand, CALL, 4, false);
        assert_eq!(
            s,
            Slice { requests: Some(5), tokens: Some(500), cost_micros: Some(50), slots: Some(5) },
            "40 / (2 × 4)"
        );
    }

    #[test]
    fn slices_shrink_to_one_call_as_headroom_runs_low() {
        let demand = Demand { calls: 10, per_call: CALL };
        for n in [1, 2, 7, 15] {
            let s = size(&free(n), &demand, CALL, 8, false);
            assert_eq!(s, Slice { requests: Some(1), tokens: Some(100), cost_micros: Some(10), slots: Some(1) }, "{n}");
        }
        let exact = size(&free(1_000), &demand, CALL, 1, true);
        assert_eq!(exact, Slice { requests: Some(1), tokens: Some(100), cost_micros: Some(10), slots: Some(1) });
        let big = Charge { tokens: 5_000, cost_micros: 1 };
        assert_eq!(size(&free(100), &demand, big, 1, false).tokens, Some(5_000), "at least the waiting call");
    }

    #[test]
    fn unlimited_dimensions_stay_unlimited() {
        let s = size(&Free::default(), &Demand::default(), CALL, 3, false);
        assert_eq!(s, Slice::default());
    }
}
