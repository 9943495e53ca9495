//! Which projects a principal belongs to, and as what; from it, the principal's [`Standing`]
//! toward a project or a key.
//!
//! Invariant (kept by the registry): only `project_owner` and `admin` principals hold `owner`
//! memberships.

use super::role::Role;
use serde::{Deserialize, Serialize};

/// A principal's place in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProjectRole {
    Owner,
    Member,
}

impl ProjectRole {
    pub fn name(self) -> &'static str {
        match self {
            ProjectRole::Owner => "owner",
            ProjectRole::Member => "member",
        }
    }

    pub fn parse(name: &str) -> Option<ProjectRole> {
        [ProjectRole::Owner, ProjectRole::Member].into_iter().find(|role| role.name() == name)
    }

    /// Whether a principal of `role` may hold this place: owners must be project owners (or admins).
    pub fn fits(self, role: Role) -> bool {
        match self {
            ProjectRole::Owner => matches!(role, Role::ProjectOwner | Role::Admin),
            ProjectRole::Member => true,
        }
    }
}

/// The caller's relation to the resource an action targets.
///
/// Invariant: `owner` implies `member`; `creator` is only set for a key the caller created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Owns the project (of the key).
    pub owner: bool,
    /// Belongs to the project (of the key), as owner or member.
    pub member: bool,
    /// Created the key.
    pub creator: bool,
}

/// The projects one principal belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    entries: Vec<(String, ProjectRole)>,
}

impl Memberships {
    pub fn new(entries: Vec<(String, ProjectRole)>) -> Memberships {
        Memberships { entries }
    }

    pub fn role_in(&self, project: &str) -> Option<ProjectRole> {
        self.entries.iter().find(|(id, _)| id == project).map(|&(_, role)| role)
    }

    /// The caller's standing toward project `project`.
    pub fn in_project(&self, project: &str) -> Standing {
        let role = self.role_in(project);
        Standing { owner: role == Some(ProjectRole::Owner), member: role.is_some(), creator: false }
    }

    /// The caller's standing toward a key of `project` created by `key_creator`.
    pub fn toward_key(&self, caller_id: &str, project: &str, key_creator: &str) -> Standing {
        Standing { creator: caller_id == key_creator, ..self.in_project(project) }
    }

    /// The caller's standing toward a principal belonging to `projects`: an owner's if the caller
    /// owns one of them.
    pub fn toward_member_of<'p>(&self, mut projects: impl Iterator<Item = &'p str>) -> Standing {
        let owner = projects.any(|p| self.in_project(p).owner);
        Standing { owner, member: owner, creator: false }
    }

    /// The projects the principal owns.
    pub fn owned(&self) -> Vec<String> {
        self.ids(|role| role == ProjectRole::Owner)
    }

    /// The projects the principal belongs to, owned ones included.
    pub fn all(&self) -> Vec<String> {
        self.ids(|_| true)
    }

    /// The standing toward creating a principal of `role` that joins `projects`: an owner's when
    /// it is a `member` of projects all owned by the caller, none otherwise (only Admins create
    /// other roles, or principals outside any project).
    pub fn to_create(&self, role: Role, projects: &[String]) -> Standing {
        let all_owned = !projects.is_empty() && projects.iter().all(|p| self.in_project(p).owner);
        if role == Role::Member && all_owned {
            Standing { owner: true, member: true, creator: false }
        } else {
            Standing::default()
        }
    }

    /// The standing toward changing a membership of `project` from or to `roles`: the caller's
    /// standing in the project, unless an owner's place is given or taken (Admins only).
    pub fn to_manage(&self, project: &str, roles: &[Option<ProjectRole>]) -> Standing {
        if roles.contains(&Some(ProjectRole::Owner)) {
            Standing::default()
        } else {
            self.in_project(project)
        }
    }

    fn ids(&self, keep: impl Fn(ProjectRole) -> bool) -> Vec<String> {
        self.entries.iter().filter(|&&(_, role)| keep(role)).map(|(id, _)| id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_from_memberships() {
        let m = Memberships::new(vec![("a".into(), ProjectRole::Owner), ("b".into(), ProjectRole::Member)]);
        assert_eq!(m.in_project("a"), Standing { owner: true, member: true, creator: false });
        assert_eq!(m.in_project("b"), Standing { owner: false, member: true, creator: false });
        assert_eq!(m.in_project("c"), Standing::default());
        assert_eq!(m.toward_key("me", "b", "me"), Standing { owner: false, member: true, creator: true });
        assert_eq!(m.toward_key("me", "c", "me"), Standing { owner: false, member: false, creator: true });
        assert_eq!((m.owned(), m.all()), (vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn standing_to_create_and_manage() {
        let m = Memberships::new(vec![("a".into(), ProjectRole::Owner), ("b".into(), ProjectRole::Member)]);
        let owner = Standing { owner: true, member: true, creator: false };
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(m.to_create(Role::Member, &ids(&["a"])), owner);
        assert_eq!(m.to_create(Role::Member, &ids(&["a", "b"])), Standing::default(), "b is not owned");
        assert_eq!(m.to_create(Role::Member, &[]), Standing::default());
        assert_eq!(m.to_create(Role::ProjectOwner, &ids(&["a"])), Standing::default());
        assert_eq!(m.to_create(Role::Finance, &ids(&["a"])), Standing::default());
        assert_eq!(m.to_manage("a", &[None, Some(ProjectRole::Member)]), owner);
        assert_eq!(m.to_manage("a", &[Some(ProjectRole::Owner), Some(ProjectRole::Member)]), Standing::default());
        assert!(!m.to_manage("b", &[Some(ProjectRole::Member)]).owner);
        assert_eq!(m.toward_member_of(["b", "a"].into_iter()), owner);
        assert_eq!(m.toward_member_of(["b", "c"].into_iter()), Standing::default());
    }

    #[test]
    fn only_project_owners_and_admins_own() {
        assert!(ProjectRole::Owner.fits(Role::ProjectOwner) && ProjectRole::Owner.fits(Role::Admin));
        assert!(!ProjectRole::Owner.fits(Role::Member) && !ProjectRole::Owner.fits(Role::Finance));
        assert!(Role::ALL.into_iter().all(|role| ProjectRole::Member.fits(role)));
    }
}
