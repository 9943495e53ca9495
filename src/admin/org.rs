//! The organisation a registry serves, as the registry holds it ([`OrgState`]): its id (told by
//! the platform when it opened the registry), status, jurisdiction, the operator's settings
//! (platform routing, price overrides), and what its Admin set: routing groups and sealed upstream credentials. Its request-path
//! form is [`OrgState::record`], projected to KV as `org:<org_id>` by the registry's pending
//! work whenever any of it changes.
//!
//! A registry from before organisations holds no state: it is [`OrgState::legacy`], the
//! organisation [`DEFAULT_ORG`], active, allowed the platform's routing.

use crate::credentials::StoredCredential;
use crate::naming::DEFAULT_ORG;
use crate::policy::{Jurisdiction, OrgRecord, OrgStatus, RoutingConfig};
use crate::usage::Pricing;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgState {
    pub id: String,
    pub status: OrgStatus,
    /// Deleted by the operator: every call is then answered 401, and its records are removed.
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    /// Whether the platform's routing serves it when it has none of its own.
    pub platform_routing: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::policy::deserialize_org_routing"
    )]
    pub routing: Option<RoutingConfig>,
    #[serde(default)]
    pub credentials: BTreeMap<String, StoredCredential>,
    /// The operator's price overrides ([`OrgRecord::pricing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

/// [`OrgState::summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSummary {
    pub id: String,
    pub status: OrgStatus,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    pub platform_routing: bool,
}

impl OrgState {
    /// A fresh organisation's state.
    pub fn new(id: &str, jurisdiction: Option<Jurisdiction>, platform_routing: bool) -> OrgState {
        OrgState {
            id: id.to_owned(),
            status: OrgStatus::Active,
            deleted: false,
            jurisdiction,
            platform_routing,
            routing: None,
            credentials: BTreeMap::new(),
            pricing: None,
        }
    }

    /// The state of a registry from before organisations.
    pub fn legacy() -> OrgState {
        OrgState::new(DEFAULT_ORG, None, true)
    }

    pub fn suspended(&self) -> bool {
        self.status == OrgStatus::Suspended
    }

    /// The routing its keys are served by: its own, else the platform's if allowed.
    pub fn routing<'a>(&'a self, platform: Option<&'a RoutingConfig>) -> Option<&'a RoutingConfig> {
        self.routing.as_ref().or(platform.filter(|_| self.platform_routing))
    }

    /// What the operator's answers and the audit log show of it: never its routing or
    /// credentials.
    pub fn summary(&self) -> OrgSummary {
        OrgSummary {
            id: self.id.clone(),
            status: self.status,
            deleted: self.deleted,
            jurisdiction: self.jurisdiction,
            platform_routing: self.platform_routing,
        }
    }

    /// The KV record the request path reads.
    pub fn record(&self) -> OrgRecord {
        OrgRecord {
            id: self.id.clone(),
            status: self.status,
            jurisdiction: self.jurisdiction,
            routing: self.routing.clone(),
            platform_routing: self.platform_routing,
            credentials: self.credentials.clone(),
            pricing: self.pricing.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_falls_back_to_the_platforms_only_if_allowed() {
        let platform = RoutingConfig::default_for("https://up.example", "S");
        let allowed = OrgState::new("org_a", None, true);
        let refused = OrgState::new("org_a", None, false);
        assert_eq!(allowed.routing(Some(&platform)), Some(&platform));
        assert_eq!(refused.routing(Some(&platform)), None);
        assert!(!refused.record().platform_routing && refused.record().status == OrgStatus::Active);
    }
}
