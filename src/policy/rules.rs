//! What a key may do: its model rule, routing groups, IP allowlist and limits ([`KeyRules`]),
//! written once and checked by one function, [`KeyRules::validate`], wherever rules enter: the
//! admin API's create and update bodies (which know the routing groups that exist) and the KV
//! record the request path reads.
//!
//! An update changes rules with a [`RulesPatch`]: each field absent (kept) or a value (set).
//! `null` is refused rather than read as "clear": it used to mean "keep", and a silent change to
//! "clear" would widen keys; a rule is cleared with its empty value (`"all"`, `[]`, `{}`).
//!
//! In the JSON of keys, records and requests the rules' fields sit beside the other fields
//! (`#[serde(flatten)]`); unknown fields are still refused by the struct they are flattened into.

use super::ip::IpAllowlist;
use super::model_access::ModelAccess;
use crate::limits::{Limits, ModelLimits, ScopeLimits, MAX_MODEL_PATTERNS, MAX_PATTERN_BYTES};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::num::NonZeroU64;

/// The most routing groups a key may name.
pub const MAX_ROUTING_GROUPS: usize = 64;
/// The most IP allowlist entries a key may have.
pub const MAX_IP_ENTRIES: usize = 256;

/// A key's rules; every field's default allows everything that field governs. Valid once
/// [`KeyRules::validate`] has passed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyRules {
    #[serde(default, skip_serializing_if = "ModelAccess::is_all")]
    pub models: ModelAccess,
    /// Routing groups the key may use; empty means every group.
    #[serde(default)]
    pub routing_groups: Vec<String>,
    /// Addresses and CIDR ranges the key may be used from; empty means anywhere.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Extra, narrower limits for the models a pattern matches (at most 16 patterns): a call
    /// counts in the first matching pattern's limits and also in `limits`. A key's own: a
    /// boundary sets none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_limits: Vec<ModelLimits>,
    /// Limits each end user of the key has separately, the end user named by the
    /// `x-teamkeys-end-user` request header, then required. A key's own: a boundary sets none.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub end_user_limits: Limits,
    /// How the edge admits the key's calls: `auto` (the default) lets an isolate lease a slice of
    /// a hot key's headroom and admit from it (revocation within the lease interval, 1 s) when
    /// the key is leasable ([`KeyRules::leasable`]); `exact` asks the key's object for every call
    /// (revocation immediate), whatever the rate.
    #[serde(default, skip_serializing_if = "Admission::is_auto")]
    pub admission: Admission,
}

/// How the edge admits a key's calls ([`KeyRules::admission`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Leased at the edge when the key is leasable and hot in an isolate, else per call.
    #[default]
    Auto,
    /// Per call at the key's object, always.
    Exact,
}

impl Admission {
    pub fn is_auto(&self) -> bool {
        *self == Admission::Auto
    }
}

/// A rule that cannot be used: the field (`routing_groups[2]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRule {
    pub field: String,
    pub reason: String,
}

impl InvalidRule {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> InvalidRule {
        InvalidRule { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for InvalidRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl KeyRules {
    /// Checks every rule and returns the IP allowlist parsed: valid model globs; at most
    /// [`MAX_ROUTING_GROUPS`] non-empty group names, each one of `known_groups` when the caller
    /// knows them (`None` on the request path, where an unknown group serves nothing); at most
    /// [`MAX_IP_ENTRIES`] entries, each an IP address or CIDR range; at most one spend cap per
    /// period. The first failure is the error.
    pub fn validate(&self, known_groups: Option<&[&str]>) -> Result<IpAllowlist, InvalidRule> {
        self.models.validate().map_err(|reason| InvalidRule::new("models", reason))?;
        validate_groups("routing_groups", &self.routing_groups, known_groups)?;
        let ip_allowlist = parse_ip_allowlist("ip_allowlist", &self.ip_allowlist)?;
        validate_limits("limits", &self.limits)?;
        validate_model_limits(&self.model_limits)?;
        validate_limits("end_user_limits", &self.end_user_limits)?;
        if self.end_user_limits.default_max_tokens.is_some() {
            return Err(InvalidRule::new(
                "end_user_limits.default_max_tokens",
                "is a setting of the key or of a model pattern, not of an end user",
            ));
        }
        Ok(ip_allowlist)
    }

    /// The limits of the scopes inside the key, as its ledger object enforces them.
    pub fn scopes(&self) -> ScopeLimits {
        ScopeLimits { model_limits: self.model_limits.clone(), end_user_limits: self.end_user_limits.clone() }
    }

    /// The output cap reserved for a call to `model` that names none: its model pattern's
    /// `default_max_tokens`, else the key's.
    pub fn default_max_tokens(&self, model: Option<&str>) -> Option<NonZeroU64> {
        let pattern = ScopeLimits::for_model_in(&self.model_limits, model);
        pattern.and_then(|scope| scope.limits.default_max_tokens).or(self.limits.default_max_tokens)
    }

    /// Whether the key's own counters decide its calls, so an edge isolate may lease them
    /// ([`crate::gateway::edge_leases`]): `admission` is `auto`, no model-pattern and no end-user
    /// limits (those scopes are counted per call by the key's object). Spend caps of the key's own
    /// (total, daily, monthly; hard or warn) are leasable: a leased call reserves its bound from
    /// the slice as a per-call one reserves it from the ledger; budgets above the key are too (its
    /// object covers each slice at every level, [`KeyRecord::leasable`](crate::policy::KeyRecord::leasable)).
    /// Every other key is admitted per call by its object.
    pub fn leasable(&self) -> bool {
        self.admission.is_auto() && self.model_limits.is_empty() && self.end_user_limits.is_empty()
    }

    /// Whether a call to `model` counts under a spend cap: the key's, its model pattern's or its
    /// end users'. Such a call must be one whose bill the gateway can bound and price.
    pub fn spend_capped(&self, model: Option<&str>) -> bool {
        let pattern = ScopeLimits::for_model_in(&self.model_limits, model);
        !self.limits.spend.is_empty()
            || !self.end_user_limits.spend.is_empty()
            || pattern.is_some_and(|scope| !scope.limits.spend.is_empty())
    }
}

/// Limits named `field`: at most one spend cap per period.
fn validate_limits(field: &str, limits: &Limits) -> Result<(), InvalidRule> {
    match limits.repeated_spend_period() {
        Some(period) => Err(InvalidRule::new(format!("{field}.spend"), format!("more than one {} cap", period.name()))),
        None => Ok(()),
    }
}

/// At most [`MAX_MODEL_PATTERNS`] patterns, each a non-empty glob of at most
/// [`MAX_PATTERN_BYTES`] bytes given once, with valid limits.
fn validate_model_limits(model_limits: &[ModelLimits]) -> Result<(), InvalidRule> {
    if model_limits.len() > MAX_MODEL_PATTERNS {
        return Err(InvalidRule::new("model_limits", format!("at most {MAX_MODEL_PATTERNS} patterns")));
    }
    for (i, scope) in model_limits.iter().enumerate() {
        let field = |member: &str| format!("model_limits[{i}].{member}");
        let pattern = &scope.pattern;
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_BYTES || pattern.chars().any(char::is_control) {
            let reason = format!("must be a glob of 1 to {MAX_PATTERN_BYTES} bytes without control characters");
            return Err(InvalidRule::new(field("pattern"), reason));
        }
        if model_limits[..i].iter().any(|earlier| earlier.pattern == *pattern) {
            return Err(InvalidRule::new(field("pattern"), format!("'{pattern}' is given twice")));
        }
        validate_limits(&field("limits"), &scope.limits)?;
    }
    Ok(())
}

/// A list of routing groups named `field`: at most [`MAX_ROUTING_GROUPS`] non-empty names, each
/// one of `known_groups` when the caller knows them.
pub fn validate_groups(field: &str, groups: &[String], known_groups: Option<&[&str]>) -> Result<(), InvalidRule> {
    if groups.len() > MAX_ROUTING_GROUPS {
        return Err(InvalidRule::new(field, format!("at most {MAX_ROUTING_GROUPS} groups")));
    }
    for (i, group) in groups.iter().enumerate() {
        let field = || format!("{field}[{i}]");
        if group.is_empty() {
            return Err(InvalidRule::new(field(), "is empty"));
        }
        if let Some(known) = known_groups.filter(|known| !known.contains(&group.as_str())) {
            let reason = format!("there is no routing group '{group}' (groups: {})", known.join(", "));
            return Err(InvalidRule::new(field(), reason));
        }
    }
    Ok(())
}

/// An IP allowlist named `field`, parsed: at most [`MAX_IP_ENTRIES`] entries, each an IP
/// address or CIDR range.
pub fn parse_ip_allowlist(field: &str, entries: &[String]) -> Result<IpAllowlist, InvalidRule> {
    if entries.len() > MAX_IP_ENTRIES {
        return Err(InvalidRule::new(field, format!("at most {MAX_IP_ENTRIES} entries")));
    }
    IpAllowlist::parse(entries.iter().map(String::as_str))
        .map_err(|entry| InvalidRule::new(field, format!("'{entry}' is not an IP address or CIDR range")))
}

/// The rules part of an update: each field absent (keep) or a value (set); `null` is refused
/// (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RulesPatch {
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "ModelAccess"))]
    pub models: Option<ModelAccess>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Vec<String>"))]
    pub routing_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Vec<String>"))]
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Limits"))]
    pub limits: Option<Limits>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Vec<ModelLimits>"))]
    pub model_limits: Option<Vec<ModelLimits>>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Limits"))]
    pub end_user_limits: Option<Limits>,
    #[serde(default, deserialize_with = "set")]
    #[cfg_attr(test, schemars(with = "Admission"))]
    pub admission: Option<Admission>,
}

/// A present field's value; `null` is an error.
fn set<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(D::Error::custom(
            "a key's rules cannot be null; clear one with its empty value: models \"all\", routing_groups [], \
             ip_allowlist [], limits {}, model_limits [], end_user_limits {}",
        )),
    }
}

impl RulesPatch {
    /// Whether the patch changes no rule.
    pub fn is_empty(&self) -> bool {
        *self == RulesPatch::default()
    }

    /// `rules` with the patch applied. Every field is named, so a rule added to [`KeyRules`]
    /// must be added here too.
    pub fn apply(self, rules: &KeyRules) -> KeyRules {
        KeyRules {
            models: self.models.unwrap_or_else(|| rules.models.clone()),
            routing_groups: self.routing_groups.unwrap_or_else(|| rules.routing_groups.clone()),
            ip_allowlist: self.ip_allowlist.unwrap_or_else(|| rules.ip_allowlist.clone()),
            limits: self.limits.unwrap_or_else(|| rules.limits.clone()),
            model_limits: self.model_limits.unwrap_or_else(|| rules.model_limits.clone()),
            end_user_limits: self.end_user_limits.unwrap_or_else(|| rules.end_user_limits.clone()),
            admission: self.admission.unwrap_or(rules.admission),
        }
    }
}

#[cfg(test)]
pub mod strategy {
    //! Generators of valid rules, for the property tests of the types that hold them.
    use super::*;
    use crate::limits::{CapMode, ModelLimits, SpendCap, SpendPeriod};
    use proptest::prelude::*;
    use std::num::NonZeroU64;

    fn globs() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-z0-9.*-]{1,12}", 1..4)
    }

    pub fn models() -> impl Strategy<Value = ModelAccess> {
        prop_oneof![Just(ModelAccess::All), globs().prop_map(ModelAccess::Allow), globs().prop_map(ModelAccess::Block)]
    }

    fn limit() -> impl Strategy<Value = Option<NonZeroU64>> {
        prop::option::of((1..u64::MAX).prop_map(|n| NonZeroU64::new(n).unwrap()))
    }

    fn spend() -> impl Strategy<Value = Vec<SpendCap>> {
        let cap = |period| {
            prop::option::of((1..u64::MAX, any::<bool>(), prop::collection::vec(0..=100u8, 0..4)).prop_map(
                move |(micros, warn, warn_at_percent)| SpendCap {
                    period,
                    limit_micros: NonZeroU64::new(micros).unwrap(),
                    mode: if warn { CapMode::Warn } else { CapMode::Hard },
                    warn_at_percent,
                },
            ))
        };
        (cap(SpendPeriod::Daily), cap(SpendPeriod::Monthly), cap(SpendPeriod::Total))
            .prop_map(|(d, m, t)| [d, m, t].into_iter().flatten().collect())
    }

    pub fn limits() -> impl Strategy<Value = Limits> {
        ((limit(), limit(), limit(), limit()), (limit(), limit(), limit()), spend()).prop_map(
            |((rpm, rph, rpd, tpm), (tpd, max_in_flight, default_max_tokens), spend)| Limits {
                rpm,
                rph,
                rpd,
                tpm,
                tpd,
                max_in_flight,
                default_max_tokens,
                spend,
            },
        )
    }

    /// An IP address or CIDR range.
    pub fn ip_entry() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}")),
            (any::<[u8; 4]>(), 0..=32u8).prop_map(|([a, b, c, d], len)| format!("{a}.{b}.{c}.{d}/{len}")),
            (any::<u16>(), 0..=128u8).prop_map(|(x, len)| format!("2001:db8:{x:x}::/{len}")),
        ]
    }

    /// Up to three distinct model patterns with their limits.
    pub fn model_limits() -> impl Strategy<Value = Vec<ModelLimits>> {
        prop::collection::vec(("[a-z0-9.-]{0,8}\\*?", limits()), 0..3).prop_map(|scopes| {
            let pattern = |i: usize, glob: String| format!("{i}{glob}");
            scopes
                .into_iter()
                .enumerate()
                .map(|(i, (glob, limits))| ModelLimits { pattern: pattern(i, glob), limits })
                .collect()
        })
    }

    pub fn rules() -> impl Strategy<Value = KeyRules> {
        let scopes = (model_limits(), limits().prop_map(|limits| Limits { default_max_tokens: None, ..limits }));
        (models(), prop::collection::vec("[a-z]{1,8}", 0..4), prop::collection::vec(ip_entry(), 0..4), limits(), scopes)
            .prop_map(|(models, routing_groups, ip_allowlist, limits, (model_limits, end_user_limits))| KeyRules {
                models,
                routing_groups,
                ip_allowlist,
                limits,
                model_limits,
                end_user_limits,
                admission: Admission::Auto,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(json: &str) -> KeyRules {
        serde_json::from_str(json).unwrap()
    }

    const GROUPS: &[&str] = &["eu", "us"];

    /// (rules JSON, refused on the admin path as, refused on the request path)
    const INVALID: &[(&str, &str, bool)] = &[
        (r#"{"models":{"allow":[]}}"#, "models: models.allow is empty", true),
        (r#"{"models":{"block":["a",""]}}"#, "models: models.block holds an empty glob", true),
        (r#"{"routing_groups":["eu",""]}"#, "routing_groups[1]: is empty", true),
        (
            r#"{"routing_groups":["eu","asia"]}"#,
            "routing_groups[1]: there is no routing group 'asia' (groups: eu, us)",
            false,
        ),
        (r#"{"ip_allowlist":["10.0.0.0/33"]}"#, "ip_allowlist: '10.0.0.0/33' is not an IP address or CIDR range", true),
        (r#"{"ip_allowlist":["localhost"]}"#, "ip_allowlist: 'localhost' is not an IP address or CIDR range", true),
        (
            r#"{"limits":{"spend":[{"period":"daily","limit_micros":1},{"period":"daily","limit_micros":2}]}}"#,
            "limits.spend: more than one daily cap",
            true,
        ),
        (
            r#"{"model_limits":[{"pattern":"","limits":{}}]}"#,
            "model_limits[0].pattern: must be a glob of 1 to 128 bytes without control characters",
            true,
        ),
        (
            r#"{"model_limits":[{"pattern":"o3*","limits":{"rpm":1}},{"pattern":"o3*","limits":{}}]}"#,
            "model_limits[1].pattern: 'o3*' is given twice",
            true,
        ),
        (
            r#"{"model_limits":[{"pattern":"o3*","limits":{"spend":[{"period":"total","limit_micros":1},{"period":"total","limit_micros":1}]}}]}"#,
            "model_limits[0].limits.spend: more than one total cap",
            true,
        ),
        (
            r#"{"end_user_limits":{"spend":[{"period":"daily","limit_micros":1},{"period":"daily","limit_micros":2}]}}"#,
            "end_user_limits.spend: more than one daily cap",
            true,
        ),
        (
            r#"{"end_user_limits":{"rpm":5,"default_max_tokens":100}}"#,
            "end_user_limits.default_max_tokens: is a setting of the key or of a model pattern, not of an end user",
            true,
        ),
    ];

    #[test]
    fn one_validation_on_both_paths() {
        for &(json, admin, request_path) in INVALID {
            assert_eq!(rules(json).validate(Some(GROUPS)).unwrap_err().to_string(), admin, "{json}");
            assert_eq!(rules(json).validate(None).is_err(), request_path, "{json}");
        }
        let ok = rules(r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"models":{"allow":["gpt-*"]}}"#);
        assert!(ok.validate(Some(GROUPS)).unwrap().permits(Some("10.1.2.3".parse().unwrap())));
    }

    #[test]
    fn counts_are_bounded() {
        let many = |n: usize, item: &str| vec![item.to_owned(); n];
        let groups = KeyRules { routing_groups: many(MAX_ROUTING_GROUPS + 1, "eu"), ..KeyRules::default() };
        assert_eq!(groups.validate(None).unwrap_err().to_string(), "routing_groups: at most 64 groups");
        let ips = KeyRules { ip_allowlist: many(MAX_IP_ENTRIES + 1, "10.0.0.1"), ..KeyRules::default() };
        assert_eq!(ips.validate(None).unwrap_err().to_string(), "ip_allowlist: at most 256 entries");
        let at_most = KeyRules {
            routing_groups: many(MAX_ROUTING_GROUPS, "eu"),
            ip_allowlist: many(MAX_IP_ENTRIES, "10.0.0.1"),
            ..KeyRules::default()
        };
        assert!(at_most.validate(Some(GROUPS)).is_ok());
        let pattern = |i: usize| ModelLimits { pattern: format!("m{i}*"), limits: Limits::default() };
        let patterns =
            KeyRules { model_limits: (0..=MAX_MODEL_PATTERNS).map(pattern).collect(), ..KeyRules::default() };
        assert_eq!(patterns.validate(None).unwrap_err().to_string(), "model_limits: at most 16 patterns");
        let long = KeyRules {
            model_limits: vec![ModelLimits { pattern: "m".repeat(MAX_PATTERN_BYTES + 1), limits: Limits::default() }],
            ..KeyRules::default()
        };
        assert!(long.validate(None).unwrap_err().to_string().starts_with("model_limits[0].pattern"));
    }

    #[test]
    fn scopes_decide_the_cap_and_the_default_output() {
        let rules = rules(
            r#"{"limits":{"default_max_tokens":50},"model_limits":[{"pattern":"o3*","limits":{"default_max_tokens":9}},
                {"pattern":"o*","limits":{"spend":[{"period":"daily","limit_micros":5}]}}]}"#,
        );
        assert_eq!(rules.default_max_tokens(Some("o3-mini")).map(NonZeroU64::get), Some(9));
        assert_eq!(rules.default_max_tokens(Some("o1")).map(NonZeroU64::get), Some(50));
        assert!(!rules.spend_capped(Some("o3-mini")), "the first matching pattern only");
        assert!(rules.spend_capped(Some("o1")) && !rules.spend_capped(Some("gpt-4o")) && !rules.spend_capped(None));
        let end_users = rules_with_end_user_cap();
        assert!(end_users.spend_capped(None), "an end user's cap bounds every call");
    }

    fn rules_with_end_user_cap() -> KeyRules {
        rules(r#"{"end_user_limits":{"spend":[{"period":"daily","limit_micros":5}]}}"#)
    }

    #[test]
    fn unknown_fields_are_refused() {
        for json in [r#"{"ip_alowlist":[]}"#, r#"{"limits":{"rpn":1}}"#] {
            assert!(serde_json::from_str::<KeyRules>(json).is_err(), "{json}");
            assert!(serde_json::from_str::<RulesPatch>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn patches_keep_or_set_and_refuse_null() {
        let before = rules(r#"{"models":{"allow":["a"]},"routing_groups":["eu"],"limits":{"rpm":1}}"#);
        let patch: RulesPatch = serde_json::from_str(r#"{"routing_groups":[],"limits":{"rpm":2}}"#).unwrap();
        assert!(!patch.is_empty());
        assert_eq!(patch.apply(&before), rules(r#"{"models":{"allow":["a"]},"limits":{"rpm":2}}"#));
        assert!(RulesPatch::default().is_empty());
        assert_eq!(RulesPatch::default().apply(&before), before);
        for field in ["models", "routing_groups", "ip_allowlist", "limits", "model_limits", "end_user_limits"] {
            let error = serde_json::from_str::<RulesPatch>(&format!(r#"{{"{field}":null}}"#)).unwrap_err();
            assert!(error.to_string().contains("cannot be null"), "{field}: {error}");
        }
    }

    proptest! {
        #[test]
        fn generated_rules_are_valid_and_round_trip(rules in strategy::rules()) {
            prop_assert!(rules.validate(None).is_ok());
            let json = serde_json::to_string(&rules).unwrap();
            prop_assert_eq!(serde_json::from_str::<KeyRules>(&json).unwrap(), rules);
        }
    }
}
