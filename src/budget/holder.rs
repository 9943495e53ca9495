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
//! the first unreported one), which also returns a lease that ended with a part unused; the
//! edge waits for [`Holder::flush_at`] in `waitUntil`, a key object sets an alarm. A key object
//! covering an edge slice reserves it from its lease in one piece ([`Holder::cover`],
//! [`Holder::reserve`]) and sets what that bulk counts as the isolate reports
//! ([`Holder::report_bulk`]).
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
//! * A bulk reservation is admitted like its calls at once (each holds a slot until settled);
//!   what it counts may later shrink, also after its lease closed (its unused part returned,
//!   which the upper accepts: [`LeaseRecord::apply`](super::record::LeaseRecord::apply)).
//! * A holder that restarts forgets its leases and tickets: a ticket it does not know is ignored
//!   (the upper counts that call until its TTL).
//! * Time: a `now_ms` before the latest seen reads as the latest.

use super::denial::BudgetDenial;
use super::protocol::{HolderMessage, LeaseOutcome, LeaseReport, UpperReply, Want};
use super::slice::{Slice, SliceLeft, Tally};
use crate::limits::{Actual, Ask, Charge, Headroom, SETTLE_DEADLINE_MS};
use serde::{Deserialize, Serialize};

/// Settled calls are reported within this long of the first unreported one.
pub const FLUSH_MS: u64 = 1_000;
/// A message unanswered this long is abandoned: another may be sent, and its reply is ignored.
pub const REPLY_TIMEOUT_MS: u64 = 5_000;
/// After a `Declined` reply the holder asks no lease for this long ([`HolderAdmission::Declined`]:
/// its calls are admitted per call), then tries again: one lease message per this interval at
/// most while the upper keeps declining.
pub const DECLINED_HOLD_MS: u64 = 5_000;

/// A bulk reservation of a lease ([`Holder::reserve`]): pass it back to
/// [`Holder::report_bulk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkTicket {
    pub lease: u64,
    /// Its number in its lease, from the same sequence as its calls'.
    pub id: u64,
}

/// A call admitted from a lease: pass it back to [`Holder::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTicket {
    pub lease: u64,
    /// The call's number in its lease, from 1.
    pub call: u64,
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
    /// The slice cannot cover the call and the upper declined to lease less than
    /// [`DECLINED_HOLD_MS`] ago: admit the call per call at the upper.
    Declined,
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
    /// The upper leases nothing to this holder now, for a reason of its own (no limit refuses
    /// the call): admit the waiting call per call at the upper.
    Declined,
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
    /// The numbers of its calls not yet ended.
    open: Vec<u64>,
    /// Its bulk reservations not yet ended, each counted in `used`, `settled` and `actual`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bulks: Vec<Bulk>,
    /// The latest number given to a call or a bulk (0 in a state from before bulks: then
    /// `used.calls` is).
    #[serde(default)]
    numbered: u64,
}

/// What one bulk reservation counts in its lease (cumulative): its calls and their estimates,
/// those settled and their actual. Its calls not settled count as open (each holds a slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Bulk {
    id: u64,
    used: Tally,
    settled: Tally,
    actual: Charge,
}

impl HeldLease {
    /// Its calls in flight: single calls and the unsettled calls of its bulks.
    fn open_calls(&self) -> u64 {
        let bulks = self.bulks.iter().map(|b| b.used.calls.saturating_sub(b.settled.calls));
        bulks.fold(self.open.len() as u64, u64::saturating_add)
    }

    /// The next number for a call or a bulk.
    fn number(&mut self) -> u64 {
        self.numbered = self.numbered.max(self.used.calls) + 1;
        self.numbered
    }

    /// Closes it once its requests are used up, so the upper counts only what was used from the
    /// next message; answers whether it did.
    fn close_if_used_up(&mut self) -> bool {
        let used_up = self.slice.requests.is_some_and(|requests| self.used.calls >= requests);
        self.closed |= used_up;
        used_up
    }

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
    /// When `headroom` was read: the holder's clock at taking that reply (0: never).
    #[serde(default)]
    headroom_read_ms: u64,
    /// Until then the upper's latest `Declined` holds: no lease is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    declined_until: Option<u64>,
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
            headroom_read_ms: 0,
            declined_until: None,
        }
    }

    /// Admits a call estimated at `ask` from the current lease, if it fits.
    pub fn admit(&mut self, ask: Ask, now_ms: u64) -> HolderAdmission {
        let now = self.time(now_ms);
        if let Some((denial, _)) = self.held.as_ref().filter(|(_, until)| now < *until) {
            return HolderAdmission::Refused(denial.clone());
        }
        let Some(lease) = self.current_mut(now).filter(|lease| lease.slice.fits(&lease.used, lease.open_calls(), ask))
        else {
            return if self.declined(now) { HolderAdmission::Declined } else { HolderAdmission::NeedLease };
        };
        let call = lease.number();
        lease.used = lease.used.plus(ask);
        lease.open.push(call);
        let ticket = CallTicket { lease: lease.id, call, estimate: ask };
        if lease.close_if_used_up() {
            self.current = None;
        }
        HolderAdmission::Admitted(ticket)
    }

    /// What the current lease can still cover at `now_ms`, for a bulk reservation: what its
    /// slice has left, its calls no more than its free slots (a bulk's calls count as open until
    /// settled); if that covers at least one call of `ask`. Otherwise `Err(Some(denial))` while
    /// a held refusal answers every call, `Err(None)` when a lease is needed.
    pub fn cover(&mut self, ask: Ask, now_ms: u64) -> Result<Slice, Option<BudgetDenial>> {
        let now = self.time(now_ms);
        if let Some((denial, _)) = self.held.as_ref().filter(|(_, until)| now < *until) {
            return Err(Some(denial.clone()));
        }
        let Some(lease) = self.current_mut(now) else { return Err(None) };
        let open = lease.open_calls();
        if !lease.slice.fits(&lease.used, open, ask) {
            return Err(None);
        }
        let mut left = lease.slice.left(&lease.used, open);
        if let Some(slots) = left.slots {
            left.requests = Some(left.requests.map_or(slots, |requests| requests.min(slots)));
        }
        Ok(left)
    }

    /// Reserves `amount` (calls, all open at once until settled, and their summed estimates)
    /// from the current lease in one piece, if it covers it (see [`Holder::cover`]): a key's
    /// object covering an edge slice at this level. What the bulk counts changes only by
    /// [`Holder::report_bulk`].
    pub fn reserve(&mut self, amount: Tally, now_ms: u64) -> Option<BulkTicket> {
        let now = self.time(now_ms);
        let lease = self.current_mut(now)?;
        if !lease.slice.covers(&lease.used, lease.open_calls(), &amount) {
            return None;
        }
        let id = lease.number();
        lease.used = sum(lease.used, amount);
        lease.bulks.push(Bulk { id, used: amount, settled: Tally::default(), actual: Charge::ZERO });
        let ticket = BulkTicket { lease: lease.id, id };
        if lease.close_if_used_up() {
            self.current = None;
        }
        Some(ticket)
    }

    /// Sets what bulk `ticket` counts, cumulative: `used` (what it still reserves or used:
    /// below its reservation once the unused part is returned, even after its lease closed),
    /// `settled` of it and their `actual`; the difference goes up with the next message.
    /// `ended`: it changes no more and is forgotten (its counts stay in its lease's). A bulk of a
    /// lease the holder no longer holds, or already ended, is ignored.
    pub fn report_bulk(&mut self, ticket: BulkTicket, counted: (Tally, Tally, Charge), ended: bool, now_ms: u64) {
        let now = self.time(now_ms);
        let (used, settled, actual) = counted;
        let Some(lease) = self.leases.iter_mut().find(|l| l.id == ticket.lease) else { return };
        let Some(index) = lease.bulks.iter().position(|b| b.id == ticket.id) else { return };
        let bulk = &mut lease.bulks[index];
        let changed = (bulk.used, bulk.settled, bulk.actual) != (used, settled, actual);
        lease.used = sum(less(lease.used, bulk.used), used);
        lease.settled = sum(less(lease.settled, bulk.settled), settled);
        let actual_was = Tally { calls: 0, charge: bulk.actual };
        lease.actual =
            sum(less(Tally { calls: 0, charge: lease.actual }, actual_was), Tally { calls: 0, charge: actual }).charge;
        (bulk.used, bulk.settled, bulk.actual) = (used, settled, actual);
        if ended {
            lease.bulks.swap_remove(index);
        }
        if changed {
            self.unreported_since.get_or_insert(now);
        }
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

    /// The message reporting what changed since the last one, without asking (closing the
    /// current lease if it has ended); `None` if there is nothing to report or a message awaits
    /// its reply.
    pub fn flush(&mut self, now_ms: u64) -> Option<HolderMessage> {
        let now = self.time(now_ms);
        if self.is_awaiting(now) {
            return None;
        }
        if self.current_mut(now).is_none() && self.current.is_some() {
            self.close_current();
            self.unreported_since.get_or_insert(now);
        }
        self.unreported_since?;
        Some(self.message(now, None))
    }

    /// Whether a flush is due at `now_ms` (send [`Holder::flush`]): see [`Holder::flush_at`].
    pub fn flush_due(&self, now_ms: u64) -> bool {
        let now = now_ms.max(self.clock_ms);
        !self.is_awaiting(now) && self.flush_at().is_some_and(|at| now >= at)
    }

    /// When a flush falls due, if one will without another call: [`FLUSH_MS`] after the first
    /// unreported settle, or when the current lease ends (its unused part goes back). The edge
    /// waits until then in `waitUntil`, a key object sets an alarm.
    pub fn flush_at(&self) -> Option<u64> {
        let settles = self.unreported_since.map(|since| since.saturating_add(FLUSH_MS));
        let current = self.current.and_then(|id| self.leases.iter().find(|l| l.id == id && !l.closed));
        settles.into_iter().chain(current.map(|l| l.ends_ms)).min()
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
        self.headroom_read_ms = now;
        self.leases
            .retain(|l| !reply.finished.contains(&l.id) && l.received_ms.saturating_add(SETTLE_DEADLINE_MS) > now);
        match reply.outcome {
            LeaseOutcome::Granted(grant) => {
                self.held = None;
                self.declined_until = None;
                self.leases.push(HeldLease {
                    id: grant.lease,
                    slice: grant.slice,
                    ends_ms: self.asked_ms.saturating_add(grant.valid_ms.min(self.interval_ms)),
                    received_ms: now,
                    closed: false,
                    used: Tally::default(),
                    settled: Tally::default(),
                    actual: Charge::ZERO,
                    open: Vec::new(),
                    bulks: Vec::new(),
                    numbered: 0,
                });
                self.current = Some(grant.lease);
                Received::Granted
            }
            LeaseOutcome::Refused { denial, hold_until_ms } => {
                self.held = hold_until_ms.map(|until| (denial.clone(), until));
                Received::Refused(denial)
            }
            LeaseOutcome::Declined { .. } => {
                self.held = None;
                self.declined_until = Some(now.saturating_add(DECLINED_HOLD_MS));
                Received::Declined
            }
            LeaseOutcome::Stopped => {
                self.close_current();
                self.unreported_since.get_or_insert(now);
                Received::Stopped
            }
            LeaseOutcome::Stale | LeaseOutcome::Reported => Received::Reported,
        }
    }

    /// Ends the call of `ticket` at `actual` (zero for a released call). A ticket already ended,
    /// or of a lease the holder does not hold (it restarted), is ignored.
    pub fn settle(&mut self, ticket: CallTicket, actual: Actual, now_ms: u64) {
        let now = self.time(now_ms);
        let Some(lease) = self.leases.iter_mut().find(|l| l.id == ticket.lease) else { return };
        let Some(index) = lease.open.iter().position(|&call| call == ticket.call) else { return };
        lease.open.swap_remove(index);
        lease.settled = lease.settled.plus(ticket.estimate);
        lease.actual = Tally { calls: 0, charge: lease.actual }.plus(actual).charge;
        self.unreported_since.get_or_insert(now);
    }

    /// The upper's headroom as of its latest reply, and when that reply was taken (the
    /// holder's clock): outstanding leases, this holder's own included, count as used there.
    pub fn upper_headroom(&self) -> Option<(&Headroom, u64)> {
        Some((self.headroom.as_ref()?, self.headroom_read_ms))
    }

    /// What the current lease still holds at `now_ms` (nothing once it has ended, closed or
    /// been used up): the holder may admit that much more without asking.
    pub fn slice_left(&self, now_ms: u64) -> Option<SliceLeft> {
        let now = now_ms.max(self.clock_ms);
        let id = self.current?;
        let lease = self.leases.iter().find(|l| l.id == id && !l.closed && now < l.ends_ms)?;
        Some(SliceLeft { left: lease.slice.left(&lease.used, lease.open_calls()), ends_at_ms: lease.ends_ms })
    }

    /// Whether the upper's latest `Declined` still holds at `now_ms` ([`DECLINED_HOLD_MS`]).
    pub fn declined(&self, now_ms: u64) -> bool {
        self.declined_until.is_some_and(|until| now_ms.max(self.clock_ms) < until)
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

/// `a + b`, each member (saturating).
fn sum(a: Tally, b: Tally) -> Tally {
    Tally {
        calls: a.calls.saturating_add(b.calls),
        charge: Charge {
            tokens: a.charge.tokens.saturating_add(b.charge.tokens),
            cost_micros: a.charge.cost_micros.saturating_add(b.charge.cost_micros),
        },
    }
}

/// `a - b`, each member (saturating).
fn less(a: Tally, b: Tally) -> Tally {
    Tally {
        calls: a.calls.saturating_sub(b.calls),
        charge: Charge {
            tokens: a.charge.tokens.saturating_sub(b.charge.tokens),
            cost_micros: a.charge.cost_micros.saturating_sub(b.charge.cost_micros),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::Grant;
    use super::*;
    use crate::limits::{Level, LimitDenial, WindowScope};

    const CALL: Charge = Charge { tokens: 10, cost_micros: 100 };

    fn headroom() -> Headroom {
        Headroom { requests: None, tokens: None, spend: None }
    }

    fn reply(seq: u64, outcome: LeaseOutcome, finished: Vec<u64>) -> UpperReply {
        UpperReply { seq, outcome, finished, headroom: headroom() }
    }

    fn grant(lease: u64, requests: u64, valid_ms: u64) -> LeaseOutcome {
        let slice = Slice { requests: Some(requests), tokens: None, cost_micros: Some(requests * 100), slots: Some(2) };
        LeaseOutcome::Granted(Grant { lease, slice, valid_ms })
    }

    fn leased(requests: u64) -> Holder {
        let mut holder = Holder::new("edge-1".into(), 0, 1_000, false);
        assert_eq!(holder.admit(CALL, 0), HolderAdmission::NeedLease);
        let message = holder.request(CALL, 0).unwrap();
        assert_eq!(message.want, Some(Want { ask: CALL, interval_ms: 1_000, exact: false }));
        assert_eq!(holder.receive(reply(message.seq, grant(1, requests, 5_000), vec![]), 40), Received::Granted);
        holder
    }

    fn ticket(admission: HolderAdmission) -> CallTicket {
        match admission {
            HolderAdmission::Admitted(ticket) => ticket,
            other => panic!("expected an admission, got {other:?}"),
        }
    }

    /// A `Declined` reply holds for [`DECLINED_HOLD_MS`]: the holder's calls are admitted per
    /// call meanwhile (no lease asked), then it asks again; a grant ends the hold.
    #[test]
    fn a_declined_lease_is_not_asked_again_for_a_while() {
        let mut holder = Holder::new("key".into(), 0, 1_000, false);
        let message = holder.request(CALL, 0).unwrap();
        let declined = LeaseOutcome::Declined { level: Level::Organisation, why: super::super::Declined::Holders };
        assert_eq!(holder.receive(reply(message.seq, declined, vec![]), 10), Received::Declined);
        assert!(holder.declined(10 + DECLINED_HOLD_MS - 1));
        assert_eq!(holder.admit(CALL, 10 + DECLINED_HOLD_MS - 1), HolderAdmission::Declined);
        assert_eq!(holder.admit(CALL, 10 + DECLINED_HOLD_MS), HolderAdmission::NeedLease);
        let message = holder.request(CALL, 10 + DECLINED_HOLD_MS).unwrap();
        assert_eq!(
            holder.receive(reply(message.seq, grant(1, 3, 1_000), vec![]), 10 + DECLINED_HOLD_MS),
            Received::Granted
        );
        assert!(!holder.declined(10 + DECLINED_HOLD_MS));
    }

    #[test]
    fn admits_from_the_slice_until_it_is_used_up_or_ends() {
        let mut holder = leased(3);
        let a = ticket(holder.admit(CALL, 100));
        ticket(holder.admit(CALL, 200));
        assert_eq!(holder.admit(CALL, 300), HolderAdmission::NeedLease, "two slots");
        holder.settle(a, Charge { tokens: 5, cost_micros: 50 }, 300);
        ticket(holder.admit(CALL, 300));
        assert_eq!(holder.admit(CALL, 300), HolderAdmission::NeedLease, "three requests");
        let message = holder.request(CALL, 400).unwrap();
        let report = message.leases[0];
        assert!(report.closed);
        assert_eq!((report.used.calls, report.settled.calls, report.actual.cost_micros), (3, 1, 50));

        let mut holder = leased(100);
        ticket(holder.admit(CALL, 999));
        assert_eq!(
            holder.admit(CALL, 1_000),
            HolderAdmission::NeedLease,
            "its own interval from sending, not the 5 s granted"
        );
        assert_eq!(holder.admit(CALL, 10), HolderAdmission::NeedLease, "a clock stepping back reads as the latest");
    }

    #[test]
    fn only_the_reply_to_the_latest_message_is_taken() {
        let mut holder = Holder::new("k".into(), 3, 2_000, false);
        let first = holder.request(CALL, 0).unwrap();
        assert_eq!(holder.request(CALL, 10), None, "one message in flight");
        let second = holder.request(CALL, REPLY_TIMEOUT_MS).unwrap();
        assert_eq!((first.seq, second.seq, second.epoch), (1, 2, 3));
        assert_eq!(holder.receive(reply(1, grant(7, 5, 1_000), vec![]), REPLY_TIMEOUT_MS), Received::Ignored);
        assert_eq!(holder.receive(reply(2, grant(8, 5, 1_000), vec![]), REPLY_TIMEOUT_MS), Received::Granted);
        assert_eq!(holder.receive(reply(2, grant(9, 5, 1_000), vec![]), REPLY_TIMEOUT_MS), Received::Ignored, "twice");
        assert_eq!(ticket(holder.admit(CALL, REPLY_TIMEOUT_MS)).lease, 8);
        let flush = holder.give_back(REPLY_TIMEOUT_MS + 1).unwrap();
        assert_eq!(flush.leases.iter().map(|r| (r.lease, r.closed)).collect::<Vec<_>>(), vec![(8, true)]);
    }

    #[test]
    fn settles_are_flushed_within_a_second_and_finished_leases_forgotten() {
        let mut holder = leased(5);
        let call = ticket(holder.admit(CALL, 100));
        assert_eq!(holder.flush_at(), Some(1_000), "the lease's end");
        assert!(!holder.flush_due(100) && holder.flush(100).is_none(), "nothing to report yet");
        holder.settle(call, CALL, 200);
        holder.settle(call, CALL, 200);
        assert_eq!(holder.flush_at(), Some(1_000));
        let flush = holder.flush(300).unwrap();
        assert_eq!((flush.want, flush.leases[0].settled.calls, flush.leases[0].closed), (None, 1, false), "once");
        assert!(!holder.flush_due(5_000), "in flight");
        assert_eq!(holder.receive(reply(flush.seq, LeaseOutcome::Reported, vec![]), 400), Received::Reported);
        assert!(!holder.flush_due(999) && holder.flush_due(1_000), "the ended lease goes back");
        let flush = holder.flush(1_000).unwrap();
        assert!(flush.leases[0].closed);
        assert_eq!(holder.receive(reply(flush.seq, LeaseOutcome::Reported, vec![1]), 1_300), Received::Reported);
        assert!(holder.leases.is_empty() && holder.flush_at().is_none());
        holder.settle(call, CALL, 1_400);
        assert!(holder.flush(1_400).is_none(), "a ticket of a forgotten lease is ignored");
        let mut holder = leased(5);
        let call = ticket(holder.admit(CALL, 100));
        holder.give_back(100).unwrap();
        holder.settle(call, CALL, 150);
        assert_eq!(holder.flush_at(), Some(150 + FLUSH_MS), "settles flush within a second");
    }

    #[test]
    fn a_held_refusal_answers_until_its_time_and_stopped_drops_the_slice() {
        let mut holder = leased(5);
        let denial = BudgetDenial {
            level: Level::Project,
            denial: LimitDenial::Window { scope: WindowScope::Rpm, limit: 5, used: 5, asked: 1, reset_at_ms: 9_000 },
        };
        let message = holder.request(CALL, 100).unwrap();
        let refused = LeaseOutcome::Refused { denial: denial.clone(), hold_until_ms: Some(1_100) };
        assert_eq!(holder.receive(reply(message.seq, refused, vec![]), 150), Received::Refused(denial.clone()));
        assert_eq!(holder.admit(CALL, 1_099), HolderAdmission::Refused(denial));
        assert_eq!(holder.admit(CALL, 1_100), HolderAdmission::NeedLease);
        let message = holder.request(CALL, 1_100).unwrap();
        assert_eq!(holder.receive(reply(message.seq, grant(2, 5, 1_000), vec![]), 1_100), Received::Granted);
        let message = holder.request(CALL, 1_200).unwrap();
        assert_eq!(holder.receive(reply(message.seq, LeaseOutcome::Stopped, vec![]), 1_200), Received::Stopped);
        assert_eq!(holder.admit(CALL, 1_200), HolderAdmission::NeedLease);
    }

    #[test]
    fn tells_the_uppers_headroom_as_of_its_reply_and_what_the_slice_holds() {
        let fresh = Holder::new("k".into(), 0, 1_000, false);
        assert_eq!((fresh.upper_headroom(), fresh.slice_left(0)), (None, None), "before the first reply");
        let mut holder = leased(3);
        assert_eq!(holder.upper_headroom(), Some((&headroom(), 40)), "read when the grant came");
        ticket(holder.admit(CALL, 100));
        let left = holder.slice_left(100).unwrap();
        assert_eq!(
            (left.left.requests, left.left.cost_micros, left.left.slots, left.ends_at_ms),
            (Some(2), Some(200), Some(1), 1_000)
        );
        assert_eq!(holder.slice_left(1_000), None, "the lease ended");
        let flush = holder.flush(1_000).unwrap();
        holder.receive(reply(flush.seq, LeaseOutcome::Reported, vec![]), 1_200);
        assert_eq!(holder.upper_headroom().map(|(_, at)| at), Some(1_200), "a flush's reply refreshes it");
    }
}
