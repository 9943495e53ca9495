//! Usage endpoints: a key's report comes from its ledger object (`Command::Report`); a
//! project's is the sum over its keys, asked of their objects concurrently.
//!
//! Flow: one synchronous step checks the caller and reads the keys and their effective limits,
//! then the objects are asked (nothing is written).

use super::directory::project;
use super::keys::{authorized, Bounds};
use super::step::{Answer, Step};
use crate::admin::key::Key;
use crate::admin::permission::{check, Action, Target};
use crate::admin::report::{KeyLine, KeyReport, ProjectReport};
use crate::edge::ledger_client::LedgerClient;
use crate::error::ApiError;
use crate::key_object::{Command, Reply};
use crate::key_usage::UsageTotals;
use crate::limits::{LimitUse, Limits};
use futures_util::future::try_join_all;
use worker::Env;

/// What the caller may read, decided in one synchronous step.
pub enum Plan {
    Key(Key, Limits),
    Project(String, Vec<(Key, Limits)>),
}

pub fn plan_key(step: &Step, id: &str) -> Result<Plan, ApiError> {
    let key = authorized(step, id, Action::KeyUsageRead)?;
    let limits = key.effective(Bounds::load(step.store, &key.project)?.get()).limits;
    Ok(Plan::Key(key, limits))
}

pub fn plan_project(step: &Step, id: &str) -> Result<Plan, ApiError> {
    project(step, id)?;
    check(step.caller, Action::ProjectUsageRead, step.memberships.in_project(id), Target::Project(id))?;
    let bounds = Bounds::load(step.store, id)?;
    let keys = step.store.keys_of_project(id)?;
    let keys = keys.into_iter().map(|key| {
        let limits = key.effective(bounds.get()).limits;
        (key, limits)
    });
    Ok(Plan::Project(id.to_owned(), keys.collect()))
}

/// Asks the ledger objects and answers the report.
pub async fn report(env: &Env, plan: Plan, now_ms: u64) -> Result<Answer, ApiError> {
    match plan {
        Plan::Key(key, limits) => {
            let (usage, limits) = ask(env, &key.id, limits).await?;
            Ok(Answer::ok(&KeyReport { key_id: key.id, as_of_ms: now_ms, usage, limits }))
        }
        Plan::Project(id, keys) => {
            let reports = try_join_all(keys.iter().map(|(key, limits)| ask(env, &key.id, limits.clone()))).await?;
            let lines = keys
                .into_iter()
                .zip(reports)
                .map(|((key, _), (usage, _))| KeyLine {
                    key_id: key.id,
                    name: key.name,
                    status: key.status.name().to_owned(),
                    usage,
                })
                .collect();
            Ok(Answer::ok(&ProjectReport::new(id, now_ms, lines)))
        }
    }
}

async fn ask(env: &Env, key_id: &str, limits: Limits) -> Result<(UsageTotals, Vec<LimitUse>), ApiError> {
    match LedgerClient::for_key(env, key_id)?.call(&Command::Report { limits }).await? {
        Reply::Report { usage, limits, .. } => Ok((usage, limits)),
        _ => Err(ApiError::unavailable("ledger_unavailable", "A key's ledger gave no usage report.")),
    }
}
