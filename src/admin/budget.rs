//! Budgets: limits on the aggregate of every key of a project ([`ProjectBudget`]) or of the
//! whole organisation ([`OrgBudget`]), as the registry holds them. Boundaries stay what they
//! are (ceilings on each key's own limits); a budget counts all the keys below it together.
//!
//! Who sets what: the Admin sets the organisation's budget and each project's *ceiling*; a
//! project's owners may only narrow it (`narrowed`). The project's budget in force is the
//! ceiling narrowed by the owners' limits ([`narrow`]): each limit the smaller of the two set
//! (one set alone stands), a spend cap of a period the smaller amount and hard if either is.
//! So whatever the owners write, nothing in force is ever wider than what the Admin set, and an
//! Admin who lowers the ceiling lowers what is in force at once.
//!
//! A budget's limits are those of a key ([`Limits`]) but for `default_max_tokens`, which only a
//! key's calls can use. Every change bumps the budget's `version`: its object enforces the
//! newest version it has seen (pushed by the control plane or carried by a key's lease).
//!
//! Placement: each budget may name a [`LocationHint`] for its object, honoured only when the
//! object is first created ([`crate::policy::LocationHint`] states Cloudflare's rules); inside
//! an organisation's jurisdiction only hints inside it.

use super::boundary::SCALARS;
use super::org::OrgState;
use crate::error::{ApiError, Code};
use crate::limits::{CapMode, Level, Limits, SpendCap, SpendPeriod};
use crate::naming::{org_budget_object, project_budget_object};
use crate::policy::{BudgetLink, Jurisdiction, LocationHint};
use serde::{Deserialize, Serialize};

/// The organisation's budget: one set of limits over every key of the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct OrgBudget {
    /// Empty: no budget.
    #[serde(default)]
    pub limits: Limits,
    /// Where its object is created (honoured on creation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<LocationHint>,
    /// Bumped on every change of `limits`.
    #[serde(default)]
    pub version: u64,
}

/// A project's budget: the Admin's ceiling and the owners' narrowing of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProjectBudget {
    /// Set by the Admin: the widest the project's budget can be.
    #[serde(default)]
    pub ceiling: Limits,
    /// Set by the project's owners (or the Admin): limits that can only narrow the ceiling.
    #[serde(default)]
    pub narrowed: Limits,
    /// Where its object is created (honoured on creation only); set by the Admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<LocationHint>,
    /// Bumped on every change of `ceiling` or `narrowed`.
    #[serde(default)]
    pub version: u64,
}

impl ProjectBudget {
    /// The limits in force: the ceiling narrowed by the owners' limits.
    pub fn limits(&self) -> Limits {
        narrow(&self.ceiling, &self.narrowed)
    }

    /// As the admin API shows it: with the limits in force.
    pub fn view(&self, project: &str) -> ProjectBudgetView {
        ProjectBudgetView { project: project.to_owned(), budget: self.clone(), limits: self.limits() }
    }
}

/// A project's budget as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProjectBudgetView {
    pub project: String,
    #[serde(flatten)]
    pub budget: ProjectBudget,
    /// In force: `ceiling` narrowed by `narrowed`.
    pub limits: Limits,
}

/// The organisation's budget as a read answers it: with the state of each limit (`usage`), from
/// its object. (Documents the answer; the handler adds `usage` to the budget's JSON.)
#[cfg(test)]
#[derive(schemars::JsonSchema)]
pub struct OrgBudgetRead {
    #[serde(flatten)]
    pub budget: OrgBudget,
    pub usage: Vec<crate::limits::LimitUse>,
}

/// A project's budget as a read answers it: with the state of each limit (`usage`), from its
/// object.
#[cfg(test)]
#[derive(schemars::JsonSchema)]
pub struct ProjectBudgetRead {
    #[serde(flatten)]
    pub budget: ProjectBudgetView,
    pub usage: Vec<crate::limits::LimitUse>,
}

/// `ceiling` narrowed by `narrowed` (see the module doc).
pub fn narrow(ceiling: &Limits, narrowed: &Limits) -> Limits {
    let mut limits = Limits::default();
    for scalar in SCALARS {
        (scalar.set)(&mut limits, [(scalar.get)(ceiling), (scalar.get)(narrowed)].into_iter().flatten().min());
    }
    let cap = |limits: &Limits, period| limits.spend.iter().find(|cap: &&SpendCap| cap.period == period).cloned();
    limits.spend = [SpendPeriod::Total, SpendPeriod::Daily, SpendPeriod::Monthly]
        .into_iter()
        .filter_map(|period| match (cap(ceiling, period), cap(narrowed, period)) {
            (Some(outer), Some(inner)) => Some(SpendCap {
                limit_micros: outer.limit_micros.min(inner.limit_micros),
                mode: if outer.mode == CapMode::Hard { CapMode::Hard } else { inner.mode },
                ..inner
            }),
            (outer, inner) => inner.or(outer),
        })
        .collect();
    limits
}

/// The budget links a key's record carries: its project's budget and its organisation's, each
/// only when it has limits.
pub fn links(org: &OrgState, project_id: &str, org_budget: &OrgBudget, project: &ProjectBudget) -> Vec<BudgetLink> {
    let project = BudgetLink {
        level: Level::Project,
        object: project_budget_object(&org.id, project_id),
        limits: project.limits(),
        version: project.version,
        jurisdiction: org.jurisdiction,
        location_hint: project.location_hint,
    };
    let org = BudgetLink {
        level: Level::Organisation,
        object: org_budget_object(&org.id),
        limits: org_budget.limits.clone(),
        version: org_budget.version,
        jurisdiction: org.jurisdiction,
        location_hint: org_budget.location_hint,
    };
    [project, org].into_iter().filter(|link| link.limits != Limits::default()).collect()
}

/// `PUT /org/budget`: the organisation's budget, whole.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgBudgetPut {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub location_hint: Option<LocationHint>,
}

/// `PATCH /projects/{id}/budget`: each member absent keeps its value. `ceiling` and
/// `location_hint` are the Admin's (`budgets.projects.ceiling.write`), `narrowed` the owners'
/// (`budgets.projects.write`).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectBudgetPatch {
    #[serde(default)]
    pub ceiling: Option<Limits>,
    #[serde(default)]
    pub narrowed: Option<Limits>,
    #[serde(default)]
    pub location_hint: super::input::Patch<LocationHint>,
}

impl ProjectBudgetPatch {
    /// Whether the patch touches what only the Admin sets.
    pub fn sets_ceiling(&self) -> bool {
        self.ceiling.is_some() || !matches!(self.location_hint, super::input::Patch::Keep)
    }

    pub fn check(&self, jurisdiction: Option<Jurisdiction>) -> Result<(), ApiError> {
        [("ceiling", &self.ceiling), ("narrowed", &self.narrowed)]
            .into_iter()
            .try_for_each(|(field, limits)| limits.as_ref().map_or(Ok(()), |limits| check_limits(field, limits)))?;
        match &self.location_hint {
            super::input::Patch::Set(hint) => check_hint(*hint, jurisdiction),
            _ => Ok(()),
        }
    }

    /// `before` with the patch applied, its version bumped if its limits changed.
    pub fn apply(self, before: &ProjectBudget) -> ProjectBudget {
        let after = ProjectBudget {
            ceiling: self.ceiling.unwrap_or_else(|| before.ceiling.clone()),
            narrowed: self.narrowed.unwrap_or_else(|| before.narrowed.clone()),
            location_hint: self.location_hint.apply(before.location_hint),
            version: before.version,
        };
        let changed = after.ceiling != before.ceiling || after.narrowed != before.narrowed;
        ProjectBudget { version: before.version + u64::from(changed), ..after }
    }
}

impl OrgBudgetPut {
    pub fn check(&self, jurisdiction: Option<Jurisdiction>) -> Result<(), ApiError> {
        check_limits("limits", &self.limits)?;
        self.location_hint.map_or(Ok(()), |hint| check_hint(hint, jurisdiction))
    }

    /// The budget it sets over `before`, its version bumped if its limits changed.
    pub fn apply(self, before: &OrgBudget) -> OrgBudget {
        let version = before.version + u64::from(self.limits != before.limits);
        OrgBudget { limits: self.limits, location_hint: self.location_hint, version }
    }
}

/// A budget's limits: at most one spend cap per period, thresholds at most 100 %, and no
/// `default_max_tokens` (a key's setting, meaningless for an aggregate).
fn check_limits(field: &str, limits: &Limits) -> Result<(), ApiError> {
    let invalid =
        |member: &str, reason: &str| Err(ApiError::new(Code::InvalidField, format!("{field}.{member}: {reason}")));
    if limits.default_max_tokens.is_some() {
        return invalid("default_max_tokens", "a budget has none; it is a key's setting");
    }
    if let Some(period) = limits.repeated_spend_period() {
        return invalid("spend", &format!("more than one {} cap", period.name()));
    }
    match limits.spend.iter().find(|cap| cap.warn_at_percent.iter().any(|&p| p > 100)) {
        Some(cap) => invalid(&format!("spend[{}].warn_at_percent", cap.period.name()), "at most 100"),
        None => Ok(()),
    }
}

fn check_hint(hint: LocationHint, jurisdiction: Option<Jurisdiction>) -> Result<(), ApiError> {
    if hint.fits(jurisdiction) {
        return Ok(());
    }
    let jurisdiction = jurisdiction.map_or("", |j| j.as_str());
    Err(ApiError::new(
        Code::InvalidField,
        format!("location_hint: '{}' lies outside the organisation's jurisdiction '{jurisdiction}'", hint.as_str()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(value: serde_json::Value) -> Limits {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn owners_only_narrow_the_ceiling() {
        let ceiling = limits(json!({"rpm": 300, "spend": [{"period": "daily", "limit_micros": 1000, "mode": "hard"}]}));
        let wider = limits(
            json!({"rpm": 900, "tpm": 50, "spend": [{"period": "daily", "limit_micros": 5000, "mode": "warn"}]}),
        );
        let in_force = narrow(&ceiling, &wider);
        assert_eq!(in_force.rpm.map(|n| n.get()), Some(300), "a raise is no raise");
        assert_eq!(in_force.tpm.map(|n| n.get()), Some(50), "a limit the Admin left unset narrows");
        assert_eq!((in_force.spend[0].limit_micros.get(), in_force.spend[0].mode), (1000, CapMode::Hard));
        let tighter = limits(json!({"spend": [{"period": "daily", "limit_micros": 10, "mode": "warn"}]}));
        let warn = limits(json!({"spend": [{"period": "daily", "limit_micros": 100, "mode": "warn"}]}));
        assert_eq!(narrow(&warn, &tighter).spend[0].mode, CapMode::Warn);
        assert_eq!(narrow(&ceiling, &tighter).spend[0].limit_micros.get(), 10);
        assert_eq!(narrow(&ceiling, &Limits::default()), ceiling);
    }

    #[test]
    fn only_budgets_with_limits_are_linked() {
        let project = ProjectBudget { ceiling: limits(json!({"rpm": 300})), version: 2, ..ProjectBudget::default() };
        let org = OrgState::new("org_a", None, false);
        let links = links(&org, "prj_1", &OrgBudget::default(), &project);
        assert_eq!(links.len(), 1);
        assert_eq!(
            (links[0].level, links[0].object.as_str(), links[0].version),
            (Level::Project, "budget:org_a/prj_1", 2)
        );
    }

    #[test]
    fn versions_move_with_the_limits_only() {
        let before = ProjectBudget::default();
        let hint_only = ProjectBudgetPatch {
            location_hint: super::super::input::Patch::Set(LocationHint::Weur),
            ..ProjectBudgetPatch::default()
        };
        assert!(hint_only.sets_ceiling());
        assert_eq!(hint_only.apply(&before).version, 0);
        let narrowing =
            ProjectBudgetPatch { narrowed: Some(limits(json!({"rpm": 5}))), ..ProjectBudgetPatch::default() };
        assert!(!narrowing.sets_ceiling());
        assert_eq!(narrowing.apply(&before).version, 1);
    }

    #[test]
    fn budgets_refuse_what_only_keys_have_and_hints_outside_the_jurisdiction() {
        let put = |body| serde_json::from_value::<OrgBudgetPut>(body).unwrap();
        let code = |r: Result<(), ApiError>| r.unwrap_err().code().to_owned();
        assert_eq!(code(put(json!({"limits": {"default_max_tokens": 5}})).check(None)), "invalid_field");
        let hint = put(json!({"limits": {"rpm": 5}, "location_hint": "apac"}));
        assert!(hint.check(None).is_ok());
        assert_eq!(code(hint.check(Some(Jurisdiction::Eu))), "invalid_field");
        let thresholds =
            json!({"limits": {"spend": [{"period": "total", "limit_micros": 5, "warn_at_percent": [120]}]}});
        assert_eq!(code(put(thresholds).check(None)), "invalid_field");
    }
}
