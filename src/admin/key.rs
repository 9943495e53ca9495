//! A team key as the registry holds it ([`Key`]), with the rules its creator set ([`KeyRules`]),
//! and the two forms made from it: the KV record the request path reads ([`Key::record`]) and
//! the JSON the admin API answers ([`KeyView`]).
//!
//! The record is the key's own values clamped by the boundaries above it as they are now, with
//! the boundaries' constraints beside them, so re-projecting a key after a boundary change is
//! all it takes to apply the change.

use super::boundary::{constraints, effective_limits, Boundary};
use super::lifecycle::Status;
use crate::limits::Limits;
use crate::policy::{BudgetLink, Jurisdiction, KeyRecord, KeyRules, KeyStatus, ModelAccess};
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// A key in the registry. The secret is not part of it: only its hashes (in the registry's
/// secrets) and [`Key::masked`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Stored as a versioned document ([`KEY_FORMAT`]).
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Key {
    pub id: String,
    /// Its organisation; absent on keys created before organisations, whose ledger objects
    /// keep their names ([`crate::naming::ledger_object`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Its organisation's jurisdiction, where its ledger object lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    pub project: String,
    /// The principal who created it.
    pub creator: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub status: Status,
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The current secret's version: 1, plus one per rotation.
    pub secret_version: u32,
    /// The current secret's prefix and last four characters.
    pub masked: String,
    /// The rules as its creator set them (before any boundary).
    pub policy: KeyRules,
}

/// The stored format of a key's row: version 1, today's members. A later member that narrows
/// what the key may do (a restriction read on the way to its KV record) must be critical.
pub const KEY_FORMAT: Format = Format {
    version: 1,
    members: &[
        "id",
        "org",
        "jurisdiction",
        "project",
        "creator",
        "name",
        "description",
        "tags",
        "status",
        "created_at",
        "updated_at",
        "expires_at",
        "secret_version",
        "masked",
        "policy",
    ],
    critical: &[],
};
stored_serde!(Key, KEY_FORMAT);

/// The boundaries above a key: the organisation's, then its project's boundary and ceiling.
#[derive(Debug, Clone, Copy)]
pub struct Boundaries<'a> {
    pub org: &'a Boundary,
    pub project: &'a Boundary,
    pub ceiling: &'a Boundary,
}

impl Boundaries<'_> {
    fn all(&self) -> [&Boundary; 3] {
        [self.org, self.project, self.ceiling]
    }
}

/// What the key is allowed once the boundaries are applied: its limits clamped, and what the
/// boundaries hold it to beside its own rules (the record's `boundary_*` members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct EffectivePolicy {
    pub limits: Limits,
    /// Model rules of the boundaries, checked on top of the key's own `models`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, schemars(default))]
    pub boundary_models: Vec<ModelAccess>,
    /// Routing-group lists of the boundaries: a group must be on each, and on the key's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boundary_routing_groups: Vec<Vec<String>>,
    /// IP allowlists of the boundaries: a client must be on each, and on the key's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boundary_ip_allowlists: Vec<Vec<String>>,
    /// Unix ms: the end of the longest life the boundaries allow the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary_expires_at: Option<u64>,
}

impl Key {
    pub fn effective(&self, boundaries: Boundaries) -> EffectivePolicy {
        let constraints = constraints(self.created_at, &boundaries.all());
        EffectivePolicy {
            limits: effective_limits(&self.policy.limits, &boundaries.all()),
            boundary_models: constraints.models,
            boundary_routing_groups: constraints.routing_groups,
            boundary_ip_allowlists: constraints.ip_allowlists,
            boundary_expires_at: constraints.expires_at,
        }
    }

    /// The KV record for the secret of `secret_version`, at the key's `policy_version`. A deleted
    /// key has no record; callers delete its hashes instead.
    /// The KV record of the key's secret of `secret_version`, under `boundaries` and with the
    /// `budgets` above it.
    pub fn record(
        &self,
        secret_version: u32,
        policy_version: u64,
        boundaries: Boundaries,
        budgets: Vec<BudgetLink>,
    ) -> KeyRecord {
        let effective = self.effective(boundaries);
        KeyRecord {
            id: self.id.clone(),
            org: self.org.clone(),
            jurisdiction: self.jurisdiction,
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            creator: self.creator.clone(),
            project: self.project.clone(),
            status: if self.status == Status::Active { KeyStatus::Active } else { KeyStatus::Disabled },
            created_at: self.created_at,
            expires_at: self.expires_at,
            secret_version,
            policy_version,
            boundary_models: effective.boundary_models,
            boundary_routing_groups: effective.boundary_routing_groups,
            boundary_ip_allowlists: effective.boundary_ip_allowlists,
            boundary_expires_at: effective.boundary_expires_at,
            budgets,
            rules: KeyRules { limits: effective.limits, ..self.policy.clone() },
        }
    }

    pub fn view(&self, boundaries: Boundaries, now_ms: u64) -> KeyView {
        KeyView {
            key: self.clone(),
            expired: self.expires_at.is_some_and(|at| now_ms >= at),
            effective: self.effective(boundaries),
        }
    }
}

/// A key as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Key"))]
pub struct KeyView {
    #[serde(flatten)]
    pub key: Key,
    /// Whether `expires_at` has passed (the key is then refused whatever its status).
    pub expired: bool,
    pub effective: EffectivePolicy,
}

/// `GET /keys/{id}`: the key's view and when it was last used, which its ledger object knows
/// (lists do not show it: they would ask one object per key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct KeyDetail {
    #[serde(flatten)]
    pub view: KeyView,
    /// When the key's ledger object last admitted a call (Unix ms); null before the first.
    pub last_used_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::KeyPolicy;
    use crate::versioned::check;

    fn key() -> Key {
        Key {
            id: "key_1".into(),
            org: Some("org_eu_a".into()),
            jurisdiction: Some(Jurisdiction::Eu),
            project: "prj_1".into(),
            creator: "prn_1".into(),
            name: "ci".into(),
            description: None,
            tags: vec!["ci".into()],
            status: Status::Active,
            created_at: 10,
            updated_at: 10,
            expires_at: Some(1_000),
            secret_version: 3,
            masked: "tk_...abcd".into(),
            policy: serde_json::from_str(r#"{"models":{"allow":["gpt-*"]},"limits":{"rpm":100}}"#).unwrap(),
        }
    }

    #[test]
    fn the_record_is_clamped_and_parses_as_the_request_path_reads_it() {
        let org: Boundary = serde_json::from_str(
            r#"{"models":{"block":["gpt-5*"]},"limits":{"rpm":20},"ip_allowlist":["10.0.0.0/8"]}"#,
        )
        .unwrap();
        let project: Boundary = serde_json::from_str(r#"{"routing_groups":["eu"],"limits":{"rpm":30}}"#).unwrap();
        let ceiling: Boundary =
            serde_json::from_str(r#"{"routing_groups":["eu","us"],"max_key_lifetime_days":2}"#).unwrap();
        let record = key().record(2, 7, Boundaries { org: &org, project: &project, ceiling: &ceiling }, Vec::new());
        let json = serde_json::to_vec(&record).unwrap();
        let policy = KeyPolicy::from_json(&json).unwrap();
        let parsed = policy.record();
        assert_eq!(parsed.secret_version, 2);
        assert_eq!(parsed.rules.limits.rpm.map(|n| n.get()), Some(20));
        assert_eq!(parsed.boundary_models, vec![org.rules.models.clone()]);
        assert_eq!(
            parsed.boundary_routing_groups,
            [project.rules.routing_groups.clone(), ceiling.rules.routing_groups]
        );
        assert_eq!(parsed.boundary_ip_allowlists, std::slice::from_ref(&org.rules.ip_allowlist));
        assert_eq!(parsed.boundary_expires_at, Some(10 + 2 * 86_400_000), "created_at + the ceiling's lifetime");
        assert_eq!((parsed.status, parsed.expires_at), (KeyStatus::Active, Some(1_000)));
        assert_eq!((parsed.org.as_deref(), parsed.jurisdiction), (Some("org_eu_a"), Some(Jurisdiction::Eu)));
    }

    #[test]
    fn the_row_is_a_versioned_document() {
        let full = Key { description: Some("d".into()), ..key() };
        check::members_match(&KEY_FORMAT, &full);
        check::version_rule(&KEY_FORMAT, &full, "later", serde_json::json!({"narrows": true}));
        let row = serde_json::to_value(&full).unwrap();
        assert!(row.get("v").is_none(), "version 1 is written as rows were before versions");
        assert_eq!(serde_json::from_value::<Key>(row).unwrap(), full);
    }

    #[test]
    fn disabled_keys_project_as_disabled() {
        let none = Boundary::default();
        let key = Key { status: Status::Disabled, ..key() };
        assert_eq!(
            key.record(1, 1, Boundaries { org: &none, project: &none, ceiling: &none }, Vec::new()).status,
            KeyStatus::Disabled
        );
    }

    #[test]
    fn the_view_shows_no_secret_and_flags_expiry() {
        let none = Boundary::default();
        let view = key().view(Boundaries { org: &none, project: &none, ceiling: &none }, 1_000);
        assert!(view.expired);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["masked"], "tk_...abcd");
        assert_eq!(json["effective"]["limits"]["rpm"], 100);
        assert!(json.get("effective").unwrap().get("boundary_models").is_none());
    }
}
