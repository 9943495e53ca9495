//! Every name the deployment gives to what it stores, in one place. Each carries its
//! organisation, so that nothing one organisation owns can be named by another's id:
//! - KV: `key:<hex sha-256 of the key>` (a key record, which names its organisation inside) and
//!   `org:<org_id>` (an organisation's record: [`crate::policy::OrgRecord`]);
//! - Durable Objects: the platform directory `platform`; per organisation its registry
//!   `org:<org_id>` and its outbox `outbox:<org_id>`; per key its ledger `<org_id>/<key_id>`;
//!   the budget objects of an organisation `budget:<org_id>` and of each of its projects
//!   `budget:<org_id>/<project_id>` (the organisation from before organisations included: its
//!   budgets are new, so they need no old name).
//!
//! Migration: a deployment from before organisations becomes the organisation [`DEFAULT_ORG`],
//! whose registry and outbox keep their old object name (`org`), and whose key records written
//! then (without an `org` member) keep naming their ledger objects by the key id alone, so no
//! counter is lost and no key is re-issued.

/// The organisation a single-organisation deployment becomes when it upgrades.
pub const DEFAULT_ORG: &str = "org_default";

/// The name of the one platform directory object.
pub const PLATFORM_OBJECT: &str = "platform";

/// The object name of the registry and of the outbox of the organisation a deployment was before
/// organisations existed.
const LEGACY_ORG_OBJECT: &str = "org";

/// The KV name of an organisation's record.
pub fn org_record(org_id: &str) -> String {
    format!("org:{org_id}")
}

/// The object name of an organisation's registry.
pub fn registry_object(org_id: &str) -> String {
    match org_id {
        DEFAULT_ORG => LEGACY_ORG_OBJECT.to_owned(),
        _ => format!("org:{org_id}"),
    }
}

/// The object name of an organisation's webhook outbox.
pub fn outbox_object(org_id: &str) -> String {
    match org_id {
        DEFAULT_ORG => LEGACY_ORG_OBJECT.to_owned(),
        _ => format!("outbox:{org_id}"),
    }
}

/// The object name of a key's ledger: `<org_id>/<key_id>`, or the key id alone for a key whose
/// record predates organisations (`org` absent), so its counters carry over.
pub fn ledger_object(org_id: Option<&str>, key_id: &str) -> String {
    match org_id {
        Some(org_id) => format!("{org_id}/{key_id}"),
        None => key_id.to_owned(),
    }
}

/// The organisation and key id of a ledger object's name, the inverse of [`ledger_object`]: a
/// name without `/` is a key's from before organisations, the [`DEFAULT_ORG`]'s.
pub fn ledger_object_owner(object: &str) -> (&str, &str) {
    object.split_once('/').unwrap_or((DEFAULT_ORG, object))
}

/// The object name of an organisation's budget.
pub fn org_budget_object(org_id: &str) -> String {
    format!("budget:{org_id}")
}

/// The object name of a project's budget.
pub fn project_budget_object(org_id: &str, project_id: &str) -> String {
    format!("budget:{org_id}/{project_id}")
}

/// The organisation and project (none for the organisation's own budget) of a budget object's
/// name, the inverse of [`org_budget_object`] and [`project_budget_object`]; `None` for a name
/// that is not a budget object's.
pub fn budget_object_owner(object: &str) -> Option<(&str, Option<&str>)> {
    let owner = object.strip_prefix("budget:")?;
    Some(match owner.split_once('/') {
        Some((org_id, project_id)) => (org_id, Some(project_id)),
        None => (owner, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_organisation() {
        assert_eq!(org_record("org_a"), "org:org_a");
        assert_eq!(registry_object("org_a"), "org:org_a");
        assert_eq!(outbox_object("org_a"), "outbox:org_a");
        assert_eq!(ledger_object(Some("org_a"), "key_1"), "org_a/key_1");
        assert_eq!(ledger_object_owner("org_a/key_1"), ("org_a", "key_1"));
        assert_eq!(org_budget_object("org_a"), "budget:org_a");
        assert_eq!(project_budget_object("org_a", "prj_1"), "budget:org_a/prj_1");
        assert_eq!(budget_object_owner("budget:org_a/prj_1"), Some(("org_a", Some("prj_1"))));
        assert_eq!(budget_object_owner("budget:org_a"), Some(("org_a", None)));
        assert_eq!(budget_object_owner("org_a/key_1"), None);
    }

    #[test]
    fn the_default_organisation_keeps_the_names_from_before_organisations() {
        assert_eq!(registry_object(DEFAULT_ORG), "org");
        assert_eq!(outbox_object(DEFAULT_ORG), "org");
        assert_eq!(ledger_object(None, "key_1"), "key_1");
        assert_eq!(ledger_object_owner("key_1"), (DEFAULT_ORG, "key_1"));
        assert_eq!(ledger_object(Some(DEFAULT_ORG), "key_1"), "org_default/key_1");
    }
}
