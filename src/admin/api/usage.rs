//! Usage endpoints, and a key's view (`GET /keys/{id}`), which adds when the key was last used:
//! a key's report comes from its ledger object (`Command::Report`); a
//! project's is the sum over its keys, the organisation's the sum over the projects the caller
//! may read, asked of the key objects concurrently (one subrequest per key: an organisation
//! beyond several hundred keys needs a rollup, see the report).
//!
//! A budget's view (`GET /org/budget`, `GET /projects/{id}/budget`) adds the state of each of
//! its limits, asked of its budget object ([`super::budgets`]).
//!
//! Flow: one synchronous step checks the caller and reads the keys and their effective limits,
//! then the objects are asked (nothing is written).

use super::directory::project;
use super::keys::{authorized, Bounds};
use super::ports::{BudgetAddress, LedgerAddress, LedgerObjects};
use super::step::{Answer, Step};
use crate::admin::key::{Key, KeyDetail, KeyView};
use crate::admin::permission::{check, Action, Scope, Target};
use crate::admin::project::Project;
use crate::admin::report::{KeyLine, KeyReport, OrgReport, ProjectLine, ProjectReport};
use crate::error::{ApiError, Code};
use crate::ledger::usage_book::UsageTotals;
use crate::ledger::{Command, PatternQuota, Reply};
use crate::limits::{LimitUse, Limits, ModelLimits};
use futures_util::future::try_join_all;

/// What the caller may read, decided in one synchronous step.
pub enum Plan {
    /// A key's view, with its limits to ask its object with.
    View(Box<KeyView>, Limits),
    Key(Box<Key>, Limits),
    Project(String, Vec<(Key, Limits)>),
    Org(Vec<(Project, Vec<(Key, Limits)>)>),
    /// A budget as the admin API shows it, and its object, asked for the state of each limit
    /// (`None`: the budget has never had limits, so its object is not asked).
    Budget(serde_json::Value, Option<BudgetAddress>),
}

pub fn plan_view(step: &Step, id: &str) -> Result<Plan, ApiError> {
    let key = authorized(step, id, Action::KeysRead)?;
    let view = key.view(Bounds::load(step.store, &key.project)?.get(), step.now_ms);
    let limits = view.effective.limits.clone();
    Ok(Plan::View(Box::new(view), limits))
}

pub fn plan_key(step: &Step, id: &str) -> Result<Plan, ApiError> {
    let key = authorized(step, id, Action::KeyUsageRead)?;
    let limits = key.effective(Bounds::load(step.store, &key.project)?.get()).limits;
    Ok(Plan::Key(Box::new(key), limits))
}

pub fn plan_project(step: &Step, id: &str) -> Result<Plan, ApiError> {
    project(step, id)?;
    check(step.caller, Action::ProjectUsageRead, step.memberships.in_project(id), Target::Project(id))?;
    Ok(Plan::Project(id.to_owned(), keys_with_limits(step, id)?))
}

/// The projects the caller may read the usage of (all of them for Admins and Finance).
pub fn plan_org(step: &Step) -> Result<Plan, ApiError> {
    let scope = Scope::of(step.caller, Action::ProjectUsageRead, step.memberships)?;
    let projects = step.store.projects_in(&scope, &step.caller.id)?;
    let planned = projects.into_iter().map(|project| {
        let keys = keys_with_limits(step, &project.id)?;
        Ok((project, keys))
    });
    Ok(Plan::Org(planned.collect::<Result<_, ApiError>>()?))
}

/// Every key of the project (deleted ones too) with its effective limits.
fn keys_with_limits(step: &Step, project_id: &str) -> Result<Vec<(Key, Limits)>, ApiError> {
    let bounds = Bounds::load(step.store, project_id)?;
    let keys = step.store.keys_of_project(project_id)?;
    let with_limits = keys.into_iter().map(|key| {
        let limits = key.effective(bounds.get()).limits;
        (key, limits)
    });
    Ok(with_limits.collect())
}

/// Asks the ledger objects and answers the report.
pub async fn report(ledgers: &impl LedgerObjects, plan: Plan, now_ms: u64) -> Result<Answer, ApiError> {
    match plan {
        Plan::View(view, limits) => {
            let asked = ask(ledgers, &view.key, limits, vec![]).await?;
            Ok(Answer::ok(&KeyDetail { view: *view, last_used_at: asked.last_used_at }))
        }
        Plan::Key(key, limits) => {
            let patterns = key.policy.model_limits.clone();
            let Asked { usage, limits, last_used_at, models } = ask(ledgers, &key, limits, patterns).await?;
            Ok(Answer::ok(&KeyReport { key_id: key.id, as_of_ms: now_ms, usage, limits, models, last_used_at }))
        }
        Plan::Project(id, keys) => Ok(Answer::ok(&ProjectReport::new(id, now_ms, key_lines(ledgers, keys).await?))),
        Plan::Org(projects) => {
            let reports = try_join_all(projects.into_iter().map(|(project, keys)| async move {
                let report = ProjectReport::new(project.id, now_ms, key_lines(ledgers, keys).await?);
                Ok::<_, ApiError>(ProjectLine {
                    project_id: report.project_id,
                    name: project.name,
                    usage: report.usage,
                })
            }))
            .await?;
            Ok(Answer::ok(&OrgReport::new(now_ms, reports)))
        }
        Plan::Budget(mut view, address) => {
            let usage = match address {
                Some(address) => ledgers.budget_report(&address).await?,
                None => Vec::new(),
            };
            view["usage"] = serde_json::to_value(usage).expect("limit uses serialize");
            Ok(Answer::ok(&view))
        }
    }
}

/// Each key's usage, asked of the key objects concurrently.
async fn key_lines(ledgers: &impl LedgerObjects, keys: Vec<(Key, Limits)>) -> Result<Vec<KeyLine>, ApiError> {
    let reports = try_join_all(keys.iter().map(|(key, limits)| ask(ledgers, key, limits.clone(), vec![]))).await?;
    let lines = keys.into_iter().zip(reports).map(|((key, _), asked)| KeyLine {
        key_id: key.id,
        name: key.name,
        status: key.status.name().to_owned(),
        usage: asked.usage,
        last_used_at: asked.last_used_at,
    });
    Ok(lines.collect())
}

/// What a key's object reports.
struct Asked {
    usage: UsageTotals,
    limits: Vec<LimitUse>,
    last_used_at: Option<u64>,
    models: Vec<PatternQuota>,
}

/// Asks `key`'s object for its report under `limits`, with the patterns of `model_limits`.
async fn ask(
    ledgers: &impl LedgerObjects,
    key: &Key,
    limits: Limits,
    model_limits: Vec<ModelLimits>,
) -> Result<Asked, ApiError> {
    match ledgers.call(&LedgerAddress::of(key), &Command::Report { limits, model_limits }).await? {
        Reply::Report { usage, limits, last_used_at, models, .. } => Ok(Asked { usage, limits, last_used_at, models }),
        _ => Err(ApiError::new(Code::LedgerUnavailable, "A key's ledger gave no usage report.")),
    }
}
