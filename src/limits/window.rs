//! A bucketed sliding window: a fixed ring of [`BUCKETS`] counters indexed by bucket number.
//!
//! Flow: the caller maps a time to a bucket number (`time / bucket width`, see `scope`), asks
//! [`Window::earliest_fit`] whether an amount fits now (and if not, from which bucket on),
//! records it with [`Window::add`] once every other limit agrees, and may later correct a past
//! bucket with [`Window::replace`] (a token estimate replaced by the true count). The window
//! knows nothing about time; its state is one bucket number and 60 counters whatever the traffic.
//!
//! # Guarantee
//! A window of length `W` covers the 60 buckets `b - 59 ..= b`, where `b` is the current one.
//! Since time never runs backward, buckets after `b` are still empty when an amount is admitted
//! in `b`, so "the live buckets plus the amount stay within the limit" is exactly the condition
//! that every span of 60 consecutive buckets, i.e. every span `[t, t + W)` with `t` a multiple
//! of the bucket width, stays within the limit. Admission is therefore both safe (no aligned
//! span exceeds the limit) and maximal (an amount is refused only if some aligned span would).
//! A span that is not aligned touches 61 buckets and can hold up to twice the limit in the
//! worst case, as with every bucketed window.

use serde::{Deserialize, Serialize};

/// Buckets per window; a window of length `W` has buckets `W / BUCKETS` wide.
pub const BUCKETS: u64 = 60;
const SLOTS: usize = BUCKETS as usize;

/// A ring of the amounts recorded in the last [`BUCKETS`] buckets.
///
/// Invariant: for every bucket `b` in `head - 59 ..= head` (clipped at 0), `counts[b % 60]`
/// is the amount recorded in `b`; buckets before that are forgotten, buckets after `head`
/// are empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowRepr", into = "WindowRepr")]
pub struct Window {
    head: u64,
    counts: [u64; SLOTS],
}

impl Default for Window {
    fn default() -> Self {
        Window { head: 0, counts: [0; SLOTS] }
    }
}

impl Window {
    /// The amount recorded in the window that ends with bucket `at`.
    pub fn used(&self, at: u64) -> u64 {
        self.live(at).fold(0, |sum, (_, count)| sum.saturating_add(count))
    }

    /// The first bucket, `at` or later, at which `amount` fits under `limit` if nothing else
    /// is recorded meanwhile (`at` itself when it fits now); `None` if `amount > limit`, which
    /// no amount of waiting fixes.
    pub fn earliest_fit(&self, at: u64, amount: u64, limit: u64) -> Option<u64> {
        if amount > limit {
            return None;
        }
        let mut used = self.used(at);
        let mut fit_at = at.max(self.head);
        for (bucket, count) in self.live(at) {
            if used.saturating_add(amount) <= limit {
                return Some(fit_at);
            }
            used = used.saturating_sub(count);
            fit_at = bucket + BUCKETS;
        }
        Some(fit_at)
    }

    /// The first bucket at which everything recorded so far has expired; `None` if the
    /// window ending at `at` is empty.
    pub fn empty_at(&self, at: u64) -> Option<u64> {
        self.live(at).filter(|&(_, count)| count > 0).last().map(|(bucket, _)| bucket + BUCKETS)
    }

    /// Records `amount` in bucket `at` (or in the head bucket if `at` is older), first
    /// forgetting the buckets that `at` pushes out of the window.
    pub fn add(&mut self, at: u64, amount: u64) {
        self.rotate(at);
        let slot = &mut self.counts[slot(self.head.max(at))];
        *slot = slot.saturating_add(amount);
    }

    /// Replaces `old`, recorded earlier in `bucket`, by `new`; nothing happens once `bucket`
    /// has left the window, as it no longer counts against any admission.
    pub fn replace(&mut self, bucket: u64, old: u64, new: u64) {
        if bucket <= self.head && bucket + BUCKETS > self.head {
            let slot = &mut self.counts[slot(bucket)];
            *slot = slot.saturating_sub(old).saturating_add(new);
        }
    }

    /// The buckets of the window ending at `at`, oldest first, with what each holds.
    fn live(&self, at: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let first = at.max(self.head).saturating_sub(BUCKETS - 1);
        (first..=self.head).map(|bucket| (bucket, self.counts[slot(bucket)]))
    }

    /// Moves the head to `to`, clearing the slots of the buckets it passes.
    fn rotate(&mut self, to: u64) {
        if to <= self.head {
            return;
        }
        let passed = (to - self.head).min(BUCKETS);
        for bucket in to + 1 - passed..=to {
            self.counts[slot(bucket)] = 0;
        }
        self.head = to;
    }
}

fn slot(bucket: u64) -> usize {
    (bucket % BUCKETS) as usize
}

/// The stored form: serde has no arrays of 60, and a stored ring of the wrong length is an error.
#[derive(Serialize, Deserialize)]
struct WindowRepr {
    head: u64,
    counts: Vec<u64>,
}

impl From<Window> for WindowRepr {
    fn from(window: Window) -> Self {
        WindowRepr { head: window.head, counts: window.counts.to_vec() }
    }
}

impl TryFrom<WindowRepr> for Window {
    type Error = String;

    fn try_from(repr: WindowRepr) -> Result<Self, String> {
        let len = repr.counts.len();
        let counts = repr.counts.try_into().map_err(|_| format!("a window has {BUCKETS} buckets, not {len}"))?;
        Ok(Window { head: repr.head, counts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_sixty_buckets() {
        let mut w = Window::default();
        w.add(100, 3);
        w.add(130, 2);
        assert_eq!(w.used(130), 5);
        assert_eq!(w.used(159), 5);
        assert_eq!(w.used(160), 2, "bucket 100 left at 160");
        assert_eq!(w.used(190), 0);
        w.add(1_000, 1);
        assert_eq!(w.used(1_000), 1, "a long gap forgets everything");
    }

    #[test]
    fn earliest_fit_waits_for_enough_old_buckets() {
        let mut w = Window::default();
        w.add(10, 4);
        w.add(20, 4);
        w.add(30, 2);
        assert_eq!(w.earliest_fit(30, 0, 10), Some(30));
        assert_eq!(w.earliest_fit(30, 1, 10), Some(70), "bucket 10 must leave");
        assert_eq!(w.earliest_fit(30, 5, 10), Some(80), "buckets 10 and 20 must leave");
        assert_eq!(w.earliest_fit(30, 10, 10), Some(90));
        assert_eq!(w.earliest_fit(30, 11, 10), None);
        assert_eq!(w.earliest_fit(75, 5, 10), Some(80));
    }

    #[test]
    fn empty_at_is_when_the_newest_bucket_leaves() {
        let mut w = Window::default();
        assert_eq!(w.empty_at(5), None);
        w.add(10, 1);
        w.add(12, 0);
        assert_eq!(w.empty_at(12), Some(70));
        assert_eq!(w.empty_at(70), None);
    }

    #[test]
    fn replace_fixes_live_buckets_only() {
        let mut w = Window::default();
        w.add(10, 100);
        w.add(20, 50);
        w.replace(10, 100, 30);
        assert_eq!(w.used(20), 80);
        w.add(75, 0);
        w.replace(10, 30, 1_000);
        assert_eq!(w.used(75), 50, "bucket 10 had left; its slot now belongs to bucket 70");
        w.replace(20, 50, 60);
        assert_eq!(w.used(75), 60);
    }

    #[test]
    fn stored_form_round_trips_and_rejects_a_wrong_length() {
        let mut w = Window::default();
        w.add(7, 3);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), w);
        let err = serde_json::from_str::<Window>(r#"{"head":1,"counts":[1,2]}"#).unwrap_err();
        assert!(err.to_string().contains("60 buckets, not 2"), "{err}");
    }
}
