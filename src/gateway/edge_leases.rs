//! Edge leases: an isolate admits a hot key's calls from a slice of the key's headroom that the
//! key's object leased it ([`crate::budget`]'s protocol, the isolate as a [`Holder`] and the
//! key's object as its upper level), instead of asking the object for every call.
//!
//! Flow of a call ([`EdgeLeases::admission`]):
//! 1. the call is counted in the key's rate in this isolate; a key is *hot* once it has made
//!    [`HOT_CALLS`] calls within one second here (then a [`Holder`] is kept for it, while the
//!    isolate holds fewer than [`MAX_HOLDERS`]); a key the caller says must be exact (its rules
//!    say `admission: exact`, or it is not leasable: model-pattern or end-user scopes,
//!    [`super::admission`]; a key under budgets is leased, its object covering each slice at
//!    every level),
//!    and a key that is not hot, is admitted per call at its object ([`EdgeAdmission::Exact`]);
//!    a key with spend caps is leased like any other, each call taking its reservation (its
//!    bill's bound) from the slice's micro-dollars;
//! 2. a hot key's call is admitted from the current slice ([`EdgeAdmission::Leased`]) or
//!    refused by a refusal the holder holds ([`EdgeAdmission::Refused`]); a slice admits only
//!    calls of the secret version whose call asked for it (the object granted it to that
//!    secret); when the slice cannot cover the call, or was asked for another secret version,
//!    the call carries the holder's message to the object ([`EdgeAdmission::Ask`]):
//!    the message returns what the slice did not use, reports every lease's calls and asks a
//!    new slice sized to this isolate's rate; the reply goes to [`EdgeLeases::receive`] and the
//!    call is admitted again. While another message is on its way, a call is admitted per call
//!    ([`EdgeAdmission::Wait`]; the object counts both ways in the same counters); if the object
//!    refuses it for a limit, the isolate gives its slice back ([`EdgeLeases::give_back`]) and
//!    asks once more, so an isolate's calls never miss headroom its own slice holds (waiting on a
//!    timer of its own for a message on its way: a call woken by another call's future would run
//!    its I/O on that call's behalf);
//! 3. a leased call's end is counted here ([`EdgeLeases::settle`]); ends are reported with the
//!    next message, or by a flush sent within [`FLUSH_MS`] of the first unreported one (the
//!    pipeline sends it from the call's settlement task, in `waitUntil`).
//!
//! Bounds (the protocol's, stated in [`crate::budget`]): a key's limits hold exactly, leases
//! included (committed + reserved + outstanding leases ≤ limit, hard spend caps too, while each
//! call's actual stays within its reservation); slices shrink to one call as headroom runs low,
//! so near a limit admission is exact per call; a slice admits nothing after
//! [`EDGE_LEASE_MS`] (1 s) from when its message left, so disabling, rotating or deleting a
//! leased key takes effect within that interval (the object answers the next message
//! `Stopped`); a key with `admission: exact` is never leased and is revoked at once. At a steady
//! rate a slice covers about one interval's calls, so a hot key costs about one object call per
//! interval per isolate (plus a flush when calls stop).

use crate::budget::BudgetDenial;
use crate::budget::{CallTicket, Holder, HolderAdmission, HolderMessage, Received, UpperReply, EDGE_LEASE_MS};
use crate::limits::{Actual, Ask, Headroom};
use std::collections::HashMap;

/// Calls within one second that make a key hot in an isolate: from then on a slice covers about
/// this many calls per lease interval or more, i.e. at most 1 / `HOT_CALLS` object calls per call.
pub const HOT_CALLS: u64 = 10;
/// The most keys an isolate leases for at once; past it, other keys are admitted per call.
pub const MAX_HOLDERS: usize = 256;
/// The most keys whose rate an isolate follows; past it, the rates are forgotten.
const MAX_RATES: usize = 4_096;

/// How to admit one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeAdmission {
    /// Ask the key's object for this call alone.
    Exact,
    /// Admitted from this isolate's slice: settle it with [`EdgeLeases::settle`].
    Leased(CallTicket),
    /// Refused by the object's refusal the holder holds.
    Refused(BudgetDenial),
    /// Send this message to the key's object, hand its reply to [`EdgeLeases::receive`], then
    /// ask again.
    Ask(HolderMessage),
    /// Another message is on its way.
    Wait,
}

/// A key's calls in the current and the previous second.
#[derive(Debug, Default, Clone, Copy)]
struct Rate {
    second: u64,
    calls: u64,
    previous: u64,
}

impl Rate {
    fn count(&mut self, now_ms: u64) -> u64 {
        let second = now_ms / 1_000;
        if second != self.second {
            self.previous = if second == self.second + 1 { self.calls } else { 0 };
            (self.second, self.calls) = (second, 0);
        }
        self.calls += 1;
        self.calls.max(self.previous)
    }
}

/// One isolate's leases, by the name of the key's object (which carries the organisation).
#[derive(Debug)]
pub struct EdgeLeases {
    /// This isolate's name as a holder: random, so a restarted isolate is a new holder.
    id: String,
    rates: HashMap<String, Rate>,
    holders: HashMap<String, KeyHolder>,
}

#[derive(Debug)]
struct KeyHolder {
    holder: Holder,
    /// The secret version of the call whose message asked for the current slice: the object
    /// checked that secret, so the slice admits that version's calls only (a call of another,
    /// perhaps revoked, version asks the object itself, which refuses a revoked one).
    secret_version: u32,
    /// Whether a flush is already scheduled.
    flush_scheduled: bool,
}

impl EdgeLeases {
    /// The leases of an isolate named `id` (random).
    pub fn new(id: String) -> EdgeLeases {
        EdgeLeases { id, rates: HashMap::new(), holders: HashMap::new() }
    }

    /// How to admit a call of `ask` with secret `secret_version` to the key of `object` (see the
    /// module doc); `exact`: the key's rules ask per-call admission.
    pub fn admission(
        &mut self,
        object: &str,
        exact: bool,
        secret_version: u32,
        ask: Ask,
        now_ms: u64,
    ) -> EdgeAdmission {
        if exact {
            return EdgeAdmission::Exact;
        }
        if !self.holders.contains_key(object) {
            if self.rates.len() >= MAX_RATES && !self.rates.contains_key(object) {
                self.rates.clear();
            }
            let calls = self.rates.entry(object.to_owned()).or_default().count(now_ms);
            if calls < HOT_CALLS || self.holders.len() >= MAX_HOLDERS {
                return EdgeAdmission::Exact;
            }
            self.rates.remove(object);
            let holder = Holder::new(format!("edge:{}", self.id), 0, EDGE_LEASE_MS, false);
            self.holders.insert(object.to_owned(), KeyHolder { holder, secret_version, flush_scheduled: false });
        }
        let key = self.holders.get_mut(object).expect("inserted above");
        let admission = match key.secret_version == secret_version {
            true => key.holder.admit(ask, now_ms),
            false => HolderAdmission::NeedLease,
        };
        match admission {
            HolderAdmission::Admitted(ticket) => EdgeAdmission::Leased(ticket),
            HolderAdmission::Refused(denial) => EdgeAdmission::Refused(denial),
            // The key's object declined to lease lately: the call is asked alone.
            HolderAdmission::Declined => EdgeAdmission::Exact,
            HolderAdmission::NeedLease => match key.holder.request(ask, now_ms) {
                Some(message) => {
                    key.secret_version = secret_version;
                    EdgeAdmission::Ask(message)
                }
                None => EdgeAdmission::Wait,
            },
        }
    }

    /// Takes the object's reply to the message of `object`'s holder.
    pub fn receive(&mut self, object: &str, reply: UpperReply, now_ms: u64) -> Received {
        match self.holders.get_mut(object) {
            Some(key) => key.holder.receive(reply, now_ms),
            None => Received::Ignored,
        }
    }

    /// The message giving `object`'s slice back ([`EdgeAdmission::Ask`], without asking a new
    /// one), [`EdgeAdmission::Wait`] while another message is on its way, or
    /// [`EdgeAdmission::Exact`] when the isolate holds no lease of the key.
    pub fn give_back(&mut self, object: &str, now_ms: u64) -> EdgeAdmission {
        let Some(key) = self.holders.get_mut(object) else { return EdgeAdmission::Exact };
        match key.holder.give_back(now_ms) {
            Some(message) => EdgeAdmission::Ask(message),
            None => EdgeAdmission::Wait,
        }
    }

    /// Counts the end of a leased call; answers whether the caller must schedule a flush (none
    /// is scheduled for this key yet).
    pub fn settle(&mut self, object: &str, ticket: CallTicket, actual: Actual, now_ms: u64) -> bool {
        let Some(key) = self.holders.get_mut(object) else { return false };
        key.holder.settle(ticket, actual, now_ms);
        !std::mem::replace(&mut key.flush_scheduled, true)
    }

    /// The flush of `object`'s holder, once its scheduled wait is over: the message to send, if
    /// there is something to report and no other message is on its way (that one reports what
    /// it can; what ends later schedules the next flush).
    pub fn flush(&mut self, object: &str, now_ms: u64) -> Option<HolderMessage> {
        let key = self.holders.get_mut(object)?;
        key.flush_scheduled = false;
        key.holder.flush(now_ms)
    }

    /// Whether `object`'s holder still has something to flush later: a slice not yet given back
    /// or settles not yet reported ([`Holder::flush_at`]).
    pub fn flush_pending(&self, object: &str) -> bool {
        self.holders.get(object).is_some_and(|key| key.holder.flush_at().is_some())
    }

    /// The object's headroom as of its latest reply to this isolate, for the limit headers.
    pub fn headroom(&self, object: &str) -> Option<Headroom> {
        self.holders.get(object).and_then(|key| key.holder.upper_headroom().map(|(headroom, _)| headroom.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Grant, LeaseOutcome, Slice};

    const ASK: Ask = Ask { tokens: 10, cost_micros: 1 };

    #[test]
    fn a_key_is_leased_once_hot_and_never_when_exact() {
        let mut leases = EdgeLeases::new("i".into());
        for i in 0..HOT_CALLS - 1 {
            assert_eq!(leases.admission("k", false, 1, ASK, 1_000 + i), EdgeAdmission::Exact, "call {i}");
        }
        assert!(matches!(leases.admission("k", false, 1, ASK, 1_100), EdgeAdmission::Ask(_)));
        // Another call while the message is on its way waits for its reply.
        assert_eq!(leases.admission("k", false, 1, ASK, 1_101), EdgeAdmission::Wait);
        for i in 0..2 * HOT_CALLS {
            assert_eq!(
                leases.admission("x", true, 1, ASK, 1_000 + i),
                EdgeAdmission::Exact,
                "exact keys are never leased"
            );
        }
    }

    /// A slice admits only calls of the secret version whose call asked for it (the object checked
    /// that secret, not another, perhaps revoked): found by the chaos soak, where a secret rotated
    /// out without grace, still read from a stale record, was admitted from the new secret's
    /// slices long after its revocation.
    #[test]
    fn a_slice_admits_only_the_secret_version_it_was_asked_for() {
        let mut leases = EdgeLeases::new("i".into());
        for i in 0..HOT_CALLS - 1 {
            assert_eq!(leases.admission("k", false, 2, ASK, 1_000 + i), EdgeAdmission::Exact);
        }
        let EdgeAdmission::Ask(message) = leases.admission("k", false, 2, ASK, 1_100) else { panic!("hot") };
        let slice = Slice { requests: Some(10), tokens: None, cost_micros: None, slots: Some(10) };
        let outcome = LeaseOutcome::Granted(Grant { lease: 1, slice, valid_ms: EDGE_LEASE_MS });
        let headroom = Headroom { requests: None, tokens: None, spend: None };
        let reply = UpperReply { seq: message.seq, outcome, finished: vec![], headroom };
        assert_eq!(leases.receive("k", reply, 1_100), Received::Granted);
        assert!(matches!(leases.admission("k", false, 2, ASK, 1_101), EdgeAdmission::Leased(_)));
        let EdgeAdmission::Ask(asked) = leases.admission("k", false, 1, ASK, 1_102) else {
            panic!("another version's call asks the object")
        };
        assert_eq!((asked.leases[0].lease, asked.leases[0].closed), (1, true), "the slice goes back");
        assert_eq!(leases.admission("k", false, 2, ASK, 1_103), EdgeAdmission::Wait, "its message is on its way");
    }

    #[test]
    fn the_rate_counts_the_current_and_previous_second() {
        let mut rate = Rate::default();
        for _ in 0..5 {
            rate.count(1_500);
        }
        assert_eq!(rate.count(2_000), 5, "the previous second's 5");
        assert_eq!(rate.count(4_000), 1, "seconds apart: forgotten");
    }
}
