//! Routing configurations: which upstream targets serve which models, in groups that keys are
//! granted by name. The platform has one (`ROUTING`, or one made from `UPSTREAM_URL`); an
//! organisation may have its own (its [`crate::policy::OrgRecord`]'s `routing`).
//!
//! Flow: the gateway loads the platform's JSON once ([`RoutingConfig::from_json`], or
//! [`RoutingConfig::default_for`] when none is configured) and an organisation's with its record
//! (`deserialize_org_routing`); for each call [`RoutingConfig::resolve`] picks the first group,
//! in config order, that the key may use and that serves the call; the gateway tries that
//! group's targets in order.
//!
//! - A group serves a call when one of its model globs matches the model (calls without a model,
//!   like model lists, match any group) and it has a target of the request's family. A target
//!   speaks one family's API; for now there is no translation between families, so targets of
//!   other families are skipped.
//! - `fallback: true` (the default) lets the gateway try the next target when one fails;
//!   `false` keeps the call on the first target.
//! - A target may rename models for its upstream (`model_map`, exact names).
//!
//! # A target's credential: exactly one of two forms
//! - Platform routing: `{"family", "base_url", "credential_secret": "<Worker secret name>"}`
//!   ([`TargetUpstream::Secret`]).
//! - An organisation's routing: `{"family", "credential": "<credential name>"}`
//!   ([`TargetUpstream::Stored`]), naming one of the organisation's stored credentials
//!   ([`crate::credentials`]). Such a target has no `base_url`: the call goes to the
//!   credential's own `base_url` when it has one, else to its provider's public API
//!   ([`crate::credentials::Provider::public_base_url`]). Both are sealed with the secret, while
//!   the routing is not: were the target's URL used, a write to the organisation's routing
//!   could send its secret anywhere.
//!
//! A configuration names one form only ([`CredentialHolder`]): the platform's cannot name an
//! organisation's credentials, and an organisation's can never name a Worker secret (which
//! would hand it the platform's credentials, or any other secret of the worker).

use super::denial::Denial;
use crate::error::{ApiError, Code};
use crate::family::Family;
use crate::gateway::route::{family_prefix, FAMILIES};
use crate::policy::glob::glob_match;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A validated routing configuration: at least one group; unique, non-empty group names; every
/// group with at least one non-empty model glob and at least one target; every target of its
/// holder's form ([`CredentialHolder`]), with non-empty names, and, in the platform's form, an
/// `http(s)://` base URL without trailing `/`, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutingConfig {
    groups: Vec<Group>,
}

/// Whose credentials a configuration's targets name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHolder {
    /// The platform's Worker secrets ([`TargetUpstream::Secret`]).
    Platform,
    /// The organisation's stored credentials ([`TargetUpstream::Stored`]).
    Organisation,
}

/// A routing configuration as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingJson {
    groups: Vec<Group>,
}

impl RoutingJson {
    fn validate(self, holder: CredentialHolder) -> Result<RoutingConfig, InvalidRoutingConfig> {
        let RoutingJson { groups } = self;
        if groups.is_empty() {
            return Err(InvalidRoutingConfig("there are no groups".to_owned()));
        }
        let mut names = HashSet::new();
        for group in &groups {
            validate_group(group, holder)?;
            if !names.insert(group.name.as_str()) {
                return Err(InvalidRoutingConfig(format!("group name '{}' is used twice", group.name)));
            }
        }
        Ok(RoutingConfig { groups })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Globs of the model names the group serves.
    pub models: Vec<String>,
    /// Tried in this order.
    pub targets: Vec<Target>,
    #[serde(default = "fallback_by_default")]
    pub fallback: bool,
}

fn fallback_by_default() -> bool {
    true
}

/// One upstream target. In JSON its [`TargetUpstream`]'s members sit beside the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetJson", into = "TargetJson")]
pub struct Target {
    /// The API the target speaks.
    pub family: Family,
    pub upstream: TargetUpstream,
    /// Requested model name → the name to send upstream.
    pub model_map: BTreeMap<String, String>,
    /// Whether the target bills as its family's provider does: it honours the output cap the
    /// gateway sends and reports usage where the provider writes it. Absent: only the providers'
    /// own hosts (and loopback, where a local mock runs) are ([`Target::is_metered`]).
    pub metered: Option<bool>,
}

/// The hosts whose billing the gateway models, per family.
const PROVIDER_HOSTS: [(Family, &str); 3] = [
    (Family::OpenAi, "api.openai.com"),
    (Family::Anthropic, "api.anthropic.com"),
    (Family::Gemini, "generativelanguage.googleapis.com"),
];

impl Target {
    /// Whether an admitted call's bill is bounded by its reservation on this target, whose calls
    /// go to `base_url`: its `metered`, else whether that host is the family's provider (or
    /// loopback). A key with a spend cap is refused targets that are not (an OpenAI-compatible
    /// server may ignore the cap sent or report what it likes).
    pub fn is_metered(&self, base_url: Option<&str>) -> bool {
        self.metered.unwrap_or_else(|| {
            let host =
                base_url.and_then(|url| url::Url::parse(url).ok()).and_then(|url| url.host_str().map(str::to_owned));
            host.is_some_and(|host| {
                PROVIDER_HOSTS.contains(&(self.family, host.as_str()))
                    || ["127.0.0.1", "localhost", "[::1]"].contains(&host.as_str())
            })
        })
    }
}

/// Where a target's calls go and the credential they carry (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetUpstream {
    /// Platform routing.
    Secret {
        /// The family's base, e.g. `https://api.openai.com/v1`; a route's upstream path is
        /// appended. Stored without trailing `/`.
        base_url: String,
        /// Name of the Worker secret holding the credential.
        credential_secret: String,
    },
    /// An organisation's routing: the name of one of its stored credentials, which decides
    /// the base URL.
    Stored { credential: String },
}

/// A target as written: exactly one of `base_url` + `credential_secret` and `credential`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetJson {
    family: Family,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    model_map: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metered: Option<bool>,
}

impl TryFrom<TargetJson> for Target {
    type Error = String;

    fn try_from(json: TargetJson) -> Result<Target, String> {
        let upstream = match (json.base_url, json.credential_secret, json.credential) {
            (Some(base_url), Some(credential_secret), None) => {
                TargetUpstream::Secret { base_url: base_url.trim_end_matches('/').to_owned(), credential_secret }
            }
            (None, None, Some(credential)) => TargetUpstream::Stored { credential },
            _ => {
                return Err("a target has either base_url and credential_secret (platform routing) or credential \
                            (an organisation's routing)"
                    .to_owned())
            }
        };
        Ok(Target { family: json.family, upstream, model_map: json.model_map, metered: json.metered })
    }
}

impl From<Target> for TargetJson {
    fn from(Target { family, upstream, model_map, metered }: Target) -> TargetJson {
        let (base_url, credential_secret, credential) = match upstream {
            TargetUpstream::Secret { base_url, credential_secret } => (Some(base_url), Some(credential_secret), None),
            TargetUpstream::Stored { credential } => (None, None, Some(credential)),
        };
        TargetJson { family, base_url, credential_secret, credential, model_map, metered }
    }
}

/// Where a call goes: the group that serves it and that group's targets of the request's family,
/// in the order to try them (only the first when the group has no fallback). Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoute<'r> {
    pub group: &'r str,
    pub targets: Vec<&'r Target>,
}

impl Target {
    /// The model name to send this target for a requested one.
    pub fn upstream_model<'m>(&'m self, requested: &'m str) -> &'m str {
        self.model_map.get(requested).map_or(requested, String::as_str)
    }
}

/// Its base URL (platform routing) or the name of its credential, for log lines.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.upstream {
            TargetUpstream::Secret { base_url, .. } => f.write_str(base_url),
            TargetUpstream::Stored { credential } => write!(f, "credential '{credential}'"),
        }
    }
}

impl Group {
    fn serves(&self, family: Family, model: Option<&str>) -> bool {
        self.targets.iter().any(|t| t.family == family)
            && model.is_none_or(|model| self.models.iter().any(|glob| glob_match(glob, model)))
    }
}

impl RoutingConfig {
    /// One group `default` serving every model of every family from
    /// `{upstream_base}/openai/v1`, `/anthropic/v1` and `/gemini/v1beta`, with the credential in
    /// the secret named `secret`.
    pub fn default_for(upstream_base: &str, secret: &str) -> RoutingConfig {
        let base = upstream_base.trim_end_matches('/');
        let targets = FAMILIES
            .into_iter()
            .map(|family| Target {
                family,
                upstream: TargetUpstream::Secret {
                    base_url: [base, family_prefix(family)].concat(),
                    credential_secret: secret.to_owned(),
                },
                model_map: BTreeMap::new(),
                metered: None,
            })
            .collect();
        RoutingConfig {
            groups: vec![Group { name: "default".to_owned(), models: vec!["*".to_owned()], targets, fallback: true }],
        }
    }

    /// Parses and validates the platform's configuration (see [`RoutingConfig`] for the rules);
    /// trailing slashes of base URLs are removed.
    pub fn from_json(json: &str) -> Result<RoutingConfig, InvalidRoutingConfig> {
        RoutingConfig::parse(json, CredentialHolder::Platform)
    }

    /// Parses and validates an organisation's configuration, as its Admin writes it: its
    /// targets name its stored credentials only.
    pub fn from_org_json(json: &str) -> Result<RoutingConfig, InvalidRoutingConfig> {
        RoutingConfig::parse(json, CredentialHolder::Organisation)
    }

    fn parse(json: &str, holder: CredentialHolder) -> Result<RoutingConfig, InvalidRoutingConfig> {
        let written: RoutingJson = serde_json::from_str(json).map_err(|e| InvalidRoutingConfig(e.to_string()))?;
        written.validate(holder)
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The first group, in config order, that `key_groups` allows (empty allows every group) and
    /// that serves `model` (any model when `None`) for `family`.
    ///
    /// Denials: [`Denial::ModelNotServed`] when no group serves the call at all,
    /// [`Denial::RoutingGroupNotAllowed`] when only groups the key may not use do.
    pub fn resolve(
        &self,
        family: Family,
        model: Option<&str>,
        access: GroupAccess,
    ) -> Result<ResolvedRoute<'_>, Denial> {
        if let Some(group) = self.usable_group(family, model, access) {
            let targets = group.targets.iter().filter(|t| t.family == family);
            let targets = targets.take(if group.fallback { usize::MAX } else { 1 }).collect();
            return Ok(ResolvedRoute { group: &group.name, targets });
        }
        let serving_groups: Vec<String> =
            self.groups.iter().filter(|g| g.serves(family, model)).map(|g| g.name.clone()).collect();
        let model = model.map(str::to_owned);
        Err(if serving_groups.is_empty() {
            Denial::ModelNotServed { family, model }
        } else {
            Denial::RoutingGroupNotAllowed { model, serving_groups }
        })
    }

    /// Whether [`RoutingConfig::resolve`] would succeed; allocates nothing.
    pub fn serves(&self, family: Family, model: Option<&str>, access: GroupAccess) -> bool {
        self.usable_group(family, model, access).is_some()
    }

    fn usable_group(&self, family: Family, model: Option<&str>, access: GroupAccess) -> Option<&Group> {
        self.groups.iter().find(|group| access.permits(&group.name) && group.serves(family, model))
    }
}

/// The routing groups a key may use: those on its own list (empty: every group) that are also on
/// the list of each boundary above it (each boundary's list is non-empty).
#[derive(Debug, Clone, Copy)]
pub struct GroupAccess<'a> {
    pub own: &'a [String],
    pub boundaries: &'a [Vec<String>],
}

impl<'a> GroupAccess<'a> {
    /// A key's own list, without boundaries.
    pub fn own(own: &'a [String]) -> GroupAccess<'a> {
        GroupAccess { own, boundaries: &[] }
    }

    pub fn permits(&self, group: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|name| name == group);
        (self.own.is_empty() || listed(self.own)) && self.boundaries.iter().all(|list| listed(list))
    }
}

/// An organisation's routing as its record stores it (`deserialize_with` of
/// [`crate::policy::OrgRecord`]'s `routing`): validated as [`RoutingConfig::from_org_json`]
/// does, so a record whose routing names a Worker secret cannot be read.
pub fn deserialize_org_routing<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<RoutingConfig>, D::Error> {
    let written = Option::<RoutingJson>::deserialize(deserializer)?;
    written.map(|json| json.validate(CredentialHolder::Organisation)).transpose().map_err(serde::de::Error::custom)
}

fn validate_group(group: &Group, holder: CredentialHolder) -> Result<(), InvalidRoutingConfig> {
    let invalid = |what: String| Err(InvalidRoutingConfig(format!("group '{}': {what}", group.name)));
    if group.name.is_empty() {
        return Err(InvalidRoutingConfig("a group has an empty name".to_owned()));
    }
    if group.models.is_empty() || group.models.iter().any(String::is_empty) {
        return invalid("models must be a non-empty list of non-empty globs".to_owned());
    }
    if group.targets.is_empty() {
        return invalid("there are no targets".to_owned());
    }
    for target in &group.targets {
        match (&target.upstream, holder) {
            (TargetUpstream::Secret { base_url, credential_secret }, CredentialHolder::Platform) => {
                if !is_valid_base_url(base_url) {
                    return invalid(format!("base_url '{base_url}' is not an http:// or https:// URL without query"));
                }
                if credential_secret.is_empty() {
                    return invalid(format!("target '{base_url}' has an empty credential_secret"));
                }
            }
            (TargetUpstream::Stored { credential }, CredentialHolder::Organisation) => {
                if credential.is_empty() {
                    return invalid("a target names an empty credential".to_owned());
                }
            }
            (TargetUpstream::Stored { .. }, CredentialHolder::Platform) => {
                return invalid(
                    "the platform's targets name a credential_secret and a base_url, not a credential".to_owned(),
                )
            }
            (TargetUpstream::Secret { .. }, CredentialHolder::Organisation) => {
                return invalid(
                    "an organisation's targets name one of its credentials, never a credential_secret".to_owned(),
                )
            }
        }
        if target.model_map.iter().any(|(from, to)| from.is_empty() || to.is_empty()) {
            return invalid(format!("target {target} maps an empty model name"));
        }
    }
    Ok(())
}

/// `http://` or `https://`, then a non-empty rest without whitespace, `?` or `#`.
fn is_valid_base_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
    })
}

/// A routing configuration that cannot be used; the gateway answers 500 `invalid_routing_config`
/// until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRoutingConfig(pub String);

impl fmt::Display for InvalidRoutingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "routing configuration is invalid: {}", self.0)
    }
}

impl From<InvalidRoutingConfig> for ApiError {
    fn from(_: InvalidRoutingConfig) -> ApiError {
        ApiError::new(
            Code::InvalidRoutingConfig,
            "The gateway's routing configuration is invalid; an admin must fix it.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_providers_hosts_loopback_and_marked_targets_are_metered() {
        let target = |family, metered| Target {
            family,
            upstream: TargetUpstream::Stored { credential: "c".to_owned() },
            model_map: BTreeMap::new(),
            metered,
        };
        let openai = target(Family::OpenAi, None);
        assert!(openai.is_metered(Some("https://api.openai.com/v1")));
        assert!(target(Family::Anthropic, None).is_metered(Some("https://api.anthropic.com/v1")));
        assert!(target(Family::Gemini, None).is_metered(Some("https://generativelanguage.googleapis.com/v1beta")));
        assert!(openai.is_metered(Some("http://127.0.0.1:8788/openai/v1")));
        // Another family's host, a compatible server, an unknown or unparsable URL: not unless marked.
        assert!(!target(Family::Anthropic, None).is_metered(Some("https://api.openai.com/v1")));
        assert!(!openai.is_metered(Some("https://llm.example.com/v1")));
        assert!(!openai.is_metered(Some("not a url")));
        assert!(!openai.is_metered(None));
        assert!(target(Family::OpenAi, Some(true)).is_metered(Some("https://llm.example.com/v1")));
        assert!(!target(Family::OpenAi, Some(false)).is_metered(Some("https://api.openai.com/v1")));
    }
    use Family::*;

    /// The base URL of a platform target.
    fn base(target: &Target) -> &str {
        match &target.upstream {
            TargetUpstream::Secret { base_url, .. } => base_url,
            TargetUpstream::Stored { .. } => panic!("a platform target names a secret"),
        }
    }

    fn family_json(family: Family) -> String {
        serde_json::to_string(&family).unwrap()
    }

    fn target(base: &str, family: Family, map: &str) -> String {
        format!(
            r#"{{"base_url":"{base}","family":{},"credential_secret":"S","model_map":{{{map}}}}}"#,
            family_json(family)
        )
    }

    /// A configuration of one group `a` serving every model with `target` alone.
    fn in_one_group(target: String) -> String {
        format!(r#"{{"groups":[{{"name":"a","models":["*"],"targets":[{target}]}}]}}"#)
    }

    /// Groups: `eu` (claude-* via two Anthropic targets, one OpenAI target), `research`
    /// (o* and gpt-5, no fallback), `cheap` (gpt-4o* with a model map), `everything` (*).
    fn config() -> RoutingConfig {
        let json = format!(
            r#"{{"groups":[
                {{"name":"eu","models":["claude-*"],"targets":[{},{},{}]}},
                {{"name":"research","models":["o*","gpt-5"],"fallback":false,"targets":[{},{}]}},
                {{"name":"cheap","models":["gpt-4o*"],"targets":[{}]}},
                {{"name":"everything","models":["*"],"targets":[{},{},{}]}}
            ]}}"#,
            target("https://eu-a.example/v1/", Anthropic, ""),
            target("https://oa.example/v1", OpenAi, ""),
            target("https://eu-b.example/v1", Anthropic, ""),
            target("https://r1.example/v1", OpenAi, ""),
            target("https://r2.example/v1", OpenAi, ""),
            target("https://cheap.example/v1", OpenAi, r#""gpt-4o":"gpt-4o-mini""#),
            target("https://all.example/openai/v1", OpenAi, ""),
            target("https://all.example/anthropic/v1", Anthropic, ""),
            target("https://all.example/gemini/v1beta", Gemini, ""),
        );
        RoutingConfig::from_json(&json).unwrap()
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// (family, model, key groups, resolved group, target base URLs)
    type Case = (Family, Option<&'static str>, &'static [&'static str], &'static str, &'static [&'static str]);

    const RESOLVED: &[Case] = &[
        (Anthropic, Some("claude-sonnet-4-5"), &[], "eu", &["https://eu-a.example/v1", "https://eu-b.example/v1"]),
        (OpenAi, Some("claude-sonnet-4-5"), &[], "eu", &["https://oa.example/v1"]),
        (OpenAi, Some("o3"), &[], "research", &["https://r1.example/v1"]),
        (OpenAi, Some("gpt-5"), &[], "research", &["https://r1.example/v1"]),
        (OpenAi, Some("gpt-4o-mini"), &[], "cheap", &["https://cheap.example/v1"]),
        (OpenAi, Some("gpt-4o-mini"), &["everything", "cheap"], "cheap", &["https://cheap.example/v1"]),
        (OpenAi, Some("o3"), &["everything"], "everything", &["https://all.example/openai/v1"]),
        (Anthropic, Some("claude-x"), &["everything"], "everything", &["https://all.example/anthropic/v1"]),
        (Gemini, Some("gemini-2.5-pro"), &[], "everything", &["https://all.example/gemini/v1beta"]),
        (Gemini, Some("claude-x"), &[], "everything", &["https://all.example/gemini/v1beta"]),
        (OpenAi, None, &[], "eu", &["https://oa.example/v1"]),
        (OpenAi, None, &["cheap"], "cheap", &["https://cheap.example/v1"]),
        (Gemini, None, &[], "everything", &["https://all.example/gemini/v1beta"]),
    ];

    #[test]
    fn resolution_order_family_filter_and_fallback() {
        let config = config();
        for &(family, model, key_groups, group, bases) in RESOLVED {
            let resolved = config.resolve(family, model, GroupAccess::own(&groups(key_groups))).unwrap();
            let got: Vec<&str> = resolved.targets.iter().map(|t| base(t)).collect();
            assert_eq!((resolved.group, got.as_slice()), (group, bases), "{family:?} {model:?} {key_groups:?}");
            assert!(config.serves(family, model, GroupAccess::own(&groups(key_groups))));
        }
    }

    #[test]
    fn resolution_denials() {
        let config = config();
        let denied = config.resolve(OpenAi, Some("o3"), GroupAccess::own(&groups(&["cheap", "eu"]))).unwrap_err();
        assert_eq!(
            denied,
            Denial::RoutingGroupNotAllowed {
                model: Some("o3".into()),
                serving_groups: groups(&["research", "everything"])
            }
        );
        let denied = config.resolve(Gemini, None, GroupAccess::own(&groups(&["eu"]))).unwrap_err();
        assert_eq!(denied, Denial::RoutingGroupNotAllowed { model: None, serving_groups: groups(&["everything"]) });
        assert!(!config.serves(Gemini, None, GroupAccess::own(&groups(&["eu"]))));
        let only_openai = RoutingConfig::from_json(&format!(
            r#"{{"groups":[{{"name":"g","models":["gpt-*"],"targets":[{}]}}]}}"#,
            target("https://x.example", OpenAi, "")
        ))
        .unwrap();
        assert_eq!(
            only_openai.resolve(OpenAi, Some("o3"), GroupAccess::own(&[])).unwrap_err(),
            Denial::ModelNotServed { family: OpenAi, model: Some("o3".into()) }
        );
        assert_eq!(
            only_openai.resolve(Anthropic, None, GroupAccess::own(&groups(&["g"]))).unwrap_err(),
            Denial::ModelNotServed { family: Anthropic, model: None }
        );
    }

    #[test]
    fn model_map() {
        let config = config();
        let resolved = config.resolve(OpenAi, Some("gpt-4o"), GroupAccess::own(&[])).unwrap();
        let target = resolved.targets[0];
        assert_eq!(target.upstream_model("gpt-4o"), "gpt-4o-mini");
        assert_eq!(target.upstream_model("gpt-4o-2024-08-06"), "gpt-4o-2024-08-06");
    }

    #[test]
    fn default_config() {
        let config = RoutingConfig::default_for("http://127.0.0.1:8787/", "UPSTREAM_KEY");
        assert_eq!(config.groups().len(), 1);
        for (family, base) in [
            (OpenAi, "http://127.0.0.1:8787/openai/v1"),
            (Anthropic, "http://127.0.0.1:8787/anthropic/v1"),
            (Gemini, "http://127.0.0.1:8787/gemini/v1beta"),
        ] {
            let resolved = config.resolve(family, Some("any-model"), GroupAccess::own(&groups(&["default"]))).unwrap();
            assert_eq!(resolved.group, "default");
            assert_eq!(resolved.targets.len(), 1);
            let secret =
                TargetUpstream::Secret { base_url: base.to_owned(), credential_secret: "UPSTREAM_KEY".to_owned() };
            assert_eq!(resolved.targets[0].upstream, secret);
        }
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(RoutingConfig::from_json(&json).unwrap(), config);
    }

    /// The platform's configuration names Worker secrets only, an organisation's its stored
    /// credentials only, and a target names exactly one credential.
    #[test]
    fn each_holder_names_its_own_credentials() {
        let stored = r#"{"family":"openai","credential":"main","model_map":{"a":"b"}}"#;
        let org = RoutingConfig::from_org_json(&in_one_group(stored.to_owned())).unwrap();
        let first = org.resolve(OpenAi, Some("a"), GroupAccess::own(&[])).unwrap().targets[0];
        assert_eq!(first.upstream, TargetUpstream::Stored { credential: "main".to_owned() });
        assert_eq!(first.to_string(), "credential 'main'");
        let json = serde_json::to_string(&org).unwrap();
        assert_eq!(RoutingConfig::from_org_json(&json).unwrap(), org, "{json}");

        let secret = target("https://x.example", OpenAi, "");
        let refused = [
            (RoutingConfig::from_org_json(&in_one_group(secret.clone())), "never a credential_secret"),
            (RoutingConfig::from_json(&in_one_group(stored.to_owned())), "not a credential"),
            (RoutingConfig::from_org_json(&in_one_group(r#"{"family":"openai","credential":""}"#.to_owned())), "empty"),
        ];
        for (result, reason) in refused {
            assert!(result.unwrap_err().0.contains(reason), "{reason}");
        }
        for both in [
            r#"{"family":"openai","credential":"main","credential_secret":"S","base_url":"https://x"}"#,
            r#"{"family":"openai","credential":"main","base_url":"https://attacker.example"}"#,
            r#"{"family":"openai","base_url":"https://x"}"#,
            r#"{"family":"openai"}"#,
        ] {
            for result in [
                RoutingConfig::from_json(&in_one_group(both.to_owned())),
                RoutingConfig::from_org_json(&in_one_group(both.to_owned())),
            ] {
                assert!(result.unwrap_err().0.contains("either base_url and credential_secret"), "{both}");
            }
        }

        #[derive(Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "deserialize_org_routing")]
            routing: Option<RoutingConfig>,
        }
        let read = |json: String| serde_json::from_str::<Holder>(&json).map(|holder| holder.routing);
        assert_eq!(read(format!(r#"{{"routing":{json}}}"#)).unwrap(), Some(org));
        assert_eq!(read("{}".to_owned()).unwrap(), None);
        let error = read(format!(r#"{{"routing":{}}}"#, in_one_group(secret))).unwrap_err();
        assert!(error.to_string().contains("never a credential_secret"), "{error}");
    }

    #[test]
    fn invalid_configs() {
        let ok = target("https://x.example", OpenAi, "");
        let cases = [
            ("not json".to_owned(), "expected"),
            (r#"{"groups":[]}"#.to_owned(), "no groups"),
            (r#"{"groups":[],"extra":1}"#.to_owned(), "unknown field"),
            (format!(r#"{{"groups":[{{"name":"","models":["*"],"targets":[{ok}]}}]}}"#), "empty name"),
            (format!(r#"{{"groups":[{{"name":"a","models":[],"targets":[{ok}]}}]}}"#), "non-empty list"),
            (format!(r#"{{"groups":[{{"name":"a","models":[""],"targets":[{ok}]}}]}}"#), "non-empty globs"),
            (r#"{"groups":[{"name":"a","models":["*"],"targets":[]}]}"#.to_owned(), "no targets"),
            (
                format!(
                    r#"{{"groups":[{{"name":"a","models":["*"],"targets":[{ok}]}},{{"name":"a","models":["*"],"targets":[{ok}]}}]}}"#
                ),
                "used twice",
            ),
            (in_one_group(target("ftp://x", OpenAi, "")), "base_url"),
            (in_one_group(target("https://", OpenAi, "")), "base_url"),
            (in_one_group(target("https:///x", OpenAi, "")), "base_url"),
            (in_one_group(target("https://x/v1?k=1", OpenAi, "")), "base_url"),
            (in_one_group(target("x.example", OpenAi, "")), "base_url"),
            (in_one_group(target("https://x", OpenAi, r#""a":"""#)), "empty model"),
            (
                format!(
                    r#"{{"groups":[{{"name":"a","models":["*"],"targets":[{{"base_url":"https://x","family":{},"credential_secret":""}}]}}]}}"#,
                    family_json(OpenAi)
                ),
                "credential_secret",
            ),
            (
                r#"{"groups":[{"name":"a","models":["*"],"targets":[{"base_url":"https://x","family":"cobol","credential_secret":"S"}]}]}"#
                    .to_owned(),
                "unknown variant",
            ),
        ];
        for (json, reason) in cases {
            let err = RoutingConfig::from_json(&json).expect_err(&json);
            assert!(err.0.contains(reason), "{json}: {}", err.0);
        }
        let e = ApiError::from(InvalidRoutingConfig("x".into()));
        assert_eq!((e.status(), e.code().as_str()), (500, "invalid_routing_config"));
    }
}
