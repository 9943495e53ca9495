//! What a key has left, for rate-limit response headers: the tightest request window, the
//! tightest token window, and spend left under the caps with the highest warning reached.

use super::config::Limits;
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

    fn tightest(&self, limits: &Limits, scopes: &[WindowScope], now: u64) -> Option<Remaining> {
        scopes
            .iter()
            .filter_map(|&scope| {
                let limit = scope.limit(limits)?;
                let (window, at) = (self.window(scope), scope.bucket_of(now));
                let reset_ms = window.empty_at(at).map_or(now, |bucket| scope.start_of(bucket));
                Some(Remaining { limit, remaining: limit.saturating_sub(window.used(at)), reset_ms })
            })
            .min_by_key(|r| r.remaining)
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
