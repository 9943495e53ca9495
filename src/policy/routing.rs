//! The organisation's routing configuration: which upstream targets serve which models, in
//! groups that keys are granted by name.
//!
//! Flow: the gateway loads the JSON once ([`RoutingConfig::from_json`], or
//! [`RoutingConfig::default_for`] when none is configured); for each call [`RoutingConfig::resolve`]
//! picks the first group, in config order, that the key may use and that serves the call; the
//! gateway tries that group's targets in order.
//!
//! - A group serves a call when one of its model globs matches the model (calls without a model,
//!   like model lists, match any group) and it has a target of the request's family. A target
//!   speaks one family's API; for now there is no translation between families, so targets of
//!   other families are skipped.
//! - `fallback: true` (the default) lets the gateway try the next target when one fails;
//!   `false` keeps the call on the first target.
//! - A target may rename models for its upstream (`model_map`, exact names).
//! - A target's credential is named one of two ways, exactly one per target: `credential_secret`,
//!   the name of a Worker secret (the platform's `ROUTING` only), or `credential`, the name of one
//!   of the organisation's stored credentials (an organisation's own routing, set by its Admin
//!   with `PUT /admin/v1/org/routing`, which refuses `credential_secret` there so that no
//!   organisation can send calls with the platform's secrets). The request path opens a
//!   `credential` from the organisation's record (`OrgRecord.credentials[credential]`) and
//!   sends it to the target's `base_url`, which, when the credential has a `base_url`, starts
//!   with it (checked when the routing is stored).

use super::denial::Denial;
use crate::error::{ApiError, Code};
use crate::family::Family;
use crate::gateway::route::{family_prefix, FAMILIES};
use crate::policy::glob::glob_match;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A validated routing configuration: at least one group; unique, non-empty group names; every
/// group with at least one non-empty model glob and at least one target; every target with an
/// `http(s)://` base URL without trailing `/`, query or fragment, and a credential secret name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoutingJson")]
pub struct RoutingConfig {
    groups: Vec<Group>,
}

/// A routing configuration as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingJson {
    groups: Vec<Group>,
}

impl TryFrom<RoutingJson> for RoutingConfig {
    type Error = InvalidRoutingConfig;

    fn try_from(RoutingJson { mut groups }: RoutingJson) -> Result<RoutingConfig, InvalidRoutingConfig> {
        if groups.is_empty() {
            return Err(InvalidRoutingConfig("there are no groups".to_owned()));
        }
        for target in groups.iter_mut().flat_map(|group| &mut group.targets) {
            target.base_url.truncate(target.base_url.trim_end_matches('/').len());
        }
        let mut names = HashSet::new();
        for group in &groups {
            validate_group(group)?;
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The family's base, e.g. `https://api.openai.com/v1`; a route's upstream path is appended.
    pub base_url: String,
    /// The API the target speaks.
    pub family: Family,
    /// Name of the Worker secret holding the target's credential (empty when `credential` is set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credential_secret: String,
    /// Name of the organisation's stored credential for the target (organisation routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Requested model name → the name to send upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_map: BTreeMap<String, String>,
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

    /// The upstream URL of a route's upstream path (which starts with `/`).
    pub fn url_for(&self, upstream_path: &str) -> String {
        [self.base_url.as_str(), upstream_path].concat()
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
                base_url: [base, family_prefix(family)].concat(),
                family,
                credential_secret: secret.to_owned(),
                credential: None,
                model_map: BTreeMap::new(),
            })
            .collect();
        RoutingConfig {
            groups: vec![Group { name: "default".to_owned(), models: vec!["*".to_owned()], targets, fallback: true }],
        }
    }

    /// Parses and validates the configuration (see [`RoutingConfig`] for the rules); trailing
    /// slashes of base URLs are removed.
    pub fn from_json(json: &str) -> Result<RoutingConfig, InvalidRoutingConfig> {
        let stored: RoutingJson = serde_json::from_str(json).map_err(|e| InvalidRoutingConfig(e.to_string()))?;
        RoutingConfig::try_from(stored)
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

fn validate_group(group: &Group) -> Result<(), InvalidRoutingConfig> {
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
        if !is_valid_base_url(&target.base_url) {
            return invalid(format!("base_url '{}' is not an http:// or https:// URL without query", target.base_url));
        }
        match (target.credential_secret.is_empty(), target.credential.as_deref()) {
            (true, None) => return invalid(format!("target '{}' has an empty credential_secret", target.base_url)),
            (true, Some("")) => return invalid(format!("target '{}' has an empty credential", target.base_url)),
            (false, Some(_)) => {
                return invalid(format!("target '{}' names both credential_secret and credential", target.base_url))
            }
            _ => {}
        }
        if target.model_map.iter().any(|(from, to)| from.is_empty() || to.is_empty()) {
            return invalid(format!("target '{}' maps an empty model name", target.base_url));
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
    use Family::*;

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
            let got: Vec<&str> = resolved.targets.iter().map(|t| t.base_url.as_str()).collect();
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
    fn model_map_and_urls() {
        let config = config();
        let resolved = config.resolve(OpenAi, Some("gpt-4o"), GroupAccess::own(&[])).unwrap();
        let target = resolved.targets[0];
        assert_eq!(target.upstream_model("gpt-4o"), "gpt-4o-mini");
        assert_eq!(target.upstream_model("gpt-4o-2024-08-06"), "gpt-4o-2024-08-06");
        assert_eq!(target.url_for("/chat/completions"), "https://cheap.example/v1/chat/completions");
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
            assert_eq!(
                (resolved.targets[0].base_url.as_str(), resolved.targets[0].credential_secret.as_str()),
                (base, "UPSTREAM_KEY")
            );
        }
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(RoutingConfig::from_json(&json).unwrap(), config);
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
