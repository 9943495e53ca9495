//! Properties over generated inputs: glob matching against the naive matcher of the fuzz
//! targets; a boundary narrowed never admits a key it did not admit before; the body sent
//! upstream for a generated request body (the fuzz target's structure-aware bodies) is JSON
//! that differs from the client's only in documented members.

#[path = "../fuzz/targets.rs"]
mod targets;

use proptest::prelude::*;
use std::num::NonZeroU64;
use teamkeys::admin::boundary::{check_key_within, effective_limits, Boundary, Layer, Life};
use teamkeys::limits::{CapMode, Limits, SpendCap, SpendPeriod};
use teamkeys::policy::{KeyRules, ModelAccess};

fn globs() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[ab*-]{1,6}", 1..4)
}

fn models() -> impl Strategy<Value = ModelAccess> {
    prop_oneof![Just(ModelAccess::All), globs().prop_map(ModelAccess::Allow), globs().prop_map(ModelAccess::Block)]
}

fn limits() -> impl Strategy<Value = Limits> {
    let limit = || prop::option::of((1..1_000u64).prop_map(|n| NonZeroU64::new(n).unwrap()));
    (limit(), limit(), limit(), prop::option::of(1..1_000u64), any::<bool>()).prop_map(
        |(rpm, tpm, default_max_tokens, daily, warn)| Limits {
            rpm,
            tpm,
            default_max_tokens,
            spend: daily
                .map(|micros| SpendCap {
                    period: SpendPeriod::Daily,
                    limit_micros: NonZeroU64::new(micros).unwrap(),
                    mode: if warn { CapMode::Warn } else { CapMode::Hard },
                    warn_at_percent: vec![],
                })
                .into_iter()
                .collect(),
            ..Limits::default()
        },
    )
}

/// A boundary narrower than `wide`: every ceiling at most the wide one, models a subset.
fn narrowed(wide: &Boundary, cut: u64, keep: usize, extra: &[String], narrow_models: &ModelAccess) -> Boundary {
    let lower = |ceiling: Option<NonZeroU64>| match ceiling {
        Some(c) => NonZeroU64::new((c.get() * cut / 100).max(1)),
        None => NonZeroU64::new(cut.max(1)),
    };
    let models = match &wide.rules.models {
        ModelAccess::All => narrow_models.clone(),
        ModelAccess::Allow(globs) => ModelAccess::Allow(globs[..keep.clamp(1, globs.len())].to_vec()),
        ModelAccess::Block(globs) => ModelAccess::Block(globs.iter().chain(extra).cloned().collect()),
    };
    let mut limits = wide.rules.limits.clone();
    limits.rpm = lower(limits.rpm);
    limits.tpm = lower(limits.tpm);
    limits.default_max_tokens = lower(limits.default_max_tokens);
    for cap in &mut limits.spend {
        cap.limit_micros = NonZeroU64::new((cap.limit_micros.get() * cut / 100).max(1)).unwrap();
        cap.mode = CapMode::Hard;
    }
    boundary(models, limits)
}

fn boundary(models: ModelAccess, limits: Limits) -> Boundary {
    Boundary { rules: KeyRules { models, limits, ..KeyRules::default() }, max_key_lifetime_days: None }
}

fn hard(mut limits: Limits) -> Limits {
    limits.spend.iter_mut().for_each(|cap| cap.mode = CapMode::Hard);
    limits
}

proptest! {
    #[test]
    fn glob_agrees_with_the_naive_matcher(pattern in "[ab*]{0,8}", name in "[ab]{0,10}") {
        prop_assert_eq!(teamkeys::policy::glob::glob_match(&pattern, &name), targets::naive_glob(pattern.as_bytes(), name.as_bytes()));
    }

    #[test]
    fn a_narrowed_boundary_admits_no_key_it_did_not_admit_before(
        wide_models in models(),
        wide_limits in limits(),
        key_models in models(),
        key_limits in limits(),
        cut in 1..=100u64,
        keep in 1..4usize,
        extra in globs(),
        narrow_models in models(),
    ) {
        let wide = boundary(wide_models, hard(wide_limits));
        let narrow = narrowed(&wide, cut, keep, &extra, &narrow_models);
        let layer = |boundary| [Layer { name: "b", boundary }];
        let key = KeyRules { models: key_models, limits: key_limits.clone(), ..KeyRules::default() };
        let life = Life { created_at: 0, expires_at: None };
        if check_key_within(&key, life, &layer(&narrow)).is_ok() {
            prop_assert!(check_key_within(&key, life, &layer(&wide)).is_ok(), "narrow {narrow:?} wide {wide:?}");
        }
        let (under_narrow, under_wide) = (effective_limits(&key_limits, &[&narrow]), effective_limits(&key_limits, &[&wide]));
        for (n, w) in [(under_narrow.rpm, under_wide.rpm), (under_narrow.tpm, under_wide.tpm)] {
            prop_assert!(w.is_none() || n.is_some_and(|n| n <= w.unwrap()), "{n:?} > {w:?}");
        }
        for model in ["a", "b", "ab", "ba", "a-b", "bb"] {
            let admits = |b: &Boundary| b.rules.models.permits(model);
            prop_assert!(!admits(&narrow) || admits(&wide), "{model}: narrow {narrow:?} wide {wide:?}");
        }
    }

    #[test]
    fn generated_request_bodies_are_forwarded_as_json_differing_only_in_documented_members(
        data in prop::collection::vec(any::<u8>(), 3..600),
    ) {
        let mut data = data;
        data[1] |= 1; // the structure-aware mode
        targets::request_body(&data);
    }
}
