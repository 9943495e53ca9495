//! An organisation as the platform's directory holds it ([`OrgEntry`]) and what the operator
//! sends to create or change one ([`NewOrg`], [`OrgPatch`]).
//!
//! Refusals (400, nothing stored): an unknown jurisdiction `invalid_jurisdiction`, a location
//! hint that is not one of Cloudflare's `invalid_location_hint`, a bad name or admin name
//! `invalid_field`.

use crate::admin::input::check_name;
use crate::error::{ApiError, Code};
use crate::naming::{registry_object, DEFAULT_ORG};
use crate::policy::Jurisdiction;
use crate::usage::Pricing;
use serde::{Deserialize, Serialize};

/// Cloudflare's location hints for Durable Objects.
pub const LOCATION_HINTS: [&str; 9] = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];

/// Where an organisation stands with the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlatformStatus {
    Active,
    /// Its keys are refused and its admins may only read.
    Suspended,
    /// Being deleted: its registry removes what it holds; the entry stays so the id is never
    /// handed out again.
    Deleted,
}

/// One organisation in the platform's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Organisation"))]
pub struct OrgEntry {
    /// `org_` + 16 base62 characters (`org_<jurisdiction>_…` in a jurisdiction), or `org_default`
    /// for the organisation a deployment from before organisations became.
    pub id: String,
    pub name: String,
    pub status: PlatformStatus,
    /// Where its objects are created and kept; absent: wherever Cloudflare places them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub jurisdiction: Option<Jurisdiction>,
    /// The location hint its objects were created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<String>,
    /// Whether its keys may use the platform's routing (`ROUTING`) when it has none of its own.
    pub platform_routing: bool,
    /// Unix ms.
    pub created_at: u64,
    /// The name of its registry object.
    pub registry: String,
    /// The operator's price overrides (a pricing table, in the form of `PRICING`): the models
    /// they price cost this for the organisation's keys; the others the platform's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(with = "Option<Vec<crate::usage::PriceEntry>>"))]
    pub pricing: Option<Pricing>,
}

impl OrgEntry {
    /// The entry of the organisation a deployment from before organisations becomes.
    pub fn default_org(now_ms: u64) -> OrgEntry {
        OrgEntry {
            id: DEFAULT_ORG.to_owned(),
            name: "default".to_owned(),
            status: PlatformStatus::Active,
            jurisdiction: None,
            location_hint: None,
            platform_routing: true,
            created_at: now_ms,
            registry: registry_object(DEFAULT_ORG),
            pricing: None,
        }
    }
}

/// `POST /admin/v1/orgs`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// 1 to 200 characters without control characters.
    pub name: String,
    /// `eu` or `fedramp`.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// One of `wnam`, `enam`, `sam`, `weur`, `eeur`, `apac`, `oc`, `afr`, `me`.
    #[serde(default)]
    pub location_hint: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub platform_routing: Option<bool>,
    /// The organisation's first Admin.
    pub admin: FirstAdmin,
}

/// The organisation's first principal, an Admin; its token is answered once.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    /// 1 to 200 characters without control characters.
    pub name: String,
}

/// `PATCH /admin/v1/orgs/{id}`: the operator's settings of an organisation.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    /// 1 to 200 characters without control characters; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether its keys may use the platform's routing (`ROUTING`) when it has none of its own;
    /// absent: unchanged.
    #[serde(default)]
    pub platform_routing: Option<bool>,
}

impl NewOrg {
    /// The jurisdiction asked for, or 400 `invalid_jurisdiction`; checks every other field too.
    pub fn check(&self) -> Result<Option<Jurisdiction>, ApiError> {
        check_name("name", &self.name)?;
        check_name("admin.name", &self.admin.name)?;
        if let Some(hint) = &self.location_hint {
            if !LOCATION_HINTS.contains(&hint.as_str()) {
                return Err(ApiError::new(
                    Code::InvalidLocationHint,
                    format!("location_hint must be one of {}.", LOCATION_HINTS.join(", ")),
                ));
            }
        }
        self.jurisdiction.as_deref().map(parse_jurisdiction).transpose()
    }
}

impl OrgPatch {
    pub fn check(&self) -> Result<(), ApiError> {
        self.name.as_deref().map_or(Ok(()), |name| check_name("name", name))
    }
}

fn parse_jurisdiction(name: &str) -> Result<Jurisdiction, ApiError> {
    match name {
        "eu" => Ok(Jurisdiction::Eu),
        "fedramp" => Ok(Jurisdiction::Fedramp),
        _ => Err(ApiError::new(Code::InvalidJurisdiction, "jurisdiction must be 'eu' or 'fedramp'.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(json: serde_json::Value) -> NewOrg {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn bad_input_is_named() {
        let admin = serde_json::json!({"name": "Ada"});
        let cases = [
            (serde_json::json!({"name": "a", "jurisdiction": "mars", "admin": admin}), "invalid_jurisdiction"),
            (serde_json::json!({"name": "a", "location_hint": "moon", "admin": admin}), "invalid_location_hint"),
            (serde_json::json!({"name": " ", "admin": admin}), "invalid_field"),
            (serde_json::json!({"name": "a", "admin": {"name": ""}}), "invalid_field"),
        ];
        for (json, code) in cases {
            assert_eq!(new(json.clone()).check().unwrap_err().code(), code, "{json}");
        }
        let eu = new(serde_json::json!({"name": "a", "jurisdiction": "eu", "location_hint": "weur", "admin": admin}));
        assert_eq!(eu.check().unwrap(), Some(Jurisdiction::Eu));
    }
}
