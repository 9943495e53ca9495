//! The JSON bodies the admin API accepts, and their validation. Unknown fields are refused (a
//! misspelt policy field must never be silently ignored); every refusal is 400 and names the field.
//!
//! A key's rules are checked by [`KeyRules::validate`], the request path's own check, plus the
//! routing groups that exist ([`check_rules`]).
//!
//! Updates (`PATCH`) change only the fields present; `description` and `expires_at` may be set to
//! `null` to clear them ([`Patch`]); a key's rules are patched by a [`RulesPatch`].

use super::boundary::Boundary;
use super::membership::ProjectRole;
use super::role::Role;
use crate::error::{ApiError, Code};
use crate::limits::CapMode;
use crate::policy::{KeyRules, RulesPatch};
use serde::{Deserialize, Deserializer};

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_TAGS: usize = 32;
const MAX_TAG_CHARS: usize = 64;
/// The largest admin request body accepted.
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

/// 413 for an admin request body over [`MAX_ADMIN_BODY_BYTES`].
pub fn admin_body_too_large() -> ApiError {
    ApiError::new(Code::BodyTooLarge, format!("Admin request bodies are at most {MAX_ADMIN_BODY_BYTES} bytes."))
}

/// A field of an update: absent (keep), `null` (clear) or a value (set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Patch::Clear, Patch::Set))
    }
}

/// In the OpenAPI document a patched field is its value or `null`; absent keeps it.
#[cfg(test)]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        Option::<T>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Option::<T>::json_schema(generator)
    }
}

impl<T> Patch<T> {
    /// `current` after the patch.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(value) => Some(value),
        }
    }
}

/// Parses a request body, answering 400 `invalid_body` with serde's reason (which names the field).
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::InvalidBody, format!("The request body is not valid: {e}.")))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::InvalidField, format!("{field}: {why}"))
}

/// A name: 1 to 200 characters, no control characters, not only spaces.
pub fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(field, format!("must be 1 to {MAX_NAME_CHARS} characters without control characters")));
    }
    Ok(())
}

fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(invalid("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")))
        }
        _ => Ok(()),
    }
}

fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    for (i, tag) in tags.iter().enumerate() {
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
        if tag.is_empty() || tag.len() > MAX_TAG_CHARS || !tag.chars().all(ok) {
            return Err(invalid(
                &format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG_CHARS} of A-Z a-z 0-9 - _ . : /"),
            ));
        }
    }
    Ok(())
}

/// A boundary: valid rules ([`KeyRules::validate`], with the routing groups that exist), spend
/// caps hard (they are ceilings), and no `model_limits` or `end_user_limits` (scopes inside a
/// key, always within its own limits, which the boundaries clamp).
pub fn check_boundary(field: &str, boundary: &Boundary, known_groups: &[&str]) -> Result<(), ApiError> {
    boundary
        .rules
        .validate(Some(known_groups))
        .map_err(|rule| invalid(&format!("{field}.{}", rule.field), rule.reason))?;
    let scoped = [
        ("model_limits", boundary.rules.model_limits.is_empty()),
        ("end_user_limits", boundary.rules.end_user_limits.is_empty()),
    ];
    if let Some((member, _)) = scoped.iter().find(|(_, empty)| !empty) {
        return Err(invalid(
            &format!("{field}.{member}"),
            "is a key's own scope; a boundary bounds it through the key's limits",
        ));
    }
    match boundary.rules.limits.spend.iter().find(|cap| cap.mode != CapMode::Hard) {
        Some(cap) => Err(invalid(
            &format!("{field}.limits.spend[{}].mode", cap.period.name()),
            "a boundary's spend caps are ceilings and must be hard",
        )),
        None => Ok(()),
    }
}

/// A key's rules: [`KeyRules::validate`] with the routing groups that exist.
pub fn check_rules(rules: &KeyRules, known_groups: &[&str]) -> Result<(), ApiError> {
    rules.validate(Some(known_groups)).map(drop).map_err(|rule| invalid(&rule.field, rule.reason))
}

/// `expires_at` must lie in the future.
fn check_expiry(expires_at: Option<u64>, now_ms: u64) -> Result<(), ApiError> {
    match expires_at {
        Some(at) if at <= now_ms => {
            Err(invalid("expires_at", "must be in the future (Unix milliseconds); disable the key instead"))
        }
        _ => Ok(()),
    }
}

/// A token's `token_expires_at` must lie in the future.
fn check_token_expiry(expires_at: Option<u64>, now_ms: u64) -> Result<(), ApiError> {
    match expires_at {
        Some(at) if at <= now_ms => Err(invalid("token_expires_at", "must be in the future (Unix milliseconds)")),
        _ => Ok(()),
    }
}

/// `POST /projects`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub boundary: Boundary,
    /// Absent: the `boundary` given.
    #[serde(default)]
    pub ceiling: Option<Boundary>,
}

impl NewProject {
    pub fn check(&self, known_groups: &[&str]) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        check_description(self.description.as_deref())?;
        check_boundary("boundary", &self.boundary, known_groups)?;
        self.ceiling.as_ref().map_or(Ok(()), |c| check_boundary("ceiling", c, known_groups))
    }
}

/// `PATCH /projects/{id}`: only the fields present change; `description` may be null to clear it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub boundary: Option<Boundary>,
    /// Admins only.
    #[serde(default)]
    pub ceiling: Option<Boundary>,
}

impl ProjectPatch {
    pub fn check(&self, known_groups: &[&str]) -> Result<(), ApiError> {
        self.name.as_deref().map_or(Ok(()), |name| check_name("name", name))?;
        if let Patch::Set(text) = &self.description {
            check_description(Some(text))?;
        }
        self.boundary.as_ref().map_or(Ok(()), |b| check_boundary("boundary", b, known_groups))?;
        self.ceiling.as_ref().map_or(Ok(()), |c| check_boundary("ceiling", c, known_groups))
    }
}

/// `POST /principals`: `projects` are joined as owner by a `project_owner`, as member otherwise.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub projects: Vec<String>,
    /// Unix ms: when the principal's token stops working (401 `token_expired`); absent: never.
    #[serde(default)]
    pub token_expires_at: Option<u64>,
    /// The email Cloudflare Access sign-in maps to this principal (stored lower-case).
    #[serde(default)]
    pub email: Option<String>,
}

/// Emails longer than this are refused (RFC 5321's limit on a path).
const MAX_EMAIL_CHARS: usize = 254;

impl NewPrincipal {
    /// The email, lower-cased, or 400 if it has no `@` between non-empty parts or is too long.
    pub fn email(&self) -> Result<Option<String>, ApiError> {
        let Some(email) = &self.email else { return Ok(None) };
        let valid = email.len() <= MAX_EMAIL_CHARS
            && email.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
            && !email.chars().any(|c| c.is_control() || c.is_whitespace());
        if !valid {
            return Err(invalid("email", "must be an email address"));
        }
        Ok(Some(email.to_ascii_lowercase()))
    }

    pub fn check(&self, now_ms: u64) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        self.email()?;
        check_token_expiry(self.token_expires_at, now_ms)?;
        if self.role == Role::ProjectOwner && self.projects.is_empty() {
            return Err(invalid("projects", "a project owner must own at least one project"));
        }
        Ok(())
    }

    /// The place the principal takes in each of its projects.
    pub fn project_role(&self) -> ProjectRole {
        if self.role == Role::ProjectOwner {
            ProjectRole::Owner
        } else {
            ProjectRole::Member
        }
    }
}

/// `PUT /projects/{id}/members/{principal}`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberPut {
    pub role: ProjectRole,
}

/// `POST /keys`: a key in `project`, with its rules beside the other fields.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub project: String,
    #[serde(default)]
    pub description: Option<String>,
    /// At most 32, each 1 to 64 of `A-Z a-z 0-9 - _ . : /`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Unix milliseconds, in the future.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// `models`, `routing_groups`, `ip_allowlist`, `limits`.
    #[serde(flatten)]
    pub rules: KeyRules,
}

impl NewKey {
    /// The metadata fields; the rules are checked by [`check_rules`].
    pub fn check(&self, now_ms: u64) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        check_description(self.description.as_deref())?;
        check_tags(&self.tags)?;
        check_expiry(self.expires_at, now_ms)
    }
}

/// `PATCH /keys/{id}`: only the fields present change; `description` and `expires_at` may be
/// null to clear them. The rules (`models`, `routing_groups`, `ip_allowlist`, `limits`) may not
/// be null (400 `invalid_body`): clear one with its empty value (`"all"`, `[]`, `{}`). A change of
/// any rule checks the key's whole rules, as they will be, against the boundaries.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Patch<u64>,
    /// `models`, `routing_groups`, `ip_allowlist`, `limits`.
    #[serde(flatten)]
    pub rules: RulesPatch,
}

impl KeyPatch {
    /// The metadata fields; the rules are checked once applied ([`check_rules`]).
    pub fn check(&self, now_ms: u64) -> Result<(), ApiError> {
        self.name.as_deref().map_or(Ok(()), |name| check_name("name", name))?;
        if let Patch::Set(text) = &self.description {
            check_description(Some(text))?;
        }
        self.tags.as_deref().map_or(Ok(()), check_tags)?;
        match self.expires_at {
            Patch::Set(at) => check_expiry(Some(at), now_ms),
            _ => Ok(()),
        }
    }
}

/// `POST /keys/{id}/rotate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the previous secret keeps working, in seconds, at most 7 days (default 0: it
    /// stops at once).
    #[serde(default)]
    pub grace_seconds: Option<f64>,
}

/// `POST /principals/{id}/rotate-token`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRotation {
    /// How long the previous token keeps working, in seconds, at most 7 days and never past its
    /// own expiry (default 0: it stops at once).
    #[serde(default)]
    pub grace_seconds: Option<f64>,
    /// Unix ms: when the new token stops working; absent: when the previous one would have.
    /// Only an Admin may set it later than that (or on a token that did not expire).
    #[serde(default)]
    pub token_expires_at: Option<u64>,
}

impl TokenRotation {
    pub fn check(&self, now_ms: u64) -> Result<(), ApiError> {
        check_token_expiry(self.token_expires_at, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key(json: &str) -> Result<NewKey, ApiError> {
        parse(json.as_bytes())
    }

    #[test]
    fn unknown_fields_are_refused_naming_them() {
        let e = new_key(r#"{"name":"a","project":"p","ip_alowlist":[]}"#).unwrap_err();
        assert_eq!((e.status(), e.code().as_str()), (400, "invalid_body"));
        assert!(e.message.contains("ip_alowlist"), "{}", e.message);
        let e = new_key(r#"{"name":"a","project":"p","limits":{"rpn":1}}"#).unwrap_err();
        assert!(e.message.contains("rpn"), "{}", e.message);
        assert!(parse::<RotateRequest>(b"").unwrap().grace_seconds.is_none(), "an empty body is {{}}");
    }

    #[test]
    fn field_checks() {
        let check = |json: &str| new_key(json).and_then(|k| k.check(1_000)).err().map(|e| e.message);
        assert_eq!(check(r#"{"name":"a","project":"p"}"#), None);
        let refused = [
            (r#"{"name":" ","project":"p"}"#, "name:"),
            (r#"{"name":"a","project":"p","tags":["ok","no spaces"]}"#, "tags[1]:"),
            (r#"{"name":"a","project":"p","expires_at":1000}"#, "expires_at:"),
        ];
        for (json, prefix) in refused {
            let message = check(json).unwrap_or_else(|| panic!("accepted {json}"));
            assert!(message.starts_with(prefix), "{json}: {message}");
        }
    }

    #[test]
    fn rules_checks() {
        let check = |json: &str| {
            let new = new_key(&format!(r#"{{"name":"a","project":"p",{json}}}"#)).unwrap();
            check_rules(&new.rules, &["eu", "us"]).err().map(|e| e.message)
        };
        assert_eq!(
            check(r#""routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"models":{"allow":["gpt-*"]}"#),
            None
        );
        let refused = [
            (r#""models":{"allow":[]}"#, "models: models.allow is empty"),
            (
                r#""routing_groups":["eu","asia"]"#,
                "routing_groups[1]: there is no routing group 'asia' (groups: eu, us)",
            ),
            (r#""ip_allowlist":["10.0.0.0/33"]"#, "ip_allowlist: '10.0.0.0/33'"),
            (&format!(r#""ip_allowlist":[{}]"#, vec![r#""10.0.0.1""#; 257].join(",")), "ip_allowlist: at most 256"),
            (
                r#""limits":{"spend":[{"period":"daily","limit_micros":1},{"period":"daily","limit_micros":2}]}"#,
                "limits.spend:",
            ),
        ];
        for (json, prefix) in refused {
            let message = check(json).unwrap_or_else(|| panic!("accepted {json}"));
            assert!(message.starts_with(prefix), "{json}: {message}");
        }
    }

    #[test]
    fn boundaries_need_hard_caps_and_valid_models() {
        let boundary = |json: &str| {
            check_boundary("boundary", &serde_json::from_str(json).unwrap(), &["eu", "us"]).err().map(|e| e.message)
        };
        assert_eq!(boundary(r#"{"limits":{"spend":[{"period":"daily","limit_micros":1}]}}"#), None);
        assert_eq!(
            boundary(r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"max_key_lifetime_days":9}"#),
            None
        );
        assert!(boundary(r#"{"limits":{"spend":[{"period":"daily","limit_micros":1,"mode":"warn"}]}}"#)
            .unwrap()
            .starts_with("boundary.limits.spend[daily].mode"));
        assert!(boundary(r#"{"models":{"allow":[]}}"#).unwrap().starts_with("boundary.models: models.allow is empty"));
        assert_eq!(
            boundary(r#"{"routing_groups":["asia"]}"#).unwrap(),
            "boundary.routing_groups[0]: there is no routing group 'asia' (groups: eu, us)"
        );
        assert!(boundary(r#"{"ip_allowlist":["nowhere"]}"#).unwrap().starts_with("boundary.ip_allowlist: 'nowhere'"));
        let twice = r#"{"limits":{"spend":[{"period":"total","limit_micros":1},{"period":"total","limit_micros":2}]}}"#;
        assert_eq!(boundary(twice).unwrap(), "boundary.limits.spend: more than one total cap");
    }

    #[test]
    fn patches_keep_clear_or_set() {
        let patch: KeyPatch = parse(br#"{"description":null,"expires_at":5000,"limits":{"rpm":3}}"#).unwrap();
        assert_eq!(patch.description.clone().apply(Some("old".to_owned())), None);
        assert_eq!(patch.expires_at.clone().apply(None), Some(5000));
        assert_eq!(Patch::<u64>::Keep.apply(Some(1)), Some(1));
        let rules = KeyRules { routing_groups: vec!["eu".into()], ..KeyRules::default() };
        let after = patch.rules.clone().apply(&rules);
        assert_eq!((after.routing_groups, after.limits.rpm.map(|n| n.get())), (vec!["eu".to_owned()], Some(3)));
        assert!(patch.check(1_000).is_ok());
        assert!(patch.check(5_000).is_err(), "expires_at must be in the future");
    }

    #[test]
    fn rules_sit_beside_the_other_fields_and_unknown_ones_are_refused() {
        let new = new_key(r#"{"name":"a","project":"p","routing_groups":["eu"],"limits":{"rpm":1}}"#).unwrap();
        assert_eq!(new.rules.routing_groups, ["eu"]);
        let patch: KeyPatch = parse(br#"{"name":"b","ip_allowlist":["10.0.0.1"]}"#).unwrap();
        assert_eq!(patch.rules.ip_allowlist.as_deref(), Some(&["10.0.0.1".to_owned()][..]));
        let e = parse::<KeyPatch>(br#"{"name":"b","ip_alowlist":[]}"#).unwrap_err();
        assert!(e.message.contains("ip_alowlist"), "{}", e.message);
        let e = parse::<KeyPatch>(br#"{"ip_allowlist":null}"#).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        assert!(e.message.contains("cannot be null"), "{}", e.message);
    }

    #[test]
    fn principals() {
        let p: NewPrincipal = parse(br#"{"name":"Olga","role":"project_owner","projects":["prj_1"]}"#).unwrap();
        assert!(p.check(0).is_ok());
        assert_eq!(p.project_role(), ProjectRole::Owner);
        let p: NewPrincipal = parse(br#"{"name":"Olga","role":"project_owner"}"#).unwrap();
        assert!(p.check(0).unwrap_err().message.starts_with("projects:"));
        let p: NewPrincipal = parse(br#"{"name":"Olga","role":"member","token_expires_at":5000}"#).unwrap();
        assert!(p.check(4_999).is_ok());
        assert!(p.check(5_000).unwrap_err().message.starts_with("token_expires_at:"));
        let r: TokenRotation = parse(br#"{"grace_seconds":60,"token_expires_at":5000}"#).unwrap();
        assert!(r.check(4_999).is_ok() && r.check(5_000).is_err());
        assert!(parse::<TokenRotation>(b"").unwrap().token_expires_at.is_none(), "an empty body is {{}}");
        assert!(parse::<NewPrincipal>(br#"{"name":"x","role":"superuser"}"#).is_err());
    }
}
