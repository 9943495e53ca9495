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
use super::protocol::{HolderMessage, LeaseOutcome, LeaseReport, UpperReply, Want};
use super::slice::{Slice, Tally};
use crate::limits::{Actual, Ask, Charge, Headroom, SETTLE_DEADLINE_MS};
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

/// What a reply did ([`Holder::receive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Not the reply to the latest message (or already taken): ignored.
    Ignored,
    /// A new lease: admit again.
    Granted,
    /// The waiting call does not fit: answer it with this.
    Refused(BudgetDenial),
    /// The upper grants nothing: the slice is dropped; answer the waiting call as revoked.
    Stopped,
    /// Reports applied (a flush), or the message was stale: nothing granted.
    Reported,
}

/// One lease as its holder counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeldLease {
    id: u64,
    slice: Slice,
    /// The holder's own clock: it admits nothing from the lease from then on.
    ends_ms: u64,
    received_ms: u64,
    closed: bool,
    used: Tally,
    settled: Tally,
    actual: Charge,
}

impl HeldLease {
    fn report(&self) -> LeaseReport {
        LeaseReport { lease: self.id, closed: self.closed, used: self.used, settled: self.settled, actual: self.actual }
    }
}

/// A holder's leases and its side of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    id: String,
    epoch: u64,
    interval_ms: u64,
    exact: bool,
    /// The latest time seen.
    clock_ms: u64,
    /// The `seq` of the latest message.
    seq: u64,
    /// When the latest message was sent, while its reply has not come.
    awaiting: Option<u64>,
    /// When the latest message that asked a lease was sent: a grant in its reply runs from then.
    asked_ms: u64,
    /// The lease calls are admitted from, if any (the newest of `leases`).
    current: Option<u64>,
    /// Every lease held until the upper says it is finished, oldest first.
    leases: Vec<HeldLease>,
    /// A refusal that answers every call until its time.
    held: Option<(BudgetDenial, u64)>,
    /// When the first change not yet reported was made.
    unreported_since: Option<u64>,
    headroom: Option<Headroom>,
}

impl Holder {
    /// A holder named `id` in its incarnation `epoch` (greater than any earlier incarnation's
    /// of the same id; an edge isolate uses a fresh random id and epoch 0), asking leases of
    /// `interval_ms`, or exactly one call per lease if `exact`.
    pub fn new(id: String, epoch: u64, interval_ms: u64, exact: bool) -> Holder {
        Holder {
            id,
            epoch,
            interval_ms,
            exact,
            clock_ms: 0,
            seq: 0,
            awaiting: None,
            asked_ms: 0,
            current: None,
            leases: Vec::new(),
            held: None,
            unreported_since: None,
            headroom: None,
        }
    }

    /// Admits a call estimated at `ask` from the current lease, if it fits.
    pub fn admit(&mut self, ask: Ask, now_ms: u64) -> HolderAdmission {
        let now = self.time(now_ms);
        if let Some((denial, _)) = self.held.as_ref().filter(|(_, until)| now < *until) {
            return HolderAdmission::Refused(denial.clone());
        }
        let Some(lease) = self.current_mut(now) else { return HolderAdmission::NeedLease };
        let open = lease.used.calls.saturating_sub(lease.settled.calls);
        if !lease.slice.fits(&lease.used, open, ask) {
            return HolderAdmission::NeedLease;
        }
        lease.used = lease.used.plus(ask);
        HolderAdmission::Admitted(CallTicket { lease: lease.id, estimate: ask })
    }

    /// The message asking a lease for a call estimated at `ask`: it closes the current lease
    /// (returning its unused part) and reports every lease held. `None` while an earlier message
    /// awaits its reply (for less than [`REPLY_TIMEOUT_MS`]).
    pub fn request(&mut self, ask: Ask, now_ms: u64) -> Option<HolderMessage> {
        let now = self.time(now_ms);
        if self.is_awaiting(now) {
            return None;
        }
        self.close_current();
        self.asked_ms = now;
        Some(self.message(now, Some(Want { ask, interval_ms: self.interval_ms, exact: self.exact })))
    }

    /// The message reporting what changed since the last one, without asking; `None` if there
    /// is nothing to report or a message awaits its reply.
    pub fn flush(&mut self, now_ms: u64) -> Option<HolderMessage> {
        let now = self.time(now_ms);
        if self.is_awaiting(now) || self.unreported_since.is_none() {
            return None;
        }
        Some(self.message(now, None))
    }

    /// Whether changes have waited [`FLUSH_MS`] unreported (send [`Holder::flush`]).
    pub fn flush_due(&self, now_ms: u64) -> bool {
        let now = now_ms.max(self.clock_ms);
        !self.is_awaiting(now) && self.unreported_since.is_some_and(|since| now >= since.saturating_add(FLUSH_MS))
    }

    /// Returns the current slice now, e.g. when the upper recalls it: a flush that also closes
    /// the current lease. `None` while a message awaits its reply.
    pub fn give_back(&mut self, now_ms: u64) -> Option<HolderMessage> {
        let now = self.time(now_ms);
        if self.is_awaiting(now) {
            return None;
        }
        self.close_current();
        Some(self.message(now, None))
    }

    /// Takes the reply to the latest message; a reply to any other, or a second reply, is
    /// ignored.
    pub fn receive(&mut self, reply: UpperReply, now_ms: u64) -> Received {
        let now = self.time(now_ms);
        if reply.seq != self.seq || self.awaiting.is_none() {
            return Received::Ignored;
        }
        self.awaiting = None;
        self.headroom = Some(reply.headroom);
        self.leases.retain(|l| !reply.finished.contains(&l.id) && l.received_ms.saturating_add(SETTLE_DEADLINE_MS) > now);
        match reply.outcome {
            LeaseOutcome::Granted(grant) => {
                self.held = None;
                self.leases.push(HeldLease {
                    id: grant.lease,
                    slice: grant.slice,
                    ends_ms: self.asked_ms.saturating_add(grant.valid_ms.min(self.interval_ms)),
                    received_ms: now,
                    closed: false,
                    used: Tally::default(),
                    settled: Tally::default(),
                    actual: Charge::ZERO,
                });
                self.current = Some(grant.lease);
                Received::Granted
            }
            LeaseOutcome::Refused { denial, hold_until_ms } => {
                self.held = hold_until_ms.map(|until| (denial.clone(), until));
                Received::Refused(denial)
            }
            LeaseOutcome::Stopped => {
                self.close_current();
                self.unreported_since.get_or_insert(now);
                Received::Stopped
            }
            LeaseOutcome::Stale | LeaseOutcome::Reported => Received::Reported,
        }
    }

    /// Ends the call of `ticket` at `actual` (zero for a released call). A ticket of a lease the
    /// holder does not hold (it restarted) is ignored.
    pub fn settle(&mut self, ticket: CallTicket, actual: Actual, now_ms: u64) {
        let now = self.time(now_ms);
        let Some(lease) = self.leases.iter_mut().find(|l| l.id == ticket.lease) else { return };
        if lease.settled.calls >= lease.used.calls {
            return;
        }
        lease.settled = lease.settled.plus(ticket.estimate);
        lease.actual = Tally { calls: 0, charge: lease.actual }.plus(actual).charge;
        self.unreported_since.get_or_insert(now);
    }

    /// The upper's headroom as of its latest reply, for response headers.
    pub fn headroom(&self) -> Option<&Headroom> {
        self.headroom.as_ref()
    }

    fn time(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        self.clock_ms
    }

    fn is_awaiting(&self, now: u64) -> bool {
        self.awaiting.is_some_and(|sent| now < sent.saturating_add(REPLY_TIMEOUT_MS))
    }

    /// The current lease if it still admits at `now`.
    fn current_mut(&mut self, now: u64) -> Option<&mut HeldLease> {
        let id = self.current?;
        self.leases.iter_mut().find(|l| l.id == id && !l.closed && now < l.ends_ms)
    }

    fn close_current(&mut self) {
        if let Some(id) = self.current.take() {
            if let Some(lease) = self.leases.iter_mut().find(|l| l.id == id) {
                lease.closed = true;
            }
        }
    }

    /// The next message: every lease held, and `want`.
    fn message(&mut self, now: u64, want: Option<Want>) -> HolderMessage {
        self.seq += 1;
        self.awaiting = Some(now);
        self.unreported_since = None;
        HolderMessage {
            holder: self.id.clone(),
            epoch: self.epoch,
            seq: self.seq,
            leases: self.leases.iter().map(HeldLease::report).collect(),
            want,
        }
    }
}
