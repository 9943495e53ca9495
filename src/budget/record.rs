//! The upper level's record of one lease, from its grant until it is finished, and what it
//! counts in each counter.
//!
//! A lease counts, in every dimension, the most its holder may still need: while it is open
//! (neither closed by a report nor ended by the holder's silence past its TTL) its whole slice
//! with the settled calls' estimates replaced by their actuals; once closed, what its holder
//! reported using, likewise. A dimension the slice left unlimited counts what was reported.
//!
//! Flow: [`LeaseRecord::granted`] at the grant; [`LeaseRecord::apply`] for every report of its
//! holder (cumulative, so the newest wins); [`LeaseRecord::close_unused`] when its holder's next
//! message shows it never took it; [`LeaseRecord::expire`] past its TTL. The budget applies the
//! difference of [`LeaseRecord::footprint`] before and after each change to its counters.

use super::protocol::LeaseReport;
use super::slice::{Slice, Tally};
use crate::limits::{Charge, WindowScope, RESERVATION_TTL_MS, SETTLE_DEADLINE_MS};
use serde::{Deserialize, Serialize};

/// What a holder reported of a lease (all zero until its first report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub used: Tally,
    #[serde(default)]
    pub settled: Tally,
    #[serde(default)]
    pub actual: Charge,
}

/// A lease past its TTL, settled at its estimate at `charged_ms`: the spend periods containing
/// `charged_ms` hold `micros` for it (its held cost then, corrected by later reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charged {
    pub charged_ms: u64,
    pub micros: u64,
}

/// One lease as the upper level remembers it.
///
/// Invariant: `reported` only grows (cumulative reports, newest applied last), except that once
/// `closed` its `used` may only shrink in a dimension its slice limits ([`LeaseRecord::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: u64,
    /// Its holder and the holder's epoch; absent for a direct call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<(String, u64)>,
    /// The `seq` of the message it answered.
    #[serde(default)]
    pub seq: u64,
    pub granted_ms: u64,
    /// Its holder admits nothing from it after this (grant + valid_ms).
    pub ends_ms: u64,
    pub slice: Slice,
    #[serde(default)]
    pub reported: Reported,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged: Option<Charged>,
}

/// What a lease counts: requests and tokens in the windows at the bucket of its grant, the cost
/// it holds (reserved while fresh, charged once expired) and the actual cost of its settled
/// calls (committed when reported), and the in-flight slots it holds (while fresh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub requests: u64,
    pub tokens: u64,
    pub held_micros: u64,
    pub actual_micros: u64,
    pub slots: u64,
}

impl Footprint {
    /// What it counts in the window of `scope`.
    pub fn counted(&self, scope: WindowScope) -> u64 {
        if scope.counts_tokens() {
            self.tokens
        } else {
            self.requests
        }
    }
}

impl LeaseRecord {
    pub fn granted(id: u64, holder: Option<(String, u64)>, seq: u64, now: u64, valid_ms: u64, slice: Slice) -> Self {
        LeaseRecord {
            id,
            holder,
            seq,
            granted_ms: now,
            ends_ms: now.saturating_add(valid_ms),
            slice,
            reported: Reported::default(),
            charged: None,
        }
    }

    /// What it counts now (see [`Footprint`]): while open, the most its holder may still use —
    /// the whole slice in each limited dimension; once closed, what was used; in both, settled
    /// calls at their actuals.
    pub fn footprint(&self) -> Footprint {
        let r = &self.reported;
        let most = |granted: Option<u64>, used: u64| match granted {
            Some(granted) if !r.closed => granted.max(used),
            _ => used,
        };
        let open_calls = r.used.calls.saturating_sub(r.settled.calls);
        Footprint {
            requests: most(self.slice.requests, r.used.calls),
            tokens: most(self.slice.tokens, r.used.charge.tokens)
                .saturating_sub(r.settled.charge.tokens)
                .saturating_add(r.actual.tokens),
            held_micros: most(self.slice.cost_micros, r.used.charge.cost_micros)
                .saturating_sub(r.settled.charge.cost_micros),
            actual_micros: r.actual.cost_micros,
            slots: if self.charged.is_some() { 0 } else { most(self.slice.slots, open_calls) },
        }
    }

    /// Takes a newer report of its holder: a closed lease stays closed, and what it used never
    /// grows again in a dimension its slice limits (the unused part went back and may be granted
    /// elsewhere) but may shrink (a key object returning the unused part of an edge slice it had
    /// reserved from this lease in bulk, [`Holder::reserve`](super::Holder::reserve)); a
    /// dimension the slice leaves unlimited follows the reports.
    pub fn apply(&mut self, report: &LeaseReport) {
        let was = self.reported;
        let used = if was.closed {
            let follow = |limit: Option<u64>, was: u64, now: u64| if limit.is_some() { was.min(now) } else { now };
            Tally {
                calls: follow(self.slice.requests, was.used.calls, report.used.calls),
                charge: Charge {
                    tokens: follow(self.slice.tokens, was.used.charge.tokens, report.used.charge.tokens),
                    cost_micros: follow(
                        self.slice.cost_micros,
                        was.used.charge.cost_micros,
                        report.used.charge.cost_micros,
                    ),
                },
            }
        } else {
            report.used
        };
        self.reported =
            Reported { closed: was.closed || report.closed, used, settled: report.settled, actual: report.actual };
    }

    /// Its holder never took it: closed, nothing used beyond what was reported.
    pub fn close_unused(&mut self) {
        self.reported.closed = true;
    }

    /// Whether it is past its TTL at `now`: its holder has been silent about its calls for the
    /// longest a call may last.
    pub fn is_stale(&self, now: u64) -> bool {
        now >= self.granted_ms.saturating_add(RESERVATION_TTL_MS)
    }

    /// Whether a report of it may still come at `now`.
    pub fn is_remembered(&self, now: u64) -> bool {
        now < self.granted_ms.saturating_add(SETTLE_DEADLINE_MS)
    }

    /// Whether it is closed and every call of it ended: it counts nothing more.
    pub fn is_finished(&self) -> bool {
        self.reported.closed && self.reported.settled.calls >= self.reported.used.calls
    }

    /// Whether it was granted to `holder` in `epoch`.
    pub fn belongs_to(&self, holder: &str, epoch: u64) -> bool {
        self.holder.as_ref().is_some_and(|(h, e)| h == holder && *e == epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(closed: bool, used: (u64, u64), settled: (u64, u64), actual: u64) -> LeaseReport {
        let tally = |(calls, per)| Tally { calls, charge: Charge { tokens: calls * per, cost_micros: calls * per } };
        LeaseReport {
            lease: 1,
            closed,
            used: tally(used),
            settled: tally(settled),
            actual: Charge { tokens: actual, cost_micros: actual },
        }
    }

    fn lease() -> LeaseRecord {
        let slice = Slice { requests: Some(10), tokens: Some(1_000), cost_micros: Some(1_000), slots: Some(4) };
        LeaseRecord::granted(1, Some(("h".into(), 0)), 1, 0, 1_000, slice)
    }

    #[test]
    fn an_open_lease_counts_its_slice_and_a_closed_one_what_it_used() {
        let mut l = lease();
        let whole = Footprint { requests: 10, tokens: 1_000, held_micros: 1_000, actual_micros: 0, slots: 4 };
        assert_eq!(l.footprint(), whole);
        l.apply(&report(false, (3, 100), (1, 100), 40));
        assert_eq!(
            l.footprint(),
            Footprint { requests: 10, tokens: 940, held_micros: 900, actual_micros: 40, slots: 4 }
        );
        l.apply(&report(true, (3, 100), (2, 100), 90));
        assert_eq!(
            l.footprint(),
            Footprint { requests: 3, tokens: 190, held_micros: 100, actual_micros: 90, slots: 1 }
        );
        assert!(!l.is_finished());
        l.apply(&report(true, (9, 100), (3, 100), 120));
        assert_eq!(l.reported.used.calls, 3, "closed: used is final");
        assert!(l.is_finished());
        assert_eq!(l.footprint().held_micros, 0);
    }

    #[test]
    fn unlimited_dimensions_count_what_was_reported() {
        let mut l = LeaseRecord::granted(1, None, 0, 0, 1_000, Slice::default());
        assert_eq!(l.footprint(), Footprint::default());
        l.apply(&report(false, (2, 50), (0, 0), 0));
        assert_eq!(l.footprint(), Footprint { requests: 2, tokens: 100, held_micros: 100, actual_micros: 0, slots: 2 });
        l.charged = Some(Charged { charged_ms: 5, micros: 100 });
        assert_eq!(l.footprint().slots, 0, "an expired lease holds no slot");
    }

    #[test]
    fn ttl_and_deadline() {
        let l = lease();
        assert!(!l.is_stale(RESERVATION_TTL_MS - 1) && l.is_stale(RESERVATION_TTL_MS));
        assert!(l.is_remembered(SETTLE_DEADLINE_MS - 1) && !l.is_remembered(SETTLE_DEADLINE_MS));
        assert!(l.belongs_to("h", 0) && !l.belongs_to("h", 1) && !l.belongs_to("g", 0));
    }

    /// A closed lease's use may shrink (a key's object returning the unused part of an edge
    /// slice it reserved from the lease in one piece), never grow, in a dimension its slice
    /// limits; a dimension it leaves unlimited follows the reports.
    #[test]
    fn a_closed_leases_use_only_shrinks_where_its_slice_limits_it() {
        let mut l = lease();
        l.apply(&report(true, (8, 100), (0, 100), 0));
        assert_eq!(l.footprint().requests, 8);
        l.apply(&report(true, (5, 100), (5, 100), 300));
        let f = l.footprint();
        assert_eq!((f.requests, f.tokens, f.held_micros, f.actual_micros, f.slots), (5, 300, 0, 300, 0));
        assert!(l.is_finished(), "every call it kept settled");
        let mut unlimited =
            LeaseRecord::granted(2, None, 1, 0, 1_000, Slice { requests: Some(10), ..Slice::default() });
        unlimited.apply(&report(true, (4, 100), (0, 100), 0));
        unlimited.apply(&report(true, (4, 150), (0, 100), 0));
        assert_eq!(unlimited.reported.used.charge.tokens, 600, "tokens unlimited: the reports' own");
        unlimited.apply(&report(true, (6, 100), (0, 100), 0));
        assert_eq!(unlimited.reported.used.calls, 4, "requests limited: never more after its close");
    }
}
