//! The console's charts: the daily history of a key, a project (the sum over its keys, deleted
//! ones included: their spend happened) or the organisation (the sum over the keys the caller
//! may read), and each readable key's headroom under its limits, nearest to a cap first.
//!
//! Flow: one synchronous step checks the caller and picks the keys (at most [`MAX_CHART_KEYS`]:
//! the fan-out bound, one subrequest per key; the keys past it are counted in `keys_omitted`,
//! never silently dropped) → their ledger objects are asked concurrently (`Command::History` or
//! `Command::Report`) → the answer sums or sorts.

use super::directory::project;
use super::keys::{authorized, Bounds};
use super::ports::{LedgerAddress, LedgerObjects};
use super::step::{Answer, Step};
use crate::admin::key::Key;
use crate::admin::permission::{check, Action, Scope, Target};
use crate::admin::query::{Page, Query};
use crate::admin::store::KeyFilter;
use crate::error::{ApiError, Code};
use crate::ledger::history::{add_days, add_hours, DayPoint, HourPoint, HISTORY_DAYS};
use crate::ledger::{Command, Reply};
use crate::limits::{LimitUse, Limits};
use futures_util::future::try_join_all;
use serde::Serialize;

/// The most keys one chart asks the ledger objects of.
pub const MAX_CHART_KEYS: usize = 200;
const DEFAULT_DAYS: u64 = 30;

/// What a chart asks, decided in one synchronous step.
pub enum Chart {
    History { keys: Vec<Key>, omitted: usize, days: u64 },
    Headroom { keys: Vec<(Key, Limits)>, omitted: usize },
}

/// `GET …/history`: per day and per hour, summed over `keys_included` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HistoryReport {
    pub as_of_ms: u64,
    /// One per UTC day, oldest first, today last (zeros included).
    pub days: Vec<DayPoint>,
    /// The last 48 UTC hours' requests, oldest first.
    pub hours: Vec<HourPoint>,
    pub keys_included: usize,
    /// Keys past the fan-out bound ([`MAX_CHART_KEYS`]), not in the sums.
    pub keys_omitted: usize,
}

/// One limit's use, with how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LimitHeadroom {
    #[serde(flatten)]
    pub limit: LimitUse,
    /// `used` / `limit` in thousandths (may pass 1000 while reservations settle).
    pub used_permille: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct KeyHeadroom {
    pub key_id: String,
    pub name: String,
    pub project: String,
    pub status: String,
    pub limits: Vec<LimitHeadroom>,
    /// The fullest limit's `used_permille`; null for a key without limits.
    pub nearest_permille: Option<u64>,
}

/// `GET /headroom`: the keys nearest to a cap first; keys without limits last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HeadroomReport {
    pub as_of_ms: u64,
    pub keys: Vec<KeyHeadroom>,
    pub keys_omitted: usize,
}

fn days(step: &Step) -> Result<u64, ApiError> {
    let query = Query::parse(step.query, &["days"])?;
    match query.get("days") {
        None => Ok(DEFAULT_DAYS),
        Some(days) => days
            .parse()
            .ok()
            .filter(|d| (1..=HISTORY_DAYS).contains(d))
            .ok_or_else(|| ApiError::new(Code::InvalidField, format!("days: expected 1 to {HISTORY_DAYS}"))),
    }
}

fn bounded<T>(mut keys: Vec<T>) -> (Vec<T>, usize) {
    let omitted = keys.len().saturating_sub(MAX_CHART_KEYS);
    keys.truncate(MAX_CHART_KEYS);
    (keys, omitted)
}

pub fn plan_key(step: &Step, id: &str) -> Result<Chart, ApiError> {
    let days = days(step)?;
    let key = authorized(step, id, Action::KeyUsageRead)?;
    Ok(Chart::History { keys: vec![key], omitted: 0, days })
}

pub fn plan_project(step: &Step, id: &str) -> Result<Chart, ApiError> {
    let days = days(step)?;
    project(step, id)?;
    check(step.caller, Action::ProjectUsageRead, step.memberships.in_project(id), Target::Project(id))?;
    let (keys, omitted) = bounded(step.store.keys_of_project(id)?);
    Ok(Chart::History { keys, omitted, days })
}

/// The live keys the caller may read the usage of (a project's only, if `project` is given).
fn readable_keys(step: &Step, project: Option<&str>) -> Result<(Vec<Key>, usize), ApiError> {
    let scope = Scope::of(step.caller, Action::KeyUsageRead, step.memberships)?;
    let filter = KeyFilter { project, ..KeyFilter::default() };
    let page = Page { after: None, limit: MAX_CHART_KEYS };
    let (keys, more) = step.store.list_keys(&filter, &scope, &step.caller.id, page)?;
    // Past the bound only "some" is known without counting: at least one.
    Ok((keys, usize::from(more.is_some())))
}

pub fn plan_org(step: &Step) -> Result<Chart, ApiError> {
    let days = days(step)?;
    let (keys, omitted) = readable_keys(step, None)?;
    Ok(Chart::History { keys, omitted, days })
}

pub fn plan_headroom(step: &Step) -> Result<Chart, ApiError> {
    let query = Query::parse(step.query, &["project"])?;
    let (keys, omitted) = readable_keys(step, query.get("project"))?;
    let mut with_limits = Vec::with_capacity(keys.len());
    for key in keys {
        let limits = key.effective(Bounds::load(step.store, &key.project)?.get()).limits;
        with_limits.push((key, limits));
    }
    Ok(Chart::Headroom { keys: with_limits, omitted })
}

fn no_answer() -> ApiError {
    ApiError::new(Code::LedgerUnavailable, "A key's ledger gave no chart.")
}

pub async fn answer(ledgers: &impl LedgerObjects, chart: Chart, now_ms: u64) -> Result<Answer, ApiError> {
    match chart {
        Chart::History { keys, omitted, days } => {
            let command = Command::History { days };
            let command = &command;
            let asked = try_join_all(
                keys.iter().map(|key| async move { ledgers.call(&LedgerAddress::of(key), command).await }),
            )
            .await?;
            let mut sum = HistoryReport {
                as_of_ms: now_ms,
                days: Vec::new(),
                hours: Vec::new(),
                keys_included: keys.len(),
                keys_omitted: omitted,
            };
            for reply in asked {
                let Reply::History { days, hours } = reply else { return Err(no_answer()) };
                if sum.days.is_empty() {
                    (sum.days, sum.hours) = (days, hours);
                } else {
                    add_days(&mut sum.days, &days);
                    add_hours(&mut sum.hours, &hours);
                }
            }
            if sum.days.is_empty() {
                let empty = crate::ledger::history::History::default();
                (sum.days, sum.hours) = (empty.days(now_ms, days), empty.hours(now_ms));
            }
            Ok(Answer::ok(&sum))
        }
        Chart::Headroom { keys, omitted } => {
            let asked = try_join_all(keys.iter().map(|(key, limits)| async move {
                ledgers
                    .call(&LedgerAddress::of(key), &Command::Report { limits: limits.clone(), model_limits: vec![] })
                    .await
            }))
            .await?;
            let mut lines = Vec::with_capacity(keys.len());
            for ((key, _), reply) in keys.into_iter().zip(asked) {
                let Reply::Report { limits, .. } = reply else { return Err(no_answer()) };
                lines.push(headroom_line(key, limits));
            }
            lines.sort_by_key(|line| std::cmp::Reverse(line.nearest_permille));
            Ok(Answer::ok(&HeadroomReport { as_of_ms: now_ms, keys: lines, keys_omitted: omitted }))
        }
    }
}

fn headroom_line(key: Key, limits: Vec<LimitUse>) -> KeyHeadroom {
    let limits: Vec<LimitHeadroom> = limits
        .into_iter()
        .map(|limit| LimitHeadroom { used_permille: limit.used.saturating_mul(1000) / limit.limit.max(1), limit })
        .collect();
    KeyHeadroom {
        nearest_permille: limits.iter().map(|l| l.used_permille).max(),
        key_id: key.id,
        name: key.name,
        project: key.project,
        status: key.status.name().to_owned(),
        limits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_is_bounded_and_what_is_left_out_is_counted() {
        let (kept, omitted) = bounded((0..MAX_CHART_KEYS + 7).collect::<Vec<_>>());
        assert_eq!((kept.len(), omitted), (MAX_CHART_KEYS, 7));
        assert_eq!(bounded(vec![1, 2]), (vec![1, 2], 0));
    }
}
