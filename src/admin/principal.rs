//! A principal as the registry holds it (its token only as a hash, kept apart, and a mask), and
//! as the admin API shows it.

use super::membership::ProjectRole;
use super::role::{Principal, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PrincipalDoc {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: u64,
    pub created_by: String,
    /// The token's prefix and last four characters.
    pub masked_token: String,
}

impl PrincipalDoc {
    pub fn principal(&self) -> Principal {
        Principal { id: self.id.clone(), name: self.name.clone(), role: self.role }
    }
}

/// A project a principal belongs to, as shown with the principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Membership {
    pub project: String,
    pub role: ProjectRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Principal"))]
pub struct PrincipalView {
    #[serde(flatten)]
    pub doc: PrincipalDoc,
    pub projects: Vec<Membership>,
}
