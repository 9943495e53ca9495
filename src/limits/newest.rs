//! Which limits a key's object enforces: those of the newest policy version it has seen.
//!
//! Flow: the registry bumps a key's policy version whenever the key's effective limits may have
//! changed, and writes version and limits together both to the KV record (which edges cache for
//! up to a minute and carry in every command) and to the push to the key's object. For an edge
//! command, [`NewestLimits::carried`] answers the newer of what the command carries and what the
//! object remembers, remembering the carried limits when they are newer; [`NewestLimits::push`]
//! remembers pushed limits unless newer ones were seen.
//!
//! # Guarantees
//! * The object enforces the limits of the highest version it has seen, pushed or carried: a
//!   failed push never leaves limits in force older than a record an edge carried, a stale edge
//!   never brings back limits older than a push or a newer record, and a raise applies as soon
//!   as it is pushed or carried.
//! * Equal versions hold equal limits (the registry writes one version per state), so on a tie
//!   the remembered limits stay.
//! * Version 0 means "from before versions existed" (records and pushes without one): among
//!   those, pushed limits win over carried ones, as before versions; carried limits of version 0
//!   are never remembered, so such records keep applying their own limits until a push.

use super::config::Limits;
use serde::{Deserialize, Serialize};

/// A key's limits (its own [`Limits`], or the limits of the scopes inside it) as of one policy
/// version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedLimits<T = Limits> {
    pub version: u64,
    pub limits: T,
}

/// The newest versioned limits an object has been pushed or carried, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NewestLimits<T = Limits> {
    seen: Option<VersionedLimits<T>>,
}

impl<T> Default for NewestLimits<T> {
    fn default() -> Self {
        NewestLimits { seen: None }
    }
}

impl<T: Clone> NewestLimits<T> {
    /// Whether nothing was remembered yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_none()
    }

    /// The limits to enforce for a command carrying `carried`, and whether they were remembered
    /// (the state changed).
    pub fn carried(&mut self, carried: VersionedLimits<T>) -> (T, bool) {
        match &self.seen {
            Some(seen) if seen.version >= carried.version => (seen.limits.clone(), false),
            _ if carried.version == 0 => (carried.limits, false),
            _ => {
                self.seen = Some(carried.clone());
                (carried.limits, true)
            }
        }
    }

    /// What [`NewestLimits::carried`] enforces, without remembering: for read-only commands.
    pub fn peek<'a>(&'a self, carried: &'a VersionedLimits<T>) -> &'a T {
        match &self.seen {
            Some(seen) if seen.version >= carried.version => &seen.limits,
            _ => &carried.limits,
        }
    }

    /// Remembers `pushed` unless newer limits were seen; answers whether it did.
    pub fn push(&mut self, pushed: VersionedLimits<T>) -> bool {
        let newest = self.seen.as_ref().is_none_or(|seen| pushed.version >= seen.version);
        if newest {
            self.seen = Some(pushed);
        }
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;

    fn rpm(version: u64, rpm: u64) -> VersionedLimits {
        VersionedLimits { version, limits: Limits { rpm: NonZeroU64::new(rpm), ..Limits::default() } }
    }

    #[test]
    fn a_newer_record_wins_over_an_older_push() {
        let mut newest = NewestLimits::default();
        assert!(newest.push(rpm(3, 100)));
        // The push of version 4 (rpm 10) failed; an edge carries the version 4 record.
        assert_eq!(newest.carried(rpm(4, 10)), (rpm(4, 10).limits, true));
        assert_eq!(newest.carried(rpm(3, 100)), (rpm(4, 10).limits, false), "a stale edge loses");
        assert!(!newest.push(rpm(3, 100)), "a stale push loses");
        assert_eq!(newest.peek(&rpm(2, 1)), &rpm(4, 10).limits);
    }

    #[test]
    fn a_push_wins_over_a_stale_edge_and_ties_keep_the_remembered() {
        let mut newest = NewestLimits::default();
        assert_eq!(newest.carried(rpm(5, 50)), (rpm(5, 50).limits, true));
        assert!(newest.push(rpm(6, 60)));
        assert_eq!(newest.carried(rpm(5, 50)).0, rpm(6, 60).limits);
        assert_eq!(newest.carried(rpm(6, 60)), (rpm(6, 60).limits, false));
        assert!(newest.push(rpm(6, 60)), "an equal push is the same state");
        assert_eq!(newest.peek(&rpm(7, 70)), &rpm(7, 70).limits, "a newer carried is enforced");
    }

    #[test]
    fn unversioned_limits_behave_as_before_versions() {
        let mut newest = NewestLimits::default();
        assert_eq!(newest.carried(rpm(0, 5)), (rpm(0, 5).limits, false), "enforced, not remembered");
        assert_eq!(newest.carried(rpm(0, 7)).0, rpm(0, 7).limits);
        assert!(newest.push(rpm(0, 1)));
        assert_eq!(newest.carried(rpm(0, 7)).0, rpm(0, 1).limits, "pushed wins among version 0");
        assert_eq!(newest.carried(rpm(1, 9)).0, rpm(1, 9).limits, "any version beats version 0");
    }
}
