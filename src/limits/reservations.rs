//! Open reservations: requests admitted but not yet settled or released.
//!
//! Flow: admission opens one under a fresh id; settle or release takes it back by id. The edge's
//! settle can be lost (the runtime may cancel background work or the isolate may die), so a
//! reservation left open for [`RESERVATION_TTL_MS`] is stale: it no longer counts as in flight
//! and the ledger settles it at its estimate (and remembers it for a late settle: `expired`).
//! At most [`MAX_OPEN_RESERVATIONS`] are open, so the state stays bounded.
//!
//! The TTL is the stated maximum life of a call, streams included: a call keeps its in-flight
//! slot until it settles or this long after admission, whichever comes first, with no heartbeat
//! (no command while a stream runs). A dead isolate holds a slot at most this long; a stream
//! that outlives it loses its slot, and its settle still counts (late settles, see `expired`).

use super::charge::Charge;
use serde::{Deserialize, Serialize};

/// How long a reservation may stay open before it is settled at its estimate: the maximum
/// life of a call, streams included (60 minutes: a 128k-token answer at 50 tokens a second
/// takes 43). The gateway should end a call it still streams by then.
pub const RESERVATION_TTL_MS: u64 = 60 * 60 * 1000;

/// The most reservations open at once, whatever the key's `max_in_flight`.
pub const MAX_OPEN_RESERVATIONS: usize = 4096;

/// One admitted request awaiting its settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: u64,
    pub admitted_ms: u64,
    pub estimate: Charge,
}

impl Reservation {
    fn is_stale(&self, now_ms: u64) -> bool {
        now_ms >= self.admitted_ms.saturating_add(RESERVATION_TTL_MS)
    }
}

/// The open reservations and the id counter.
///
/// Invariants: `open` is ordered by strictly increasing id and non-decreasing `admitted_ms`
/// (ids are handed out in admission order and the ledger's clock never runs backward), so the
/// stale reservations are a prefix; every id is below `next_id`; at most
/// [`MAX_OPEN_RESERVATIONS`] are open. A stored form breaking these is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReservationsRepr", into = "ReservationsRepr")]
pub struct Reservations {
    next_id: u64,
    open: Vec<Reservation>,
}

impl Default for Reservations {
    fn default() -> Self {
        Reservations { next_id: 1, open: Vec::new() }
    }
}

impl Reservations {
    /// The next id and the open reservations, oldest first (to move them into other counters).
    pub(crate) fn into_parts(self) -> (u64, Vec<Reservation>) {
        (self.next_id, self.open)
    }

    /// Reservations moved from other counters: `open` must keep this type's invariants (ordered
    /// by strictly increasing id and non-decreasing `admitted_ms`, every id below `next_id`, at
    /// most [`MAX_OPEN_RESERVATIONS`]).
    pub(crate) fn from_parts(next_id: u64, open: Vec<Reservation>) -> Reservations {
        debug_assert!(open.len() <= MAX_OPEN_RESERVATIONS);
        debug_assert!(open.windows(2).all(|p| p[0].id < p[1].id && p[0].admitted_ms <= p[1].admitted_ms));
        debug_assert!(open.last().is_none_or(|r| r.id < next_id));
        Reservations { next_id, open }
    }

    /// The open reservations as `(stale, fresh)` at `now_ms`.
    pub fn split(&self, now_ms: u64) -> (&[Reservation], &[Reservation]) {
        self.open.split_at(self.open.partition_point(|r| r.is_stale(now_ms)))
    }

    /// Opens a reservation and returns its id. The caller has checked there is room and that
    /// `now_ms` is not before the last admission.
    pub fn open(&mut self, now_ms: u64, estimate: Charge) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.open.push(Reservation { id, admitted_ms: now_ms, estimate });
        id
    }

    /// Removes and returns the reservation `id`, if it is open.
    pub fn take(&mut self, id: u64) -> Option<Reservation> {
        let index = self.open.binary_search_by_key(&id, |r| r.id).ok()?;
        Some(self.open.remove(index))
    }

    /// Removes and returns the stale reservations, oldest first.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Reservation> {
        let count = self.split(now_ms).0.len();
        self.open.drain(..count).collect()
    }
}

/// The summed cost estimate of `reservations`.
pub fn total_cost(reservations: &[Reservation]) -> u64 {
    reservations.iter().fold(0, |sum, r| sum.saturating_add(r.estimate.cost_micros))
}

#[derive(Serialize, Deserialize)]
struct ReservationsRepr {
    next_id: u64,
    open: Vec<Reservation>,
}

impl From<Reservations> for ReservationsRepr {
    fn from(r: Reservations) -> Self {
        ReservationsRepr { next_id: r.next_id, open: r.open }
    }
}

impl TryFrom<ReservationsRepr> for Reservations {
    type Error = String;

    fn try_from(repr: ReservationsRepr) -> Result<Self, String> {
        if repr.open.len() > MAX_OPEN_RESERVATIONS {
            return Err(format!("{} open reservations, more than {MAX_OPEN_RESERVATIONS}", repr.open.len()));
        }
        let ordered = repr.open.windows(2).all(|p| p[0].id < p[1].id && p[0].admitted_ms <= p[1].admitted_ms);
        let below_next = repr.open.last().is_none_or(|r| r.id < repr.next_id);
        if !ordered || !below_next {
            return Err("open reservations are out of order or ahead of next_id".into());
        }
        Ok(Reservations { next_id: repr.next_id, open: repr.open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(cost_micros: u64) -> Charge {
        Charge { tokens: 10, cost_micros }
    }

    #[test]
    fn stale_reservations_are_the_oldest() {
        let mut r = Reservations::default();
        let a = r.open(0, cost(5));
        let b = r.open(1_000, cost(7));
        let (stale, fresh) = r.split(RESERVATION_TTL_MS - 1);
        assert!(stale.is_empty());
        assert_eq!(fresh.len(), 2);
        assert_eq!(r.split(RESERVATION_TTL_MS).0[0].id, a);
        assert_eq!(r.expire(RESERVATION_TTL_MS).iter().map(|x| x.id).collect::<Vec<_>>(), vec![a]);
        assert_eq!(r.take(a), None);
        assert_eq!(r.take(b).map(|x| x.estimate), Some(cost(7)));
        assert_eq!(r.take(b), None, "taking twice finds nothing");
    }

    #[test]
    fn ids_are_never_reused() {
        let mut r = Reservations::default();
        let a = r.open(0, cost(1));
        r.take(a);
        assert_ne!(r.open(0, cost(1)), a);
    }

    #[test]
    fn stored_form_is_validated() {
        let mut r = Reservations::default();
        r.open(5, cost(1));
        r.open(6, cost(2));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reservations>(&json).unwrap(), r);
        let behind = json.replace(r#""next_id":3"#, r#""next_id":2"#);
        assert!(serde_json::from_str::<Reservations>(&behind).is_err());
        let unordered = r#"{"next_id":9,"open":[{"id":2,"admitted_ms":1,"estimate":{"tokens":0,"cost_micros":0}},
            {"id":1,"admitted_ms":1,"estimate":{"tokens":0,"cost_micros":0}}]}"#;
        assert!(serde_json::from_str::<Reservations>(unordered).is_err());
    }
}
