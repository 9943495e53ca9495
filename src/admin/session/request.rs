//! What the worker reads from a browser's request to decide who calls and whether a call made
//! with the session cookie may change anything (CSRF), and the cookies it answers.
//!
//! Rules: `Authorization` wins over the cookie (a bearer call needs no CSRF token). A call with
//! the cookie and a method other than GET/HEAD needs the `X-CSRF-Token` header equal to the
//! session's token, and is refused if `Origin` is sent and is not the worker's own origin, or if
//! `Sec-Fetch-Site` is sent and is not `same-origin` ([`same_origin`], also applied to sign-in).

use super::{csrf_token, ABSOLUTE_MS, COOKIE_NAME};
use crate::admin::api::bearer;
use crate::error::{ApiError, Code};

/// The parts of a request the decision reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser<'a> {
    pub method: &'a str,
    pub authorization: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub csrf: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub fetch_site: Option<&'a str>,
    /// The worker's own origin, `scheme://host[:port]`, from the request URL.
    pub own_origin: &'a str,
}

/// Who a request says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    Bearer(&'a str),
    Session(&'a str),
    /// Neither: the admin API answers 401 as it does without a token.
    Anonymous,
}

/// The caller, or 403 `csrf_failed` for a state-changing call with the cookie that fails the
/// CSRF rules.
pub fn caller<'a>(request: &Browser<'a>) -> Result<Caller<'a>, ApiError> {
    if request.authorization.is_some() {
        return bearer(request.authorization).map(Caller::Bearer);
    }
    let Some(id) = request.cookie.and_then(session_cookie) else { return Ok(Caller::Anonymous) };
    if !matches!(request.method, "GET" | "HEAD") {
        same_origin(request)?;
        let expected = csrf_token(id);
        if !request.csrf.is_some_and(|sent| constant_time_eq(sent.as_bytes(), expected.as_bytes())) {
            return Err(csrf_failed("A change made with the session cookie needs the X-CSRF-Token header."));
        }
    }
    Ok(Caller::Session(id))
}

/// 403 `csrf_failed` if the browser says the request comes from another site.
pub fn same_origin(request: &Browser) -> Result<(), ApiError> {
    if request.origin.is_some_and(|origin| origin != request.own_origin) {
        return Err(csrf_failed("This request comes from another origin."));
    }
    if request.fetch_site.is_some_and(|site| site != "same-origin") {
        return Err(csrf_failed("This request comes from another site."));
    }
    Ok(())
}

fn csrf_failed(message: &str) -> ApiError {
    ApiError::new(Code::CsrfFailed, message)
}

/// The session id in a `Cookie` header, if there is one.
pub fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` of a new session `id`.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", ABSOLUTE_MS / 1000)
}

/// The `Set-Cookie` that makes the browser forget the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "tks_org_0123456789abcdefghij0123456789abcdefghij";
    const OWN: &str = "https://keys.example.com";

    fn cookie() -> String {
        format!("theme=dark; {COOKIE_NAME}={ID}; other=1")
    }

    fn browser<'a>(method: &'a str, cookie: &'a str, csrf: Option<&'a str>) -> Browser<'a> {
        Browser { method, cookie: Some(cookie), csrf, own_origin: OWN, ..Browser::default() }
    }

    #[test]
    fn reads_are_made_with_the_cookie_alone() {
        let cookie = cookie();
        assert_eq!(caller(&browser("GET", &cookie, None)).unwrap(), Caller::Session(ID));
    }

    #[test]
    fn changes_need_the_csrf_token() {
        let cookie = cookie();
        let token = csrf_token(ID);
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert_eq!(caller(&browser(method, &cookie, None)).unwrap_err().code(), "csrf_failed", "{method}");
            assert_eq!(caller(&browser(method, &cookie, Some("0"))).unwrap_err().code(), "csrf_failed");
            assert_eq!(caller(&browser(method, &cookie, Some(&token))).unwrap(), Caller::Session(ID));
        }
        let other = csrf_token("tks_org_another");
        assert_eq!(caller(&browser("POST", &cookie, Some(&other))).unwrap_err().status(), 403);
    }

    #[test]
    fn cross_site_changes_are_refused_even_with_the_token() {
        let cookie = cookie();
        let token = csrf_token(ID);
        let from = |origin, fetch_site| Browser { origin, fetch_site, ..browser("POST", &cookie, Some(&token)) };
        assert!(caller(&from(Some(OWN), Some("same-origin"))).is_ok());
        for (origin, site) in [
            (Some("https://evil.example"), None),
            (Some("null"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some(OWN), Some("cross-site")),
        ] {
            assert_eq!(caller(&from(origin, site)).unwrap_err().code(), "csrf_failed", "{origin:?} {site:?}");
        }
    }

    #[test]
    fn the_authorization_header_wins_and_needs_no_csrf_token() {
        let cookie = cookie();
        let request = Browser { authorization: Some("Bearer tka_x"), ..browser("POST", &cookie, None) };
        assert_eq!(caller(&request).unwrap(), Caller::Bearer("tka_x"));
        let request = Browser { authorization: Some("Basic x"), ..browser("GET", &cookie, None) };
        assert_eq!(caller(&request).unwrap_err().code(), "missing_admin_token");
        assert_eq!(caller(&Browser { method: "POST", ..Browser::default() }).unwrap(), Caller::Anonymous);
    }

    #[test]
    fn cookies_are_host_only_secure_and_strict() {
        assert_eq!(session_cookie(&cookie()), Some(ID));
        assert_eq!(session_cookie("a=b"), None);
        assert_eq!(session_cookie(&format!("{COOKIE_NAME}=")), None);
        let set = set_cookie(ID);
        for part in ["__Host-teamkeys_session=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Domain"));
        assert!(clear_cookie().ends_with("Max-Age=0"));
    }
}

/// The body of a sign-in: a token, or the organisation whose Access settings verify the
/// `Cf-Access-Jwt-Assertion` header.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub org: Option<String>,
}

impl SignIn {
    /// What signs in, and the organisation it names: the token (and the organisation its
    /// prefix names), else the Access `assertion` for the organisation `org`; 400 otherwise.
    pub fn credential<'a>(&'a self, assertion: Option<&'a str>) -> Result<(super::Credential<'a>, &'a str), ApiError> {
        use crate::platform::org_id::{is_org_id, org_of_token};
        match (&self.token, &self.org, assertion) {
            (Some(token), None, _) if !token.is_empty() => Ok((super::Credential::Token(token), org_of_token(token))),
            (None, Some(org), Some(jwt)) if is_org_id(org) => Ok((super::Credential::Access(jwt), org)),
            (None, Some(_), Some(_)) => Err(ApiError::new(Code::InvalidField, "org: not an organisation id")),
            (None, Some(_), None) => Err(ApiError::new(
                Code::AccessDenied,
                "Cloudflare Access sign-in needs the Cf-Access-Jwt-Assertion header (open the console through Access).",
            )),
            _ => Err(ApiError::new(
                Code::InvalidBody,
                "Send {\"token\": \"…\"}, or {\"org\": \"org_…\"} through Cloudflare Access.",
            )),
        }
    }
}

#[cfg(test)]
mod sign_in_tests {
    use super::*;
    use crate::admin::session::Credential;

    fn sign_in(json: &str) -> SignIn {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_token_or_an_assertion_for_an_organisation() {
        let org = "org_0123456789ABCDEF";
        let token = format!("tka_{org}_secret");
        let body = sign_in(&format!(r#"{{"token":"{token}"}}"#));
        assert_eq!(body.credential(Some("a.b.c")).unwrap(), (Credential::Token(&token), org));
        let body = sign_in(&format!(r#"{{"org":"{org}"}}"#));
        assert_eq!(body.credential(Some("a.b.c")).unwrap(), (Credential::Access("a.b.c"), org));
        assert_eq!(body.credential(None).unwrap_err().code(), "access_denied");
        assert_eq!(sign_in(r#"{"org":"nope"}"#).credential(Some("j")).unwrap_err().code(), "invalid_field");
        assert_eq!(sign_in("{}").credential(None).unwrap_err().code(), "invalid_body");
        assert_eq!(sign_in(r#"{"token":""}"#).credential(None).unwrap_err().code(), "invalid_body");
        assert!(serde_json::from_str::<SignIn>(r#"{"password":"x"}"#).is_err());
    }
}
