//! Which admin endpoint a request names: method + path under [`PREFIX`] → [`Endpoint`], or 404
//! (no such path) / 405 (the path exists, not with this method).
//!
//! Ids in paths are `[A-Za-z0-9_-]`, 1 to 64 characters; anything else is 404.

use super::lifecycle::Transition;
use crate::error::{ApiError, Code};

pub const PREFIX: &str = "/admin/v1";
/// The console's session endpoints.
pub const SESSIONS_PATH: &str = "/admin/v1/sessions";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    OpenApi,
    Me,
    /// Sign in: a console session for a token or an Access assertion.
    CreateSession,
    /// Who-am-I, with the session's expiry and CSRF token.
    CurrentSession,
    /// Sign out.
    EndSession,
    /// Sign out everywhere: every session of the caller.
    EndSessions,
    GetAccess,
    PutAccess,
    DeleteAccess,
    GetOrgPolicy,
    PutOrgPolicy,
    GetRouting,
    PutRouting,
    ListCredentials,
    PutCredential(String),
    DeleteCredential(String),
    GetPricing,
    CreateProject,
    ListProjects,
    GetProject(String),
    UpdateProject(String),
    DeleteProject(String),
    ListMembers(String),
    PutMember {
        project: String,
        principal: String,
    },
    DeleteMember {
        project: String,
        principal: String,
    },
    ProjectUsage(String),
    ProjectHistory(String),
    CreatePrincipal,
    ListPrincipals,
    GetPrincipal(String),
    DeletePrincipal(String),
    RotatePrincipalToken(String),
    CreateKey,
    ListKeys,
    GetKey(String),
    UpdateKey(String),
    ChangeKeyStatus(String, Transition),
    RotateKey(String),
    KeyUsage(String),
    KeyHistory(String),
    OrgUsage,
    OrgHistory,
    /// Each readable key's limits and how close it is to them, nearest first.
    Headroom,
    Audit,
    /// Anything under `/admin/v1/webhooks`: the outbox's admin routes.
    Webhooks,
}

/// Whether `path` belongs to the admin API (so the gateway hands it to it).
pub fn is_admin_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/admin/")
}

pub fn classify(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    use Endpoint::*;
    let rest = path.strip_prefix(PREFIX).filter(|r| r.is_empty() || r.starts_with('/')).ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    if segments.first() == Some(&"webhooks") {
        return Ok(Webhooks);
    }
    if segments.iter().any(|s| !is_id(s)) {
        return Err(not_found());
    }
    let id = |i: usize| segments[i].to_owned();
    let choices: Vec<(&str, Endpoint)> = match segments.as_slice() {
        ["openapi.json"] => vec![("GET", OpenApi)],
        ["me"] => vec![("GET", Me)],
        ["sessions"] => vec![("POST", CreateSession), ("DELETE", EndSessions)],
        ["sessions", "current"] => vec![("GET", CurrentSession), ("DELETE", EndSession)],
        ["org", "access"] => vec![("GET", GetAccess), ("PUT", PutAccess), ("DELETE", DeleteAccess)],
        ["org", "policy"] => vec![("GET", GetOrgPolicy), ("PUT", PutOrgPolicy)],
        ["org", "routing"] => vec![("GET", GetRouting), ("PUT", PutRouting)],
        ["org", "credentials"] => vec![("GET", ListCredentials)],
        ["org", "credentials", _] => vec![("PUT", PutCredential(id(2))), ("DELETE", DeleteCredential(id(2)))],
        ["org", "pricing"] => vec![("GET", GetPricing)],
        ["projects"] => vec![("POST", CreateProject), ("GET", ListProjects)],
        ["projects", _] => {
            vec![("GET", GetProject(id(1))), ("PATCH", UpdateProject(id(1))), ("DELETE", DeleteProject(id(1)))]
        }
        ["projects", _, "members"] => vec![("GET", ListMembers(id(1)))],
        ["projects", _, "members", _] => vec![
            ("PUT", PutMember { project: id(1), principal: id(3) }),
            ("DELETE", DeleteMember { project: id(1), principal: id(3) }),
        ],
        ["projects", _, "usage"] => vec![("GET", ProjectUsage(id(1)))],
        ["projects", _, "history"] => vec![("GET", ProjectHistory(id(1)))],
        ["principals"] => vec![("POST", CreatePrincipal), ("GET", ListPrincipals)],
        ["principals", _] => vec![("GET", GetPrincipal(id(1))), ("DELETE", DeletePrincipal(id(1)))],
        ["principals", _, "rotate-token"] => vec![("POST", RotatePrincipalToken(id(1)))],
        ["keys"] => vec![("POST", CreateKey), ("GET", ListKeys)],
        ["keys", _] => vec![
            ("GET", GetKey(id(1))),
            ("PATCH", UpdateKey(id(1))),
            ("DELETE", ChangeKeyStatus(id(1), Transition::Delete)),
        ],
        ["keys", _, "disable"] => vec![("POST", ChangeKeyStatus(id(1), Transition::Disable))],
        ["keys", _, "enable"] => vec![("POST", ChangeKeyStatus(id(1), Transition::Enable))],
        ["keys", _, "rotate"] => vec![("POST", RotateKey(id(1)))],
        ["keys", _, "usage"] => vec![("GET", KeyUsage(id(1)))],
        ["keys", _, "history"] => vec![("GET", KeyHistory(id(1)))],
        ["usage"] => vec![("GET", OrgUsage)],
        ["history"] => vec![("GET", OrgHistory)],
        ["headroom"] => vec![("GET", Headroom)],
        ["audit"] => vec![("GET", Audit)],
        _ => return Err(not_found()),
    };
    let allowed: Vec<&str> = choices.iter().map(|(m, _)| *m).collect();
    choices.into_iter().find(|(m, _)| *m == method).map(|(_, endpoint)| endpoint).ok_or_else(|| {
        ApiError::method_not_allowed(&allowed, format!("{method} is not allowed here; use {}.", allowed.join(" or ")))
    })
}

fn is_id(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "No such admin endpoint; see /admin/v1/openapi.json.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    #[test]
    fn endpoints() {
        let cases = [
            ("GET", "/admin/v1/openapi.json", OpenApi),
            ("GET", "/admin/v1/me", Me),
            ("POST", "/admin/v1/sessions", CreateSession),
            ("DELETE", "/admin/v1/sessions", EndSessions),
            ("GET", "/admin/v1/sessions/current", CurrentSession),
            ("DELETE", "/admin/v1/sessions/current", EndSession),
            ("PUT", "/admin/v1/org/access", PutAccess),
            ("GET", "/admin/v1/keys/key_1/history", KeyHistory("key_1".into())),
            ("GET", "/admin/v1/projects/p/history", ProjectHistory("p".into())),
            ("GET", "/admin/v1/history", OrgHistory),
            ("GET", "/admin/v1/headroom", Headroom),
            ("PUT", "/admin/v1/org/policy", PutOrgPolicy),
            ("PUT", "/admin/v1/org/routing", PutRouting),
            ("GET", "/admin/v1/org/credentials", ListCredentials),
            ("PUT", "/admin/v1/org/credentials/main", PutCredential("main".into())),
            ("DELETE", "/admin/v1/org/credentials/main", DeleteCredential("main".into())),
            ("POST", "/admin/v1/projects", CreateProject),
            ("PATCH", "/admin/v1/projects/prj_1", UpdateProject("prj_1".into())),
            ("PUT", "/admin/v1/projects/p/members/m", PutMember { project: "p".into(), principal: "m".into() }),
            ("GET", "/admin/v1/projects/p/usage", ProjectUsage("p".into())),
            ("DELETE", "/admin/v1/keys/key_1", ChangeKeyStatus("key_1".into(), Transition::Delete)),
            ("POST", "/admin/v1/keys/key_1/disable", ChangeKeyStatus("key_1".into(), Transition::Disable)),
            ("POST", "/admin/v1/keys/key_1/rotate", RotateKey("key_1".into())),
            ("POST", "/admin/v1/principals/prn_1/rotate-token", RotatePrincipalToken("prn_1".into())),
            ("GET", "/admin/v1/keys/key_1/usage", KeyUsage("key_1".into())),
            ("GET", "/admin/v1/usage", OrgUsage),
            ("GET", "/admin/v1/audit", Audit),
            ("POST", "/admin/v1/webhooks", Webhooks),
            ("DELETE", "/admin/v1/webhooks/wh_1/anything", Webhooks),
        ];
        for (method, path, expected) in cases {
            assert_eq!(classify(method, path).unwrap(), expected, "{method} {path}");
        }
    }

    #[test]
    fn refusals() {
        for (method, path, status) in [
            ("GET", "/admin/v1", 404),
            ("GET", "/admin/v1/", 404),
            ("GET", "/admin/v2/keys", 404),
            ("GET", "/admin/v1keys", 404),
            ("GET", "/admin/v1/keys/a%20b", 404),
            ("GET", "/admin/v1/keys//usage", 404),
            ("GET", "/admin/v1/nothing", 404),
            ("PUT", "/admin/v1/keys", 405),
            ("GET", "/admin/v1/keys/k/rotate", 405),
        ] {
            assert_eq!(classify(method, path).unwrap_err().status(), status, "{method} {path}");
        }
        assert_eq!(classify("PUT", "/admin/v1/keys").unwrap_err().message, "PUT is not allowed here; use POST or GET.");
    }

    #[test]
    fn admin_paths() {
        assert!(is_admin_path("/admin/v1/keys") && is_admin_path("/admin/v1") && is_admin_path("/admin/x"));
        assert!(!is_admin_path("/administrator") && !is_admin_path("/openai/v1/admin"));
    }
}
