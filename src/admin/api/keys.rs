//! Key endpoints: create, list, update, disable / enable / delete, rotate (a key's view, which
//! asks its ledger object, is in [`super::usage`]). Each runs in one synchronous [`Step`];
//! every change leaves work to bring the key's KV records and its ledger object up to date, and
//! a `key.*` event.

use super::directory::{exceeded, project, ORG_LAYER};
use super::step::{Answer, Step};
use crate::admin::audit::Change;
use crate::admin::boundary::{check_key_within, Boundary, Layer, Life};
use crate::admin::budget::links;
use crate::admin::input::{check_rules, parse, KeyPatch, NewKey, Patch, RotateRequest};
use crate::admin::key::{Boundaries, Key, KeyView};
use crate::admin::lifecycle::{deleted, rotate, Secret, SecretState, Status, Transition};
use crate::admin::org::OrgState;
use crate::admin::permission::{check, Action, Scope, Target};
use crate::admin::query::Query;
use crate::admin::secret::{mask, new_id, new_key};
use crate::admin::store::{KeyFilter, Store};
use crate::admin::work::Work;
use crate::error::{ApiError, Code};
use crate::events::EventType;
use crate::policy::key_hash::sha256_hex;
use crate::policy::BudgetLink;
use crate::policy::KeyRules;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// The boundaries a key of `project` lives under, owned, and the budgets above it.
pub struct Bounds {
    org: Boundary,
    project: Boundary,
    ceiling: Boundary,
    project_id: String,
    budgets: Vec<BudgetLink>,
}

impl Bounds {
    pub fn load(store: &Store, project_id: &str) -> Result<Bounds, ApiError> {
        let (project, ceiling) = store.project(project_id)?.map(|p| (p.boundary, p.ceiling)).unwrap_or_default();
        let org = store.org_state()?.unwrap_or_else(OrgState::legacy);
        let budgets = links(&org, project_id, &store.org_budget()?, &store.project_budget(project_id)?);
        Ok(Bounds { org: store.org_policy()?, project, ceiling, project_id: project_id.to_owned(), budgets })
    }

    /// The budgets with limits above the key: its project's, its organisation's.
    pub fn budgets(&self) -> &[BudgetLink] {
        &self.budgets
    }

    pub fn get(&self) -> Boundaries<'_> {
        Boundaries { org: &self.org, project: &self.project, ceiling: &self.ceiling }
    }

    /// Refuses rules or an expiry outside any boundary: the organisation's, then the project's
    /// boundary, then its ceiling (which only adds what the boundary leaves unset).
    fn check(&self, rules: &KeyRules, life: Life) -> Result<(), ApiError> {
        let project = format!("the boundary of project '{}'", self.project_id);
        let ceiling = format!("the ceiling of project '{}'", self.project_id);
        let layers = [
            Layer { name: ORG_LAYER, boundary: &self.org },
            Layer { name: &project, boundary: &self.project },
            Layer { name: &ceiling, boundary: &self.ceiling },
        ];
        check_key_within(rules, life, &layers).map_err(|e| exceeded("", e))
    }
}

pub fn key(step: &Step, id: &str) -> Result<Key, ApiError> {
    step.store.key(id)?.ok_or_else(|| ApiError::new(Code::NotFound, format!("There is no key '{id}'.")))
}

/// The key, if the caller may do `action` to it.
pub fn authorized(step: &Step, id: &str, action: Action) -> Result<Key, ApiError> {
    let key = key(step, id)?;
    let standing = step.memberships.toward_key(&step.caller.id, &key.project, &key.creator);
    check(step.caller, action, standing, Target::Key(id))?;
    Ok(key)
}

/// A key's view with a plaintext secret added: only in the answers to create and rotate.
#[derive(Serialize)]
struct WithSecret<'a> {
    #[serde(flatten)]
    view: &'a KeyView,
    /// The key itself; shown this once.
    key: &'a str,
}

/// The audit entry, work and event of a change to `key` (`before`: `None` when created).
fn changed(
    step: &Step,
    action: Action,
    event: EventType,
    before: Option<&KeyView>,
    after: &KeyView,
    work: Vec<Work>,
) -> Result<(), ApiError> {
    step.audit(Change::new(action.permission(), "key", &after.key.id, before, Some(after)))?;
    step.work(work)?;
    step.event(event, &json!({ "key": after }))
}

pub fn create(step: &Step) -> Result<Answer, ApiError> {
    let new: NewKey = parse(step.body)?;
    new.check(step.now_ms)?;
    project(step, &new.project)
        .map_err(|_| ApiError::new(Code::InvalidField, format!("project: there is no project '{}'", new.project)))?;
    check(step.caller, Action::KeysCreate, step.memberships.in_project(&new.project), Target::Project(&new.project))?;
    check_rules(&new.rules, &step.config.known_groups())?;
    let bounds = Bounds::load(step.store, &new.project)?;
    bounds.check(&new.rules, Life { created_at: step.now_ms, expires_at: new.expires_at })?;

    let secret = new_key(&mut step.random());
    let key = Key {
        id: new_id("key", &mut step.random()),
        org: Some(step.org.id.clone()),
        jurisdiction: step.org.jurisdiction,
        project: new.project,
        creator: step.caller.id.clone(),
        name: new.name,
        description: new.description,
        tags: new.tags,
        status: Status::Active,
        created_at: step.now_ms,
        updated_at: step.now_ms,
        expires_at: new.expires_at,
        secret_version: 1,
        masked: mask(&secret),
        policy: new.rules,
    };
    step.store.put_key(&key)?;
    let secrets = SecretState { secrets: vec![Secret { hash: sha256_hex(&secret), version: 1, valid_until_ms: None }] };
    step.store.set_secrets(&key.id, &secrets)?;
    let view = key.view(bounds.get(), step.now_ms);
    changed(step, Action::KeysCreate, EventType::KeyCreated, None, &view, Work::sync(&key.id).into())?;
    Ok(Answer::created(&WithSecret { view: &view, key: &secret }))
}

pub fn list(step: &Step) -> Result<Answer, ApiError> {
    let query = Query::parse(step.query, &["project", "tag", "status", "creator", "limit", "cursor"])?;
    let status = query.get("status");
    if let Some(status) = status.filter(|s| Status::parse(s).is_none()) {
        return Err(ApiError::new(
            Code::InvalidField,
            format!("status: '{status}' is not active, disabled or deleted"),
        ));
    }
    let filter =
        KeyFilter { project: query.get("project"), creator: query.get("creator"), tag: query.get("tag"), status };
    let scope = Scope::of(step.caller, Action::KeysRead, step.memberships)?;
    let (keys, next) = step.store.list_keys(&filter, &scope, &step.caller.id, query.page()?)?;
    let mut bounds: HashMap<String, Bounds> = HashMap::new();
    let mut views = Vec::with_capacity(keys.len());
    for key in keys {
        if !bounds.contains_key(&key.project) {
            bounds.insert(key.project.clone(), Bounds::load(step.store, &key.project)?);
        }
        views.push(key.view(bounds[&key.project].get(), step.now_ms));
    }
    Ok(Answer::list((views, next)))
}

/// Changes metadata, rules and expiry. A change of rules or expiry checks the whole rules and
/// expiry as they will be against the boundaries; a change of name, description or tags alone
/// does not (a boundary tightened since the key was made must not block renaming it).
pub fn update(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let before = authorized(step, id, Action::KeysUpdate)?;
    if before.status == Status::Deleted {
        return Err(deleted(id));
    }
    let patch: KeyPatch = parse(step.body)?;
    patch.check(step.now_ms)?;
    let changes_policy = !patch.rules.is_empty() || patch.expires_at != Patch::Keep;
    let policy = patch.rules.apply(&before.policy);
    check_rules(&policy, &step.config.known_groups())?;
    let expires_at = patch.expires_at.apply(before.expires_at);
    let bounds = Bounds::load(step.store, &before.project)?;
    if changes_policy {
        bounds.check(&policy, Life { created_at: before.created_at, expires_at })?;
    }
    let after = Key {
        name: patch.name.unwrap_or_else(|| before.name.clone()),
        description: patch.description.apply(before.description.clone()),
        tags: patch.tags.unwrap_or_else(|| before.tags.clone()),
        expires_at,
        updated_at: step.now_ms,
        policy,
        ..before.clone()
    };
    step.store.put_key(&after)?;
    let (before, after) = (before.view(bounds.get(), step.now_ms), after.view(bounds.get(), step.now_ms));
    changed(step, Action::KeysUpdate, EventType::KeyUpdated, Some(&before), &after, Work::sync(id).into())?;
    Ok(Answer::ok(&after))
}

/// Disables, enables or deletes a key. The key's ledger object is told first, so the key is
/// refused (or admitted again) from its next request whatever edge caches hold.
pub fn change_status(step: &Step, id: &str, transition: Transition) -> Result<Answer, ApiError> {
    let (action, event) = match transition {
        Transition::Disable => (Action::KeysDisable, EventType::KeyDisabled),
        Transition::Enable => (Action::KeysEnable, EventType::KeyEnabled),
        Transition::Delete => (Action::KeysDelete, EventType::KeyDeleted),
    };
    let before = authorized(step, id, action)?;
    let status = transition.apply(id, before.status)?;
    let bounds = Bounds::load(step.store, &before.project)?;
    if status == before.status {
        return Ok(Answer::ok(&before.view(bounds.get(), step.now_ms)));
    }
    let after = Key { status, updated_at: step.now_ms, ..before.clone() };
    step.store.put_key(&after)?;
    let work = vec![
        Work::Control { key_id: id.to_owned(), control: transition.control() },
        Work::Project { key_id: id.to_owned() },
    ];
    let (before, after) = (before.view(bounds.get(), step.now_ms), after.view(bounds.get(), step.now_ms));
    changed(step, action, event, Some(&before), &after, work)?;
    Ok(Answer::ok(&after))
}

/// A new secret for the same key (same id, same counters); the old one keeps working for
/// `grace_seconds`, then never again.
pub fn rotate_secret(step: &Step, id: &str) -> Result<Answer, ApiError> {
    let before = authorized(step, id, Action::KeysRotate)?;
    if before.status == Status::Deleted {
        return Err(deleted(id));
    }
    let request: RotateRequest = parse(step.body)?;
    let rotation = rotate(before.secret_version, request.grace_seconds, step.now_ms)?;
    let secret = new_key(&mut step.random());
    let secrets = step.store.secrets(id)?.rotated(rotation, sha256_hex(&secret), step.now_ms);
    step.store.set_secrets(id, &secrets)?;
    let after =
        Key { secret_version: rotation.new_version, masked: mask(&secret), updated_at: step.now_ms, ..before.clone() };
    step.store.put_key(&after)?;
    let bounds = Bounds::load(step.store, &before.project)?;
    let work = vec![
        Work::Control { key_id: id.to_owned(), control: rotation.control() },
        Work::Project { key_id: id.to_owned() },
    ];
    let (before, after) = (before.view(bounds.get(), step.now_ms), after.view(bounds.get(), step.now_ms));
    changed(step, Action::KeysRotate, EventType::KeyRotated, Some(&before), &after, work)?;
    let mut answer = serde_json::to_value(WithSecret { view: &after, key: &secret }).expect("views serialize");
    answer["previous_secret_valid_until"] = json!(rotation.grace_until_ms);
    Ok(Answer::ok(&answer))
}
