//! An organisation as the request path reads it: the KV record `org:<org_id>`
//! ([`crate::naming::org_record`]), projected by the organisation's registry whenever its status,
//! routing or credentials change, and read on every call of the organisation's keys (cached at
//! the edge like key records).
//!
//! A versioned document ([`crate::versioned`]). `status` narrows what the organisation's keys
//! may do, so a reader must never drop it: it is a member of version 1. Version 2 added
//! `pricing`, the operator's price overrides: critical, since a build that ignored them would
//! meter the organisation's spend at other prices than the operator set.

use super::routing::deserialize_org_routing;
use super::RoutingConfig;
use crate::credentials::StoredCredential;
use crate::usage::Pricing;
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Whether an organisation's keys may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    Active,
    /// Every call of its keys is refused (403 `organisation_suspended`).
    Suspended,
}

/// Where an organisation's Durable Objects are created and kept (Cloudflare's jurisdictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    Eu,
    Fedramp,
}

impl Jurisdiction {
    /// The name the platform's API takes (`namespace.jurisdiction(name)`).
    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Eu => "eu",
            Jurisdiction::Fedramp => "fedramp",
        }
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One organisation's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct OrgRecord {
    pub id: String,
    pub status: OrgStatus,
    /// Where its objects live; `None`: wherever Cloudflare places them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    /// The organisation's own routing groups; `None`: the platform's `ROUTING` (when the
    /// operator allows it). Targets name the organisation's credentials, never a Worker secret:
    /// a record whose routing does cannot be read ([`super::routing`]).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "deserialize_org_routing")]
    pub routing: Option<RoutingConfig>,
    /// Whether, when `routing` is `None`, its keys may use the platform's `ROUTING`; `false`
    /// (the default) refuses their calls instead. Set by the operator.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform_routing: bool,
    /// Its upstream credentials by name, sealed ([`crate::credentials`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credentials: BTreeMap<String, StoredCredential>,
    /// The operator's price overrides for its models (a pricing table, [`crate::usage`]); a model
    /// they do not price has the platform's price. Set by the operator only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

/// The record's stored format: version 2 (`pricing`, critical).
pub const ORG_RECORD_FORMAT: Format = Format {
    version: 2,
    members: &["id", "status", "jurisdiction", "routing", "platform_routing", "credentials", "pricing"],
    critical: &["pricing"],
};
stored_serde!(OrgRecord, ORG_RECORD_FORMAT);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioned::check;
    use serde_json::json;

    fn record(pricing: Option<&str>) -> OrgRecord {
        OrgRecord {
            id: "org_a".into(),
            status: OrgStatus::Active,
            jurisdiction: Some(Jurisdiction::Eu),
            routing: None,
            platform_routing: true,
            credentials: BTreeMap::new(),
            pricing: pricing.map(|table| Pricing::from_json(table).unwrap()),
        }
    }

    #[test]
    fn version_1_records_read_and_pricing_is_critical() {
        let v1 = json!({"id": "org_a", "status": "active", "jurisdiction": "eu", "platform_routing": true});
        assert_eq!(serde_json::from_value::<OrgRecord>(v1).unwrap(), record(None));
        let priced = record(Some(r#"[{"model": "gpt-4o", "input": 1, "output": 2}]"#));
        let written = serde_json::to_value(&priced).unwrap();
        assert_eq!((&written["v"], &written["critical"]), (&json!(2), &json!(["pricing"])));
        assert_eq!(serde_json::from_value::<OrgRecord>(written).unwrap(), priced);
        check::version_rule(&ORG_RECORD_FORMAT, &priced, "later", json!(1));
    }
}
