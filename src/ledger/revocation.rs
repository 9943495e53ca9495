//! Which secrets of a key its ledger object still honours.
//!
//! KV, read by the request path, is eventually consistent and cached at the edge for up to a
//! minute; the key's Durable Object, visited by every admitted request, is not. The control plane
//! tells the object about every disable, enable, rotation and deletion, and the object refuses
//! from that moment whatever a stale KV copy says.
//!
//! Invariant: a deleted key is refused forever; a disabled key until it is enabled; a secret
//! version below `min_version` only within its rotation grace period.

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
}

/// Why the object refused a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    Disabled,
    Deleted,
    /// The secret was replaced by a rotation and its grace period (if any) is over.
    Rotated,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    deleted: bool,
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
