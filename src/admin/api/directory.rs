//! Endpoints for the organisation policy, projects, their members, and principals. Each runs
//! in one synchronous [`Step`]: check, change, audit entry and the work the change leaves.

use super::step::{Answer, Step};
use crate::admin::audit::Change;
use crate::admin::boundary::{check_boundary_within, Boundary, BoundaryExceeded, Layer};
use crate::admin::input::{check_boundary, parse, MemberPut, NewPrincipal, NewProject, ProjectPatch, TokenRotation};
use crate::admin::lifecycle::grace_until;
use crate::admin::membership::Standing;
use crate::admin::permission::{check, Action, Scope, Target};
use crate::admin::principal::{Membership, PrincipalDoc, PrincipalView};
use crate::admin::project::Project;
use crate::admin::query::Query;
use crate::admin::role::Role;
use crate::admin::secret::{mask, new_id};
use crate::admin::work::Work;
use crate::error::{ApiError, Code};
use crate::platform::org_id::new_token;
use crate::policy::key_hash::sha256_hex;
use serde_json::json;

pub const ORG_LAYER: &str = "the organisation boundary";

/// 400 `boundary_exceeded` naming the field, under `prefix` (`boundary.` for a project's).
pub fn exceeded(prefix: &str, e: BoundaryExceeded) -> ApiError {
    ApiError::new(Code::BoundaryExceeded, format!("{prefix}{}: {}", e.field, e.message))
}

fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("There is no {what} '{id}'."))
}

pub fn project(step: &Step, id: &str) -> Result<Project, ApiError> {
    step.store.project(id)?.ok_or_else(|| no_such("project", id))
}

fn principal(step: &Step, id: &str) -> Result<PrincipalDoc, ApiError> {
    step.store.principal(id)?.ok_or_else(|| no_such("principal", id))
}

fn view(step: &Step, doc: PrincipalDoc) -> Result<PrincipalView, ApiError> {
    Ok(PrincipalView { projects: step.store.memberships_of(&doc.id)?, doc })
}

/// Every key of `keys` gets its KV records and ledger limits brought up to date.
fn resync(step: &Step, keys: Vec<String>) -> Result<(), ApiError> {
    step.work(keys.iter().flat_map(|id| Work::sync(id)))
}

pub fn me(step: &Step) -> Result<Answer, ApiError> {
    let caller = step.caller;
    let projects = step.store.memberships_of(&caller.id)?;
    Ok(Answer::ok(&json!({ "id": caller.id, "name": caller.name, "role": caller.role, "projects": projects })))
}

pub fn get_org_policy(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::OrgPolicyRead, Standing::default(), Target::Org)?;
    Ok(Answer::ok(&step.store.org_policy()?))
}

/// Replaces the organisation boundary; every key is re-projected under it.
pub fn put_org_policy(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::OrgPolicyWrite, Standing::default(), Target::Org)?;
    let policy: Boundary = parse(step.body)?;
    check_boundary("policy", &policy, &step.config.known_groups())?;
    let before = step.store.org_policy()?;
    step.store.set_org_policy(&policy)?;
    step.audit(Change::new(Action::OrgPolicyWrite.permission(), "org_policy", "org", Some(&before), Some(&policy)))?;
    resync(step, step.store.live_key_ids()?)?;
    Ok(Answer::ok(&policy))
}

pub fn get_routing(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::OrgRoutingRead, Standing::default(), Target::Org)?;
    let none = serde_json::json!({ "groups": [] });
    Ok(step.config.routing.map_or_else(|| Answer::ok(&none), Answer::ok))
}

pub fn get_pricing(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::OrgPricingRead, Standing::default(), Target::Org)?;
    let table: serde_json::Value = serde_json::from_str(step.config.pricing_json)
        .map_err(|_| ApiError::new(Code::InvalidPricingConfig, "The pricing table is not JSON."))?;
    Ok(Answer::ok(&json!({ "data": table })))
}

/// Refuses a project's boundary or ceiling (named by `field`: `boundary`, `ceiling`) outside the
/// organisation's boundary.
fn check_within_org(step: &Step, field: &str, boundary: &Boundary) -> Result<(), ApiError> {
    let org = step.store.org_policy()?;
    check_boundary_within(boundary, &[Layer { name: ORG_LAYER, boundary: &org }])
        .map_err(|e| exceeded(&format!("{field}."), e))
}

/// Refuses a project's boundary outside its ceiling.
fn check_within_ceiling(boundary: &Boundary, ceiling: &Boundary) -> Result<(), ApiError> {
    check_boundary_within(boundary, &[Layer { name: "the project's ceiling", boundary: ceiling }])
        .map_err(|e| exceeded("boundary.", e))
}

/// Creates a project; its ceiling is the boundary given unless the request sets one.
pub fn create_project(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::ProjectsCreate, Standing::default(), Target::Org)?;
    let new: NewProject = parse(step.body)?;
    new.check(&step.config.known_groups())?;
    let ceiling = new.ceiling.unwrap_or_else(|| new.boundary.clone());
    check_within_org(step, "boundary", &new.boundary)?;
    check_within_org(step, "ceiling", &ceiling)?;
    check_within_ceiling(&new.boundary, &ceiling)?;
    let project = Project {
        id: new_id("prj", &mut step.random()),
        name: new.name,
        description: new.description,
        boundary: new.boundary,
        ceiling,
        created_at: step.now_ms,
        created_by: step.caller.id.clone(),
    };
    step.store.put_project(&project)?;
    step.audit(Change::new(Action::ProjectsCreate.permission(), "project", &project.id, None, Some(&project)))?;
    Ok(Answer::created(&project))
}

pub fn list_projects(step: &Step) -> Result<Answer, ApiError> {
    let query = Query::parse(step.query, &["limit", "cursor"])?;
    let scope = Scope::of(step.caller, Action::ProjectsRead, step.memberships)?;
    Ok(Answer::list(step.store.list_projects(&scope, &step.caller.id, query.page()?)?))
}

pub fn get_project(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let project = project(step, id)?;
    check(step.caller, Action::ProjectsRead, step.memberships.in_project(id), Target::Project(id))?;
    Ok(Answer::ok(&project))
}

/// Renames, describes or re-bounds a project; a new boundary or ceiling re-projects its keys.
/// Only Admins change the ceiling (`projects.ceiling.write`). What the request sets must lie
/// within the organisation's boundary, and the boundary as it will be within the ceiling as it
/// will be: an owner can narrow the boundary, never widen it past the ceiling; an Admin who
/// lowers the ceiling below the boundary lowers the boundary in the same request.
pub fn update_project(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let before = project(step, id)?;
    let standing = step.memberships.in_project(id);
    check(step.caller, Action::ProjectsUpdate, standing, Target::Project(id))?;
    let patch: ProjectPatch = parse(step.body)?;
    if patch.ceiling.is_some() {
        check(step.caller, Action::ProjectsCeilingWrite, standing, Target::Project(id))?;
    }
    patch.check(&step.config.known_groups())?;
    if let Some(boundary) = &patch.boundary {
        check_within_org(step, "boundary", boundary)?;
    }
    if let Some(ceiling) = &patch.ceiling {
        check_within_org(step, "ceiling", ceiling)?;
    }
    let rebounded = patch.boundary.is_some() || patch.ceiling.is_some();
    let after = Project {
        name: patch.name.unwrap_or_else(|| before.name.clone()),
        description: patch.description.apply(before.description.clone()),
        boundary: patch.boundary.unwrap_or_else(|| before.boundary.clone()),
        ceiling: patch.ceiling.unwrap_or_else(|| before.ceiling.clone()),
        ..before.clone()
    };
    if rebounded {
        check_within_ceiling(&after.boundary, &after.ceiling)?;
    }
    step.store.put_project(&after)?;
    step.audit(Change::new(Action::ProjectsUpdate.permission(), "project", id, Some(&before), Some(&after)))?;
    if rebounded {
        resync(step, step.store.live_keys_in(id)?)?;
    }
    Ok(Answer::ok(&after))
}

/// Deletes a project without live keys (409 `project_not_empty` otherwise).
pub fn delete_project(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let before = project(step, id)?;
    check(step.caller, Action::ProjectsDelete, Standing::default(), Target::Project(id))?;
    if !step.store.live_keys_in(id)?.is_empty() {
        return Err(ApiError::new(Code::ProjectNotEmpty, format!("Project '{id}' still has keys; delete them first.")));
    }
    step.store.delete_project(id)?;
    step.audit(Change::new(Action::ProjectsDelete.permission(), "project", id, Some(&before), None))?;
    Ok(Answer::no_content())
}

pub fn list_members(step: &Step, id: &str) -> Result<Answer, ApiError> {
    project(step, id)?;
    check(step.caller, Action::ProjectsRead, step.memberships.in_project(id), Target::Project(id))?;
    Ok(Answer::ok(&json!({ "data": step.store.members(id)? })))
}

pub fn put_member(step: &Step, project_id: &str, principal_id: &str) -> Result<Answer, ApiError> {
    project(step, project_id)?;
    let member = principal(step, principal_id)?;
    let put: MemberPut = parse(step.body)?;
    let before = step.store.memberships(principal_id)?.role_in(project_id);
    let standing = step.memberships.to_manage(project_id, &[before, Some(put.role)]);
    check(step.caller, Action::MembersManage, standing, Target::Project(project_id))?;
    if !put.role.fits(member.role) {
        return Err(ApiError::new(
            Code::InvalidField,
            format!("role: a principal with role '{}' cannot be a project's {}", member.role, put.role.name()),
        ));
    }
    step.store.put_membership(project_id, principal_id, put.role)?;
    let as_membership = |role| Membership { project: project_id.to_owned(), role };
    let target = format!("{project_id}/{principal_id}");
    step.audit(Change::new(
        Action::MembersManage.permission(),
        "membership",
        &target,
        before.map(as_membership).as_ref(),
        Some(&as_membership(put.role)),
    ))?;
    Ok(Answer::ok(&as_membership(put.role)))
}

pub fn delete_member(step: &Step, project_id: &str, principal_id: &str) -> Result<Answer, ApiError> {
    project(step, project_id)?;
    let Some(role) = step.store.memberships(principal_id)?.role_in(project_id) else {
        return Err(ApiError::new(
            Code::NotFound,
            format!("Principal '{principal_id}' is not a member of project '{project_id}'."),
        ));
    };
    check(
        step.caller,
        Action::MembersManage,
        step.memberships.to_manage(project_id, &[Some(role)]),
        Target::Project(project_id),
    )?;
    step.store.delete_membership(project_id, principal_id)?;
    let before = Membership { project: project_id.to_owned(), role };
    step.audit(Change::new(
        Action::MembersManage.permission(),
        "membership",
        &format!("{project_id}/{principal_id}"),
        Some(&before),
        None,
    ))?;
    Ok(Answer::no_content())
}

/// Creates a principal and answers its token, once. Project owners create members of the
/// projects they own; Admins create anyone.
pub fn create_principal(step: &Step) -> Result<Answer, ApiError> {
    let new: NewPrincipal = parse(step.body)?;
    new.check(step.now_ms)?;
    for (i, id) in new.projects.iter().enumerate() {
        if step.store.project(id)?.is_none() {
            return Err(ApiError::new(Code::InvalidField, format!("projects[{i}]: there is no project '{id}'")));
        }
    }
    let not_owned = new.projects.iter().find(|id| !step.memberships.in_project(id).owner);
    let target = not_owned.or(new.projects.first()).map_or(Target::Org, |id| Target::Project(id));
    check(step.caller, Action::PrincipalsCreate, step.memberships.to_create(new.role, &new.projects), target)?;
    let email = new.email()?;
    if let Some(email) = &email {
        if step.store.principal_by_email(email)?.is_some() {
            return Err(ApiError::new(Code::EmailTaken, "email: another principal of this organisation has it"));
        }
    }
    let token = new_token(&step.org.id, &mut step.random());
    let doc = PrincipalDoc {
        id: new_id("prn", &mut step.random()),
        name: new.name.clone(),
        role: new.role,
        created_at: step.now_ms,
        created_by: step.caller.id.clone(),
        masked_token: mask(&token),
        token_expires_at: new.token_expires_at,
        email,
    };
    step.store.insert_principal(&doc, &sha256_hex(&token))?;
    for project in &new.projects {
        step.store.put_membership(project, &doc.id, new.project_role())?;
    }
    let view = view(step, doc)?;
    step.audit(Change::new(Action::PrincipalsCreate.permission(), "principal", &view.doc.id, None, Some(&view)))?;
    let mut answer = serde_json::to_value(&view).expect("views serialize");
    answer["token"] = json!(token);
    Ok(Answer::created(&answer))
}

pub fn list_principals(step: &Step) -> Result<Answer, ApiError> {
    let query = Query::parse(step.query, &["limit", "cursor"])?;
    let scope = Scope::of(step.caller, Action::PrincipalsRead, step.memberships)?;
    let (docs, next) = step.store.list_principals(&scope, &step.caller.id, query.page()?)?;
    let views = docs.into_iter().map(|doc| view(step, doc)).collect::<Result<Vec<_>, _>>()?;
    Ok(Answer::list((views, next)))
}

/// A principal: anyone may read themselves; owners read the members of their projects.
pub fn get_principal(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let view = view(step, principal(step, id)?)?;
    if id != step.caller.id {
        let standing = step.memberships.toward_member_of(view.projects.iter().map(|m| m.project.as_str()));
        check(step.caller, Action::PrincipalsRead, standing, Target::Principal(id))?;
    }
    Ok(Answer::ok(&view))
}

/// A new token for a principal, shown once. Anyone rotates their own token; an Admin anyone's.
/// The previous token keeps working for `grace_seconds`, never past its own expiry, then never
/// again. The new token expires when the previous one would have, unless `token_expires_at`
/// says otherwise: only an Admin may make a token live longer than that.
pub fn rotate_token(step: &Step, id: &str) -> Result<Answer, ApiError> {
    if id != step.caller.id {
        check(step.caller, Action::PrincipalsRotateToken, Standing::default(), Target::Principal(id))?;
    }
    let before = principal(step, id)?;
    let request: TokenRotation = parse(step.body)?;
    request.check(step.now_ms)?;
    let previous_valid_until = grace_until(request.grace_seconds, step.now_ms)?
        .map(|until| before.token_expires_at.map_or(until, |expiry| until.min(expiry)))
        .filter(|&until| until > step.now_ms);
    let lengthens = |at: u64| before.token_expires_at.is_none_or(|expiry| at > expiry);
    if step.caller.role != Role::Admin && request.token_expires_at.is_some_and(lengthens) {
        return Err(ApiError::new(
            Code::InvalidField,
            "token_expires_at: only an Admin may make a token live longer than the one it replaces",
        ));
    }
    let token = new_token(&step.org.id, &mut step.random());
    let doc = PrincipalDoc {
        masked_token: mask(&token),
        token_expires_at: request.token_expires_at.or(before.token_expires_at),
        ..before.clone()
    };
    step.store.rotate_token(&doc, &sha256_hex(&token), previous_valid_until)?;
    let (before, after) = (view(step, before)?, view(step, doc)?);
    step.audit(Change::new(Action::PrincipalsRotateToken.permission(), "principal", id, Some(&before), Some(&after)))?;
    let mut answer = serde_json::to_value(&after).expect("views serialize");
    answer["token"] = json!(token);
    answer["previous_token_valid_until"] = json!(previous_valid_until);
    Ok(Answer::ok(&answer))
}

/// Deletes a principal: its token stops working at once; keys it created stay.
pub fn delete_principal(step: &Step, id: &str) -> Result<Answer, ApiError> {
    check(step.caller, Action::PrincipalsDelete, Standing::default(), Target::Principal(id))?;
    let before = view(step, principal(step, id)?)?;
    step.store.delete_principal(id)?;
    step.audit(Change::new(Action::PrincipalsDelete.permission(), "principal", id, Some(&before), None))?;
    Ok(Answer::no_content())
}
