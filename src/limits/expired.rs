//! Reservations that expired at their estimate, remembered so that their late settle counts.
//!
//! Flow: when the ledger records stale reservations as settled at their estimate (at
//! `charged_ms`), it hands them to [`Expired::remember`]; a settle or release of one of them
//! arriving later takes it back with [`Expired::take`], and the ledger replaces the estimate by
//! the actual where the expiry charged it. A reservation is remembered until
//! [`SETTLE_DEADLINE_MS`] after its admission, and at most [`MAX_EXPIRED_REMEMBERED`] are (the
//! oldest are forgotten first); a settle arriving later is an unknown id.

use super::reservations::{Reservation, RESERVATION_TTL_MS};
use serde::{Deserialize, Serialize};

/// How long after its admission a reservation's settle or release still counts: twice the
/// maximum call life ([`RESERVATION_TTL_MS`]), i.e. 2 hours, so a call that outlives its
/// reservation by as much again (a stream the gateway did not end in time) is still settled at
/// its actual.
pub const SETTLE_DEADLINE_MS: u64 = 2 * RESERVATION_TTL_MS;

/// The most expired reservations remembered at once (about 100 bytes each when stored).
pub const MAX_EXPIRED_REMEMBERED: usize = 4096;

/// A reservation settled at its estimate by its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredReservation {
    pub reservation: Reservation,
    /// When its estimated cost was committed: the spend periods containing it hold it.
    pub charged_ms: u64,
}

impl ExpiredReservation {
    fn remembered_at(&self, now_ms: u64) -> bool {
        now_ms < self.reservation.admitted_ms.saturating_add(SETTLE_DEADLINE_MS)
    }
}

/// The expired reservations whose settle may still come.
///
/// Invariants: ordered by strictly increasing id and non-decreasing `admitted_ms` (reservations
/// expire oldest first, and every one expiring later was opened later), so the forgotten ones
/// are a prefix; at most [`MAX_EXPIRED_REMEMBERED`]. A stored form breaking these is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<ExpiredReservation>", into = "Vec<ExpiredReservation>")]
pub struct Expired {
    remembered: Vec<ExpiredReservation>,
}

impl Expired {
    /// Remembers `expired` (oldest first, all newer than those remembered), charged at
    /// `charged_ms`, and forgets what is past its deadline at `charged_ms` or beyond the bound.
    pub fn remember(&mut self, expired: Vec<Reservation>, charged_ms: u64) {
        self.remembered.extend(expired.into_iter().map(|reservation| ExpiredReservation { reservation, charged_ms }));
        let past_deadline = self.remembered.partition_point(|e| !e.remembered_at(charged_ms));
        let beyond_bound = self.remembered.len().saturating_sub(MAX_EXPIRED_REMEMBERED);
        self.remembered.drain(..past_deadline.max(beyond_bound));
    }

    /// Removes and returns the expired reservation `id`, if it is remembered at `now_ms`.
    pub fn take(&mut self, id: u64, now_ms: u64) -> Option<ExpiredReservation> {
        let index = self.remembered.binary_search_by_key(&id, |e| e.reservation.id).ok()?;
        self.remembered[index].remembered_at(now_ms).then(|| self.remembered.remove(index))
    }
}

impl From<Expired> for Vec<ExpiredReservation> {
    fn from(expired: Expired) -> Self {
        expired.remembered
    }
}

impl TryFrom<Vec<ExpiredReservation>> for Expired {
    type Error = String;

    fn try_from(remembered: Vec<ExpiredReservation>) -> Result<Self, String> {
        if remembered.len() > MAX_EXPIRED_REMEMBERED {
            return Err(format!("{} expired reservations, more than {MAX_EXPIRED_REMEMBERED}", remembered.len()));
        }
        let ordered = remembered.windows(2).all(|p| {
            let (a, b) = (&p[0].reservation, &p[1].reservation);
            a.id < b.id && a.admitted_ms <= b.admitted_ms
        });
        if !ordered {
            return Err("expired reservations are out of order".into());
        }
        Ok(Expired { remembered })
    }
}

#[cfg(test)]
mod tests {
    use super::super::charge::Charge;
    use super::*;

    fn reservation(id: u64, admitted_ms: u64) -> Reservation {
        Reservation { id, admitted_ms, estimate: Charge { tokens: 1, cost_micros: 1 } }
    }

    #[test]
    fn a_remembered_reservation_is_taken_once_until_its_deadline() {
        let mut expired = Expired::default();
        expired.remember(vec![reservation(1, 0), reservation(2, 10)], RESERVATION_TTL_MS + 10);
        let taken = expired.take(2, SETTLE_DEADLINE_MS).unwrap();
        assert_eq!((taken.reservation.id, taken.charged_ms), (2, RESERVATION_TTL_MS + 10));
        assert_eq!(expired.take(2, SETTLE_DEADLINE_MS), None, "taken once");
        assert_eq!(expired.take(1, SETTLE_DEADLINE_MS), None, "past its deadline");
        assert_eq!(expired.take(1, SETTLE_DEADLINE_MS - 1).map(|e| e.reservation.id), Some(1));
    }

    #[test]
    fn the_oldest_are_forgotten_first() {
        let mut expired = Expired::default();
        let many = (1..=MAX_EXPIRED_REMEMBERED as u64 + 2).map(|id| reservation(id, id)).collect();
        expired.remember(many, RESERVATION_TTL_MS * 2);
        assert_eq!(expired.remembered.len(), MAX_EXPIRED_REMEMBERED);
        assert_eq!(expired.take(2, 0), None);
        assert!(expired.take(3, 0).is_some());
        let late = 2 * SETTLE_DEADLINE_MS;
        expired.remember(vec![reservation(late, late - RESERVATION_TTL_MS)], late);
        assert_eq!(expired.remembered.len(), 1, "the others passed their deadline");
    }

    #[test]
    fn stored_form_is_validated() {
        let mut expired = Expired::default();
        expired.remember(vec![reservation(1, 0), reservation(2, 10)], 50);
        let json = serde_json::to_string(&expired).unwrap();
        assert_eq!(serde_json::from_str::<Expired>(&json).unwrap(), expired);
        let swapped = json.replace(r#""id":1"#, r#""id":3"#);
        assert!(serde_json::from_str::<Expired>(&swapped).is_err());
    }
}
