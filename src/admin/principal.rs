//! A principal as the registry holds it (its token only as a hash, kept apart, and a mask), and
//! as the admin API shows it.
//!
//! A token may expire (`token_expires_at`, set at creation or rotation) and is rotated by
//! `POST /principals/{id}/rotate-token`: the new token is shown once; the old one keeps working
//! for the grace period asked for (as a key's secret does, at most 7 days, never past its own
//! expiry), then never again.

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
    /// Unix ms: from then on the token is refused with 401 `token_expired`; absent: it does not
    /// expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<u64>,
    /// The email Cloudflare Access sign-in maps to this principal (lower-case, unique in the
    /// organisation); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl PrincipalDoc {
    pub fn principal(&self) -> Principal {
        Principal { id: self.id.clone(), name: self.name.clone(), role: self.role }
    }

    pub fn token_expired(&self, now_ms: u64) -> bool {
        self.token_expires_at.is_some_and(|at| now_ms >= at)
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
