//! What a set of counters holds, read the same way by a key's ledger and by an upper level's
//! budget: the windows, committed and reserved spend, what is in flight. From it, the one
//! admission check ([`denial`]) and the one account of what is left ([`headroom`],
//! [`limit_uses`]), so both refuse, and report, alike.

use super::charge::Ask;
use super::config::{CapMode, Limits, SpendCap, SpendPeriod};
use super::denial::{spend_scope, LimitDenial};
use super::headroom::{Headroom, LimitUse, Remaining, SpendHeadroom};
use super::reservations::MAX_OPEN_RESERVATIONS;
use super::scope::WindowScope;
use super::spend::highest_crossed;
use super::window::Window;

/// Counters read at a time `now` the holder of the counters has already brought forward (never
/// before the latest time they recorded).
pub(crate) trait Counters {
    /// The window of `scope`.
    fn window(&self, scope: WindowScope) -> &Window;
    /// Spend committed in the period containing `now` (what expired at its estimate included).
    fn committed(&self, period: SpendPeriod, now: u64) -> u64;
    /// Spend reserved at `now` by what is in flight.
    fn reserved(&self, now: u64) -> u64;
    /// Calls in flight at `now` (in-flight slots held).
    fn in_flight(&self, now: u64) -> u64;
    /// Records kept at `now`, bounded by [`MAX_OPEN_RESERVATIONS`].
    fn records(&self, now: u64) -> u64;
}

/// Every limit `ask` would break at `now`, reduced to the one that lasts longest (ties: the first
/// in the order `max_in_flight`, the bound on records, rpm … tpd, the spend caps as configured).
pub(crate) fn denial(c: &impl Counters, limits: &Limits, ask: &Ask, now: u64) -> Option<LimitDenial> {
    let open = c.in_flight(now);
    let in_flight = limits
        .max_in_flight
        .map(|limit| limit.get())
        .filter(|&limit| open >= limit)
        .map(|limit| LimitDenial::InFlight { limit, open });
    let records = c.records(now);
    let tracked = (records >= MAX_OPEN_RESERVATIONS as u64).then_some(LimitDenial::TooManyInFlight { open: records });
    let windows = WindowScope::ALL.into_iter().filter_map(|scope| window_denial(c, limits, scope, ask, now));
    let caps = limits.spend.iter().filter_map(|cap| spend_denial(c, cap, ask, now));
    in_flight.into_iter().chain(tracked).chain(windows).chain(caps).reduce(|kept, next| {
        if next.outlasts(&kept) {
            next
        } else {
            kept
        }
    })
}

fn window_denial(c: &impl Counters, limits: &Limits, scope: WindowScope, ask: &Ask, now: u64) -> Option<LimitDenial> {
    let limit = scope.limit(limits)?;
    let window = c.window(scope);
    let (at, asked) = (scope.bucket_of(now), scope.amount(ask));
    match window.earliest_fit(at, asked, limit) {
        None => Some(LimitDenial::TooLarge { scope, limit, asked }),
        Some(fit) if fit <= at => None,
        Some(fit) => {
            Some(LimitDenial::Window { scope, limit, used: window.used(at), asked, reset_at_ms: scope.start_of(fit) })
        }
    }
}

fn spend_denial(c: &impl Counters, cap: &SpendCap, ask: &Ask, now: u64) -> Option<LimitDenial> {
    if cap.mode != CapMode::Hard {
        return None;
    }
    let (committed, reserved) = (c.committed(cap.period, now), c.reserved(now));
    let limit = cap.limit_micros.get();
    let total = u128::from(committed) + u128::from(reserved) + u128::from(ask.cost_micros);
    (total > u128::from(limit)).then(|| LimitDenial::Spend {
        period: cap.period,
        limit_micros: limit,
        committed_micros: committed,
        reserved_micros: reserved,
        asked_micros: ask.cost_micros,
        reset_at_ms: cap.period.next_reset_ms(now),
    })
}

/// The headroom at `now` under `limits`.
pub(crate) fn headroom(c: &impl Counters, limits: &Limits, now: u64) -> Headroom {
    Headroom {
        requests: tightest(c, limits, &WindowScope::REQUESTS, now),
        tokens: tightest(c, limits, &WindowScope::TOKENS, now),
        spend: spend_headroom(c, limits, now),
    }
}

/// Every limit `limits` sets, in the order rpm, rph, rpd, tpm, tpd, max_in_flight, then the
/// spend caps as configured.
pub(crate) fn limit_uses(c: &impl Counters, limits: &Limits, now: u64) -> Vec<LimitUse> {
    let windows = WindowScope::ALL.into_iter().filter_map(|scope| {
        let limit = scope.limit(limits)?;
        let (used, reset_ms) = window_use(c, scope, now);
        Some(LimitUse::new(scope.name(), limit, used, Some(reset_ms)))
    });
    let in_flight =
        limits.max_in_flight.map(|limit| LimitUse::new("max_in_flight", limit.get(), c.in_flight(now), None));
    let reserved = c.reserved(now);
    let caps = limits.spend.iter().map(|cap| {
        let used = c.committed(cap.period, now).saturating_add(reserved);
        LimitUse::new(spend_scope(cap.period), cap.limit_micros.get(), used, cap.period.next_reset_ms(now))
    });
    windows.chain(in_flight).chain(caps).collect()
}

fn tightest(c: &impl Counters, limits: &Limits, scopes: &[WindowScope], now: u64) -> Option<Remaining> {
    scopes
        .iter()
        .filter_map(|&scope| {
            let limit = scope.limit(limits)?;
            let (used, reset_ms) = window_use(c, scope, now);
            Some(Remaining { limit, remaining: limit.saturating_sub(used), reset_ms })
        })
        .min_by_key(|r| r.remaining)
}

/// What `scope`'s window counts at `now` and when it is empty again (now, if it is).
fn window_use(c: &impl Counters, scope: WindowScope, now: u64) -> (u64, u64) {
    let (window, at) = (c.window(scope), scope.bucket_of(now));
    (window.used(at), window.empty_at(at).map_or(now, |bucket| scope.start_of(bucket)))
}

fn spend_headroom(c: &impl Counters, limits: &Limits, now: u64) -> Option<SpendHeadroom> {
    let reserved = c.reserved(now);
    let per_cap = limits.spend.iter().map(|cap| {
        let committed = c.committed(cap.period, now);
        let remaining = cap.limit_micros.get().saturating_sub(committed.saturating_add(reserved));
        (remaining, highest_crossed(cap, committed))
    });
    per_cap
        .reduce(|(r1, w1), (r2, w2)| (r1.min(r2), w1.max(w2)))
        .map(|(remaining_micros, warning)| SpendHeadroom { remaining_micros, warning })
}
