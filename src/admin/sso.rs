//! Cloudflare Access single sign-on, per organisation: its Admin sets the Access team domain and
//! the application's audience tag ([`AccessSettings`]); a sign-in carrying the
//! `Cf-Access-Jwt-Assertion` header gets a session for the organisation's principal whose email
//! the assertion names.
//!
//! Flow ([`verify`]): [`parse`] the JWT (three base64url parts, at most [`MAX_ASSERTION_BYTES`])
//! → `alg` must be `RS256` → the team's keys ([`TeamKeys`], from [`AccessSettings::certs_url`],
//! cached by [`KeyCache`]: at most [`KEYS_CACHE_MS`] old, refreshed at once, at most every
//! [`MIN_REFRESH_MS`], when the assertion's `kid` is unknown) → the key of its `kid` → the
//! signature, through [`SignatureCheck`] (WebCrypto at the edge; never home-made crypto) → the
//! claims ([`Assertion::check_claims`]): `iss` is the team's URL, `aud` holds the audience tag,
//! `exp` and `nbf` hold with [`LEEWAY_S`] of clock skew, `email` is present → the email,
//! lower-cased. Every refusal is 401 `access_denied`; its message says which check failed.

use crate::error::{ApiError, Code};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};

/// Longer assertions are refused unread.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 60;
/// The team's keys are fetched again once this old (Access rotates them every 6 weeks and
/// publishes the next key ahead).
pub const KEYS_CACHE_MS: u64 = 10 * 60 * 1000;
/// An unknown `kid` makes the keys be fetched again, at most this often.
pub const MIN_REFRESH_MS: u64 = 30 * 1000;
const TEAM_SUFFIX: &str = ".cloudflareaccess.com";

/// An organisation's Access sign-in settings (`PUT /admin/v1/org/access`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// The Access team domain, `<team>.cloudflareaccess.com`.
    pub team_domain: String,
    /// The Access application's audience (AUD) tag.
    pub audience: String,
}

impl AccessSettings {
    /// 400 `invalid_field` unless the team domain is `<team>.cloudflareaccess.com` (one DNS
    /// label: no other host can be made to serve keys) and the audience is 1 to 128 printable
    /// ASCII characters.
    pub fn check(&self) -> Result<(), ApiError> {
        let team = self.team_domain.strip_suffix(TEAM_SUFFIX).unwrap_or_default();
        let label = (1..=63).contains(&team.len())
            && team.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !team.starts_with('-')
            && !team.ends_with('-');
        if !label {
            return Err(ApiError::new(Code::InvalidField, "team_domain: expected '<team>.cloudflareaccess.com'"));
        }
        if !(1..=128).contains(&self.audience.len()) || !self.audience.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::new(Code::InvalidField, "audience: expected the application's AUD tag"));
        }
        Ok(())
    }

    /// The issuer the assertions name.
    pub fn issuer(&self) -> String {
        format!("https://{}", self.team_domain)
    }

    /// Where the team publishes its signing keys.
    pub fn certs_url(&self) -> String {
        format!("https://{}/cdn-cgi/access/certs", self.team_domain)
    }
}

/// One RSA public key of a JSON Web Key Set (other members are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kid: String,
    pub kty: String,
    /// Modulus and exponent, base64url.
    pub n: String,
    pub e: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Checks an RS256 (RSASSA-PKCS1-v1_5, SHA-256) signature with a key.
#[allow(async_fn_in_trait)]
pub trait SignatureCheck {
    /// Whether `signature` signs `signed` under `key`; an error if the key cannot be used.
    async fn rs256(&self, key: &Jwk, signed: &[u8], signature: &[u8]) -> Result<bool, String>;
}

/// The team's keys.
#[allow(async_fn_in_trait)]
pub trait TeamKeys {
    /// The keys at `url`; `refresh`: an assertion named a key the last answer did not have.
    async fn keys(&self, url: &str, refresh: bool, now_ms: u64) -> Result<Jwks, String>;
}

/// The last keys fetched, and when: what [`TeamKeys`] may answer without fetching.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    entry: Option<(String, u64, Jwks)>,
}

impl KeyCache {
    /// The cached keys of `url` if younger than [`KEYS_CACHE_MS`], and, when `refresh` is
    /// asked, younger than [`MIN_REFRESH_MS`] too.
    pub fn get(&self, url: &str, refresh: bool, now_ms: u64) -> Option<&Jwks> {
        let (cached_url, fetched_ms, keys) = self.entry.as_ref()?;
        let age = now_ms.saturating_sub(*fetched_ms);
        let fresh = age < KEYS_CACHE_MS && (!refresh || age < MIN_REFRESH_MS);
        (cached_url == url && fresh).then_some(keys)
    }

    pub fn put(&mut self, url: &str, now_ms: u64, keys: Jwks) {
        self.entry = Some((url.to_owned(), now_ms, keys));
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    email: Option<String>,
}

/// A parsed assertion, its signature not yet checked.
#[derive(Debug)]
pub struct Assertion<'a> {
    header: Header,
    claims: Claims,
    /// `<header>.<payload>`, the signed bytes.
    signed: &'a str,
    signature: Vec<u8>,
}

fn denied(why: &str) -> ApiError {
    ApiError::new(Code::AccessDenied, format!("Cloudflare Access sign-in refused: {why}."))
}

pub fn parse(jwt: &str) -> Result<Assertion<'_>, ApiError> {
    if jwt.len() > MAX_ASSERTION_BYTES {
        return Err(denied("the assertion is too long"));
    }
    let malformed = || denied("the assertion is not a JWT");
    let (signed, signature) = jwt.rsplit_once('.').ok_or_else(malformed)?;
    let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
    let decode = |part: &str| Base64UrlUnpadded::decode_vec(part).map_err(|_| malformed());
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| malformed())?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| malformed())?;
    Ok(Assertion { header, claims, signed, signature: decode(signature)? })
}

impl Assertion<'_> {
    /// The email the claims name, lower-cased, if they are for `settings` at `now_ms`.
    pub fn check_claims(&self, settings: &AccessSettings, now_ms: u64) -> Result<String, ApiError> {
        let claims = &self.claims;
        if claims.iss != settings.issuer() {
            return Err(denied("the issuer is not the organisation's Access team"));
        }
        let audiences = match &claims.aud {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many.as_slice(),
        };
        if !audiences.contains(&settings.audience) {
            return Err(denied("the audience is not the organisation's Access application"));
        }
        let now_s = now_ms / 1000;
        if now_s >= claims.exp + LEEWAY_S {
            return Err(denied("the assertion has expired"));
        }
        if claims.nbf.is_some_and(|nbf| now_s + LEEWAY_S < nbf) {
            return Err(denied("the assertion is not valid yet"));
        }
        let email = claims.email.as_deref().filter(|email| email.contains('@'));
        email.map(str::to_ascii_lowercase).ok_or_else(|| denied("the assertion names no email"))
    }
}

/// The email a signed, current assertion `jwt` names for `settings` (see the module's flow).
pub async fn verify(
    jwt: &str,
    settings: &AccessSettings,
    now_ms: u64,
    keys: &impl TeamKeys,
    signatures: &impl SignatureCheck,
) -> Result<String, ApiError> {
    let assertion = parse(jwt)?;
    if assertion.header.alg != "RS256" {
        return Err(denied("the assertion is not signed with RS256"));
    }
    let kid = assertion.header.kid.as_deref().ok_or_else(|| denied("the assertion names no key"))?;
    let url = settings.certs_url();
    let unreachable = |e: String| {
        ApiError::new(
            Code::AccessDenied,
            format!("Cloudflare Access sign-in refused: the team's keys cannot be read ({e})."),
        )
    };
    let mut jwks = keys.keys(&url, false, now_ms).await.map_err(unreachable)?;
    if !jwks.keys.iter().any(|key| key.kid == kid) {
        jwks = keys.keys(&url, true, now_ms).await.map_err(unreachable)?;
    }
    let key = jwks.keys.iter().find(|key| key.kid == kid && key.kty == "RSA");
    let key = key.ok_or_else(|| denied("the assertion's key is not one of the team's"))?;
    let valid = signatures.rs256(key, assertion.signed.as_bytes(), &assertion.signature).await;
    if !valid.map_err(|e| denied(&format!("the team's key cannot be used ({e})")))? {
        return Err(denied("the signature does not verify"));
    }
    assertion.check_claims(settings, now_ms)
}

/// The certs URL used in place of the team's, for local tests only: the var `ACCESS_CERTS_URL`
/// is honoured only when `local_development` (`ALLOW_INSECURE_UPSTREAMS=true`) and only for a
/// loopback `http://127.0.0.1:…` or `http://localhost:…` URL, which no deployed worker can reach;
/// anything else is an error the registry logs, and the team's URL is used.
pub fn certs_url_override(var: Option<&str>, local_development: bool) -> Result<Option<String>, String> {
    let Some(url) = var.filter(|url| !url.is_empty()) else { return Ok(None) };
    let loopback = ["http://127.0.0.1:", "http://localhost:"].iter().any(|prefix| url.starts_with(prefix));
    match (local_development, loopback) {
        (true, true) => Ok(Some(url.to_owned())),
        (false, _) => Err("ACCESS_CERTS_URL is ignored: it is honoured only with ALLOW_INSECURE_UPSTREAMS=true".into()),
        (true, false) => Err("ACCESS_CERTS_URL is ignored: it must be a loopback http URL".into()),
    }
}
