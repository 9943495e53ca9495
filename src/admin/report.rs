//! Usage reports: a key's usage (from its ledger object), a project's (the sum over its keys,
//! deleted ones included: their spend happened) and the organisation's (the sum over the
//! projects the caller may read).

use crate::ledger::usage_book::UsageTotals;
use crate::ledger::PatternQuota;
use crate::limits::LimitUse;
use serde::{Deserialize, Serialize};

/// `GET /keys/{id}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "KeyUsage"))]
pub struct KeyReport {
    pub key_id: String,
    pub as_of_ms: u64,
    /// Today (UTC), this month (UTC) and in total.
    pub usage: UsageTotals,
    /// Each limit the key has now, and how much of it is used.
    pub limits: Vec<LimitUse>,
    /// Each model pattern's limits (`model_limits`, in the key's order) and how much of each is
    /// used; end users are not listed (read one with the key: `GET /v1/key`).
    #[serde(default)]
    pub models: Vec<PatternQuota>,
    /// When the key's ledger object last admitted a call (Unix ms); null before the first.
    pub last_used_at: Option<u64>,
}

/// One key's line in a project's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct KeyLine {
    pub key_id: String,
    pub name: String,
    pub status: String,
    pub usage: UsageTotals,
    /// When the key last admitted a call (Unix ms); null before the first.
    pub last_used_at: Option<u64>,
}

/// `GET /projects/{id}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "ProjectUsage"))]
pub struct ProjectReport {
    pub project_id: String,
    pub as_of_ms: u64,
    pub usage: UsageTotals,
    pub keys: Vec<KeyLine>,
}

impl ProjectReport {
    pub fn new(project_id: String, as_of_ms: u64, keys: Vec<KeyLine>) -> ProjectReport {
        let mut usage = UsageTotals::default();
        for line in &keys {
            usage.add(&line.usage);
        }
        ProjectReport { project_id, as_of_ms, usage, keys }
    }
}

/// One project's line in the organisation's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProjectLine {
    pub project_id: String,
    pub name: String,
    pub usage: UsageTotals,
}

/// `GET /usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "OrgUsage"))]
pub struct OrgReport {
    pub as_of_ms: u64,
    pub usage: UsageTotals,
    pub projects: Vec<ProjectLine>,
}

impl OrgReport {
    pub fn new(as_of_ms: u64, projects: Vec<ProjectLine>) -> OrgReport {
        let mut usage = UsageTotals::default();
        for line in &projects {
            usage.add(&line.usage);
        }
        OrgReport { as_of_ms, usage, projects }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::usage_book::Totals;

    #[test]
    fn a_project_sums_its_keys() {
        let line = |id: &str, requests: u64, cost_micros: u64| {
            let t = Totals { requests, cost_micros, ..Totals::default() };
            KeyLine {
                key_id: id.into(),
                name: id.into(),
                status: "active".into(),
                usage: UsageTotals { today: t, month: t, total: t },
                last_used_at: None,
            }
        };
        let report = ProjectReport::new("p".into(), 5, vec![line("a", 2, 10), line("b", 3, 7)]);
        assert_eq!((report.usage.today.requests, report.usage.total.cost_micros), (5, 17));
        assert_eq!(ProjectReport::new("p".into(), 5, vec![]).usage, UsageTotals::default());
        let org = OrgReport::new(
            5,
            vec![
                ProjectLine { project_id: "p".into(), name: "p".into(), usage: report.usage },
                ProjectLine { project_id: "q".into(), name: "q".into(), usage: report.usage },
            ],
        );
        assert_eq!(org.usage.total.requests, 10);
    }
}
