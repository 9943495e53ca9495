//! How long the registry keeps what accumulates, and how it forgets it.
//!
//! - Audit entries: [`Retention::audit_ms`], 400 days unless the `AUDIT_RETENTION_DAYS` var says
//!   otherwise ([`Retention::from_var`], 1 to 3,650 days).
//! - Answers kept for idempotency keys: [`crate::admin::idempotency::WINDOW_MS`] (24 hours).
//! - A principal's previous token, after a rotation: until its grace period ends.
//!
//! Flow: the registry's alarm deletes at most [`PURGE_BATCH`] rows of each kind per run, oldest
//! first, and asks to wake again at once while a batch came back full, else when the next row
//! expires ([`crate::admin::api::Registry::alarm`]). Until it is deleted, an expired row is
//! never used: lookups compare the expiry with the clock.
//!
//! Audit entries are deleted in id order, and each run looks at the oldest [`PURGE_BATCH`]
//! only, so the work stays bounded whatever the log's size; an entry written under a clock
//! that stepped back can hold later ones back until it expires itself.

use crate::error::{ApiError, Code};

/// Rows of each kind one alarm run deletes at most.
pub const PURGE_BATCH: usize = 200;
pub const DEFAULT_AUDIT_DAYS: u64 = 400;
const MAX_AUDIT_DAYS: u64 = 3_650;
const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long an audit entry is kept after it was written.
    pub audit_ms: u64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { audit_ms: DEFAULT_AUDIT_DAYS * DAY_MS }
    }
}

impl Retention {
    /// The retention `AUDIT_RETENTION_DAYS` asks for (unset: the default); 500 `invalid_config`
    /// for anything but a whole number of days from 1 to 3,650.
    pub fn from_var(audit_days: Option<&str>) -> Result<Retention, ApiError> {
        let Some(text) = audit_days else { return Ok(Retention::default()) };
        match text.trim().parse::<u64>() {
            Ok(days) if (1..=MAX_AUDIT_DAYS).contains(&days) => Ok(Retention { audit_ms: days * DAY_MS }),
            _ => Err(ApiError::new(
                Code::InvalidConfig,
                format!("AUDIT_RETENTION_DAYS must be a whole number of days from 1 to {MAX_AUDIT_DAYS}."),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_var_sets_whole_days_within_bounds() {
        assert_eq!(Retention::from_var(None).unwrap().audit_ms, 400 * DAY_MS);
        assert_eq!(Retention::from_var(Some(" 30 ")).unwrap().audit_ms, 30 * DAY_MS);
        assert_eq!(Retention::from_var(Some("3650")).unwrap().audit_ms, 3_650 * DAY_MS);
        for bad in ["0", "3651", "-1", "1.5", "forever", ""] {
            assert_eq!(Retention::from_var(Some(bad)).unwrap_err().code(), Code::InvalidConfig, "{bad}");
        }
    }
}
