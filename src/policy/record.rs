//! A team key as stored in KV ([`KeyRecord`], JSON), and its validated form ([`KeyPolicy`]).
//!
//! Flow: the gateway reads the record, [`KeyPolicy::from_json`] parses and validates it once
//! (the rules by [`KeyRules::validate`], the same check the admin API applies; IP entries
//! become networks), and the checks read only the [`KeyPolicy`]. A record that fails
//! validation is the gateway's fault, not the caller's: [`InvalidKeyRecord`] becomes a 500
//! naming the key id (never the key).
//!
//! The record is a versioned document ([`crate::versioned`], [`RECORD_FORMAT`]): records written
//! before versions existed are version 1. Unknown fields of its own version are refused, so a
//! misspelt policy field (`ip_alowlist`) can never silently widen a key. Version 2 added the
//! policy version of the key's limits (see [`crate::ledger`]) and the boundaries' routing-group,
//! IP and lifetime constraints; those narrow the key, so they are critical: a version-1 reader refuses a record that carries them rather than ignore them.
//! Version 3 added the limits of the scopes inside the key (`model_limits`, `end_user_limits`),
//! critical for the same reason.

use super::budget_link::BudgetLink;
use super::ip::IpAllowlist;
use super::model_access::ModelAccess;
use super::org_record::Jurisdiction;
use super::rules::{parse_ip_allowlist, validate_groups, InvalidRule, KeyRules};
use crate::error::{ApiError, Code};
use crate::versioned::{self, stored_serde, Format};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a key may be used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Disabled,
}

/// One team key's record. The secret itself is not part of it. In JSON the rules' fields sit
/// beside the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct KeyRecord {
    /// Stable across secret rotation; names the key in logs, usage and errors.
    pub id: String,
    /// The organisation the key belongs to; absent in records from before organisations (the
    /// key is then the default organisation's and its ledger object is named by its id alone:
    /// [`crate::naming::ledger_object`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Where the organisation's objects live, so the edge addresses the key's ledger object
    /// there without another lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub creator: String,
    pub project: String,
    pub status: KeyStatus,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms; the key is refused from this instant on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Bumped on each rotation; starts at 1.
    #[serde(default = "first_secret_version")]
    pub secret_version: u32,
    /// The version of the key's effective limits, bumped by the registry on every change; the
    /// key's object enforces the limits of the newest version it has seen. 0 in records written
    /// before versions existed.
    #[serde(default)]
    pub policy_version: u64,
    /// The model rules of the boundaries above the key (its project's, its organisation's), as
    /// the control plane projects them: a model must pass each of them as well as `models`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundary_models: Vec<ModelAccess>,
    /// The routing-group lists of the boundaries above the key, each non-empty: a group the key
    /// uses must be on each of them as well as on its own `routing_groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundary_routing_groups: Vec<Vec<String>>,
    /// The IP allowlists of the boundaries above the key, each non-empty: the client address must
    /// be on each of them as well as on its own `ip_allowlist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundary_ip_allowlists: Vec<Vec<String>>,
    /// Unix ms: the end of the longest life the boundaries above the key allow it (`created_at`
    /// plus their shortest `max_key_lifetime_days`). The key is refused from this instant on,
    /// whatever its own `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary_expires_at: Option<u64>,
    /// The budgets above the key (its project's, its organisation's) that have limits: a call
    /// is admitted only within each of them as well as within the key's own limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetLink>,
    /// The key's rules, its limits already clamped by the boundaries above it.
    #[serde(flatten)]
    pub rules: KeyRules,
}

/// The record's stored format: version 2 added the boundaries' constraints and `policy_version`;
/// version 3 the scopes inside the key, `model_limits` and `end_user_limits`, and the `budgets`
/// above the key, all critical (a build that dropped them would not enforce them), and
/// `admission` (not critical, written only when `exact`: a reader that drops it admits every
/// call at the key's object, which is what `exact` asks; a build from before it refuses a
/// record carrying it as an unknown member, failing closed).
pub const RECORD_FORMAT: Format = Format {
    version: 3,
    members: &[
        "id",
        "org",
        "jurisdiction",
        "name",
        "description",
        "tags",
        "creator",
        "project",
        "status",
        "created_at",
        "expires_at",
        "secret_version",
        "policy_version",
        "boundary_models",
        "boundary_routing_groups",
        "boundary_ip_allowlists",
        "boundary_expires_at",
        "budgets",
        "models",
        "routing_groups",
        "ip_allowlist",
        "limits",
        "model_limits",
        "end_user_limits",
        "admission",
    ],
    // `org` and `jurisdiction` name the key's ledger object: a reader dropping them would count
    // the key in another object; `budgets` narrow what the key may spend.
    critical: &[
        "org",
        "jurisdiction",
        "boundary_routing_groups",
        "boundary_ip_allowlists",
        "boundary_expires_at",
        "model_limits",
        "end_user_limits",
        "budgets",
    ],
};
stored_serde!(KeyRecord, RECORD_FORMAT);

fn first_secret_version() -> u32 {
    1
}

impl KeyRecord {
    /// Whether a call of this key to `model` counts as capped: it is under a spend cap of the
    /// key, its model pattern or its end users ([`KeyRules::spend_capped`]), or the key lies
    /// under a budget with a hard one. A capped call must be one whose bill the gateway can bound.
    pub fn capped(&self, model: Option<&str>) -> bool {
        self.rules.spend_capped(model) || self.budgets.iter().any(BudgetLink::caps_spend)
    }

    /// Whether an edge isolate may lease this key's calls: its rules are leasable
    /// ([`KeyRules::leasable`]). Budgets above it do not stop it: the key's object covers each
    /// slice at every level ([`crate::ledger::budgets::BudgetHolders::cover`]).
    pub fn leasable(&self) -> bool {
        self.rules.leasable()
    }
}

/// A validated key record: every [`KeyPolicy`] has a non-empty id without whitespace, a
/// secret version of at least 1, valid boundary model rules, non-empty and valid boundary
/// routing-group lists and IP allowlists, and valid rules ([`KeyRules::validate`]); its IP
/// allowlists parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    record: KeyRecord,
    ip_allowlist: IpAllowlist,
    boundary_ip_allowlists: Vec<IpAllowlist>,
}

impl KeyPolicy {
    /// Parses and validates a stored record (on every call: see [`versioned::from_slice`]).
    pub fn from_json(json: &[u8]) -> Result<KeyPolicy, InvalidKeyRecord> {
        match versioned::from_slice(&RECORD_FORMAT, json, |members| KeyRecord::deserialize(members)) {
            Ok(record) => KeyPolicy::try_from(record),
            Err(error) => Err(InvalidKeyRecord { key_id: id_of_unparsable(json), reason: error.to_string() }),
        }
    }

    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    pub fn ip_allowlist(&self) -> &IpAllowlist {
        &self.ip_allowlist
    }

    /// The boundaries' IP allowlists, parsed; none is empty.
    pub fn boundary_ip_allowlists(&self) -> &[IpAllowlist] {
        &self.boundary_ip_allowlists
    }
}

impl TryFrom<KeyRecord> for KeyPolicy {
    type Error = InvalidKeyRecord;

    fn try_from(record: KeyRecord) -> Result<KeyPolicy, InvalidKeyRecord> {
        let invalid = |reason: String| InvalidKeyRecord { key_id: record.id.clone(), reason };
        if record.id.is_empty() || record.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("id is empty or holds whitespace".to_owned()));
        }
        if record.secret_version == 0 {
            return Err(invalid("secret_version is 0".to_owned()));
        }
        for rule in &record.boundary_models {
            rule.validate().map_err(|reason| invalid(format!("boundary_models: {reason}")))?;
        }
        let checked = || -> Result<_, InvalidRule> {
            for (i, groups) in record.boundary_routing_groups.iter().enumerate() {
                let field = format!("boundary_routing_groups[{i}]");
                non_empty(&field, groups)?;
                validate_groups(&field, groups, None)?;
            }
            let boundary_ip_allowlists = record.boundary_ip_allowlists.iter().enumerate().map(|(i, entries)| {
                let field = format!("boundary_ip_allowlists[{i}]");
                non_empty(&field, entries)?;
                parse_ip_allowlist(&field, entries)
            });
            Ok((record.rules.validate(None)?, boundary_ip_allowlists.collect::<Result<_, _>>()?))
        };
        let (ip_allowlist, boundary_ip_allowlists) = checked().map_err(|rule| invalid(rule.to_string()))?;
        Ok(KeyPolicy { record, ip_allowlist, boundary_ip_allowlists })
    }
}

/// A boundary's list is never empty: empty would read as "no constraint" and widen the key.
fn non_empty(field: &str, list: &[String]) -> Result<(), InvalidRule> {
    if list.is_empty() {
        return Err(InvalidRule { field: field.to_owned(), reason: "is empty".to_owned() });
    }
    Ok(())
}

/// The `id` of a record that does not parse as a [`KeyRecord`], if it has a readable one.
fn id_of_unparsable(json: &[u8]) -> String {
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(json).map_or_else(|_| "(unknown)".to_owned(), |record| record.id)
}

/// A stored key record that cannot be used. The gateway answers 500 `invalid_key_record`; the
/// reason is for logs and admins, not for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKeyRecord {
    pub key_id: String,
    pub reason: String,
}

impl fmt::Display for InvalidKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key record '{}' is invalid: {}", self.key_id, self.reason)
    }
}

impl From<InvalidKeyRecord> for ApiError {
    fn from(invalid: InvalidKeyRecord) -> ApiError {
        ApiError::new(
            Code::InvalidKeyRecord,
            format!("The stored record of key '{}' is invalid; an admin must fix it.", invalid.key_id),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;
    use crate::limits::Limits;
    use crate::policy::rules::strategy;
    use crate::versioned::{check, Format};
    use proptest::prelude::*;
    use serde_json::json;

    const MINIMAL: &str =
        r#"{"id":"k1","name":"ci","creator":"ana","project":"search","status":"active","created_at":1000}"#;

    #[test]
    fn minimal_record_takes_defaults() {
        let policy = KeyPolicy::from_json(MINIMAL.as_bytes()).unwrap();
        let record = policy.record();
        assert_eq!(record.secret_version, 1);
        assert_eq!(record.rules.models, ModelAccess::All);
        assert!(
            record.tags.is_empty() && record.rules.routing_groups.is_empty() && record.rules.ip_allowlist.is_empty()
        );
        assert_eq!(record.expires_at, None);
        assert_eq!(record.rules.limits, Limits::default());
        assert!(policy.ip_allowlist().is_empty());
    }

    #[test]
    fn full_record_round_trips() {
        let json = r#"{"id":"k2","name":"bot","description":"d","tags":["a"],"creator":"ana","project":"p",
            "status":"disabled","created_at":1,"expires_at":2,"secret_version":3,"models":{"block":["gpt-4*"]},
            "routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8","2001:db8::1"],"limits":{"rpm":5}}"#;
        let policy = KeyPolicy::from_json(json.as_bytes()).unwrap();
        let record = policy.record();
        assert_eq!(record.status, KeyStatus::Disabled);
        assert_eq!(record.rules.models, ModelAccess::Block(vec!["gpt-4*".into()]));
        assert_eq!(record.rules.limits.rpm.map(|n| n.get()), Some(5));
        assert!(policy.ip_allowlist().permits(Some("10.1.2.3".parse().unwrap())));
        let again: KeyRecord = serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap();
        assert_eq!(&again, record);
    }

    /// (fields replacing or adding to MINIMAL's, reported key id, reason fragment)
    const INVALID: &[(&str, &str, &str)] = &[
        (r#""id":"""#, "", "id is empty"),
        (r#""id":"k 1""#, "k 1", "whitespace"),
        (r#""secret_version":0"#, "k1", "secret_version is 0"),
        (r#""models":{"allow":[]}"#, "k1", "models.allow is empty"),
        (r#""models":{"block":[""]}"#, "k1", "empty glob"),
        (r#""models":{"deny":["x"]}"#, "k1", "unknown variant"),
        (r#""boundary_models":[{"allow":[]}]"#, "k1", "boundary_models: models.allow is empty"),
        (r#""boundary_routing_groups":[["eu"],[]]"#, "k1", "boundary_routing_groups[1]: is empty"),
        (r#""boundary_routing_groups":[["eu",""]]"#, "k1", "boundary_routing_groups[0][1]: is empty"),
        (r#""boundary_ip_allowlists":[[]]"#, "k1", "boundary_ip_allowlists[0]: is empty"),
        (r#""boundary_ip_allowlists":[["10.0.0.0/33"]]"#, "k1", "boundary_ip_allowlists[0]: '10.0.0.0/33'"),
        (r#""boundary_expires_at":"soon""#, "k1", "invalid type"),
        (r#""routing_groups":[""]"#, "k1", "routing_groups[0]: is empty"),
        (r#""ip_allowlist":["10.0.0.1","10.0.0.0/33"]"#, "k1", "'10.0.0.0/33' is not an IP address"),
        (r#""ip_allowlist":["localhost"]"#, "k1", "'localhost'"),
        (r#""status":"paused""#, "k1", "unknown variant"),
        (r#""ip_alowlist":[]"#, "k1", "unknown field"),
        (r#""limits":{"rpm":0}"#, "k1", "nonzero"),
        (
            r#""limits":{"spend":[{"period":"total","limit_micros":1},{"period":"total","limit_micros":1}]}"#,
            "k1",
            "limits.spend: more than one total cap",
        ),
        (r#""v":5"#, "k1", "version 5 is newer"),
        (r#""v":4,"critical":["ip_denylist"],"ip_denylist":["10.0.0.1"]"#, "k1", "critical member `ip_denylist`"),
        (r#""model_limits":[{"pattern":"o3*","limits":{"rpm":1}},{"pattern":"o3*","limits":{}}]"#, "k1", "given twice"),
        (r#""v":3,"ip_denylist":["10.0.0.1"]"#, "k1", "unknown field"),
        (
            r#""budgets":[{"level":"project","object":"b","limits":{},"version":1,"hint":"weur"}]"#,
            "k1",
            "unknown field",
        ),
        (r#""limits":{"rpn":5}"#, "k1", "unknown field"),
        (r#""created_at":"yesterday""#, "k1", "invalid type"),
    ];

    #[test]
    fn invalid_records() {
        for &(field, key_id, reason) in INVALID {
            let name = field.split(':').next().unwrap();
            let json = if MINIMAL.contains(name) {
                let start = MINIMAL.find(name).unwrap();
                let end = start + MINIMAL[start..].find([',', '}']).unwrap();
                format!("{}{field}{}", &MINIMAL[..start], &MINIMAL[end..])
            } else {
                format!("{},{field}}}", &MINIMAL[..MINIMAL.len() - 1])
            };
            let err = KeyPolicy::from_json(json.as_bytes()).expect_err(&json);
            assert_eq!(err.key_id, key_id, "{json}");
            assert!(err.reason.contains(reason), "{json}: {}", err.reason);
        }
    }

    #[test]
    fn trailing_text_is_refused() {
        assert!(KeyPolicy::from_json(format!("{MINIMAL} x").as_bytes()).is_err());
        assert!(KeyPolicy::from_json(format!("{MINIMAL} ").as_bytes()).is_ok());
    }

    #[test]
    fn unreadable_record_without_id() {
        let err = KeyPolicy::from_json(b"not json").unwrap_err();
        assert_eq!(err.key_id, "(unknown)");
    }

    #[test]
    fn becomes_a_500_naming_the_key() {
        let e = ApiError::from(InvalidKeyRecord { key_id: "k9".into(), reason: "secret stuff".into() });
        assert_eq!((e.status(), e.kind(), e.code().as_str()), (500, ErrorType::InternalError, "invalid_key_record"));
        assert!(e.message.contains("'k9'") && !e.message.contains("secret stuff"), "{}", e.message);
    }

    /// A record as written before versions existed, with every field of version 1.
    const FULL_V1: &str = r#"{"id":"k2","name":"bot","description":"d","tags":["a"],"creator":"ana","project":"p",
        "status":"disabled","created_at":1,"expires_at":2,"secret_version":3,"models":{"block":["gpt-4*"]},
        "boundary_models":[{"allow":["gpt-*"]}],"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],
        "limits":{"rpm":5}}"#;

    /// [`FULL_V1`] with the members versions 2 and 3 added.
    fn full() -> KeyRecord {
        let v1: KeyRecord = serde_json::from_str(FULL_V1).unwrap();
        let scopes: KeyRules = serde_json::from_str(
            r#"{"model_limits":[{"pattern":"o3*","limits":{"rpm":1}}],"end_user_limits":{"rpm":2}}"#,
        )
        .unwrap();
        KeyRecord {
            budgets: vec![BudgetLink {
                level: crate::limits::Level::Project,
                object: "budget:org_a/prj_1".into(),
                limits: Limits { rpm: std::num::NonZeroU64::new(300), ..Limits::default() },
                version: 2,
                jurisdiction: Some(Jurisdiction::Eu),
                location_hint: Some(crate::policy::LocationHint::Weur),
            }],
            org: Some("org_a".into()),
            jurisdiction: Some(Jurisdiction::Eu),
            boundary_routing_groups: vec![vec!["eu".into(), "us".into()]],
            boundary_ip_allowlists: vec![vec!["10.0.0.0/8".into()]],
            boundary_expires_at: Some(9),
            rules: KeyRules {
                model_limits: scopes.model_limits,
                end_user_limits: scopes.end_user_limits,
                admission: crate::policy::Admission::Exact,
                ..v1.rules.clone()
            },
            ..v1
        }
    }

    #[test]
    fn version_1_records_read_as_before_and_constrain_nothing_new() {
        let policy = KeyPolicy::from_json(FULL_V1.as_bytes()).unwrap();
        let record = policy.record();
        assert!(record.boundary_routing_groups.is_empty() && record.boundary_ip_allowlists.is_empty());
        assert_eq!(record.boundary_expires_at, None);
        assert_eq!(record.policy_version, 0, "limits from before policy versions");
        assert!(policy.boundary_ip_allowlists().is_empty());
    }

    #[test]
    fn records_list_the_narrowing_members_present_as_critical() {
        let written = serde_json::to_value(full()).unwrap();
        assert_eq!(written["v"], 3);
        assert_eq!(
            written["critical"],
            json!(RECORD_FORMAT.critical),
            "every narrowing member is present: an older reader refuses the record rather than drop one"
        );
        let without: KeyRecord = serde_json::from_str(FULL_V1).unwrap();
        let written = serde_json::to_value(&without).unwrap();
        assert_eq!((written["v"].clone(), written.get("critical")), (json!(3), None));
        check::members_match(&RECORD_FORMAT, &full());
        let policy = KeyPolicy::from_json(&serde_json::to_vec(&full()).unwrap()).unwrap();
        assert_eq!(policy.record(), &full());
        assert_eq!(policy.boundary_ip_allowlists().len(), 1);
    }

    #[test]
    fn a_version_2_reader_refuses_a_record_carrying_scopes() {
        let members: Vec<&str> = RECORD_FORMAT
            .members
            .iter()
            .copied()
            .filter(|m| !["model_limits", "end_user_limits", "budgets"].contains(m))
            .collect();
        let v2 = Format { version: 2, members: members.leak(), critical: &[] };
        let written = serde_json::to_value(full()).unwrap();
        let refused = v2.read(written.as_object().unwrap().clone()).unwrap_err();
        assert!(refused.contains("critical member `model_limits`"), "{refused}");
        let unscoped = KeyRecord {
            rules: KeyRules { model_limits: vec![], end_user_limits: Limits::default(), ..full().rules },
            budgets: vec![],
            ..full()
        };
        let written = serde_json::to_value(unscoped).unwrap();
        assert!(v2.read(written.as_object().unwrap().clone()).is_ok(), "keys without scopes or budgets still read");
    }

    #[test]
    fn a_newer_version_is_read_unless_it_marks_an_unknown_field_critical() {
        check::version_rule(&RECORD_FORMAT, &full(), "ip_denylist", json!(["10.0.0.1"]));
    }

    fn record() -> impl Strategy<Value = KeyRecord> {
        let text = "[a-z0-9_]{1,12}";
        (
            (text, text, prop::option::of(".{0,20}"), prop::collection::vec(text, 0..3), text, text),
            (
                prop::option::of(text),
                prop::option::of(prop_oneof![Just(Jurisdiction::Eu), Just(Jurisdiction::Fedramp)]),
            ),
            (any::<bool>(), any::<u64>(), prop::option::of(any::<u64>()), 1..u32::MAX, any::<u64>()),
            (
                prop::collection::vec(strategy::models(), 0..3),
                prop::collection::vec(prop::collection::vec("[a-z]{1,8}", 1..3), 0..3),
                prop::collection::vec(prop::collection::vec(strategy::ip_entry(), 1..3), 0..3),
                prop::option::of(any::<u64>()),
            ),
            strategy::rules(),
        )
            .prop_map(
                |(
                    (id, name, description, tags, creator, project),
                    (org, jurisdiction),
                    (active, created_at, expires_at, secret_version, policy_version),
                    (boundary_models, boundary_routing_groups, boundary_ip_allowlists, boundary_expires_at),
                    rules,
                )| KeyRecord {
                    id,
                    org,
                    jurisdiction,
                    name,
                    description,
                    tags,
                    creator,
                    project,
                    status: if active { KeyStatus::Active } else { KeyStatus::Disabled },
                    created_at,
                    expires_at,
                    secret_version,
                    policy_version,
                    boundary_models,
                    boundary_routing_groups,
                    boundary_ip_allowlists,
                    boundary_expires_at,
                    budgets: Vec::new(),
                    rules,
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(record in record()) {
            let json = serde_json::to_vec(&record).unwrap();
            let policy = KeyPolicy::from_json(&json).unwrap();
            prop_assert_eq!(policy.record(), &record);
        }

        #[test]
        fn newer_records_read_as_the_same_key(record in record(), value in any::<u64>()) {
            let newer = check::with_members(&record, RECORD_FORMAT.version + 1, &[("later_field", json!(value))]);
            let read = KeyPolicy::from_json(newer.to_string().as_bytes()).unwrap();
            prop_assert_eq!(read.record(), &record);
            let critical = check::with_members(
                &record,
                RECORD_FORMAT.version + 1,
                &[("later_field", json!(value)), ("critical", json!(["later_field"]))],
            );
            prop_assert!(KeyPolicy::from_json(critical.to_string().as_bytes()).is_err());
        }
    }
}
