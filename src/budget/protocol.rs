//! The lease protocol's messages: a holder's [`HolderMessage`] (reports, and the ask for a new
//! lease) and the upper level's [`UpperReply`].
//!
//! Every message may be lost, repeated or reordered, so each is idempotent:
//! * a holder numbers its messages (`seq`, increasing within one `epoch`, its incarnation); the
//!   upper applies a message only if it is newer than the last it applied from that holder, and
//!   answers an older or repeated one [`LeaseOutcome::Stale`], changing nothing;
//! * a report is cumulative per lease ([`LeaseReport`]): what the holder admitted from it and
//!   settled of it so far, so a lost report is made good by the next one and a repeated one
//!   adds nothing;
//! * a holder takes a reply only to its latest message, and lists in every message each lease
//!   it holds until the upper says it is finished; so a lease granted in a reply the holder never
//!   took (lost, or answering an older message) is absent from the holder's next message, and
//!   the upper closes it at zero use.
//!
//! A holder has one message in flight at a time (a message unanswered for
//! [`REPLY_TIMEOUT_MS`](super::REPLY_TIMEOUT_MS) is abandoned: its reply is then ignored).

use super::denial::BudgetDenial;
use super::slice::{Slice, Tally};
use crate::limits::{Charge, Headroom, Level, LimitDenial, MAX_OPEN_RESERVATIONS};
use serde::{Deserialize, Serialize};

/// From a holder to its upper level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderMessage {
    /// Who holds: a key object's name, or an edge isolate's random id.
    pub holder: String,
    /// The holder's incarnation: a restarted holder (which forgot its leases) uses a greater one.
    pub epoch: u64,
    /// Increasing with every message of one epoch, from 1.
    pub seq: u64,
    /// Every lease the holder holds and has not been told is finished, with what it counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseReport>,
    /// A new lease, for the call waiting; absent in a flush.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub want: Option<Want>,
}

/// The ask for a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The estimate of the call waiting: the slice covers at least it, or the reply refuses it.
    pub ask: Charge,
    /// How long the holder will use the lease (clamped to [`MAX_LEASE_MS`](super::MAX_LEASE_MS)).
    pub interval_ms: u64,
    /// Grant exactly one call: admission exact per call (immediate revocation) whatever the rate.
    #[serde(default)]
    pub exact: bool,
}

/// What a holder counted of one lease, cumulative.
///
/// Invariants (of an honest holder): `settled.calls ≤ used.calls`; `used` fits the lease's slice
/// (see [`Slice::fits`]); once `closed`, `used` never grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseReport {
    pub lease: u64,
    /// The holder admits no more calls from it: what it did not use is returned.
    #[serde(default)]
    pub closed: bool,
    /// The calls admitted from it and their estimates.
    pub used: Tally,
    /// The calls of it that ended (settled or released) and their estimates.
    pub settled: Tally,
    /// What the ended calls really used (a released call: zero).
    pub actual: Charge,
}

/// The upper level's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpperReply {
    /// The `seq` of the message answered.
    pub seq: u64,
    pub outcome: LeaseOutcome,
    /// Leases the upper has closed and fully counted: the holder may forget them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<u64>,
    /// What the upper level has left after this message, for response headers.
    pub headroom: Headroom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WireOutcome", into = "WireOutcome")]
pub enum LeaseOutcome {
    Granted(Grant),
    /// Not even the waiting call fits a limit of the level (or the upper's own bound on the
    /// leases and calls it remembers, which a call asked alone meets too). `hold_until_ms`:
    /// until then the holder answers every call with this refusal without asking (a full
    /// request window; at most [`REFUSAL_HOLD_MAX_MS`](crate::ledger::REFUSAL_HOLD_MAX_MS), 1 s,
    /// since a raised limit or a returned slice may free it sooner).
    Refused {
        denial: BudgetDenial,
        hold_until_ms: Option<u64>,
    },
    /// No limit refuses the call, but the upper of `level` leases nothing to this holder now
    /// (`why`, its own reason): the waiting call is to be admitted per call, exactly, at the
    /// upper (an isolate asks its key's object for the call alone; a key's object admits it
    /// directly at the budget's object).
    Declined {
        level: Level,
        why: Declined,
    },
    /// The upper grants nothing to anyone (a key disabled or rotated): the holder drops its
    /// slice at once.
    Stopped,
    /// The message was older than one already applied, or of an older epoch: nothing changed.
    Stale,
    /// A flush: reports applied, nothing asked.
    Reported,
}

/// Why an upper declined to lease ([`LeaseOutcome::Declined`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Declined {
    /// It remembers as many holders as it may ([`MAX_HOLDERS`](super::MAX_HOLDERS)), and not
    /// this one.
    Holders,
    /// The levels above it (a key's object's budgets) cannot cover a slice for the waiting call
    /// from their current slices.
    Cover,
}

/// [`LeaseOutcome`] on the wire. Versions (an old and a new build talk to each other during a
/// deployment; a version only adds members, as in [`crate::versioned`]):
/// 1. `granted`, `refused`, `stopped`, `stale`, `reported`: an upper's own reasons were written
///    as `refused` with `too_many_in_flight` (the holder bound with `open` the holders known,
///    the cover with `open: 0`);
/// 2. `declined` is written as that same `refused` (`too_many_in_flight`, `open: 0`) with a
///    member `declined` naming why, which version 1 ignores: an old isolate then asks the call
///    alone, as before, and an old key's object refuses it 429 as before. A version 2 reader
///    reads `declined`, and also a version 1 `too_many_in_flight` below
///    [`MAX_OPEN_RESERVATIONS`] (the bound on the calls a ledger remembers counts at least that
///    many) as declined: `open: 0` for the cover, any other for the holder bound — so a new
///    isolate asks the call alone of an old key object whose isolates are too many, as the old
///    isolate did, rather than answer 429.
#[derive(Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum WireOutcome {
    Granted(Grant),
    Refused {
        denial: BudgetDenial,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_until_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        declined: Option<Declined>,
    },
    Stopped,
    Stale,
    Reported,
}

impl From<WireOutcome> for LeaseOutcome {
    fn from(wire: WireOutcome) -> LeaseOutcome {
        match wire {
            WireOutcome::Granted(grant) => LeaseOutcome::Granted(grant),
            WireOutcome::Refused { denial, hold_until_ms, declined } => {
                let previous = match denial.denial {
                    LimitDenial::TooManyInFlight { open: 0 } => Some(Declined::Cover),
                    LimitDenial::TooManyInFlight { open } if open < MAX_OPEN_RESERVATIONS as u64 => {
                        Some(Declined::Holders)
                    }
                    _ => None,
                };
                match declined.or(previous) {
                    Some(why) => LeaseOutcome::Declined { level: denial.level, why },
                    None => LeaseOutcome::Refused { denial, hold_until_ms },
                }
            }
            WireOutcome::Stopped => LeaseOutcome::Stopped,
            WireOutcome::Stale => LeaseOutcome::Stale,
            WireOutcome::Reported => LeaseOutcome::Reported,
        }
    }
}

impl From<LeaseOutcome> for WireOutcome {
    fn from(outcome: LeaseOutcome) -> WireOutcome {
        match outcome {
            LeaseOutcome::Granted(grant) => WireOutcome::Granted(grant),
            LeaseOutcome::Refused { denial, hold_until_ms } => {
                WireOutcome::Refused { denial, hold_until_ms, declined: None }
            }
            LeaseOutcome::Declined { level, why } => WireOutcome::Refused {
                denial: BudgetDenial { level, denial: LimitDenial::TooManyInFlight { open: 0 } },
                hold_until_ms: None,
                declined: Some(why),
            },
            LeaseOutcome::Stopped => WireOutcome::Stopped,
            LeaseOutcome::Stale => WireOutcome::Stale,
            LeaseOutcome::Reported => WireOutcome::Reported,
        }
    }
}

/// A lease: a slice valid for `valid_ms` from when the holder sent its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub lease: u64,
    pub slice: Slice,
    pub valid_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A declined outcome reads back; a previous build reads it as the `too_many_in_flight`
    /// refusal it wrote for the same reasons; a previous build's cover refusal reads as declined,
    /// its other refusals as they were.
    #[test]
    fn declined_is_read_by_both_builds() {
        let declined = LeaseOutcome::Declined { level: Level::Organisation, why: Declined::Holders };
        let wire = serde_json::to_value(&declined).unwrap();
        assert_eq!(
            wire,
            json!({"outcome": "refused", "declined": "holders",
                   "denial": {"level": "organisation", "denial": {"kind": "too_many_in_flight", "open": 0}}})
        );
        assert_eq!(serde_json::from_value::<LeaseOutcome>(wire.clone()).unwrap(), declined);
        #[derive(Deserialize)]
        #[serde(tag = "outcome", rename_all = "snake_case")]
        enum Previous {
            Refused { denial: BudgetDenial },
        }
        let Previous::Refused { denial } = serde_json::from_value(wire).unwrap();
        assert_eq!(denial.denial, LimitDenial::TooManyInFlight { open: 0 });
        let previous = |open: u64| json!({"outcome": "refused", "denial": {"level": "key", "denial": {"kind": "too_many_in_flight", "open": open}}});
        let cover = serde_json::from_value::<LeaseOutcome>(previous(0)).unwrap();
        assert_eq!(cover, LeaseOutcome::Declined { level: Level::Key, why: Declined::Cover });
        let holders = serde_json::from_value::<LeaseOutcome>(previous(1_024)).unwrap();
        assert_eq!(holders, LeaseOutcome::Declined { level: Level::Key, why: Declined::Holders });
        let bound = serde_json::from_value::<LeaseOutcome>(previous(MAX_OPEN_RESERVATIONS as u64)).unwrap();
        assert!(matches!(bound, LeaseOutcome::Refused { hold_until_ms: None, .. }), "{bound:?}");
    }
}
