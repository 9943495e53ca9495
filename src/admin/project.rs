//! A project as the registry holds it: a name, a boundary its keys stay within, and members.

use super::boundary::Boundary;
use super::membership::ProjectRole;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Narrows the organisation's boundary for this project's keys.
    #[serde(default)]
    pub boundary: Boundary,
    pub created_at: u64,
    pub created_by: String,
}

/// One member of a project, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Member {
    pub principal: String,
    pub name: String,
    pub role: ProjectRole,
}
