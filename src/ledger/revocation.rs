//! Which secrets of a key its ledger object still honours.
//!
//! KV, read by the request path, is eventually consistent and cached at the edge for up to a
//! minute; the key's Durable Object, visited by every admitted request, is not. The control plane
//! tells the object about every disable, enable, rotation and deletion, and the object refuses
//! from that moment whatever a stale KV copy says.
//!
//! Its organisation's suspension is told the same way ([`Control::Suspend`] / [`Control::Resume`],
//! fanned out by the organisation's registry to every key's object through its pending work),
//! and kept apart from the key's own disable: resuming the organisation does not enable a key
//! an admin disabled, and enabling a key does not lift its organisation's suspension.
//!
//! Invariant: a deleted key is refused forever; a key of a suspended organisation until the
//! organisation is resumed; a disabled key until it is enabled; a secret version below
//! `min_version` only within its rotation grace period.

use serde::{Deserialize, Serialize};

/// What the control plane tells a key's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Control {
    Disable,
    Enable,
    /// A new secret version; the previous one keeps working until `grace_until_ms`, if given.
    Rotate {
        new_version: u32,
        grace_until_ms: Option<u64>,
    },
    Delete,
    /// The key's organisation is suspended.
    Suspend,
    /// The key's organisation is active again.
    Resume,
}

/// Why the object refused a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    Disabled,
    Deleted,
    /// The key's organisation is suspended.
    Suspended,
    /// The secret was replaced by a rotation and its grace period (if any) is over.
    Rotated,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    deleted: bool,
    /// Its organisation is suspended (apart from `disabled`, the key's own state).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    suspended: bool,
    /// Secrets with a lower version are refused (0: the object has not seen a rotation).
    #[serde(default)]
    min_version: u32,
    /// The previous secret version and when its grace ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace: Option<(u32, u64)>,
}

impl Revocation {
    /// Whether a request carrying secret `version` may proceed at `now_ms`.
    pub fn check(&self, version: u32, now_ms: u64) -> Result<(), Revoked> {
        if self.deleted {
            return Err(Revoked::Deleted);
        }
        if self.suspended {
            return Err(Revoked::Suspended);
        }
        if self.disabled {
            return Err(Revoked::Disabled);
        }
        match self.grace {
            _ if version >= self.min_version => Ok(()),
            Some((old, until)) if old == version && now_ms < until => Ok(()),
            _ => Err(Revoked::Rotated),
        }
    }

    pub fn apply(&mut self, control: &Control) {
        match *control {
            Control::Disable => self.disabled = true,
            Control::Enable => self.disabled = false,
            Control::Delete => self.deleted = true,
            Control::Suspend => self.suspended = true,
            Control::Resume => self.suspended = false,
            Control::Rotate { new_version, grace_until_ms } => {
                let previous = new_version.saturating_sub(1);
                self.grace = grace_until_ms.map(|until| (previous, until));
                self.min_version = self.min_version.max(new_version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_object_honours_any_version() {
        assert_eq!(Revocation::default().check(7, 0), Ok(()));
    }

    #[test]
    fn disable_enable_delete() {
        let mut r = Revocation::default();
        r.apply(&Control::Disable);
        assert_eq!(r.check(1, 0), Err(Revoked::Disabled));
        r.apply(&Control::Enable);
        assert_eq!(r.check(1, 0), Ok(()));
        r.apply(&Control::Delete);
        r.apply(&Control::Enable);
        assert_eq!(r.check(1, 0), Err(Revoked::Deleted));
    }

    #[test]
    fn suspension_is_apart_from_the_keys_own_disable() {
        let mut r = Revocation::default();
        r.apply(&Control::Disable);
        r.apply(&Control::Suspend);
        assert_eq!(r.check(1, 0), Err(Revoked::Suspended));
        r.apply(&Control::Resume);
        assert_eq!(r.check(1, 0), Err(Revoked::Disabled), "a resumed organisation does not enable a disabled key");
        r.apply(&Control::Suspend);
        r.apply(&Control::Enable);
        assert_eq!(r.check(1, 0), Err(Revoked::Suspended), "enabling a key does not lift the suspension");
        r.apply(&Control::Resume);
        assert_eq!(r.check(1, 0), Ok(()));
    }

    #[test]
    fn a_state_from_before_suspensions_reads_as_not_suspended() {
        let old: Revocation = serde_json::from_str(r#"{"disabled":false,"deleted":false,"min_version":2}"#).unwrap();
        assert_eq!(old.check(2, 0), Ok(()));
        assert!(!serde_json::to_string(&old).unwrap().contains("suspended"), "the stored form is unchanged");
    }

    #[test]
    fn rotation_grace_then_never() {
        let mut r = Revocation::default();
        r.apply(&Control::Rotate { new_version: 2, grace_until_ms: Some(1_000) });
        assert_eq!(r.check(2, 0), Ok(()));
        assert_eq!(r.check(1, 999), Ok(()));
        assert_eq!(r.check(1, 1_000), Err(Revoked::Rotated));
        r.apply(&Control::Rotate { new_version: 3, grace_until_ms: None });
        assert_eq!(r.check(2, 0), Err(Revoked::Rotated));
        assert_eq!(r.check(1, 0), Err(Revoked::Rotated));
    }
}
