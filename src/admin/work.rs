//! Work a registry change leaves for other stores: KV projections and ledger-object commands.
//!
//! Flow: a change writes its work rows in the same synchronous step as the change itself, so
//! both are kept or neither; the registry then applies the rows in order, lane by lane, and
//! deletes each once its store acknowledged it. A failed row is retried after
//! [`retry_delay_ms`] by the registry's alarm, and holds back the later rows of its lane (so a
//! `disable` is never overtaken by an older `enable`), never those of other lanes.
//!
//! `Project`, `PushLimits`, `ProjectOrg` and `PushBudget` carry at most a key or project id: they are computed from the
//! registry as it is when applied, so applying one late or twice still leaves the newest state.
//!
//! The organisation's own work: `ProjectOrg` writes its KV record (`org:<org_id>`, deleted once
//! the organisation is), and after a deletion `Purge` empties the registry's tables, once every
//! other row is done (it fails, and is retried, while any remains).

use crate::ledger::revocation::Control;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Make KV hold exactly the key's live secrets, each with the key's current record.
    Project { key_id: String },
    /// Tell the key's ledger object about a disable, enable, rotation or deletion.
    Control { key_id: String, control: Control },
    /// Send the key's current effective limits to its ledger object.
    PushLimits { key_id: String },
    /// Make KV hold the organisation's current record (or none, once it is deleted).
    ProjectOrg,
    /// Send a budget's current limits to its object: the project's, or the organisation's
    /// (`project` absent).
    PushBudget {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
    },
    /// Empty the tables of a deleted organisation.
    Purge,
}

impl Work {
    /// Rows of one lane are applied in order: one lane for a key's KV records, one for its
    /// ledger object.
    pub fn lane(&self) -> String {
        match self {
            Work::Project { key_id } => format!("kv:{key_id}"),
            Work::Control { key_id, .. } | Work::PushLimits { key_id } => format!("ledger:{key_id}"),
            Work::ProjectOrg => "kv:org".to_owned(),
            Work::PushBudget { project: Some(project) } => format!("budget:{project}"),
            Work::PushBudget { project: None } => "budget:org".to_owned(),
            Work::Purge => "purge".to_owned(),
        }
    }

    /// Whether the row is computed from the registry when applied (so a second one, while one is
    /// still pending, adds nothing), rather than a fact to deliver in order.
    pub fn is_state_based(&self) -> bool {
        matches!(
            self,
            Work::Project { .. } | Work::PushLimits { .. } | Work::ProjectOrg | Work::PushBudget { .. } | Work::Purge
        )
    }

    /// Everything a key's stores need after its policy, status or boundaries changed.
    pub fn sync(key_id: &str) -> [Work; 2] {
        [Work::PushLimits { key_id: key_id.to_owned() }, Work::Project { key_id: key_id.to_owned() }]
    }
}

/// How long to wait before retrying a row that failed `attempts` times: 1 s, doubling, at
/// most 5 minutes.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    1_000u64.saturating_mul(1 << attempts.min(9)).min(300_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_separate_kv_from_the_ledger() {
        let control = Work::Control { key_id: "k".into(), control: Control::Disable };
        assert_eq!(control.lane(), "ledger:k");
        assert_eq!(Work::PushLimits { key_id: "k".into() }.lane(), "ledger:k");
        assert_eq!(Work::Project { key_id: "k".into() }.lane(), "kv:k");
        assert_eq!(Work::ProjectOrg.lane(), "kv:org");
    }

    #[test]
    fn controls_are_facts_projections_are_state() {
        assert!(!Work::Control { key_id: "k".into(), control: Control::Enable }.is_state_based());
        assert!(Work::sync("k").iter().all(Work::is_state_based));
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let delays: Vec<u64> = (0..12).map(retry_delay_ms).collect();
        assert_eq!(&delays[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(delays[8], 256_000);
        assert!(delays[9..].iter().all(|&d| d == 300_000));
    }

    #[test]
    fn rows_round_trip() {
        let work =
            Work::Control { key_id: "k".into(), control: Control::Rotate { new_version: 2, grace_until_ms: Some(5) } };
        let json = serde_json::to_string(&work).unwrap();
        assert_eq!(serde_json::from_str::<Work>(&json).unwrap(), work);
    }
}
