//! Long randomized runs of admission across a key's scopes against a brute-force oracle.
//!
//! Flow: one key with random limits of its own, two model patterns (`a*`, `b*`; model `c1`
//! matches neither) and end-user limits, each with random request, token, in-flight and hard
//! spend limits; random admissions of random models for random end users, settles (actuals
//! within estimates) and releases of open calls, over a clock that crosses a UTC midnight. The
//! oracle keeps a plain log of every admitted call with the scopes it counts in and recomputes
//! each scope's use from it. After every step it asserts: a call was admitted exactly when every
//! scope it counts in (the key, its first matching pattern, its end user) had room, and a
//! refusal named one of the scopes without room and changed nothing; every scope's every limit
//! reads as the oracle computes it, so settles and releases reached exactly the scopes their
//! admission recorded; and no scope is ever above any of its limits. Every spend event names
//! the scope whose cap it is, fires once per threshold and period, and only once committed
//! spend reaches it.

use super::simulation::Rng;
use super::*;
use std::collections::HashSet;
use std::num::NonZeroU64;

const PATTERNS: [&str; 2] = ["a*", "b*"];
const MODELS: [&str; 4] = ["a1", "a2", "b1", "c1"];
const END_USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
/// 2026-12-31 23:20 UTC: the runs cross into a new day and year.
const START_MS: u64 = 1_798_759_200_000;
const DAY_MS: u64 = 86_400_000;
/// Calls are settled or released before this age, well within a reservation's life.
const MAX_CALL_MS: u64 = 10 * 60_000;

/// Random limits, `scale` times wider for the key than for the scopes inside it.
fn random_limits(rng: &mut Rng, scale: u64) -> Limits {
    let mut spend = Vec::new();
    for (period, low) in [(SpendPeriod::Daily, 200_000), (SpendPeriod::Total, 1_000_000)] {
        if rng.chance(50) {
            let limit_micros = rng.maybe(100, low * scale, low * scale * 5).unwrap();
            spend.push(SpendCap { period, limit_micros, mode: CapMode::Hard, warn_at_percent: vec![1, 10, 50] });
        }
    }
    Limits {
        rpm: rng.maybe(60, scale, 15 * scale),
        rph: rng.maybe(40, 10 * scale, 200 * scale),
        tpm: rng.maybe(50, 500 * scale, 10_000 * scale),
        max_in_flight: rng.maybe(40, scale, 6 * scale),
        spend,
        ..Limits::default()
    }
}

struct Call {
    reservation_id: u64,
    at_ms: u64,
    pattern: Option<usize>,
    end_user: usize,
    estimate: Charge,
    /// `None` while open; then the counted tokens, cost, and the day the cost went to.
    closed: Option<(u64, u64, u64)>,
}

/// One of the ledgers of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Key,
    Pattern(usize),
    EndUser(usize),
}

impl Scope {
    /// Its level's index in `Sim::refused_by`: key, pattern, end user.
    fn index(self) -> usize {
        match self {
            Scope::Key => 0,
            Scope::Pattern(_) => 1,
            Scope::EndUser(_) => 2,
        }
    }
}

struct Sim {
    rng: Rng,
    limits: Limits,
    scopes: ScopeLimits,
    key: Ledger,
    ledgers: ScopeLedgers,
    log: Vec<Call>,
    now: u64,
    admitted: u64,
    refused_by: [u64; 3],
    /// Every spend event seen: scope, period, its start, threshold.
    fired: HashSet<(Scope, SpendPeriod, u64, u8)>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let limits = random_limits(&mut rng, 3);
        let model_limits =
            PATTERNS.iter().map(|&p| ModelLimits { pattern: p.into(), limits: random_limits(&mut rng, 1) }).collect();
        let mut end_user_limits = random_limits(&mut rng, 2);
        if end_user_limits.is_empty() {
            end_user_limits.rph = NonZeroU64::new(100);
        }
        let scopes = ScopeLimits { model_limits, end_user_limits };
        Sim {
            rng,
            limits,
            scopes,
            key: Ledger::new(),
            ledgers: ScopeLedgers::default(),
            log: Vec::new(),
            now: START_MS,
            admitted: 0,
            refused_by: [0; 3],
            fired: HashSet::new(),
        }
    }

    /// Runs `steps` steps; answers how many calls were admitted and refused by each level, and
    /// how many spend events each level raised.
    fn run(mut self, steps: usize) -> (u64, [u64; 3], [u64; 3]) {
        for _ in 0..steps {
            self.now += match self.rng.below(100) {
                0..70 => self.rng.below(1_500),
                70..95 => self.rng.below(10_000),
                _ => self.rng.below(90_000),
            };
            let overdue = self.log.iter().position(|c| c.closed.is_none() && c.at_ms + MAX_CALL_MS <= self.now);
            match (overdue, self.rng.below(100)) {
                (Some(index), _) => self.close(index),
                (None, 0..60) => self.admit(),
                (None, _) => match self.open_calls().first() {
                    Some(_) => {
                        let open = self.open_calls();
                        let index = open[self.rng.below(open.len() as u64) as usize];
                        self.close(index);
                    }
                    None => self.admit(),
                },
            }
            self.check();
        }
        let mut fired = [0; 3];
        self.fired.iter().for_each(|(scope, ..)| fired[scope.index()] += 1);
        (self.admitted, self.refused_by, fired)
    }

    /// Checks and remembers spend events (see the module doc).
    fn take_events(&mut self, events: Vec<ScopeEvent>) {
        for ScopeEvent { scope, spend } in events {
            let scope = self.scope_of(&scope);
            let cap = self.limits_of(scope).spend.iter().find(|cap| cap.period == spend.period);
            assert_eq!(cap.map(|cap| cap.limit_micros.get()), Some(spend.limit_micros), "{scope:?}: {spend:?}");
            assert_eq!(spend.kind == SpendEventKind::LimitReached, spend.threshold_percent >= 100);
            assert!(
                u128::from(spend.spent_micros) * 100
                    >= u128::from(spend.limit_micros) * u128::from(spend.threshold_percent),
                "{scope:?}: fired below its threshold: {spend:?}"
            );
            let new = self.fired.insert((scope, spend.period, spend.period_start_ms, spend.threshold_percent));
            assert!(new, "{scope:?}: fired twice in its period: {spend:?}");
        }
    }

    fn scope_of(&self, scope: &KeyScope) -> Scope {
        match scope {
            KeyScope::Key => Scope::Key,
            KeyScope::Model(p) => Scope::Pattern(PATTERNS.iter().position(|x| x == p).unwrap()),
            KeyScope::EndUser(u) => Scope::EndUser(END_USERS.iter().position(|x| x == u).unwrap()),
        }
    }

    fn open_calls(&self) -> Vec<usize> {
        (0..self.log.len()).filter(|&i| self.log[i].closed.is_none()).collect()
    }

    fn limits_of(&self, scope: Scope) -> &Limits {
        match scope {
            Scope::Key => &self.limits,
            Scope::Pattern(p) => &self.scopes.model_limits[p].limits,
            Scope::EndUser(_) => &self.scopes.end_user_limits,
        }
    }

    fn counts_in(call: &Call, scope: Scope) -> bool {
        match scope {
            Scope::Key => true,
            Scope::Pattern(p) => call.pattern == Some(p),
            Scope::EndUser(u) => call.end_user == u,
        }
    }

    /// What `scope` counts now for each of its configured limits, in `limit_uses` order.
    fn expected_uses(&self, scope: Scope) -> Vec<(String, u64, u64)> {
        let limits = self.limits_of(scope);
        let calls: Vec<&Call> = self.log.iter().filter(|c| Self::counts_in(c, scope)).collect();
        let in_window = |w: WindowScope, c: &Call| w.bucket_of(c.at_ms) + 60 > w.bucket_of(self.now);
        let mut uses = Vec::new();
        for w in WindowScope::ALL {
            let Some(limit) = w.limit(limits) else { continue };
            let used = calls
                .iter()
                .filter(|c| in_window(w, c))
                .map(|c| if w.counts_tokens() { c.closed.map_or(c.estimate.tokens, |(t, _, _)| t) } else { 1 })
                .sum();
            uses.push((w.name().to_owned(), limit, used));
        }
        let reserved: u64 = calls.iter().filter(|c| c.closed.is_none()).map(|c| c.estimate.cost_micros).sum();
        if let Some(limit) = limits.max_in_flight {
            uses.push((
                "max_in_flight".to_owned(),
                limit.get(),
                calls.iter().filter(|c| c.closed.is_none()).count() as u64,
            ));
        }
        for cap in &limits.spend {
            let day = self.now / DAY_MS;
            let committed: u64 = calls
                .iter()
                .filter_map(|c| c.closed)
                .filter(|&(_, _, settled_day)| cap.period == SpendPeriod::Total || settled_day == day)
                .map(|(_, cost, _)| cost)
                .sum();
            let name = if cap.period == SpendPeriod::Daily { "spend_daily" } else { "spend_total" };
            uses.push((name.to_owned(), cap.limit_micros.get(), committed + reserved));
        }
        uses
    }

    /// Whether `scope` has room for `ask` now.
    fn has_room(&self, scope: Scope, ask: &Ask) -> bool {
        self.expected_uses(scope).iter().all(|(name, limit, used)| match name.as_str() {
            "tpm" | "tpd" => used + ask.tokens <= *limit,
            "max_in_flight" => used < limit,
            "spend_daily" | "spend_total" => used + ask.cost_micros <= *limit,
            _ => used < limit,
        })
    }

    fn admit(&mut self) {
        let model = MODELS[self.rng.below(MODELS.len() as u64) as usize];
        let end_user = self.rng.below(END_USERS.len() as u64) as usize;
        let pattern = PATTERNS.iter().position(|p| p.as_bytes()[0] == model.as_bytes()[0]);
        let ask = Ask { tokens: self.rng.below(1_500), cost_micros: self.rng.below(2_000) };
        let scopes = [Some(Scope::Key), pattern.map(Scope::Pattern), Some(Scope::EndUser(end_user))];
        let roomy = scopes.iter().flatten().all(|&scope| self.has_room(scope, &ask));
        let before = (self.key.clone(), self.ledgers.clone());
        let call = CallScope { model: Some(model), end_user: Some(END_USERS[end_user]) };
        match self.ledgers.admit(&mut self.key, &self.limits, &self.scopes, call, ask, self.now) {
            Ok((admitted, events)) => {
                assert!(roomy, "admitted {model} for {} without room at {}", END_USERS[end_user], self.now);
                self.take_events(events);
                self.admitted += 1;
                let reservation_id = admitted.reservation_id;
                self.log.push(Call { reservation_id, at_ms: self.now, pattern, end_user, estimate: ask, closed: None });
            }
            Err(ScopeRefusal::Limit { scope, .. }) => {
                assert!(!roomy, "refused {model} for {} in {scope:?} with room everywhere", END_USERS[end_user]);
                let named = self.scope_of(&scope);
                assert!(!self.has_room(named, &ask), "the refusal names {scope:?}, which has room");
                self.refused_by[named.index()] += 1;
                assert_eq!((&self.key, &self.ledgers), (&before.0, &before.1), "a refusal changes nothing");
            }
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    fn close(&mut self, index: usize) {
        let call = &self.log[index];
        let id = call.reservation_id;
        if self.rng.chance(25) {
            assert!(self.ledgers.release(&mut self.key, id, self.now));
            self.log[index].closed = Some((0, 0, self.now / DAY_MS));
        } else {
            let actual = Charge {
                tokens: self.rng.below(call.estimate.tokens + 1),
                cost_micros: self.rng.below(call.estimate.cost_micros + 1),
            };
            let settled = self.ledgers.settle(&mut self.key, &self.limits, &self.scopes, id, actual, self.now);
            assert!(settled.settled);
            self.take_events(settled.events);
            self.log[index].closed = Some((actual.tokens, actual.cost_micros, self.now / DAY_MS));
        }
        assert!(!self.ledgers.release(&mut self.key, id, self.now), "each call ends once");
    }

    fn check(&self) {
        let summary = |uses: Vec<LimitUse>| uses.into_iter().map(|u| (u.scope, u.limit, u.used)).collect::<Vec<_>>();
        let mut actual = vec![(Scope::Key, summary(self.key.limit_uses(&self.limits, self.now)))];
        for (p, (_, uses)) in self.ledgers.model_uses(&self.scopes, self.now).into_iter().enumerate() {
            actual.push((Scope::Pattern(p), summary(uses)));
        }
        for (u, id) in END_USERS.iter().enumerate() {
            let uses = self.ledgers.end_user_uses(&self.scopes, id, self.now).expect("the key has end-user limits");
            actual.push((Scope::EndUser(u), summary(uses)));
        }
        for (scope, uses) in actual {
            assert_eq!(uses, self.expected_uses(scope), "{scope:?} at {}", self.now);
            for (name, limit, used) in uses {
                assert!(used <= limit, "{scope:?} {name}: {used} > {limit}");
            }
        }
    }
}

#[test]
fn admission_across_scopes_is_atomic_and_exact() {
    let (mut admitted, mut refused_by, mut fired) = (0, [0; 3], [0; 3]);
    for seed in 1..=6 {
        let (admissions, refusals, events) = Sim::new(seed).run(2_500);
        admitted += admissions;
        refused_by.iter_mut().zip(refusals).for_each(|(sum, n)| *sum += n);
        fired.iter_mut().zip(events).for_each(|(sum, n)| *sum += n);
    }
    assert!(admitted > 1_500, "admitted {admitted}");
    assert!(refused_by.iter().all(|&n| n > 50), "refusals by the key, a pattern, an end user: {refused_by:?}");
    assert!(fired.iter().all(|&n| n > 3), "spend events of the key, a pattern, an end user: {fired:?}");
}
