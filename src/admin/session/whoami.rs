//! Who-am-I (`GET /admin/v1/sessions/current`): the caller, its organisation and projects, and
//! what the permission table lets its role do, so the console shows only the controls the
//! caller may use (the API checks every call again).

use super::csrf_token;
use super::store::Session;
use crate::admin::permission::{rule, Access, Action};
use crate::admin::principal::Membership;
use crate::admin::role::Principal;
use serde::Serialize;
use std::collections::BTreeMap;

/// The operator's own permission: the organisations under `/admin/v1/orgs`.
pub const ORGS_MANAGE: &str = "orgs.manage";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WhoAmI {
    pub principal: Principal,
    /// The organisation's id (the operator's: `platform`).
    pub org: String,
    pub operator: bool,
    pub projects: Vec<Membership>,
    /// The permissions the role has somewhere ([`Access`] other than never).
    pub actions: Vec<&'static str>,
    /// Where each of `actions` applies: `any`, `member` (projects the caller belongs to),
    /// `owner` (projects it owns), `owner_or_creator`, `creator` (keys it created).
    pub access: BTreeMap<&'static str, &'static str>,
    /// The session's expiries; null for a bearer call.
    pub session: Option<SessionTimes>,
    /// The CSRF token for `X-CSRF-Token`; null for a bearer call.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SessionTimes {
    pub expires_at: u64,
    pub idle_expires_at: u64,
}

impl WhoAmI {
    /// `principal` of organisation `org`, by a bearer call or by session `session` (its id and state).
    pub fn new(
        principal: Principal,
        org: &str,
        projects: Vec<Membership>,
        session: Option<(&str, &Session)>,
    ) -> WhoAmI {
        let cells: Vec<(Action, Access)> = Action::ALL.into_iter().map(|a| (a, rule(principal.role, a))).collect();
        let allowed = cells.into_iter().filter(|(_, access)| *access != Access::Never);
        let access: BTreeMap<_, _> = allowed.map(|(action, access)| (action.permission(), access.name())).collect();
        WhoAmI {
            principal,
            org: org.to_owned(),
            operator: false,
            projects,
            actions: access.keys().copied().collect(),
            access,
            session: session
                .map(|(_, s)| SessionTimes { expires_at: s.expires_at, idle_expires_at: s.idle_expires_at }),
            csrf_token: session.map(|(id, _)| csrf_token(id)),
        }
    }

    /// The platform operator: every permission of an Admin, and [`ORGS_MANAGE`].
    pub fn operator(session: Option<(&str, &Session)>) -> WhoAmI {
        let mut whoami = WhoAmI::new(Principal::operator(), super::OPERATOR_SCOPE, Vec::new(), session);
        whoami.operator = true;
        whoami.access.insert(ORGS_MANAGE, "any");
        whoami.actions = whoami.access.keys().copied().collect();
        whoami
    }
}

/// The answer to a sign-in (201): the new session `id` (which the worker moves into the cookie
/// and removes from the body), its CSRF token and expiry, and who-am-I.
pub fn signed_in(id: &str, created: &Session, me: &WhoAmI) -> serde_json::Value {
    serde_json::json!({
        "session_id": id,
        "csrf_token": me.csrf_token,
        "expires_at": created.expires_at,
        "idle_timeout_ms": super::IDLE_MS,
        "whoami": me,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::role::Role;

    fn whoami(role: Role) -> WhoAmI {
        WhoAmI::new(Principal { id: "prn_1".into(), name: "p".into(), role }, "org_x", vec![], None)
    }

    #[test]
    fn the_actions_are_the_tables_cells_that_are_not_never() {
        for role in Role::ALL {
            let me = whoami(role);
            for action in Action::ALL {
                let cell = rule(role, action);
                assert_eq!(me.actions.contains(&action.permission()), cell != Access::Never, "{role} {action:?}");
                if cell != Access::Never {
                    assert_eq!(me.access[action.permission()], cell.name());
                }
            }
        }
        let member = whoami(Role::Member);
        assert_eq!(member.access["keys.create"], "member");
        assert_eq!(member.access["keys.rotate"], "creator");
        assert!(!member.actions.contains(&"audit.read") && member.csrf_token.is_none());
        assert!(whoami(Role::Finance).actions.iter().all(|a| a.ends_with(".read")));
    }

    #[test]
    fn a_session_brings_its_csrf_token_and_the_operator_manages_organisations() {
        let session = Session { principal: "operator".into(), created_at: 1, expires_at: 9, idle_expires_at: 5 };
        let me = WhoAmI::operator(Some(("tks_platform_x", &session)));
        assert!(me.operator && me.actions.contains(&ORGS_MANAGE) && me.actions.contains(&"audit.read"));
        assert_eq!(me.csrf_token, Some(csrf_token("tks_platform_x")));
        assert_eq!(me.session, Some(SessionTimes { expires_at: 9, idle_expires_at: 5 }));
    }
}
