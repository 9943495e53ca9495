//! What each role may do: the role × action table ([`rule`]) and the check that turns it into
//! an answer ([`check`]): allowed, or a [`Denied`] naming the missing permission (403).
//!
//! Each cell of the table is an [`Access`]: the [`Standing`] the caller needs toward the
//! resource. Lists use the same cell, as a [`Scope`] of what the caller may see, so a list never
//! shows what a get would refuse.
//!
//! | permission               | admin | project_owner    | member  | finance |
//! |--------------------------|-------|------------------|---------|---------|
//! | org.policy.read / .write | any   | –                | –       | –       |
//! | org.routing.read / .write| any   | –                | –       | –       |
//! | org.credentials.read / .write | any | –             | –       | –       |
//! | org.pricing.read         | any   | –                | –       | –       |
//! | projects.create / .delete| any   | –                | –       | –       |
//! | projects.read            | any   | member           | member  | any     |
//! | projects.update          | any   | owner            | –       | –       |
//! | projects.ceiling.write   | any   | –                | –       | –       |
//! | projects.members.manage  | any   | owner            | –       | –       |
//! | principals.create        | any   | owner (members)  | –       | –       |
//! | principals.read          | any   | owner            | –       | –       |
//! | principals.delete        | any   | –                | –       | –       |
//! | principals.rotate_token  | any   | –                | –       | –       |
//! | keys.create              | any   | member           | member  | –       |
//! | keys.read                | any   | owner or creator | creator | any     |
//! | keys.update/.disable/.enable/.rotate/.delete | any | owner or creator | creator | – |
//! | usage.keys.read          | any   | owner or creator | creator | any     |
//! | usage.projects.read      | any   | owner            | –       | any     |
//! | audit.read               | any   | –                | –       | –       |
//! | webhooks.manage          | any   | –                | –       | –       |
//!
//! "owner": owns the project (of the key); "member": belongs to it; "creator": created the key
//! and still belongs to its project. A project owner creates principals of role `member` only,
//! and only into projects they own (the registry computes that standing). Every principal may
//! read itself and rotate its own token, whatever the table says (the use-cases check that
//! before the table).

use super::membership::{Memberships, Standing};
use super::role::{Principal, Role};
use crate::error::{ApiError, Code};

/// Everything the admin API lets a principal do, one permission each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OrgPolicyRead,
    OrgPolicyWrite,
    OrgRoutingRead,
    /// Set the organisation's own routing groups.
    OrgRoutingWrite,
    /// List the organisation's upstream credentials (masked).
    OrgCredentialsRead,
    /// Store or delete an upstream credential (write-only).
    OrgCredentialsWrite,
    OrgPricingRead,
    ProjectsCreate,
    ProjectsRead,
    ProjectsUpdate,
    /// Set a project's ceiling, the widest its owners may make its boundary.
    ProjectsCeilingWrite,
    ProjectsDelete,
    MembersManage,
    PrincipalsCreate,
    PrincipalsRead,
    PrincipalsDelete,
    /// Rotate another principal's token (anyone may rotate their own).
    PrincipalsRotateToken,
    KeysCreate,
    KeysRead,
    KeysUpdate,
    KeysDisable,
    KeysEnable,
    KeysRotate,
    KeysDelete,
    KeyUsageRead,
    ProjectUsageRead,
    AuditRead,
    WebhooksManage,
}

impl Action {
    pub const ALL: [Action; 28] = [
        Action::OrgPolicyRead,
        Action::OrgPolicyWrite,
        Action::OrgRoutingRead,
        Action::OrgRoutingWrite,
        Action::OrgCredentialsRead,
        Action::OrgCredentialsWrite,
        Action::OrgPricingRead,
        Action::ProjectsCreate,
        Action::ProjectsRead,
        Action::ProjectsUpdate,
        Action::ProjectsCeilingWrite,
        Action::ProjectsDelete,
        Action::MembersManage,
        Action::PrincipalsCreate,
        Action::PrincipalsRead,
        Action::PrincipalsDelete,
        Action::PrincipalsRotateToken,
        Action::KeysCreate,
        Action::KeysRead,
        Action::KeysUpdate,
        Action::KeysDisable,
        Action::KeysEnable,
        Action::KeysRotate,
        Action::KeysDelete,
        Action::KeyUsageRead,
        Action::ProjectUsageRead,
        Action::AuditRead,
        Action::WebhooksManage,
    ];

    /// The permission's name, as 403 answers and the documentation spell it.
    pub fn permission(self) -> &'static str {
        match self {
            Action::OrgPolicyRead => "org.policy.read",
            Action::OrgPolicyWrite => "org.policy.write",
            Action::OrgRoutingRead => "org.routing.read",
            Action::OrgRoutingWrite => "org.routing.write",
            Action::OrgCredentialsRead => "org.credentials.read",
            Action::OrgCredentialsWrite => "org.credentials.write",
            Action::OrgPricingRead => "org.pricing.read",
            Action::ProjectsCreate => "projects.create",
            Action::ProjectsRead => "projects.read",
            Action::ProjectsUpdate => "projects.update",
            Action::ProjectsCeilingWrite => "projects.ceiling.write",
            Action::ProjectsDelete => "projects.delete",
            Action::MembersManage => "projects.members.manage",
            Action::PrincipalsCreate => "principals.create",
            Action::PrincipalsRead => "principals.read",
            Action::PrincipalsDelete => "principals.delete",
            Action::PrincipalsRotateToken => "principals.rotate_token",
            Action::KeysCreate => "keys.create",
            Action::KeysRead => "keys.read",
            Action::KeysUpdate => "keys.update",
            Action::KeysDisable => "keys.disable",
            Action::KeysEnable => "keys.enable",
            Action::KeysRotate => "keys.rotate",
            Action::KeysDelete => "keys.delete",
            Action::KeyUsageRead => "usage.keys.read",
            Action::ProjectUsageRead => "usage.projects.read",
            Action::AuditRead => "audit.read",
            Action::WebhooksManage => "webhooks.manage",
        }
    }
}

/// One cell of the table: the standing a role needs for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Whatever the resource.
    Any,
    /// Belongs to the resource's project.
    Member,
    /// Owns the resource's project.
    Owner,
    /// Owns the key's project, or created the key and belongs to its project.
    OwnerOrCreator,
    /// Created the key and belongs to its project.
    Creator,
    Never,
}

impl Access {
    pub fn admits(self, standing: Standing) -> bool {
        let created = standing.creator && standing.member;
        match self {
            Access::Any => true,
            Access::Member => standing.member,
            Access::Owner => standing.owner,
            Access::OwnerOrCreator => standing.owner || created,
            Access::Creator => created,
            Access::Never => false,
        }
    }

    /// The cell's name, as who-am-I shows it: `any`, `member`, `owner`, `owner_or_creator`,
    /// `creator`, `never`.
    pub fn name(self) -> &'static str {
        match self {
            Access::Any => "any",
            Access::Member => "member",
            Access::Owner => "owner",
            Access::OwnerOrCreator => "owner_or_creator",
            Access::Creator => "creator",
            Access::Never => "never",
        }
    }

    /// What the cell allows, for a denial's message.
    fn describe(self) -> &'static str {
        match self {
            Access::Any => "everywhere",
            Access::Member => "only in projects you belong to",
            Access::Owner => "only in projects you own",
            Access::OwnerOrCreator => "only for keys of projects you own or keys you created in projects you belong to",
            Access::Creator => "only for keys you created in projects you belong to",
            Access::Never => "nowhere",
        }
    }
}

/// The table (see the module doc).
pub fn rule(role: Role, action: Action) -> Access {
    use Access::*;
    use Action::*;
    match role {
        Role::Admin => Any,
        Role::ProjectOwner => match action {
            ProjectsRead | KeysCreate => Member,
            ProjectsUpdate | MembersManage | PrincipalsCreate | PrincipalsRead | ProjectUsageRead => Owner,
            KeysRead | KeysUpdate | KeysDisable | KeysEnable | KeysRotate | KeysDelete | KeyUsageRead => OwnerOrCreator,
            _ => Never,
        },
        Role::Member => match action {
            ProjectsRead | KeysCreate => Member,
            KeysRead | KeysUpdate | KeysDisable | KeysEnable | KeysRotate | KeysDelete | KeyUsageRead => Creator,
            _ => Never,
        },
        Role::Finance => match action {
            ProjectsRead | KeysRead | KeyUsageRead | ProjectUsageRead => Any,
            _ => Never,
        },
    }
}

/// What an action targets, for a denial's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Org,
    Project(&'a str),
    Key(&'a str),
    Principal(&'a str),
}

/// A refused action: the permission the caller lacks, where, and what their role allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub permission: &'static str,
    pub role: Role,
    pub target: String,
    pub access: Access,
}

/// Allowed, or the [`Denied`] naming the permission.
pub fn check(caller: &Principal, action: Action, standing: Standing, target: Target) -> Result<(), Denied> {
    let access = rule(caller.role, action);
    if access.admits(standing) {
        return Ok(());
    }
    let target = match target {
        Target::Org => "the organisation".to_owned(),
        Target::Project(id) => format!("project '{id}'"),
        Target::Key(id) => format!("key '{id}'"),
        Target::Principal(id) => format!("principal '{id}'"),
    };
    Err(Denied { permission: action.permission(), role: caller.role, target, access })
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        ApiError::new(
            Code::PermissionDenied,
            format!(
                "Missing permission '{}' on {}: role '{}' has it {}.",
                denied.permission,
                denied.target,
                denied.role,
                denied.access.describe()
            ),
        )
    }
}

/// What a list shows a caller: the resources a get of each would allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Everything.
    pub all: bool,
    /// Every resource of these projects.
    pub projects: Vec<String>,
    /// The keys the caller created, in these projects.
    pub created_in: Vec<String>,
}

impl Scope {
    /// The scope of `action` for `caller` with `memberships`, or the denial when the role has no
    /// access to any resource at all.
    pub fn of(caller: &Principal, action: Action, memberships: &Memberships) -> Result<Scope, Denied> {
        let nothing = Scope { all: false, projects: Vec::new(), created_in: Vec::new() };
        match rule(caller.role, action) {
            Access::Any => Ok(Scope { all: true, ..nothing }),
            Access::Member => Ok(Scope { projects: memberships.all(), ..nothing }),
            Access::Owner => Ok(Scope { projects: memberships.owned(), ..nothing }),
            Access::OwnerOrCreator => {
                Ok(Scope { projects: memberships.owned(), created_in: memberships.all(), ..nothing })
            }
            Access::Creator => Ok(Scope { created_in: memberships.all(), ..nothing }),
            Access::Never => Err(check(caller, action, Standing::default(), Target::Org).unwrap_err()),
        }
    }

    /// Whether a resource of `project` (a key: created by `creator`) is in the scope.
    pub fn admits(&self, caller_id: &str, project: &str, creator: Option<&str>) -> bool {
        let has = |list: &[String]| list.iter().any(|id| id == project);
        self.all || has(&self.projects) || (creator == Some(caller_id) && has(&self.created_in))
    }
}

#[cfg(test)]
mod tests {
    use super::super::membership::ProjectRole;
    use super::*;
    use Access::*;
    use Action::*;

    /// Every cell, spelt out: (action, admin, project_owner, member, finance).
    const TABLE: &[(Action, Access, Access, Access, Access)] = &[
        (OrgPolicyRead, Any, Never, Never, Never),
        (OrgPolicyWrite, Any, Never, Never, Never),
        (OrgRoutingRead, Any, Never, Never, Never),
        (OrgRoutingWrite, Any, Never, Never, Never),
        (OrgCredentialsRead, Any, Never, Never, Never),
        (OrgCredentialsWrite, Any, Never, Never, Never),
        (OrgPricingRead, Any, Never, Never, Never),
        (ProjectsCreate, Any, Never, Never, Never),
        (ProjectsRead, Any, Member, Member, Any),
        (ProjectsUpdate, Any, Owner, Never, Never),
        (ProjectsCeilingWrite, Any, Never, Never, Never),
        (ProjectsDelete, Any, Never, Never, Never),
        (MembersManage, Any, Owner, Never, Never),
        (PrincipalsCreate, Any, Owner, Never, Never),
        (PrincipalsRead, Any, Owner, Never, Never),
        (PrincipalsDelete, Any, Never, Never, Never),
        (PrincipalsRotateToken, Any, Never, Never, Never),
        (KeysCreate, Any, Member, Member, Never),
        (KeysRead, Any, OwnerOrCreator, Creator, Any),
        (KeysUpdate, Any, OwnerOrCreator, Creator, Never),
        (KeysDisable, Any, OwnerOrCreator, Creator, Never),
        (KeysEnable, Any, OwnerOrCreator, Creator, Never),
        (KeysRotate, Any, OwnerOrCreator, Creator, Never),
        (KeysDelete, Any, OwnerOrCreator, Creator, Never),
        (KeyUsageRead, Any, OwnerOrCreator, Creator, Any),
        (ProjectUsageRead, Any, Owner, Never, Any),
        (AuditRead, Any, Never, Never, Never),
        (WebhooksManage, Any, Never, Never, Never),
    ];

    #[test]
    fn the_table_cell_by_cell() {
        assert_eq!(TABLE.len(), Action::ALL.len());
        for (&(action, admin, owner, member, finance), listed) in TABLE.iter().zip(Action::ALL) {
            assert_eq!(action, listed, "the table follows Action::ALL");
            for (role, expected) in
                [(Role::Admin, admin), (Role::ProjectOwner, owner), (Role::Member, member), (Role::Finance, finance)]
            {
                assert_eq!(rule(role, action), expected, "{role} × {}", action.permission());
            }
        }
    }

    #[test]
    fn access_by_standing() {
        let none = Standing::default();
        let member = Standing { member: true, ..none };
        let owner = Standing { owner: true, member: true, creator: false };
        let creator = Standing { member: true, creator: true, ..none };
        let creator_outside = Standing { creator: true, ..none };
        // (access, [none, member, owner, creator, creator who left the project])
        let cases = [
            (Any, [true, true, true, true, true]),
            (Member, [false, true, true, true, false]),
            (Owner, [false, false, true, false, false]),
            (OwnerOrCreator, [false, false, true, true, false]),
            (Creator, [false, false, false, true, false]),
            (Never, [false; 5]),
        ];
        for (access, expected) in cases {
            let got = [none, member, owner, creator, creator_outside].map(|s| access.admits(s));
            assert_eq!(got, expected, "{access:?}");
        }
    }

    fn principal(role: Role) -> Principal {
        Principal { id: "me".into(), name: "me".into(), role }
    }

    #[test]
    fn denial_names_the_permission_and_target() {
        let e = ApiError::from(
            check(&principal(Role::Member), KeysRotate, Standing::default(), Target::Key("key_1")).unwrap_err(),
        );
        assert_eq!((e.status(), e.code().as_str()), (403, "permission_denied"));
        assert_eq!(
            e.message,
            "Missing permission 'keys.rotate' on key 'key_1': role 'member' has it only for keys you created in projects you belong to."
        );
        let e =
            ApiError::from(check(&principal(Role::Finance), AuditRead, Standing::default(), Target::Org).unwrap_err());
        assert!(e.message.starts_with("Missing permission 'audit.read' on the organisation"), "{}", e.message);
        assert!(check(&principal(Role::Admin), AuditRead, Standing::default(), Target::Org).is_ok());
    }

    /// A list shows exactly what a get would allow, for every role, action and standing.
    #[test]
    fn scopes_agree_with_the_table() {
        let memberships =
            Memberships::new(vec![("own".into(), ProjectRole::Owner), ("in".into(), ProjectRole::Member)]);
        let projects = ["own", "in", "out"];
        for role in Role::ALL {
            let caller = principal(role);
            for action in Action::ALL {
                let scope = Scope::of(&caller, action, &memberships);
                if rule(role, action) == Never {
                    assert_eq!(scope.unwrap_err().permission, action.permission());
                    continue;
                }
                let scope = scope.unwrap();
                for project in projects {
                    for creator in ["me", "someone"] {
                        let standing = memberships.toward_key("me", project, creator);
                        assert_eq!(
                            scope.admits("me", project, Some(creator)),
                            rule(role, action).admits(standing),
                            "{role} {} {project} {creator}",
                            action.permission()
                        );
                    }
                }
            }
        }
    }
}
