//! The operator's endpoints under `/admin/v1/orgs`, or 404 / 405.

use crate::admin::route::PREFIX;
use crate::error::{ApiError, Code};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorEndpoint {
    CreateOrg,
    ListOrgs,
    GetOrg(String),
    UpdateOrg(String),
    SuspendOrg(String),
    ResumeOrg(String),
    DeleteOrg(String),
    /// `PUT` sets, `DELETE` removes the organisation's price overrides.
    SetPricing(String),
    ClearPricing(String),
    ResealCredentials(String),
}

/// Whether `path` is an operator route (the worker sends it to the platform object).
pub fn is_operator_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix("/orgs"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub fn classify(method: &str, path: &str) -> Result<OperatorEndpoint, ApiError> {
    use OperatorEndpoint::*;
    let not_found = || ApiError::new(Code::NotFound, "No such admin endpoint; see /admin/v1/openapi.json.");
    let rest = path.strip_prefix(PREFIX).and_then(|rest| rest.strip_prefix("/orgs")).ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let valid = |s: &&str| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !segments.iter().all(valid) {
        return Err(not_found());
    }
    let id = |i: usize| segments[i].to_owned();
    let choices = match segments.as_slice() {
        [] => vec![("POST", CreateOrg), ("GET", ListOrgs)],
        [_] => vec![("GET", GetOrg(id(0))), ("PATCH", UpdateOrg(id(0))), ("DELETE", DeleteOrg(id(0)))],
        [_, "suspend"] => vec![("POST", SuspendOrg(id(0)))],
        [_, "resume"] => vec![("POST", ResumeOrg(id(0)))],
        [_, "pricing"] => vec![("PUT", SetPricing(id(0))), ("DELETE", ClearPricing(id(0)))],
        [_, "credentials", "reseal"] => vec![("POST", ResealCredentials(id(0)))],
        _ => return Err(not_found()),
    };
    let allowed: Vec<&str> = choices.iter().map(|(m, _)| *m).collect();
    choices.into_iter().find(|(m, _)| *m == method).map(|(_, endpoint)| endpoint).ok_or_else(|| {
        ApiError::method_not_allowed(&allowed, format!("{method} is not allowed here; use {}.", allowed.join(" or ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperatorEndpoint::*;

    #[test]
    fn endpoints_and_refusals() {
        assert!(is_operator_path("/admin/v1/orgs") && is_operator_path("/admin/v1/orgs/org_a/suspend"));
        assert!(!is_operator_path("/admin/v1/org/routing") && !is_operator_path("/admin/v1/orgsx"));
        assert_eq!(classify("POST", "/admin/v1/orgs").unwrap(), CreateOrg);
        assert_eq!(classify("GET", "/admin/v1/orgs/org_a").unwrap(), GetOrg("org_a".into()));
        assert_eq!(classify("POST", "/admin/v1/orgs/org_a/resume").unwrap(), ResumeOrg("org_a".into()));
        assert_eq!(classify("DELETE", "/admin/v1/orgs/org_a").unwrap(), DeleteOrg("org_a".into()));
        assert_eq!(classify("PUT", "/admin/v1/orgs/org_a/pricing").unwrap(), SetPricing("org_a".into()));
        assert_eq!(classify("DELETE", "/admin/v1/orgs/org_a/pricing").unwrap(), ClearPricing("org_a".into()));
        assert_eq!(
            classify("POST", "/admin/v1/orgs/org_a/credentials/reseal").unwrap(),
            ResealCredentials("org_a".into())
        );
        assert_eq!(classify("GET", "/admin/v1/orgs/org_a/pricing").unwrap_err().status(), 405);
        assert_eq!(classify("GET", "/admin/v1/orgs/org_a/suspend").unwrap_err().status(), 405);
        assert_eq!(classify("GET", "/admin/v1/orgs/a%20b").unwrap_err().status(), 404);
        assert_eq!(classify("GET", "/admin/v1/orgs/a/b/c").unwrap_err().status(), 404);
    }
}
