//! Console sessions: a principal's token (or a verified Cloudflare Access assertion,
//! [`crate::admin::sso`]) exchanged for a session the browser holds in an HttpOnly cookie, so
//! the page never keeps the token.
//!
//! Flow of a sign-in (`POST /admin/v1/sessions`): the worker checks the request is same-origin
//! ([`request::same_origin`]) and reserves a failed sign-in from the client address's allowance
//! ([`throttle`], in the client's `SignInGuard` object) → the organisation's registry (the
//! platform's, for the operator's `ADMIN_TOKEN`) authenticates the token and stores the new
//! session, by its SHA-256 only ([`store`]) → on success the worker gives the reservation back
//! and answers the cookie ([`request::set_cookie`]) and the CSRF token ([`csrf_token`]).
//!
//! Flow of a call with the cookie ([`request::caller`]): `Authorization` wins if sent; else the
//! cookie's session id, and for every method but GET/HEAD the `X-CSRF-Token` header must equal
//! [`csrf_token`] of that id and `Origin`/`Sec-Fetch-Site`, when sent, must be same-origin → the
//! session id names its organisation ([`scope_of`]) → that registry finds the session, checks
//! its idle and absolute expiry and slides the idle one ([`store::SessionStore::touch`]).
//!
//! Invariants: a session lives at most [`ABSOLUTE_MS`] and dies after [`IDLE_MS`] unused; a
//! principal holds at most [`store::MAX_SESSIONS_PER_PRINCIPAL`] (the oldest goes first); a
//! session cannot make another; deleting a principal or rotating its token revokes its
//! sessions. The CSRF token is derived from the session id (HMAC-SHA-256 keyed by the id), so it
//! needs no storage, and only a holder of the cookie's value can compute it.

pub mod request;
pub mod store;
pub mod throttle;
pub mod whoami;

use crate::admin::secret::{new_token_with_prefix, Random};
use crate::platform::org_id::is_org_id;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie holding the session id (`__Host-`: Secure, `Path=/`, no `Domain`).
pub const COOKIE_NAME: &str = "__Host-teamkeys_session";
/// The header carrying the CSRF token on state-changing calls made with the cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long is over.
pub const IDLE_MS: u64 = 30 * 60 * 1000;
/// A session is over this long after its sign-in, however much it is used.
pub const ABSOLUTE_MS: u64 = 12 * 60 * 60 * 1000;
/// Session ids are `tks_<scope>_<secret>`: the scope is an organisation id or [`OPERATOR_SCOPE`].
pub const SESSION_PREFIX: &str = "tks_";
/// The scope of the operator's sessions, kept by the platform object.
pub const OPERATOR_SCOPE: &str = "platform";

/// Who a call to a registry or the platform is made by, as the worker forwards it in the
/// internal `Authorization` header ([`Credential::header`]); only the worker builds these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A bearer token: a principal's, or `ADMIN_TOKEN`.
    Token(&'a str),
    /// A console session id, its CSRF check passed at the worker.
    Session(&'a str),
    /// A Cloudflare Access assertion (a JWT), for a sign-in only.
    Access(&'a str),
    /// The email of an Access assertion the registry's edge has verified
    /// ([`crate::admin::sso::verify`]), for a sign-in only; never read from a header.
    Email(&'a str),
}

impl<'a> Credential<'a> {
    /// The internal header's value: `Bearer <token>`, `Session <id>` or `Access <jwt>` (an
    /// email is never forwarded: `None`).
    pub fn header(&self) -> Option<String> {
        match self {
            Credential::Token(token) => Some(format!("Bearer {token}")),
            Credential::Session(id) => Some(format!("Session {id}")),
            Credential::Access(jwt) => Some(format!("Access {jwt}")),
            Credential::Email(_) => None,
        }
    }

    /// Reads [`Credential::header`]'s form back; a bearer token as [`crate::admin::api::bearer`]
    /// reads it (401 `missing_admin_token` when there is none).
    pub fn parse(authorization: Option<&'a str>) -> Result<Credential<'a>, crate::error::ApiError> {
        let scheme =
            authorization.and_then(|header| header.split_once(' ')).map(|(scheme, rest)| (scheme, rest.trim()));
        match scheme {
            Some(("Session", id)) if !id.is_empty() => Ok(Credential::Session(id)),
            Some(("Access", jwt)) if !jwt.is_empty() => Ok(Credential::Access(jwt)),
            _ => crate::admin::api::bearer(authorization).map(Credential::Token),
        }
    }

    /// The bearer token, or "" for any other credential (which no token hash matches).
    pub fn token(&self) -> &'a str {
        match self {
            Credential::Token(token) => token,
            _ => "",
        }
    }
}

/// A fresh session id of `scope` (an organisation id or [`OPERATOR_SCOPE`]).
pub fn new_session_id(scope: &str, random: &mut impl Random) -> String {
    new_token_with_prefix(&format!("{SESSION_PREFIX}{scope}_"), random)
}

/// The scope a session id names: an organisation id or [`OPERATOR_SCOPE`]; `None` if malformed.
pub fn scope_of(id: &str) -> Option<&str> {
    let (scope, secret) = id.strip_prefix(SESSION_PREFIX)?.rsplit_once('_')?;
    let well_formed = !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (well_formed && (scope == OPERATOR_SCOPE || is_org_id(scope))).then_some(scope)
}

/// The CSRF token of session `id`: hex HMAC-SHA-256 keyed by the id.
pub fn csrf_token(id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(id.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"teamkeys console csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::secret::counting;
    use crate::naming::DEFAULT_ORG;

    #[test]
    fn ids_name_their_scope() {
        let org = "org_0123456789ABCDEF";
        let id = new_session_id(org, &mut counting());
        assert!(id.starts_with("tks_org_0123456789ABCDEF_") && id.len() == "tks_".len() + org.len() + 1 + 40);
        assert_eq!(scope_of(&id), Some(org));
        assert_eq!(scope_of(&new_session_id(OPERATOR_SCOPE, &mut counting())), Some(OPERATOR_SCOPE));
        assert_eq!(scope_of(&new_session_id(DEFAULT_ORG, &mut counting())), Some(DEFAULT_ORG));
        for bad in [
            "",
            "tks_",
            "tks_org_nope_abc",
            "tka_org_0123456789ABCDEF_abc",
            "tks_org_0123456789ABCDEF_",
            "tks_platform_a;b",
        ] {
            assert_eq!(scope_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_is_derived_from_the_session() {
        let (a, b) = (csrf_token("tks_org_a"), csrf_token("tks_org_b"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(a, csrf_token("tks_org_a"));
    }

    #[test]
    fn credentials_round_trip_through_the_internal_header() {
        for credential in [Credential::Token("tka_x"), Credential::Session("tks_org_x"), Credential::Access("a.b.c")] {
            let header = credential.header().unwrap();
            assert_eq!(Credential::parse(Some(&header)).unwrap(), credential);
        }
        assert_eq!(Credential::Email("a@b.c").header(), None);
        assert_eq!(Credential::parse(None).unwrap_err().code(), "missing_admin_token");
        assert_eq!(Credential::parse(Some("Session ")).unwrap_err().code(), "missing_admin_token");
        assert_eq!(Credential::Session("tks_x").token(), "");
    }
}
