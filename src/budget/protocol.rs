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
use crate::limits::{Charge, Headroom};
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
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LeaseOutcome {
    Granted(Grant),
    /// Not even the waiting call fits. `hold_until_ms`: until then every call of the holder
    /// would be refused the same way (a full request window), so the holder may answer them
    /// without asking.
    Refused {
        denial: BudgetDenial,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_until_ms: Option<u64>,
    },
    /// The upper grants nothing to anyone (a key disabled or rotated): the holder drops its
    /// slice at once.
    Stopped,
    /// The message was older than one already applied, or of an older epoch: nothing changed.
    Stale,
    /// A flush: reports applied, nothing asked.
    Reported,
}

/// A lease: a slice valid for `valid_ms` from when the holder sent its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub lease: u64,
    pub slice: Slice,
    pub valid_ms: u64,
}
