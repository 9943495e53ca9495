//! What a key has left, for rate-limit response headers: the tightest request window, the
//! tightest token window, and spend left under the caps with the highest warning reached; and,
//! for usage reports, the state of every configured limit ([`LimitUse`]).

use super::config::Limits;
use super::counters;
use super::ledger::Ledger;
use serde::{Deserialize, Serialize};

/// Headroom of the configured limits; a part is `None` when none of its limits is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    /// The request window with the least remaining (ties: the shortest window).
    pub requests: Option<Remaining>,
    /// The token window with the least remaining (ties: the shortest window).
    pub tokens: Option<Remaining>,
    pub spend: Option<SpendHeadroom>,
}

/// What one window has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    pub limit: u64,
    pub remaining: u64,
    /// When everything now counted has left the window, so `remaining` is back to `limit`
    /// (now, if nothing counts).
    pub reset_ms: u64,
}

/// The state of one configured limit, for usage reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LimitUse {
    /// As in a 429's `limit.scope`: `rpm` … `tpd`, `max_in_flight`, `spend_daily`, `spend_monthly`,
    /// `spend_total`.
    pub scope: String,
    /// Requests, tokens, requests in flight, or micro-dollars.
    pub limit: u64,
    /// What counts now: the window's requests or tokens, the requests in flight, or committed plus
    /// reserved spend in the current period.
    pub used: u64,
    /// What is left under the limit now: `limit - used`, at least 0.
    pub remaining: u64,
    /// When the window is empty again or the spend period resets; absent for `max_in_flight`
    /// and `spend_total`.
    pub reset_at_ms: Option<u64>,
}

impl LimitUse {
    pub(super) fn new(scope: &str, limit: u64, used: u64, reset_at_ms: Option<u64>) -> LimitUse {
        LimitUse { scope: scope.to_owned(), limit, used, remaining: limit.saturating_sub(used), reset_at_ms }
    }
}

/// What the spend caps have left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendHeadroom {
    /// The least over all caps (hard or warn) of cap − committed − reserved, in micro-dollars.
    pub remaining_micros: u64,
    /// The highest threshold percent committed spend has reached in any current period.
    pub warning: Option<u8>,
}

impl Ledger {
    /// The headroom at `now_ms` under `limits`.
    pub fn headroom(&self, limits: &Limits, now_ms: u64) -> Headroom {
        counters::headroom(self, limits, self.time(now_ms))
    }

    /// Every limit `limits` sets, in the order rpm, rph, rpd, tpm, tpd, max_in_flight, then the
    /// spend caps as configured.
    pub fn limit_uses(&self, limits: &Limits, now_ms: u64) -> Vec<LimitUse> {
        counters::limit_uses(self, limits, self.time(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::super::charge::Ask;
    use super::super::config::{CapMode, SpendCap, SpendPeriod};
    use super::*;
    use std::num::NonZeroU64;

    #[test]
    fn limit_uses_lists_every_configured_limit() {
        let limits = Limits {
            rpm: NonZeroU64::new(10),
            tpd: NonZeroU64::new(1_000),
            max_in_flight: NonZeroU64::new(4),
            spend: vec![SpendCap {
                period: SpendPeriod::Daily,
                limit_micros: NonZeroU64::new(500).unwrap(),
                mode: CapMode::Hard,
                warn_at_percent: vec![],
            }],
            ..Limits::default()
        };
        let mut ledger = Ledger::new();
        let admitted = ledger.admit(&limits, Ask { tokens: 40, cost_micros: 30 }, 1_000).unwrap();
        ledger.settle(&limits, admitted.reservation_id, Ask { tokens: 25, cost_micros: 20 }, 1_500);
        ledger.admit(&limits, Ask { tokens: 10, cost_micros: 5 }, 2_000).unwrap();
        let uses = ledger.limit_uses(&limits, 2_000);
        let summary: Vec<(&str, u64, u64)> = uses.iter().map(|u| (u.scope.as_str(), u.limit, u.used)).collect();
        assert_eq!(summary, [("rpm", 10, 2), ("tpd", 1_000, 35), ("max_in_flight", 4, 1), ("spend_daily", 500, 25)]);
        assert_eq!(uses[0].reset_at_ms, Some(62_000), "the rpm window empties a minute after the last request");
        assert_eq!(uses[2].reset_at_ms, None);
        assert_eq!(uses[3].reset_at_ms, Some(86_400_000));
        assert!(Ledger::new().limit_uses(&Limits::default(), 0).is_empty());
    }
}
