//! A key's life in the registry: its status, its secrets, and what a rotation does to them.
//!
//! Status: `active` ⇄ `disabled` (disable / enable), either → `deleted`, which is final (the
//! registry keeps the row for audit and usage; every later change is refused with 409).
//!
//! Secrets: a key has one current secret (the highest version) and, after a rotation with a grace
//! period, the previous one until the grace ends. [`rotate`] numbers the new secret
//! `current + 1`; every secret of a lower version than the previous one retires at once, as
//! does the previous one without a grace period. The key's ledger object applies the same rule
//! (`Control::Rotate`), so a retired secret is refused there even while a KV copy survives.
//! [`SecretState::project`] says which hashes KV must hold (each with its version) and which
//! it must forget.

use crate::error::{ApiError, Code};
use crate::ledger::revocation::Control;
use serde::{Deserialize, Serialize};

/// The longest grace period a rotation may give the old secret: 7 days.
pub const MAX_GRACE_MS: u64 = 7 * 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "KeyStatus"))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Disabled,
    Deleted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Deleted => "deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        [Status::Active, Status::Disabled, Status::Deleted].into_iter().find(|s| s.name() == name)
    }
}

/// A change of status asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Disable,
    Enable,
    Delete,
}

impl Transition {
    /// The status after the transition, or 409 if the key is deleted. Disabling a disabled key
    /// (or enabling an active one) is allowed and changes nothing.
    pub fn apply(self, key_id: &str, from: Status) -> Result<Status, ApiError> {
        if from == Status::Deleted {
            return Err(deleted(key_id));
        }
        Ok(match self {
            Transition::Disable => Status::Disabled,
            Transition::Enable => Status::Active,
            Transition::Delete => Status::Deleted,
        })
    }

    /// What the key's ledger object is told.
    pub fn control(self) -> Control {
        match self {
            Transition::Disable => Control::Disable,
            Transition::Enable => Control::Enable,
            Transition::Delete => Control::Delete,
        }
    }
}

/// 409 for any change to a deleted key.
pub fn deleted(key_id: &str) -> ApiError {
    ApiError::new(Code::KeyDeleted, format!("Key '{key_id}' is deleted."))
}

/// One stored secret of a key: the SHA-256 of the secret and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub hash: String,
    pub version: u32,
    /// `None` while the secret is current; after a rotation, when it stops being honoured.
    pub valid_until_ms: Option<u64>,
}

impl Secret {
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.valid_until_ms.is_none_or(|until| now_ms < until)
    }
}

/// A rotation decided: the new secret's version and until when the previous one still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub new_version: u32,
    pub grace_until_ms: Option<u64>,
}

impl Rotation {
    pub fn control(self) -> Control {
        Control::Rotate { new_version: self.new_version, grace_until_ms: self.grace_until_ms }
    }
}

/// Plans a rotation of a key whose current secret is `current_version`, the old secret staying
/// valid for `grace_seconds` (none or 0: it stops at once). 400 `invalid_grace_seconds` for a
/// negative, non-finite or longer than [`MAX_GRACE_MS`] grace.
pub fn rotate(current_version: u32, grace_seconds: Option<f64>, now_ms: u64) -> Result<Rotation, ApiError> {
    let grace_until_ms = grace_until(grace_seconds, now_ms)?;
    Ok(Rotation { new_version: current_version.saturating_add(1), grace_until_ms })
}

/// When a previous secret given `grace_seconds` stops (none or 0: at once, `None`); 400
/// `invalid_grace_seconds` for a negative, non-finite or longer than [`MAX_GRACE_MS`] grace.
/// Principal tokens follow the same rule.
pub fn grace_until(grace_seconds: Option<f64>, now_ms: u64) -> Result<Option<u64>, ApiError> {
    let grace_ms = match grace_seconds {
        None => 0,
        Some(s) if s.is_finite() && s >= 0.0 && s * 1000.0 <= MAX_GRACE_MS as f64 => (s * 1000.0).round() as u64,
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidGraceSeconds,
                "grace_seconds must be a number of seconds from 0 to 604800 (7 days).",
            ))
        }
    };
    Ok((grace_ms > 0).then(|| now_ms + grace_ms))
}

/// A key's secrets as the registry holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretState {
    pub secrets: Vec<Secret>,
}

/// What KV must hold for a key: records to write (hash, secret version) and hashes to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvPlan {
    pub put: Vec<(String, u32)>,
    pub delete: Vec<String>,
}

impl SecretState {
    /// The secrets after `rotation` and the new secret `new_hash` at `now_ms`.
    pub fn rotated(&self, rotation: Rotation, new_hash: String, now_ms: u64) -> SecretState {
        let previous = rotation.new_version - 1;
        let mut secrets: Vec<Secret> = self
            .secrets
            .iter()
            .map(|s| {
                let valid_until_ms = match (s.version == previous, rotation.grace_until_ms) {
                    (true, Some(until)) => Some(until),
                    _ => Some(s.valid_until_ms.map_or(now_ms, |until| until.min(now_ms))),
                };
                Secret { valid_until_ms, ..s.clone() }
            })
            .collect();
        secrets.push(Secret { hash: new_hash, version: rotation.new_version, valid_until_ms: None });
        SecretState { secrets }
    }

    /// What KV must hold at `now_ms`: every live secret of a key that is not deleted; nothing
    /// for a deleted key.
    pub fn project(&self, status: Status, now_ms: u64) -> KvPlan {
        let (live, dead): (Vec<&Secret>, Vec<&Secret>) =
            self.secrets.iter().partition(|s| status != Status::Deleted && s.is_live(now_ms));
        KvPlan {
            put: live.into_iter().map(|s| (s.hash.clone(), s.version)).collect(),
            delete: dead.into_iter().map(|s| s.hash.clone()).collect(),
        }
    }

    /// When the next secret still honoured stops being so, if any.
    pub fn next_expiry(&self, now_ms: u64) -> Option<u64> {
        self.secrets.iter().filter_map(|s| s.valid_until_ms).filter(|&until| until > now_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::revocation::Revocation;

    fn fresh() -> SecretState {
        SecretState { secrets: vec![Secret { hash: "h1".into(), version: 1, valid_until_ms: None }] }
    }

    #[test]
    fn transitions() {
        assert_eq!(Transition::Disable.apply("k", Status::Active).unwrap(), Status::Disabled);
        assert_eq!(Transition::Disable.apply("k", Status::Disabled).unwrap(), Status::Disabled);
        assert_eq!(Transition::Enable.apply("k", Status::Disabled).unwrap(), Status::Active);
        assert_eq!(Transition::Delete.apply("k", Status::Disabled).unwrap(), Status::Deleted);
        let e = Transition::Enable.apply("k", Status::Deleted).unwrap_err();
        assert_eq!((e.status(), e.code().as_str()), (409, "key_deleted"));
    }

    #[test]
    fn grace_is_validated() {
        assert_eq!(rotate(1, None, 1_000).unwrap(), Rotation { new_version: 2, grace_until_ms: None });
        assert_eq!(rotate(1, Some(0.0), 1_000).unwrap().grace_until_ms, None);
        assert_eq!(rotate(4, Some(1.5), 1_000).unwrap(), Rotation { new_version: 5, grace_until_ms: Some(2_500) });
        assert_eq!(rotate(1, Some(604_800.0), 0).unwrap().grace_until_ms, Some(MAX_GRACE_MS));
        for bad in [-1.0, 604_800.5, f64::NAN, f64::INFINITY] {
            assert_eq!(rotate(1, Some(bad), 0).unwrap_err().code(), "invalid_grace_seconds", "{bad}");
        }
    }

    #[test]
    fn rotation_with_grace_keeps_both_secrets_in_kv_until_the_grace_ends() {
        let rotation = rotate(1, Some(2.0), 10_000).unwrap();
        let state = fresh().rotated(rotation, "h2".into(), 10_000);
        let during = state.project(Status::Active, 11_999);
        assert_eq!(during.put, vec![("h1".to_owned(), 1), ("h2".to_owned(), 2)]);
        assert!(during.delete.is_empty());
        assert_eq!(state.next_expiry(10_000), Some(12_000));
        let after = state.project(Status::Active, 12_000);
        assert_eq!((after.put, after.delete), (vec![("h2".to_owned(), 2)], vec!["h1".to_owned()]));
        assert_eq!(state.next_expiry(12_000), None);
    }

    #[test]
    fn rotation_without_grace_retires_at_once_and_a_second_rotation_ends_the_first_grace() {
        let state = fresh().rotated(rotate(1, None, 5).unwrap(), "h2".into(), 5);
        assert_eq!(state.project(Status::Active, 5).delete, vec!["h1".to_owned()]);
        let graced = fresh().rotated(rotate(1, Some(100.0), 0).unwrap(), "h2".into(), 0);
        let twice = graced.rotated(rotate(2, Some(100.0), 10).unwrap(), "h3".into(), 10);
        let plan = twice.project(Status::Active, 10);
        assert_eq!(plan.put, vec![("h2".to_owned(), 2), ("h3".to_owned(), 3)]);
        assert_eq!(plan.delete, vec!["h1".to_owned()]);
    }

    #[test]
    fn deleted_keys_leave_kv() {
        let plan = fresh().project(Status::Deleted, 0);
        assert_eq!((plan.put.len(), plan.delete), (0, vec!["h1".to_owned()]));
        assert_eq!(fresh().project(Status::Disabled, 0).put.len(), 1, "disabled keys stay, refused by status");
    }

    /// The registry's secrets and the ledger object's revocation agree on every version.
    #[test]
    fn registry_and_ledger_agree() {
        let mut revocation = Revocation::default();
        let mut state = fresh();
        let mut version = 1;
        for (now, grace) in [(0, Some(50.0)), (10_000, None), (20_000, Some(1.0))] {
            let rotation = rotate(version, grace, now).unwrap();
            version = rotation.new_version;
            state = state.rotated(rotation, format!("h{version}"), now);
            revocation.apply(&rotation.control());
            for probe in [now, now + 999, now + 1_000, now + 60_000] {
                let live: Vec<u32> = state.project(Status::Active, probe).put.iter().map(|&(_, v)| v).collect();
                for v in 1..=version {
                    assert_eq!(live.contains(&v), revocation.check(v, probe).is_ok(), "v{v} at {probe}");
                }
            }
        }
    }
}
