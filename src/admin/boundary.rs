//! Policy boundaries: the organisation's, set by Admins, and each project's, which its owner may
//! use to narrow the organisation's. A key never gets more than every boundary above it allows.
//!
//! A boundary is a model rule and ceilings ([`Boundary`]). Two operations:
//! - [`check_rules_within`], on create of a key and on every update of its rules, takes the
//!   key's whole rules as they will be ([`check_within`] does the same for a project's
//!   boundary): a value set *explicitly* above a boundary is refused, naming the field
//!   ([`BoundaryExceeded`], answered 400 `boundary_exceeded`). A value left unset inherits.
//!   A boundary constrains models and limits only; a key's routing groups, IP allowlist and
//!   expiry are its creator's to set.
//! - [`effective_limits`] and [`model_rules`], when projecting a key for the request path: the key's
//!   own values clamped by every boundary as it is *now*, so a boundary tightened later applies
//!   to existing keys without rewriting them (and loosening it again restores them).
//!
//! Limits: each ceiling caps the same field of the key (`rpm` … `default_max_tokens`); the
//! effective value is the least of those set. Spend: a boundary's caps are hard ceilings per
//! period; a key's hard cap is lowered to the ceiling, a key's `warn` cap under a ceiling is
//! refused on create and replaced by the ceiling once a ceiling appears later.
//! Models: globs cannot always be intersected into one allow or block list, so the request path
//! checks the key's own rule and each boundary's rule ([`model_rules`]); on create, an allow-list
//! entry is refused only when a boundary certainly excludes every model it could match.

use crate::limits::{CapMode, Limits, SpendCap, SpendPeriod};
use crate::policy::glob::glob_match;
use crate::policy::{KeyRules, ModelAccess};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU64;

/// What a layer (the organisation or a project) allows the keys below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Boundary {
    /// Models keys below may call; absent: every model.
    #[serde(default, skip_serializing_if = "ModelAccess::is_all")]
    pub models: ModelAccess,
    /// Ceilings: every limit set is the highest a key below may have.
    #[serde(default)]
    pub limits: Limits,
}

/// A boundary and how to name it to people.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// "the organisation boundary", "the boundary of project 'p1'".
    pub name: &'a str,
    pub boundary: &'a Boundary,
}

/// A value above a boundary: the field (e.g. `limits.rpm`, `models.allow[1]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryExceeded {
    pub field: String,
    pub message: String,
}

/// A limit a boundary caps field for field.
struct Scalar {
    name: &'static str,
    get: fn(&Limits) -> Option<NonZeroU64>,
    set: fn(&mut Limits, Option<NonZeroU64>),
}

const SCALARS: [Scalar; 7] = [
    Scalar { name: "rpm", get: |l| l.rpm, set: |l, v| l.rpm = v },
    Scalar { name: "rph", get: |l| l.rph, set: |l, v| l.rph = v },
    Scalar { name: "rpd", get: |l| l.rpd, set: |l, v| l.rpd = v },
    Scalar { name: "tpm", get: |l| l.tpm, set: |l, v| l.tpm = v },
    Scalar { name: "tpd", get: |l| l.tpd, set: |l, v| l.tpd = v },
    Scalar { name: "max_in_flight", get: |l| l.max_in_flight, set: |l, v| l.max_in_flight = v },
    Scalar { name: "default_max_tokens", get: |l| l.default_max_tokens, set: |l, v| l.default_max_tokens = v },
];

/// Refuses a key's rules if any value is set explicitly above one of `layers` (see module doc).
pub fn check_rules_within(rules: &KeyRules, layers: &[Layer]) -> Result<(), BoundaryExceeded> {
    // Every field named: a rule added to `KeyRules` must be decided on here.
    let KeyRules { models, limits, routing_groups: _, ip_allowlist: _ } = rules;
    check_within(models, limits, layers)
}

/// Refuses `models` or `limits` values set explicitly above any of `layers` (see module doc).
pub fn check_within(models: &ModelAccess, limits: &Limits, layers: &[Layer]) -> Result<(), BoundaryExceeded> {
    for layer in layers {
        check_models(models, layer)?;
        check_limits(limits, layer)?;
    }
    Ok(())
}

fn check_limits(limits: &Limits, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let ceilings = &layer.boundary.limits;
    for Scalar { name, get, .. } in SCALARS {
        if let (Some(value), Some(ceiling)) = (get(limits), get(ceilings)) {
            if value > ceiling {
                return Err(BoundaryExceeded {
                    field: format!("limits.{name}"),
                    message: format!("{value} is above {} ({name} {ceiling})", layer.name),
                });
            }
        }
    }
    for cap in &limits.spend {
        let Some(ceiling) = spend_ceiling(ceilings, cap.period) else { continue };
        let field = format!("limits.spend[{}]", cap.period.name());
        if cap.mode == CapMode::Warn {
            return Err(BoundaryExceeded {
                field: format!("{field}.mode"),
                message: format!(
                    "a warn-only cap would let spend pass {} (hard {} cap of {ceiling} micro-dollars)",
                    layer.name,
                    cap.period.name()
                ),
            });
        }
        if cap.limit_micros > ceiling {
            return Err(BoundaryExceeded {
                field: format!("{field}.limit_micros"),
                message: format!(
                    "{} is above {} ({} cap of {ceiling} micro-dollars)",
                    cap.limit_micros,
                    layer.name,
                    cap.period.name()
                ),
            });
        }
    }
    Ok(())
}

fn check_models(models: &ModelAccess, layer: &Layer) -> Result<(), BoundaryExceeded> {
    let ModelAccess::Allow(globs) = models else { return Ok(()) };
    match globs.iter().position(|glob| excludes(&layer.boundary.models, glob)) {
        Some(index) => Err(BoundaryExceeded {
            field: format!("models.allow[{index}]"),
            message: format!("'{}' is outside {} ({})", globs[index], layer.name, layer.boundary.models),
        }),
        None => Ok(()),
    }
}

/// The limits a key with `own` limits gets under `layers` (see module doc).
pub fn effective_limits(own: &Limits, layers: &[&Boundary]) -> Limits {
    let mut limits = own.clone();
    for Scalar { get, set, .. } in SCALARS {
        set(&mut limits, layers.iter().filter_map(|b| get(&b.limits)).chain(get(own)).min());
    }
    limits.spend = [SpendPeriod::Daily, SpendPeriod::Monthly, SpendPeriod::Total]
        .into_iter()
        .filter_map(|period| {
            let tightest = layers
                .iter()
                .filter_map(|b| b.limits.spend.iter().find(|cap| cap.period == period))
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

/// The model rules of `layers` a call must also pass: those that restrict anything.
pub fn model_rules(layers: &[&Boundary]) -> Vec<ModelAccess> {
    layers.iter().map(|b| b.models.clone()).filter(|rule| !rule.is_all()).collect()
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
        check_within(&models(models_json), &limits(limits_json), &layers).map_err(|e| e.field)
    }

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
        let err = check_within(&ModelAccess::All, &limits(r#"{"rpm":60}"#), &layers).unwrap_err();
        assert_eq!(err.field, "limits.rpm");
        assert_eq!(err.message, "60 is above the boundary of project 'p' (rpm 50)");
        let err = check_within(
            &models(r#"{"allow":["gpt-4o"]}"#),
            &Limits::default(),
            &[Layer { name: "the organisation boundary", boundary: &boundary(r#"{"models":{"allow":["claude-*"]}}"#) }],
        )
        .unwrap_err();
        assert_eq!(err.message, "'gpt-4o' is outside the organisation boundary (allowed: claude-*)");
    }

    #[test]
    fn a_keys_whole_rules_are_checked() {
        let project = boundary(r#"{"models":{"allow":["claude-*"]},"limits":{"rpm":10}}"#);
        let layers = [Layer { name: "the project boundary", boundary: &project }];
        let rules = |json: &str| serde_json::from_str::<KeyRules>(json).unwrap();
        let field = |json: &str| check_rules_within(&rules(json), &layers).err().map(|e| e.field);
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
    fn model_rules_keep_only_restrictions() {
        let all = Boundary::default();
        let allow = boundary(r#"{"models":{"allow":["claude-*"]}}"#);
        assert_eq!(model_rules(&[&all, &allow]), vec![models(r#"{"allow":["claude-*"]}"#)]);
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
