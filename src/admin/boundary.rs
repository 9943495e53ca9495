//! Policy boundaries: the organisation's, set by Admins, and each project's two: its *ceiling*,
//! set by Admins only, and its *boundary*, which the project's owners set within the ceiling.
//! A key never gets more than every boundary above it allows.
//!
//! A boundary ([`Boundary`]) is the widest rules a key below may have (`models`,
//! `routing_groups`, `ip_allowlist`, `limits`; an empty value constrains nothing) and a longest
//! key lifetime (`max_key_lifetime_days`).
//!
//! Projects: an Admin sets a project's `ceiling` (on create it defaults to the `boundary` given,
//! so the boundary an Admin sets is the most the owners can ever give back); its `boundary` must
//! lie within the organisation's boundary and within its ceiling, whoever sets it; a ceiling
//! must lie within the organisation's boundary when set. A project stored before ceilings
//! existed reads its boundary as its ceiling (see `crate::admin::project`). Keys are held to all
//! three layers: the organisation's boundary, the project's boundary, its ceiling.
//!
//! Two operations:
//! - [`check_key_within`], on create of a key and on every update of its rules or expiry, takes
//!   the key's whole rules and expiry as they will be ([`check_boundary_within`] does the same
//!   for a project's boundary or ceiling): a value outside a boundary is refused, naming the
//!   field ([`BoundaryExceeded`], answered 400 `boundary_exceeded`). Per field:
//!   - limits: a value set above a ceiling is refused; a value left unset inherits;
//!   - models: an allow-list entry is refused only when a boundary certainly excludes every
//!     model it could match (globs cannot always be intersected);
//!   - routing groups and IP allowlist: under a boundary that lists some, the key's list must
//!     be non-empty (empty would mean "every group", "anywhere") and within the boundary's: each
//!     group on the boundary's list, each address or range inside one of its ranges;
//!   - expiry: under a `max_key_lifetime_days` of N, the key must have an `expires_at` at most N
//!     days after its creation (a boundary under another must have a maximum of at most N).
//! - The projection for the request path ([`effective_limits`], [`constraints`]): the key's own
//!   limits clamped by every boundary as it is *now*, and the boundaries' model rules, routing
//!   group lists, IP allowlists and lifetime carried in the record beside the key's own rules
//!   and checked on every call. So a boundary tightened later applies to existing keys without
//!   rewriting them (and loosening it again restores them), and a record whose own rules are
//!   wider is still held to its boundaries.
//!
//! Limits: each ceiling caps the same field of the key (`rpm` … `default_max_tokens`); the
//! effective value is the least of those set. Spend: a boundary's caps are hard ceilings per
//! period; a key's hard cap is lowered to the ceiling, a key's `warn` cap under a ceiling is
//! refused on create and replaced by the ceiling once a ceiling appears later.

use crate::limits::{CapMode, Limits, SpendCap, SpendPeriod};
use crate::policy::glob::glob_match;
use crate::policy::{IpAllowlist, KeyRules, ModelAccess};
use serde::{Deserialize, Serialize};
use std::num::{NonZeroU32, NonZeroU64};

/// Milliseconds in a day, for lifetimes.
const DAY_MS: u64 = 86_400_000;

/// What a layer (the organisation, a project's ceiling, a project) allows the keys below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Boundary {
    /// The widest rules a key below may have; each empty value constrains nothing.
    #[serde(flatten)]
    pub rules: KeyRules,
    /// The longest a key below may live, in days from its creation; absent: no maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_lifetime_days: Option<NonZeroU32>,
}

/// A boundary and how to name it to people.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// "the organisation boundary", "the boundary of project 'p1'".
    pub name: &'a str,
    pub boundary: &'a Boundary,
}

/// A value outside a boundary: the field (e.g. `limits.rpm`, `models.allow[1]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryExceeded {
    pub field: String,
    pub message: String,
}

impl BoundaryExceeded {
    fn new(field: impl Into<String>, message: String) -> BoundaryExceeded {
        BoundaryExceeded { field: field.into(), message }
    }
}

/// When a key lives: what a boundary's `max_key_lifetime_days` is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms; `None`: never expires.
    pub expires_at: Option<u64>,
}

/// A limit a boundary caps field for field.
pub(super) struct Scalar {
    pub(super) name: &'static str,
    pub(super) get: fn(&Limits) -> Option<NonZeroU64>,
    pub(super) set: fn(&mut Limits, Option<NonZeroU64>),
}

pub(super) const SCALARS: [Scalar; 7] = [
    Scalar { name: "rpm", get: |l| l.rpm, set: |l, v| l.rpm = v },
    Scalar { name: "rph", get: |l| l.rph, set: |l, v| l.rph = v },
    Scalar { name: "rpd", get: |l| l.rpd, set: |l, v| l.rpd = v },
    Scalar { name: "tpm", get: |l| l.tpm, set: |l, v| l.tpm = v },
    Scalar { name: "tpd", get: |l| l.tpd, set: |l, v| l.tpd = v },
    Scalar { name: "max_in_flight", get: |l| l.max_in_flight, set: |l, v| l.max_in_flight = v },
    Scalar { name: "default_max_tokens", get: |l| l.default_max_tokens, set: |l, v| l.default_max_tokens = v },
];

/// Refuses a key whose rules or expiry lie outside one of `layers` (see the module doc).
pub fn check_key_within(rules: &KeyRules, life: Life, layers: &[Layer]) -> Result<(), BoundaryExceeded> {
    for layer in layers {
        check_rules(rules, layer)?;
        check_life(life, layer)?;
    }
    Ok(())
}

/// Refuses a boundary wider than one of `layers` (see the module doc).
pub fn check_boundary_within(boundary: &Boundary, layers: &[Layer]) -> Result<(), BoundaryExceeded> {
    for layer in layers {
        check_rules(&boundary.rules, layer)?;
        check_lifetime(boundary.max_key_lifetime_days, layer)?;
    }
    Ok(())
}

fn check_rules(rules: &KeyRules, layer: &Layer) -> Result<(), BoundaryExceeded> {
    // Every field named: a rule added to `KeyRules` must be decided on here.
    // `model_limits` and `end_user_limits` need no check: every call also counts in the key's
    // own `limits`, which the boundaries clamp, so they bound those scopes too (and a boundary
    // sets neither: `check_boundary`).
    // `admission` only chooses how the key's calls are admitted, never what they may do.
    let KeyRules { models, routing_groups, ip_allowlist, limits, model_limits: _, end_user_limits: _, admission: _ } =
        rules;
    check_models(models, layer)?;
    check_groups(routing_groups, layer)?;
    check_ip_allowlist(ip_allowlist, layer)?;
    check_limits(limits, layer)
}

fn check_limits(limits: &Limits, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let ceilings = &layer.boundary.rules.limits;
    for Scalar { name, get, .. } in SCALARS {
        if let (Some(value), Some(ceiling)) = (get(limits), get(ceilings)) {
            if value > ceiling {
                return Err(BoundaryExceeded::new(
                    format!("limits.{name}"),
                    format!("{value} is above {} ({name} {ceiling})", layer.name),
                ));
            }
        }
    }
    for cap in &limits.spend {
        let Some(ceiling) = spend_ceiling(ceilings, cap.period) else { continue };
        let field = format!("limits.spend[{}]", cap.period.name());
        if cap.mode == CapMode::Warn {
            return Err(BoundaryExceeded::new(
                format!("{field}.mode"),
                format!(
                    "a warn-only cap would let spend pass {} (hard {} cap of {ceiling} micro-dollars)",
                    layer.name,
                    cap.period.name()
                ),
            ));
        }
        if cap.limit_micros > ceiling {
            return Err(BoundaryExceeded::new(
                format!("{field}.limit_micros"),
                format!(
                    "{} is above {} ({} cap of {ceiling} micro-dollars)",
                    cap.limit_micros,
                    layer.name,
                    cap.period.name()
                ),
            ));
        }
    }
    Ok(())
}

fn check_models(models: &ModelAccess, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let ModelAccess::Allow(globs) = models else { return Ok(()) };
    let allowed = &layer.boundary.rules.models;
    match globs.iter().position(|glob| excludes(allowed, glob)) {
        Some(index) => Err(BoundaryExceeded::new(
            format!("models.allow[{index}]"),
            format!("'{}' is outside {} ({allowed})", globs[index], layer.name),
        )),
        None => Ok(()),
    }
}

fn check_groups(groups: &[String], layer: &Layer) -> Result<(), BoundaryExceeded> {
    let allowed = &layer.boundary.rules.routing_groups;
    if allowed.is_empty() {
        return Ok(());
    }
    let listed = allowed.join(", ");
    if groups.is_empty() {
        return Err(BoundaryExceeded::new(
            "routing_groups",
            format!("empty means every group, and {} allows only groups {listed}", layer.name),
        ));
    }
    match groups.iter().position(|group| !allowed.contains(group)) {
        Some(i) => Err(BoundaryExceeded::new(
            format!("routing_groups[{i}]"),
            format!("'{}' is outside {} (groups {listed})", groups[i], layer.name),
        )),
        None => Ok(()),
    }
}

fn check_ip_allowlist(entries: &[String], layer: &Layer) -> Result<(), BoundaryExceeded> {
    let allowed = &layer.boundary.rules.ip_allowlist;
    if allowed.is_empty() {
        return Ok(());
    }
    let listed = allowed.join(", ");
    if entries.is_empty() {
        return Err(BoundaryExceeded::new(
            "ip_allowlist",
            format!("empty means anywhere, and {} allows only {listed}", layer.name),
        ));
    }
    // Both lists were validated where they entered; one that does not parse counts as empty,
    // which contains nothing (so the key is refused, never let through).
    let parse = |list: &[String]| IpAllowlist::parse(list.iter().map(String::as_str)).unwrap_or_default();
    match parse(entries).first_outside(&parse(allowed)) {
        Some(i) => Err(BoundaryExceeded::new(
            format!("ip_allowlist[{i}]"),
            format!("'{}' is outside {} ({listed})", entries[i], layer.name),
        )),
        None => Ok(()),
    }
}

fn check_life(life: Life, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let Some(days) = layer.boundary.max_key_lifetime_days else { return Ok(()) };
    match life.expires_at {
        None => Err(BoundaryExceeded::new(
            "expires_at",
            format!("is required: {} allows keys at most {days} days of life", layer.name),
        )),
        Some(at) if at.saturating_sub(life.created_at) > lifetime_ms(days) => Err(BoundaryExceeded::new(
            "expires_at",
            format!(
                "{at} is more than {days} days after the key's creation ({}), the longest {} allows",
                life.created_at, layer.name
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn check_lifetime(days: Option<NonZeroU32>, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let Some(longest) = layer.boundary.max_key_lifetime_days else { return Ok(()) };
    match days {
        Some(days) if days <= longest => Ok(()),
        Some(days) => Err(BoundaryExceeded::new(
            "max_key_lifetime_days",
            format!("{days} is above {} ({longest} days)", layer.name),
        )),
        None => Err(BoundaryExceeded::new(
            "max_key_lifetime_days",
            format!("is required: {} allows keys at most {longest} days of life", layer.name),
        )),
    }
}

fn lifetime_ms(days: NonZeroU32) -> u64 {
    u64::from(days.get()) * DAY_MS
}

/// The limits a key with `own` limits gets under `layers` (see module doc).
pub fn effective_limits(own: &Limits, layers: &[&Boundary]) -> Limits {
    let mut limits = own.clone();
    for Scalar { get, set, .. } in SCALARS {
        set(&mut limits, layers.iter().filter_map(|b| get(&b.rules.limits)).chain(get(own)).min());
    }
    limits.spend = [SpendPeriod::Daily, SpendPeriod::Monthly, SpendPeriod::Total]
        .into_iter()
        .filter_map(|period| {
            let tightest = layers
                .iter()
                .filter_map(|b| b.rules.limits.spend.iter().find(|cap| cap.period == period))
                .min_by_key(|cap| cap.limit_micros);
            let mine = own.spend.iter().find(|cap| cap.period == period);
            match (mine, tightest) {
                (mine, None) => mine.cloned(),
                (None, Some(ceiling)) => Some(SpendCap { mode: CapMode::Hard, ..ceiling.clone() }),
                (Some(mine), Some(ceiling)) if mine.mode == CapMode::Hard => {
                    Some(SpendCap { limit_micros: mine.limit_micros.min(ceiling.limit_micros), ..mine.clone() })
                }
                (Some(mine), Some(ceiling)) => Some(SpendCap {
                    mode: CapMode::Hard,
                    warn_at_percent: mine.warn_at_percent.clone(),
                    ..ceiling.clone()
                }),
            }
        })
        .collect();
    limits
}

/// What the boundaries above a key hold it to on the request path, beside its own rules: the
/// constraining values of `layers`, each once (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    pub models: Vec<ModelAccess>,
    pub routing_groups: Vec<Vec<String>>,
    pub ip_allowlists: Vec<Vec<String>>,
    /// Unix ms: `created_at` plus the shortest `max_key_lifetime_days`.
    pub expires_at: Option<u64>,
}

/// The constraints `layers` put on a key created at `created_at`.
pub fn constraints(created_at: u64, layers: &[&Boundary]) -> Constraints {
    Constraints {
        models: distinct(layers, |b| &b.rules.models, |rule| !rule.is_all()),
        routing_groups: distinct(layers, |b| &b.rules.routing_groups, |groups| !groups.is_empty()),
        ip_allowlists: distinct(layers, |b| &b.rules.ip_allowlist, |entries| !entries.is_empty()),
        expires_at: layers
            .iter()
            .filter_map(|b| b.max_key_lifetime_days)
            .min()
            .map(|days| created_at.saturating_add(lifetime_ms(days))),
    }
}

/// The values of `field` in `layers` that `constrain`, each once, in layer order.
fn distinct<T: Clone + PartialEq>(
    layers: &[&Boundary],
    field: impl Fn(&Boundary) -> &T,
    constrains: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut values: Vec<T> = Vec::new();
    for value in layers.iter().map(|b| field(b)).filter(|value| constrains(value)) {
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
    values
}

fn spend_ceiling(limits: &Limits, period: SpendPeriod) -> Option<NonZeroU64> {
    limits.spend.iter().filter(|cap| cap.period == period).map(|cap| cap.limit_micros).min()
}

/// Whether `rule` certainly refuses every model `glob` matches (false when unsure).
fn excludes(rule: &ModelAccess, glob: &str) -> bool {
    match rule {
        ModelAccess::All => false,
        ModelAccess::Allow(allowed) => allowed.iter().all(|a| disjoint(a, glob)),
        ModelAccess::Block(blocked) => blocked.iter().any(|b| covers(b, glob)),
    }
}

fn is_literal(glob: &str) -> bool {
    !glob.contains('*')
}

/// The text before the first `*`.
fn prefix(glob: &str) -> &str {
    &glob[..glob.find('*').unwrap_or(glob.len())]
}

/// The text after the last `*`.
fn suffix(glob: &str) -> &str {
    &glob[glob.rfind('*').map_or(0, |i| i + 1)..]
}

/// Whether no name matches both globs (false when unsure). Two globs with stars are disjoint
/// when their fixed prefixes or fixed suffixes contradict each other.
fn disjoint(a: &str, b: &str) -> bool {
    match (is_literal(a), is_literal(b)) {
        (true, true) => a != b,
        (true, false) => !glob_match(b, a),
        (false, true) => !glob_match(a, b),
        (false, false) => {
            let (pa, pb, sa, sb) = (prefix(a), prefix(b), suffix(a), suffix(b));
            !(pa.starts_with(pb) || pb.starts_with(pa)) || !(sa.ends_with(sb) || sb.ends_with(sa))
        }
    }
}

/// Whether every name `inner` matches also matches `outer` (false when unsure): exact for a
/// literal `inner`; otherwise when the globs are equal or `outer` is `P*` and `inner` starts with `P`.
fn covers(outer: &str, inner: &str) -> bool {
    if is_literal(inner) {
        return glob_match(outer, inner);
    }
    let head = outer.strip_suffix('*').filter(|head| is_literal(head));
    outer == inner || head.is_some_and(|head| prefix(inner).starts_with(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boundary(json: &str) -> Boundary {
        serde_json::from_str(json).unwrap()
    }

    fn limits(json: &str) -> Limits {
        serde_json::from_str(json).unwrap()
    }

    fn models(json: &str) -> ModelAccess {
        serde_json::from_str(json).unwrap()
    }

    fn check(models_json: &str, limits_json: &str, boundaries: &[&str]) -> Result<(), String> {
        let owned: Vec<Boundary> = boundaries.iter().map(|b| boundary(b)).collect();
        let layers: Vec<Layer> =
            owned.iter().map(|boundary| Layer { name: "the project boundary", boundary }).collect();
        let rules = KeyRules { models: models(models_json), limits: limits(limits_json), ..KeyRules::default() };
        check_key_within(&rules, NO_EXPIRY, &layers).map_err(|e| e.field)
    }

    const NO_EXPIRY: Life = Life { created_at: 0, expires_at: None };

    /// (key models, key limits, boundary, refused field)
    const CHECKS: &[(&str, &str, &str, Option<&str>)] = &[
        (r#""all""#, "{}", r#"{"limits":{"rpm":10}}"#, None),
        (r#""all""#, r#"{"rpm":10}"#, r#"{"limits":{"rpm":10}}"#, None),
        (r#""all""#, r#"{"rpm":11}"#, r#"{"limits":{"rpm":10}}"#, Some("limits.rpm")),
        (r#""all""#, r#"{"rph":11}"#, r#"{"limits":{"rph":10}}"#, Some("limits.rph")),
        (r#""all""#, r#"{"rpd":11}"#, r#"{"limits":{"rpd":10}}"#, Some("limits.rpd")),
        (r#""all""#, r#"{"tpm":11}"#, r#"{"limits":{"tpm":10}}"#, Some("limits.tpm")),
        (r#""all""#, r#"{"tpd":11}"#, r#"{"limits":{"tpd":10}}"#, Some("limits.tpd")),
        (r#""all""#, r#"{"max_in_flight":3}"#, r#"{"limits":{"max_in_flight":2}}"#, Some("limits.max_in_flight")),
        (
            r#""all""#,
            r#"{"default_max_tokens":9}"#,
            r#"{"limits":{"default_max_tokens":8}}"#,
            Some("limits.default_max_tokens"),
        ),
        (r#""all""#, r#"{"rpm":1000}"#, r#"{"limits":{"tpm":10}}"#, None),
        (
            r#""all""#,
            r#"{"spend":[{"period":"daily","limit_micros":5}]}"#,
            r#"{"limits":{"spend":[{"period":"daily","limit_micros":5}]}}"#,
            None,
        ),
        (
            r#""all""#,
            r#"{"spend":[{"period":"daily","limit_micros":6}]}"#,
            r#"{"limits":{"spend":[{"period":"daily","limit_micros":5}]}}"#,
            Some("limits.spend[daily].limit_micros"),
        ),
        (
            r#""all""#,
            r#"{"spend":[{"period":"daily","limit_micros":1,"mode":"warn"}]}"#,
            r#"{"limits":{"spend":[{"period":"daily","limit_micros":5}]}}"#,
            Some("limits.spend[daily].mode"),
        ),
        (
            r#""all""#,
            r#"{"spend":[{"period":"monthly","limit_micros":99}]}"#,
            r#"{"limits":{"spend":[{"period":"daily","limit_micros":5}]}}"#,
            None,
        ),
        // Models: only allow entries the boundary certainly excludes are refused.
        (r#""all""#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, None),
        (r#"{"block":["x"]}"#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, None),
        (r#"{"allow":["claude-sonnet-4"]}"#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, None),
        (
            r#"{"allow":["claude-sonnet-4","gpt-4o"]}"#,
            "{}",
            r#"{"models":{"allow":["claude-*"]}}"#,
            Some("models.allow[1]"),
        ),
        (r#"{"allow":["claude-3*"]}"#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, None),
        (r#"{"allow":["*"]}"#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, None),
        (r#"{"allow":["gpt-*"]}"#, "{}", r#"{"models":{"allow":["claude-*"]}}"#, Some("models.allow[0]")),
        (r#"{"allow":["*-mini"]}"#, "{}", r#"{"models":{"allow":["*-max"]}}"#, Some("models.allow[0]")),
        (r#"{"allow":["gpt-5"]}"#, "{}", r#"{"models":{"block":["gpt-5*"]}}"#, Some("models.allow[0]")),
        (r#"{"allow":["gpt-5-mini*"]}"#, "{}", r#"{"models":{"block":["gpt-5*"]}}"#, Some("models.allow[0]")),
        (r#"{"allow":["gpt-*"]}"#, "{}", r#"{"models":{"block":["gpt-5*"]}}"#, None),
        (r#"{"allow":["gpt-4o"]}"#, "{}", r#"{"models":{"block":["gpt-5*"]}}"#, None),
    ];

    #[test]
    fn boundary_checks_per_field() {
        for &(models, limits, boundary, refused) in CHECKS {
            assert_eq!(
                check(models, limits, &[boundary]).err().as_deref(),
                refused,
                "{models} {limits} under {boundary}"
            );
        }
    }

    #[test]
    fn every_layer_is_checked_and_named() {
        let org = boundary(r#"{"limits":{"rpm":100}}"#);
        let project = boundary(r#"{"limits":{"rpm":50}}"#);
        let layers = [
            Layer { name: "the organisation boundary", boundary: &org },
            Layer { name: "the boundary of project 'p'", boundary: &project },
        ];
        let key = |json: &str| serde_json::from_str::<KeyRules>(json).unwrap();
        let err = check_key_within(&key(r#"{"limits":{"rpm":60}}"#), NO_EXPIRY, &layers).unwrap_err();
        assert_eq!(err.field, "limits.rpm");
        assert_eq!(err.message, "60 is above the boundary of project 'p' (rpm 50)");
        let org = boundary(r#"{"models":{"allow":["claude-*"]}}"#);
        let err = check_key_within(
            &key(r#"{"models":{"allow":["gpt-4o"]}}"#),
            NO_EXPIRY,
            &[Layer { name: "the organisation boundary", boundary: &org }],
        )
        .unwrap_err();
        assert_eq!(err.message, "'gpt-4o' is outside the organisation boundary (allowed: claude-*)");
    }

    const DAY: u64 = DAY_MS;

    /// (key rules, created_at, expires_at, boundary, refused field and message)
    type LifeCase = (&'static str, u64, Option<u64>, &'static str, Option<(&'static str, &'static str)>);

    const REQUIRED: &[LifeCase] = &[
        // Routing groups: a non-empty subset of the boundary's.
        (r#"{"routing_groups":["eu"]}"#, 0, None, r#"{"routing_groups":["eu","us"]}"#, None),
        (
            r#"{}"#,
            0,
            None,
            r#"{"routing_groups":["eu","us"]}"#,
            Some(("routing_groups", "empty means every group, and the boundary allows only groups eu, us")),
        ),
        (
            r#"{"routing_groups":["eu","asia"]}"#,
            0,
            None,
            r#"{"routing_groups":["eu","us"]}"#,
            Some(("routing_groups[1]", "'asia' is outside the boundary (groups eu, us)")),
        ),
        (r#"{"routing_groups":["asia"]}"#, 0, None, "{}", None),
        // IP allowlist: non-empty, every entry inside one of the boundary's ranges.
        (
            r#"{"ip_allowlist":["10.1.0.0/16","192.0.2.7"]}"#,
            0,
            None,
            r#"{"ip_allowlist":["10.0.0.0/8","192.0.2.0/24"]}"#,
            None,
        ),
        (
            r#"{}"#,
            0,
            None,
            r#"{"ip_allowlist":["10.0.0.0/8"]}"#,
            Some(("ip_allowlist", "empty means anywhere, and the boundary allows only 10.0.0.0/8")),
        ),
        (
            r#"{"ip_allowlist":["10.1.2.3","11.0.0.0/8"]}"#,
            0,
            None,
            r#"{"ip_allowlist":["10.0.0.0/8"]}"#,
            Some(("ip_allowlist[1]", "'11.0.0.0/8' is outside the boundary (10.0.0.0/8)")),
        ),
        (
            r#"{"ip_allowlist":["10.0.0.0/7"]}"#,
            0,
            None,
            r#"{"ip_allowlist":["10.0.0.0/8"]}"#,
            Some(("ip_allowlist[0]", "'10.0.0.0/7' is outside the boundary (10.0.0.0/8)")),
        ),
        // Expiry: required, at most N days after creation.
        ("{}", 5, Some(5 + 30 * DAY), r#"{"max_key_lifetime_days":30}"#, None),
        (
            "{}",
            5,
            Some(5 + 30 * DAY + 1),
            r#"{"max_key_lifetime_days":30}"#,
            Some((
                "expires_at",
                "2592000006 is more than 30 days after the key's creation (5), the longest the boundary allows",
            )),
        ),
        (
            "{}",
            5,
            None,
            r#"{"max_key_lifetime_days":30}"#,
            Some(("expires_at", "is required: the boundary allows keys at most 30 days of life")),
        ),
        ("{}", 5, None, "{}", None),
    ];

    #[test]
    fn required_groups_addresses_and_expiry() {
        for &(rules, created_at, expires_at, bound, refused) in REQUIRED {
            let bound = boundary(bound);
            let layers = [Layer { name: "the boundary", boundary: &bound }];
            let rules: KeyRules = serde_json::from_str(rules).unwrap();
            let got = check_key_within(&rules, Life { created_at, expires_at }, &layers).err();
            assert_eq!(
                got.as_ref().map(|e| (e.field.as_str(), e.message.as_str())),
                refused,
                "{rules:?} {expires_at:?} under {bound:?}"
            );
        }
    }

    #[test]
    fn a_boundary_within_a_boundary() {
        let ceiling = boundary(
            r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"limits":{"rpm":100},"max_key_lifetime_days":90}"#,
        );
        let layers = [Layer { name: "the ceiling", boundary: &ceiling }];
        let field = |json: &str| check_boundary_within(&boundary(json), &layers).err().map(|e| e.field);
        let narrower = r#"{"routing_groups":["eu"],"ip_allowlist":["10.1.0.0/16"],"limits":{"rpm":10},"max_key_lifetime_days":30}"#;
        assert_eq!(field(narrower), None);
        for (wider, refused) in [
            (r#"{"ip_allowlist":["10.0.0.0/8"],"max_key_lifetime_days":90}"#, "routing_groups"),
            (
                r#"{"routing_groups":["eu","us"],"ip_allowlist":["10.0.0.0/8"],"max_key_lifetime_days":90}"#,
                "routing_groups[1]",
            ),
            (r#"{"routing_groups":["eu"],"max_key_lifetime_days":90}"#, "ip_allowlist"),
            (
                r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"limits":{"rpm":101},"max_key_lifetime_days":90}"#,
                "limits.rpm",
            ),
            (r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"]}"#, "max_key_lifetime_days"),
            (
                r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8"],"max_key_lifetime_days":91}"#,
                "max_key_lifetime_days",
            ),
        ] {
            assert_eq!(field(wider).as_deref(), Some(refused), "{wider}");
        }
    }

    #[test]
    fn a_keys_whole_rules_are_checked() {
        let project = boundary(r#"{"models":{"allow":["claude-*"]},"limits":{"rpm":10}}"#);
        let layers = [Layer { name: "the project boundary", boundary: &project }];
        let rules = |json: &str| serde_json::from_str::<KeyRules>(json).unwrap();
        let field = |json: &str| check_key_within(&rules(json), NO_EXPIRY, &layers).err().map(|e| e.field);
        assert_eq!(field(r#"{"routing_groups":["eu"],"ip_allowlist":["10.0.0.1"],"limits":{"rpm":10}}"#), None);
        assert_eq!(field(r#"{"limits":{"rpm":11}}"#).as_deref(), Some("limits.rpm"));
        assert_eq!(field(r#"{"models":{"allow":["gpt-4o"]},"limits":{"rpm":1}}"#).as_deref(), Some("models.allow[0]"));
    }

    #[test]
    fn effective_limits_take_the_least_of_each() {
        let org = boundary(r#"{"limits":{"rpm":100,"tpm":1000,"spend":[{"period":"monthly","limit_micros":900}]}}"#);
        let project = boundary(r#"{"limits":{"rpm":50,"spend":[{"period":"daily","limit_micros":30}]}}"#);
        let own = limits(r#"{"rpm":70,"rpd":5,"spend":[{"period":"daily","limit_micros":40,"warn_at_percent":[90]}]}"#);
        let got = effective_limits(&own, &[&org, &project]);
        let expected = limits(
            r#"{"rpm":50,"rpd":5,"tpm":1000,"spend":[
                {"period":"daily","limit_micros":30,"warn_at_percent":[90]},
                {"period":"monthly","limit_micros":900}]}"#,
        );
        assert_eq!(got, expected);
        assert_eq!(effective_limits(&own, &[]), own, "no boundary: the key's own limits");
    }

    #[test]
    fn a_warn_cap_under_a_later_ceiling_becomes_the_hard_ceiling() {
        let ceiling = boundary(r#"{"limits":{"spend":[{"period":"daily","limit_micros":500}]}}"#);
        let own = limits(r#"{"spend":[{"period":"daily","limit_micros":100,"mode":"warn","warn_at_percent":[10]}]}"#);
        let got = effective_limits(&own, &[&ceiling]);
        assert_eq!(got, limits(r#"{"spend":[{"period":"daily","limit_micros":500,"warn_at_percent":[10]}]}"#));
    }

    #[test]
    fn constraints_keep_only_restrictions_each_once() {
        let all = Boundary::default();
        let org =
            boundary(r#"{"models":{"allow":["claude-*"]},"ip_allowlist":["10.0.0.0/8"],"max_key_lifetime_days":90}"#);
        let project =
            boundary(r#"{"models":{"allow":["claude-*"]},"routing_groups":["eu"],"max_key_lifetime_days":30}"#);
        let got = constraints(1_000, &[&all, &org, &project, &project]);
        assert_eq!(
            got,
            Constraints {
                models: vec![models(r#"{"allow":["claude-*"]}"#)],
                routing_groups: vec![vec!["eu".into()]],
                ip_allowlists: vec![vec!["10.0.0.0/8".into()]],
                expires_at: Some(1_000 + 30 * DAY_MS),
            }
        );
        assert_eq!(constraints(1_000, &[&all]), Constraints::default(), "an empty boundary constrains nothing");
    }

    #[test]
    fn stored_boundaries_without_the_new_fields_read_as_before() {
        let old = boundary(r#"{"models":{"block":["x"]},"limits":{"rpm":5}}"#);
        assert_eq!((old.rules.routing_groups.len(), old.rules.ip_allowlist.len()), (0, 0));
        assert_eq!(old.max_key_lifetime_days, None);
        assert!(serde_json::from_str::<Boundary>(r#"{"max_key_lifetime_day":3}"#).is_err(), "misspelt: refused");
        assert!(serde_json::from_str::<Boundary>(r#"{"max_key_lifetime_days":0}"#).is_err(), "0 days: refused");
    }

    #[test]
    fn glob_relations() {
        for (a, b, expected) in [
            ("gpt-4o", "gpt-4o", false),
            ("gpt-4o", "gpt-5", true),
            ("gpt-*", "gpt-4o", false),
            ("claude-*", "gpt-4o", true),
            ("gpt-*", "gpt-4*", false),
            ("gpt-*", "claude*", true),
            ("*-mini", "*-max", true),
            ("a*z", "ab*", false),
        ] {
            assert_eq!(disjoint(a, b), expected, "disjoint({a}, {b})");
            assert_eq!(disjoint(b, a), expected, "disjoint({b}, {a})");
        }
        for (outer, inner, expected) in [
            ("*", "anything*", true),
            ("gpt-*", "gpt-4*", true),
            ("gpt-*", "gpt-4o", true),
            ("gpt-4*", "gpt-*", false),
            ("*-mini", "o3-mini", true),
            ("*-mini", "o*-mini", false),
            ("a*b*", "a*b*", true),
        ] {
            assert_eq!(covers(outer, inner), expected, "covers({outer}, {inner})");
        }
    }
}
