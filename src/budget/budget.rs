//! The ledger of an upper level: a project's or organisation's budget, or a key's object acting
//! as the upper level of edge isolates. It grants leases and counts what they hold.
//!
//! Flow: [`Budget::handle`] takes a holder's message: applies each lease report (what the holder
//! admitted from the lease, what of it settled at which actual, whether it is closed), closes the
//! holder's leases it no longer lists, and, if the holder wants one, sizes a slice (`sizing`) and
//! grants it when the waiting call fits every limit, or refuses naming the limit. A direct call
//! (a per-call admission at the upper itself, e.g. a key object serving an edge without a lease)
//! is a lease of one call closed at once: [`Budget::admit_call`], then [`Budget::settle_call`].
//! The ledger is pure: time is passed in, the object stores it whole.
//!
//! # Guarantees
//! * THE invariant, for every limit in force at a grant: committed + reserved + outstanding
//!   leases ≤ limit. Request windows: a lease's requests count in every request window at the
//!   bucket of its grant, so for every aligned span the requests granted never exceed the limit;
//!   unused ones are uncounted from that bucket when returned (if it is still in the window).
//!   Token windows likewise, with settled calls' estimates replaced by their actuals (the token
//!   bound of a key's ledger: exceeded only by overruns `actual > estimate`). Hard spend caps:
//!   committed + reserved + outstanding ≤ cap, so committed spend never passes a hard cap while
//!   each actual is within its estimate. In flight: open calls + slots of open leases ≤
//!   `max_in_flight`. Leasing therefore never overshoots a limit a per-call ledger would keep.
//! * Calls counted at their grant: a call admitted from a lease counts in the windows at the
//!   bucket of its lease's grant, at most the lease interval before the call.
//! * Under-admission: a call is refused only if it would not fit with every live lease's unused
//!   part counted; those unused parts are returned with the holder's next message, or counted
//!   until the lease ends (its interval) and then, unreported, until a report or the TTL below.
//!   Each slice is at most its fair share (`sizing`), and exactly one call when headroom is low.
//! * Idempotent: repeated, reordered or lost messages change nothing twice (see `protocol`).
//! * Holders that go silent or restart: a lease no report closes counts its whole slice until
//!   [`RESERVATION_TTL_MS`] after its grant (its calls may still be running); then it is settled
//!   like a stale reservation: its held cost is committed at its estimate, its slots freed, and
//!   it is remembered until [`SETTLE_DEADLINE_MS`] after its grant so a late report corrects it
//!   in the periods the expiry charged.
//! * Bounded state: at most [`MAX_LEASES`] leases are remembered and [`MAX_HOLDERS`] holders;
//!   past them a grant is refused (fail closed), never a record forgotten early.
//! * Time: a `now_ms` before the latest time recorded reads as that time.
//! * Spend events: each threshold of each cap fires once per period, as for a key.
//!
//! [`RESERVATION_TTL_MS`]: crate::limits::RESERVATION_TTL_MS
//! [`SETTLE_DEADLINE_MS`]: crate::limits::SETTLE_DEADLINE_MS

use super::protocol::{HolderMessage, UpperReply};
use crate::limits::{Actual, Ask, Headroom, Level, LimitDenial, LimitUse, Limits, SpendEvent};
use serde::{Deserialize, Serialize};

/// The most leases (open, closed with calls in flight, or expired and remembered) at once.
pub const MAX_LEASES: usize = 4096;
/// The most holders remembered at once (a holder is forgotten once it holds no lease and has
/// been silent for [`RESERVATION_TTL_MS`](crate::limits::RESERVATION_TTL_MS)).
pub const MAX_HOLDERS: usize = 1024;

/// The counters of one upper level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {}

/// The result of a holder's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub reply: UpperReply,
    /// Spend thresholds newly reached in their period.
    pub events: Vec<SpendEvent>,
    /// Whether the state changed (and must be stored).
    pub changed: bool,
}

impl Budget {
    pub fn new() -> Budget {
        Budget::default()
    }

    /// Applies `message` under `limits` at `now_ms` and answers it; refusals name `level`.
    /// `granting: false` (the upper was stopped) answers a want with `Stopped`, still applying
    /// the reports.
    pub fn handle(
        &mut self,
        limits: &Limits,
        level: Level,
        message: HolderMessage,
        granting: bool,
        now_ms: u64,
    ) -> Handled {
        let _ = (limits, level, message, granting, now_ms);
        todo!()
    }

    /// A direct call: admits `ask` if it fits every limit (as a lease of one call, used at once)
    /// and answers its id, or the denial that lasts longest; a denial changes nothing.
    pub fn admit_call(&mut self, limits: &Limits, ask: Ask, now_ms: u64) -> Result<u64, LimitDenial> {
        let _ = (limits, ask, now_ms);
        todo!()
    }

    /// Ends direct call `id` at `actual` (zero: released); an unknown or repeated id changes
    /// nothing and answers false.
    pub fn settle_call(&mut self, limits: &Limits, id: u64, actual: Actual, now_ms: u64) -> (bool, Vec<SpendEvent>) {
        let _ = (limits, id, actual, now_ms);
        todo!()
    }

    /// Records `now_ms` and settles leases past their TTL at their estimate (an alarm may call
    /// it; every other step does it too). Answers the spend events it raised.
    pub fn catch_up(&mut self, limits: &Limits, now_ms: u64) -> Vec<SpendEvent> {
        let _ = (limits, now_ms);
        todo!()
    }

    /// What is left at `now_ms` under `limits`, outstanding leases counted as used.
    pub fn headroom(&self, limits: &Limits, now_ms: u64) -> Headroom {
        let _ = (limits, now_ms);
        todo!()
    }

    /// Every limit `limits` sets and what counts against it (as a key's `limit_uses`).
    pub fn limit_uses(&self, limits: &Limits, now_ms: u64) -> Vec<LimitUse> {
        let _ = (limits, now_ms);
        todo!()
    }
}
