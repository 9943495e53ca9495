//! Endpoints for the organisation's budget and the projects' budgets ([`crate::admin::budget`]).
//! A read answers the budget with the state of each limit (`usage`), asked of its object after
//! the step ([`super::usage::report`]).
//! Each change, in one synchronous [`Step`]: check, write, audit entry (before and after), and
//! the work it leaves: the budget's object is told its new limits (`PushBudget`, retried until it
//! answers) and every live key below it gets its KV record re-projected, since a record carries
//! the budgets above its key.

use super::directory::project;
use super::ports::BudgetAddress;
use super::step::{Answer, Step};
use super::usage::Plan;
use crate::admin::audit::Change;
use crate::admin::budget::{OrgBudgetPut, ProjectBudgetPatch};
use crate::admin::input::parse;
use crate::admin::membership::Standing;
use crate::admin::permission::{check, Action, Target};
use crate::admin::work::Work;
use crate::error::ApiError;
use crate::naming::{org_budget_object, project_budget_object};
use crate::policy::LocationHint;

/// The organisation's budget, with the state of each limit from its object.
pub fn plan_org_budget(step: &Step) -> Result<Plan, ApiError> {
    check(step.caller, Action::BudgetsOrgRead, Standing::default(), Target::Org)?;
    let budget = step.store.org_budget()?;
    let address = (budget.version > 0).then(|| address(step, org_budget_object(&step.org.id), budget.location_hint));
    Ok(Plan::Budget(serde_json::to_value(&budget).expect("budgets serialize"), address))
}

fn address(step: &Step, object: String, location_hint: Option<LocationHint>) -> BudgetAddress {
    BudgetAddress { object, jurisdiction: step.org.jurisdiction, location_hint }
}

/// Replaces the organisation's budget.
pub fn put_org_budget(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::BudgetsOrgWrite, Standing::default(), Target::Org)?;
    let put: OrgBudgetPut = parse(step.body)?;
    put.check(step.org.jurisdiction)?;
    let before = step.store.org_budget()?;
    let after = put.apply(&before);
    step.store.set_org_budget(&after)?;
    step.audit(Change::new(
        Action::BudgetsOrgWrite.permission(),
        "org_budget",
        &step.org.id,
        Some(&before),
        Some(&after),
    ))?;
    if after.version != before.version {
        step.work([Work::PushBudget { project: None }])?;
        step.work(step.store.live_key_ids()?.into_iter().map(|key_id| Work::Project { key_id }))?;
    }
    Ok(Answer::ok(&after))
}

/// A project's budget, with the state of each limit from its object.
pub fn plan_project_budget(step: &Step, id: &str) -> Result<Plan, ApiError> {
    project(step, id)?;
    check(step.caller, Action::BudgetsProjectsRead, step.memberships.in_project(id), Target::Project(id))?;
    let budget = step.store.project_budget(id)?;
    let object = project_budget_object(&step.org.id, id);
    let address = (budget.version > 0).then(|| address(step, object, budget.location_hint));
    Ok(Plan::Budget(serde_json::to_value(budget.view(id)).expect("budgets serialize"), address))
}

/// Changes a project's budget: its ceiling and location hint (the Admin's), its narrowing (the
/// owners' too). The limits in force are the ceiling narrowed, so an owner never raises them.
pub fn update_project_budget(step: &Step, id: &str) -> Result<Answer, ApiError> {
    project(step, id)?;
    let standing = step.memberships.in_project(id);
    check(step.caller, Action::BudgetsProjectsWrite, standing, Target::Project(id))?;
    let patch: ProjectBudgetPatch = parse(step.body)?;
    if patch.sets_ceiling() {
        check(step.caller, Action::BudgetsProjectsCeilingWrite, standing, Target::Project(id))?;
    }
    patch.check(step.org.jurisdiction)?;
    let before = step.store.project_budget(id)?;
    let after = patch.apply(&before);
    step.store.set_project_budget(id, &after)?;
    let (before_view, after_view) = (before.view(id), after.view(id));
    let action = Action::BudgetsProjectsWrite.permission();
    step.audit(Change::new(action, "project_budget", id, Some(&before_view), Some(&after_view)))?;
    if after.version != before.version {
        step.work([Work::PushBudget { project: Some(id.to_owned()) }])?;
        step.work(step.store.live_keys_in(id)?.into_iter().map(|key_id| Work::Project { key_id }))?;
    }
    Ok(Answer::ok(&after_view))
}
