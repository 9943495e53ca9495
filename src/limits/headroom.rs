//! What a key has left, for rate-limit response headers: the tightest request window, the
//! tightest token window, and spend left under the caps with the highest warning reached; and,
//! for usage reports, the state of every configured limit ([`LimitUse`]).

use super::config::Limits;
use super::denial::spend_scope;
use super::ledger::Ledger;
use super::scope::WindowScope;
use super::spend::highest_crossed;
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
    fn new(scope: &str, limit: u64, used: u64, reset_at_ms: Option<u64>) -> LimitUse {
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
        let now = self.time(now_ms);
        Headroom {
            requests: self.tightest(limits, &WindowScope::REQUESTS, now),
            tokens: self.tightest(limits, &WindowScope::TOKENS, now),
            spend: self.spend_headroom(limits, now),
        }
    }

    /// Every limit `limits` sets, in the order rpm, rph, rpd, tpm, tpd, max_in_flight, then the
    /// spend caps as configured.
    pub fn limit_uses(&self, limits: &Limits, now_ms: u64) -> Vec<LimitUse> {
        let now = self.time(now_ms);
        let windows = WindowScope::ALL.into_iter().filter_map(|scope| {
            let limit = scope.limit(limits)?;
            let (used, reset_ms) = self.window_use(scope, now);
            Some(LimitUse::new(scope.name(), limit, used, Some(reset_ms)))
        });
        let in_flight =
            limits.max_in_flight.map(|limit| LimitUse::new("max_in_flight", limit.get(), self.in_flight(now), None));
        let reserved = self.reserved(now);
        let caps = limits.spend.iter().map(|cap| {
            let used = self.committed(cap.period, now).saturating_add(reserved);
            LimitUse::new(spend_scope(cap.period), cap.limit_micros.get(), used, cap.period.next_reset_ms(now))
        });
        windows.chain(in_flight).chain(caps).collect()
    }

    fn tightest(&self, limits: &Limits, scopes: &[WindowScope], now: u64) -> Option<Remaining> {
        scopes
            .iter()
            .filter_map(|&scope| {
                let limit = scope.limit(limits)?;
                let (used, reset_ms) = self.window_use(scope, now);
                Some(Remaining { limit, remaining: limit.saturating_sub(used), reset_ms })
            })
            .min_by_key(|r| r.remaining)
    }

    /// What `scope`'s window counts at `now` and when it is empty again (now, if it is).
    fn window_use(&self, scope: WindowScope, now: u64) -> (u64, u64) {
        let (window, at) = (self.window(scope), scope.bucket_of(now));
        (window.used(at), window.empty_at(at).map_or(now, |bucket| scope.start_of(bucket)))
    }

    fn spend_headroom(&self, limits: &Limits, now: u64) -> Option<SpendHeadroom> {
        let reserved = self.reserved(now);
        let per_cap = limits.spend.iter().map(|cap| {
            let committed = self.committed(cap.period, now);
            let remaining = cap.limit_micros.get().saturating_sub(committed.saturating_add(reserved));
            (remaining, highest_crossed(cap, committed))
        });
        per_cap
            .reduce(|(r1, w1), (r2, w2)| (r1.min(r2), w1.max(w2)))
            .map(|(remaining_micros, warning)| SpendHeadroom { remaining_micros, warning })
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
