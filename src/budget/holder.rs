//! The lower level's side of a lease: a key's object under its project and organisation, or an
//! edge isolate under a hot key's object.
//!
//! Flow: [`Holder::admit`] admits a call from the current lease's slice and answers a
//! [`CallTicket`]; when the slice cannot cover the call (or has expired, or there is none) it
//! answers [`HolderAdmission::NeedLease`]: the caller sends [`Holder::request`]'s message (one
//! at a time: while one is unanswered, `request` answers `None` and the caller waits for that
//! reply), hands the reply to [`Holder::receive`] and admits again. A call that ends is
//! [`Holder::settle`]d with its actual (zero when released); settled calls are reported with
//! the next message, or by [`Holder::flush`] once [`Holder::flush_due`] (within [`FLUSH_MS`] of
//! the first unreported one; the edge sends it in `waitUntil`).
//!
//! # Guarantees
//! * A call is admitted only from the current lease, before its expiry (the holder's own clock
//!   at sending the request + the grant's `valid_ms`, so never later than the upper's grant +
//!   `valid_ms`), and only if it fits the slice with every call admitted from it so far
//!   ([`Slice::fits`](super::Slice::fits)); a lease reported closed admits nothing more.
//! * Every lease is reported in each message until the upper says it is finished; a call's
//!   end counts once, in its own lease.
//! * Revocation: a slice stops admitting when its lease expires (at most the interval the
//!   holder asked, [`EDGE_LEASE_MS`](super::EDGE_LEASE_MS) for an edge), or at once on a
//!   `Stopped` reply.
//! * A holder that restarts forgets its leases and tickets: a ticket it does not know is ignored
//!   (the upper counts that call until its TTL).
//! * Time: a `now_ms` before the latest seen reads as the latest.

use super::denial::BudgetDenial;
use super::protocol::{HolderMessage, UpperReply};
use crate::limits::{Actual, Ask, Headroom};
use serde::{Deserialize, Serialize};

/// Settled calls are reported within this long of the first unreported one.
pub const FLUSH_MS: u64 = 1_000;
/// A message unanswered this long is abandoned: another may be sent, and its reply is ignored.
pub const REPLY_TIMEOUT_MS: u64 = 5_000;

/// A call admitted from a lease: pass it back to [`Holder::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTicket {
    pub lease: u64,
    pub estimate: Ask,
}

/// The answer of [`Holder::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderAdmission {
    Admitted(CallTicket),
    /// The upper's refusal, held: every call is refused the same way until it ends.
    Refused(BudgetDenial),
    /// The slice cannot cover the call: ask for a lease ([`Holder::request`]).
    NeedLease,
}

/// A holder's leases and its side of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {}

impl Holder {
    /// A holder named `id` in its incarnation `epoch` (greater than any earlier incarnation's
    /// of the same id; an edge isolate uses a fresh random id and epoch 0), asking leases of
    /// `interval_ms`, or exactly one call per lease if `exact`.
    pub fn new(id: String, epoch: u64, interval_ms: u64, exact: bool) -> Holder {
        let _ = (id, epoch, interval_ms, exact);
        todo!()
    }

    /// Admits a call estimated at `ask` from the current lease, if it fits.
    pub fn admit(&mut self, ask: Ask, now_ms: u64) -> HolderAdmission {
        let _ = (ask, now_ms);
        todo!()
    }

    /// The message asking a lease for a call estimated at `ask`: it closes the current lease
    /// (returning its unused part) and reports every lease held. `None` while an earlier message
    /// awaits its reply (for less than [`REPLY_TIMEOUT_MS`]).
    pub fn request(&mut self, ask: Ask, now_ms: u64) -> Option<HolderMessage> {
        let _ = (ask, now_ms);
        todo!()
    }

    /// The message reporting what changed since the last one, without asking; `None` if there
    /// is nothing to report or a message awaits its reply.
    pub fn flush(&mut self, now_ms: u64) -> Option<HolderMessage> {
        let _ = now_ms;
        todo!()
    }

    /// Whether settled calls have waited [`FLUSH_MS`] unreported (send [`Holder::flush`]).
    pub fn flush_due(&self, now_ms: u64) -> bool {
        let _ = now_ms;
        todo!()
    }

    /// Returns the current slice now, e.g. when the upper recalls it: a flush that also closes
    /// the current lease.
    pub fn give_back(&mut self, now_ms: u64) -> Option<HolderMessage> {
        let _ = now_ms;
        todo!()
    }

    /// Takes the reply to the latest message (a reply to any other is ignored: answers false).
    pub fn receive(&mut self, reply: UpperReply, now_ms: u64) -> bool {
        let _ = (reply, now_ms);
        todo!()
    }

    /// Ends the call of `ticket` at `actual` (zero for a released call). A ticket of a lease the
    /// holder does not hold (it restarted) is ignored.
    pub fn settle(&mut self, ticket: CallTicket, actual: Actual, now_ms: u64) {
        let _ = (ticket, actual, now_ms);
        todo!()
    }

    /// The upper's headroom as of its latest reply, for response headers.
    pub fn headroom(&self) -> Option<&Headroom> {
        todo!()
    }
}
