//! A principal as the registry holds it (its token only as a hash, kept apart, and a mask), and
//! as the admin API shows it.
//!
//! A token may expire (`token_expires_at`, set at creation or rotation) and is rotated by
//! `POST /principals/{id}/rotate-token`: the new token is shown once; the old one keeps working
//! for the grace period asked for (as a key's secret does, at most 7 days, never past its own
//! expiry), then never again.

use super::membership::ProjectRole;
use super::role::{Principal, Role};
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

// Stored as a versioned document ([`PRINCIPAL_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(remote = "Self", deny_unknown_fields)]
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

/// The stored format of a principal's row: version 1, today's members.
pub const PRINCIPAL_FORMAT: Format = Format {
    version: 1,
    members: &["id", "name", "role", "created_at", "created_by", "masked_token", "token_expires_at"],
    critical: &[],
};
stored_serde!(PrincipalDoc, PRINCIPAL_FORMAT);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioned::check;
    use serde_json::json;

    #[test]
    fn the_row_is_a_versioned_document() {
        let doc = PrincipalDoc {
            id: "prn_1".into(),
            name: "Ada".into(),
            role: Role::Admin,
            created_at: 1,
            created_by: "bootstrap".into(),
            masked_token: "tka_…abcd".into(),
            token_expires_at: Some(5),
            email: None,
        };
        check::members_match(&PRINCIPAL_FORMAT, &doc);
        check::version_rule(&PRINCIPAL_FORMAT, &doc, "later", json!(["x"]));
        let before_versions = json!({"id": "prn_1", "name": "Ada", "role": "admin", "created_at": 1,
            "created_by": "bootstrap", "masked_token": "tka_…abcd"});
        let read: PrincipalDoc = serde_json::from_value(before_versions).unwrap();
        assert_eq!(read, PrincipalDoc { token_expires_at: None, ..doc });
    }
}
