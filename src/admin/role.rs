//! Who calls the admin API: a [`Principal`] with one organisation-wide [`Role`].
//!
//! Roles, from most to least powerful:
//! - `admin`: everything, across the organisation. The bootstrap Admin is the holder of the
//!   `ADMIN_TOKEN` secret; Admins create every other principal.
//! - `project_owner`: the projects they own and those projects' members and keys.
//! - `member`: their own keys, in the projects they belong to.
//! - `finance`: read-only: usage and spend across the organisation; no key management.
//!
//! What each role may do is [`super::permission`]'s table.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    ProjectOwner,
    Member,
    Finance,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::ProjectOwner, Role::Member, Role::Finance];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ProjectOwner => "project_owner",
            Role::Member => "member",
            Role::Finance => "finance",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Caller"))]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// The id under which the holder of `ADMIN_TOKEN` acts (in audit entries, as a key's creator).
pub const BOOTSTRAP_ADMIN_ID: &str = "admin";

/// The id under which the platform operator's orders are recorded (organisation opened,
/// suspended, resumed, deleted).
pub const OPERATOR_ID: &str = "operator";

impl Principal {
    /// The platform operator, as the registries' audit logs name it.
    pub fn operator() -> Principal {
        Principal { id: OPERATOR_ID.to_owned(), name: "platform operator".to_owned(), role: Role::Admin }
    }

    /// The holder of the `ADMIN_TOKEN` secret.
    pub fn bootstrap_admin() -> Principal {
        Principal { id: BOOTSTRAP_ADMIN_ID.to_owned(), name: "bootstrap admin".to_owned(), role: Role::Admin }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert_eq!(Role::parse("owner"), None);
    }
}
