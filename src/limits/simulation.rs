//! Long randomized runs of the ledger against an independent oracle.
//!
//! Flow: a fake clock advances by random steps (sometimes handing the ledger a slightly earlier
//! time); random admissions, settles and releases, with random estimates and actuals, lost
//! settles, late settles (after the reservation expired, before and after the settle deadline),
//! repeated and unknown ids, drive the ledger. When limits change, each change is a new policy
//! version, pushed (or the push lost), and every admission and settle carries the current
//! version or, from a stale edge, an older one; the limits enforced must be those of the newest
//! version seen. The oracle keeps a plain log of every
//! admitted request and recomputes everything from it by brute force. After every step it
//! asserts: the ledger admitted exactly when no limit would break (safe and maximal) and named
//! the denial and reset time the oracle expects; a denial changed nothing; every aligned span
//! keeps the documented window guarantee; hard caps hold while actuals stay within estimates;
//! spend events fired once per threshold per period; headroom agrees; every id was settled or
//! released at most once, and a late one corrected exactly the periods its expiry charged (no
//! counter drifts from the log). Every 50 steps the stored form round-trips.

use super::expired::MAX_EXPIRED_REMEMBERED;
use super::reservations::{MAX_OPEN_RESERVATIONS, RESERVATION_TTL_MS};
use super::*;
use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU64;

const DAY_MS: u64 = 86_400_000;

/// xorshift64* — enough randomness for test schedules.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// With `percent` % chance, a value in `low..=high`.
    pub(crate) fn maybe(&mut self, percent: u64, low: u64, high: u64) -> Option<NonZeroU64> {
        if self.chance(percent) {
            NonZeroU64::new(low + self.below(high - low + 1))
        } else {
            None
        }
    }
}

/// Period starts and ends by walking the calendar year by year, month by month.
fn naive_period(period: SpendPeriod, ms: u64) -> (u64, Option<u64>) {
    let is_leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let day = ms / DAY_MS;
    match period {
        SpendPeriod::Total => (0, None),
        SpendPeriod::Daily => (day * DAY_MS, Some((day + 1) * DAY_MS)),
        SpendPeriod::Monthly => {
            let (mut start, mut year) = (0, 1970);
            while start + 365 + u64::from(is_leap(year)) <= day {
                start += 365 + u64::from(is_leap(year));
                year += 1;
            }
            let lengths = [31, 28 + u64::from(is_leap(year)), 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let mut month = 0;
            while start + lengths[month] <= day {
                start += lengths[month];
                month += 1;
            }
            (start * DAY_MS, Some((start + lengths[month]) * DAY_MS))
        }
    }
}

const PERIODS: [SpendPeriod; 3] = [SpendPeriod::Total, SpendPeriod::Daily, SpendPeriod::Monthly];

fn period_index(period: SpendPeriod) -> usize {
    match period {
        SpendPeriod::Total => 0,
        SpendPeriod::Daily => 1,
        SpendPeriod::Monthly => 2,
    }
}

#[derive(Clone, Copy)]
enum State {
    Open,
    /// Charged at its estimate in the periods starting at `starts`; a settle until the deadline
    /// closes it there at its actual.
    Expired {
        starts: [u64; 3],
    },
    /// Settled (released: at zero) in the periods starting at `starts`.
    Closed {
        tokens: u64,
        cost: u64,
        starts: [u64; 3],
    },
}

struct Request {
    id: u64,
    at_ms: u64,
    estimate: Charge,
    state: State,
    /// A long stream or a lost settle: never picked while open, so it expires (and may be
    /// settled late).
    lingers: bool,
}

impl Request {
    fn tokens(&self) -> u64 {
        match self.state {
            State::Open | State::Expired { .. } => self.estimate.tokens,
            State::Closed { tokens, .. } => tokens,
        }
    }

    /// What it costs and in which periods, once charged.
    fn charged(&self) -> Option<(u64, [u64; 3])> {
        match self.state {
            State::Open => None,
            State::Expired { starts } => Some((self.estimate.cost_micros, starts)),
            State::Closed { cost, starts, .. } => Some((cost, starts)),
        }
    }

    /// Whether a settle or release of it at `now` counts.
    fn settles_at(&self, now: u64) -> bool {
        match self.state {
            State::Open => true,
            State::Expired { .. } => now < self.at_ms + 2 * RESERVATION_TTL_MS,
            State::Closed { .. } => false,
        }
    }

    /// What the window guarantee bounds: a request, or `min(estimate, final tokens)`.
    fn guaranteed(&self, scope: WindowScope) -> u64 {
        self.counted(scope).min(if scope.counts_tokens() { self.estimate.tokens } else { 1 })
    }

    fn overrun(&self) -> u64 {
        self.tokens().saturating_sub(self.estimate.tokens)
    }

    fn counted(&self, scope: WindowScope) -> u64 {
        if scope.counts_tokens() {
            self.tokens()
        } else {
            1
        }
    }

    fn is_stale(&self, now: u64) -> bool {
        matches!(self.state, State::Open) && now >= self.at_ms + RESERVATION_TTL_MS
    }

    fn is_fresh(&self, now: u64) -> bool {
        matches!(self.state, State::Open) && now < self.at_ms + RESERVATION_TTL_MS
    }
}

/// How the limits of a run behave.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Fixed limits, actuals within estimates: every guarantee is checked.
    Exact,
    /// Fixed limits, actuals may exceed estimates: the token bound with overruns is checked.
    Overruns,
    /// Limits change at random, as new policy versions: admission, denials, events, headroom
    /// and the newest-version rule are checked.
    Changing,
}

struct Sim {
    rng: Rng,
    mode: Mode,
    ledger: Ledger,
    /// The limits in force: those of the newest version seen.
    limits: Limits,
    /// Every policy version's limits; version `n` is `versions[n - 1]`.
    versions: Vec<Limits>,
    /// The newest version pushed or carried so far.
    seen: u64,
    newest: NewestLimits,
    log: Vec<Request>,
    /// Monotonic wall time; the ledger is sometimes handed a little less.
    wall: u64,
    /// The time of the ledger's latest change.
    clock: u64,
    fired: HashSet<(SpendPeriod, u64, u8)>,
    admitted: u64,
    denied: u64,
    /// Settles and releases that corrected an expired reservation.
    late: u64,
}

pub(crate) fn random_limits(rng: &mut Rng) -> Limits {
    let mut spend = Vec::new();
    for (period, low) in
        [(SpendPeriod::Total, 3_000_000), (SpendPeriod::Daily, 300_000), (SpendPeriod::Monthly, 2_000_000)]
    {
        if rng.chance(50) {
            let warn_at_percent = [0, 25, 50, 80, 100, 120].into_iter().filter(|_| rng.chance(40)).collect();
            let mode = if rng.chance(70) { CapMode::Hard } else { CapMode::Warn };
            spend.push(SpendCap {
                period,
                limit_micros: rng.maybe(100, low, low * 10).unwrap(),
                mode,
                warn_at_percent,
            });
        }
    }
    Limits {
        rpm: rng.maybe(70, 1, 20),
        rph: rng.maybe(50, 20, 300),
        rpd: rng.maybe(50, 100, 2_000),
        tpm: rng.maybe(60, 500, 20_000),
        tpd: rng.maybe(50, 20_000, 500_000),
        max_in_flight: rng.maybe(50, 1, 12),
        default_max_tokens: None,
        spend,
    }
}

/// The oracle's order of severity among denials: see `LimitDenial::outlasts`.
fn persistence(denial: &LimitDenial) -> (u8, u64) {
    match denial {
        LimitDenial::TooLarge { .. } => (3, 0),
        LimitDenial::Spend { reset_at_ms: None, .. } => (2, 0),
        LimitDenial::Window { reset_at_ms, .. } | LimitDenial::Spend { reset_at_ms: Some(reset_at_ms), .. } => {
            (1, *reset_at_ms)
        }
        LimitDenial::InFlight { .. } | LimitDenial::TooManyInFlight { .. } => (0, 0),
    }
}

fn thresholds(cap: &SpendCap) -> Vec<u8> {
    let mut t: Vec<u8> = cap.warn_at_percent.iter().copied().filter(|&p| p > 0).chain([100]).collect();
    t.sort_unstable();
    t.dedup();
    t
}

fn reaches(cap: &SpendCap, percent: u8, spent: u64) -> bool {
    u128::from(spent) * 100 >= u128::from(cap.limit_micros.get()) * u128::from(percent)
}

impl Sim {
    fn new(seed: u64, mode: Mode, start_ms: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let limits = random_limits(&mut rng);
        let mut newest = NewestLimits::default();
        newest.push(VersionedLimits { version: 1, limits: limits.clone() });
        Sim {
            rng,
            mode,
            ledger: Ledger::new(),
            limits: limits.clone(),
            versions: vec![limits],
            seen: 1,
            newest,
            log: Vec::new(),
            wall: start_ms,
            clock: 0,
            fired: HashSet::new(),
            admitted: 0,
            denied: 0,
            late: 0,
        }
    }

    fn run(&mut self, steps: usize) {
        for step in 0..steps {
            self.step();
            self.check();
            if step % 50 == 0 {
                self.check_round_trip();
            }
        }
        self.check_round_trip();
        assert!(self.admitted > 100 && self.denied > 100, "admitted {}, denied {}", self.admitted, self.denied);
        assert!(self.late > 5, "{} late settles", self.late);
    }

    fn step(&mut self) {
        let r = &mut self.rng;
        self.wall += match r.below(100) {
            0..50 => r.below(300),
            50..75 => r.below(3_000),
            75..90 => r.below(60_000),
            90..98 => r.below(300_000),
            _ => r.below(1_800_000),
        };
        if self.mode == Mode::Changing && self.rng.chance(2) {
            self.new_version();
        }
        let skew = if self.rng.chance(5) { self.rng.below(5_000) } else { 0 };
        let now_ms = self.wall.saturating_sub(skew);
        match self.rng.below(100) {
            0..55 => {
                self.carry();
                self.admit(now_ms)
            }
            55..88 => {
                self.carry();
                let id = self.pick_id();
                let actual = self.actual_for(id);
                self.settle(id, actual, now_ms);
            }
            _ => {
                let id = self.pick_id();
                self.release(id, now_ms);
            }
        }
    }

    /// The registry changes the limits: a new version, whose push may be lost.
    fn new_version(&mut self) {
        self.versions.push(random_limits(&mut self.rng));
        let version = self.versions.len() as u64;
        if self.rng.chance(50) {
            let pushed = VersionedLimits { version, limits: self.versions[version as usize - 1].clone() };
            assert!(self.newest.push(pushed), "a new version is the newest");
            self.seen = version;
        }
        self.limits = self.versions[self.seen as usize - 1].clone();
    }

    /// An edge command carries the current version or, from a stale edge, an older one; the
    /// limits in force become those of the newest version seen.
    fn carry(&mut self) {
        let latest = self.versions.len() as u64;
        let version = if self.rng.chance(70) { latest } else { 1 + self.rng.below(latest) };
        let carried = VersionedLimits { version, limits: self.versions[version as usize - 1].clone() };
        let (limits, remembered) = self.newest.carried(carried);
        assert_eq!(remembered, version > self.seen, "carried limits are remembered when newer");
        self.seen = self.seen.max(version);
        assert_eq!(limits, self.versions[self.seen as usize - 1], "the newest version seen is enforced");
        self.limits = limits;
    }

    fn pick_id(&mut self) -> u64 {
        let open: Vec<u64> =
            self.log.iter().filter(|r| matches!(r.state, State::Open) && !r.lingers).map(|r| r.id).collect();
        let expired: Vec<u64> =
            self.log.iter().filter(|r| matches!(r.state, State::Expired { .. })).map(|r| r.id).collect();
        if !expired.is_empty() && self.rng.chance(40) {
            expired[self.rng.below(expired.len() as u64) as usize]
        } else if !open.is_empty() && self.rng.chance(85) {
            open[self.rng.below(open.len() as u64) as usize]
        } else if !self.log.is_empty() && self.rng.chance(70) {
            self.log[self.rng.below(self.log.len() as u64) as usize].id
        } else {
            1_000_000 + self.rng.below(1_000_000)
        }
    }

    fn actual_for(&mut self, id: u64) -> Charge {
        let estimate = self.log.iter().find(|r| r.id == id).map_or(Charge::ZERO, |r| r.estimate);
        let stretch = |rng: &mut Rng, n: u64| if rng.chance(30) { n + rng.below(n / 2 + 50) } else { rng.below(n + 1) };
        if self.mode == Mode::Exact {
            Charge {
                tokens: self.rng.below(estimate.tokens + 1),
                cost_micros: self.rng.below(estimate.cost_micros + 1),
            }
        } else {
            Charge {
                tokens: stretch(&mut self.rng, estimate.tokens),
                cost_micros: stretch(&mut self.rng, estimate.cost_micros),
            }
        }
    }

    fn admit(&mut self, now_ms: u64) {
        let tokens = if self.rng.chance(95) { self.rng.below(2_000) } else { self.rng.below(40_000) };
        let ask = Ask { tokens, cost_micros: if self.rng.chance(20) { 0 } else { self.rng.below(60_000) } };
        let now = now_ms.max(self.clock);
        let expected = self.expected_denial(&ask, now);
        let before = self.ledger.clone();
        match self.ledger.admit(&self.limits, ask, now_ms) {
            Ok(admitted) => {
                assert_eq!(expected, None, "admitted although a limit breaks at {now}");
                self.admitted += 1;
                self.expire(now);
                self.clock = now;
                let lingers = self.rng.chance(20);
                self.log.push(Request {
                    id: admitted.reservation_id,
                    at_ms: now,
                    estimate: ask,
                    state: State::Open,
                    lingers,
                });
                assert_eq!(admitted.reservation_id, self.admitted, "ids count admissions");
                assert_eq!(admitted.headroom, self.ledger.headroom(&self.limits, now));
                self.check_events(&admitted.events, now);
            }
            Err(denial) => {
                assert_eq!(Some(denial), expected, "denial at {now}");
                assert_eq!(self.ledger, before, "a denial changes nothing");
                self.denied += 1;
            }
        }
    }

    fn settle(&mut self, id: u64, actual: Charge, now_ms: u64) {
        let outcome = self.ledger.settle(&self.limits, id, actual, now_ms);
        let now = now_ms.max(self.clock);
        assert_eq!(outcome.settled, self.close(id, actual, now), "settle {id}");
        self.check_events(&outcome.events, now);
    }

    fn release(&mut self, id: u64, now_ms: u64) {
        let released = self.ledger.release(id, now_ms);
        let now = now_ms.max(self.clock);
        assert_eq!(released, self.close(id, Charge::ZERO, now), "release {id}");
    }

    /// Takes request `id` back at `actual` if it is open (into the periods of `now`) or expired
    /// and not past its deadline (into the periods its expiry charged), then expires stale ones;
    /// true if found.
    fn close(&mut self, id: u64, actual: Charge, now: u64) -> bool {
        let now_starts = PERIODS.map(|p| naive_period(p, now).0);
        let found = self.log.iter_mut().find(|r| r.id == id && r.settles_at(now));
        let closed = found.is_some();
        if let Some(request) = found {
            let starts = match request.state {
                State::Expired { starts } => {
                    self.late += 1;
                    starts
                }
                _ => now_starts,
            };
            request.state = State::Closed { tokens: actual.tokens, cost: actual.cost_micros, starts };
        }
        self.expire(now);
        self.clock = now;
        closed
    }

    fn expire(&mut self, now: u64) {
        let starts = PERIODS.map(|p| naive_period(p, now).0);
        for request in self.log.iter_mut().filter(|r| r.is_stale(now)) {
            request.state = State::Expired { starts };
        }
        let remembered = self.log.iter().filter(|r| r.settles_at(now) && !matches!(r.state, State::Open)).count();
        assert!(remembered <= MAX_EXPIRED_REMEMBERED, "the oracle does not model forgetting beyond the bound");
    }

    /// The requests in the window of `scope` ending with the bucket of `now`, newest first.
    fn in_window(&self, scope: WindowScope, now: u64) -> impl Iterator<Item = &Request> {
        let current = scope.bucket_of(now);
        self.log.iter().rev().take_while(move |r| scope.bucket_of(r.at_ms) + 60 > current)
    }

    fn used(&self, scope: WindowScope, now: u64) -> u64 {
        self.in_window(scope, now).map(|r| r.counted(scope)).sum()
    }

    /// What each bucket of the window ending at `now` holds.
    fn bucket_sums(&self, scope: WindowScope, now: u64) -> BTreeMap<u64, u64> {
        let mut sums = BTreeMap::new();
        for r in self.in_window(scope, now) {
            *sums.entry(scope.bucket_of(r.at_ms)).or_default() += r.counted(scope);
        }
        sums
    }

    /// The first bucket start after `now` at which `asked` fits, tried bucket by bucket.
    fn brute_reset(&self, scope: WindowScope, asked: u64, limit: u64, now: u64) -> u64 {
        let (current, sums) = (scope.bucket_of(now), self.bucket_sums(scope, now));
        (current + 1..=current + 60)
            .find(|&bucket| sums.range(bucket.saturating_sub(59)..).map(|(_, sum)| sum).sum::<u64>() + asked <= limit)
            .expect("an amount within the limit fits once the window empties")
            * scope.bucket_ms()
    }

    fn committed(&self, period: SpendPeriod, now: u64) -> u64 {
        let start = naive_period(period, now).0;
        self.log
            .iter()
            .map(|r| match r.charged() {
                Some((cost, starts)) if starts[period_index(period)] == start => cost,
                None if r.is_stale(now) => r.estimate.cost_micros,
                _ => 0,
            })
            .sum()
    }

    fn reserved(&self, now: u64) -> u64 {
        self.log.iter().filter(|r| r.is_fresh(now)).map(|r| r.estimate.cost_micros).sum()
    }

    fn expected_denial(&self, ask: &Ask, now: u64) -> Option<LimitDenial> {
        let mut denials = Vec::new();
        let open = self.log.iter().filter(|r| r.is_fresh(now)).count() as u64;
        if let Some(limit) = self.limits.max_in_flight.map(NonZeroU64::get).filter(|&l| open >= l) {
            denials.push(LimitDenial::InFlight { limit, open });
        }
        if open >= MAX_OPEN_RESERVATIONS as u64 {
            denials.push(LimitDenial::TooManyInFlight { open });
        }
        for scope in WindowScope::ALL {
            let Some(limit) = scope.limit(&self.limits) else { continue };
            let asked = if scope.counts_tokens() { ask.tokens } else { 1 };
            let used = self.used(scope, now);
            if asked > limit {
                denials.push(LimitDenial::TooLarge { scope, limit, asked });
            } else if used + asked > limit {
                let reset_at_ms = self.brute_reset(scope, asked, limit, now);
                denials.push(LimitDenial::Window { scope, limit, used, asked, reset_at_ms });
            }
        }
        for cap in self.limits.spend.iter().filter(|c| c.mode == CapMode::Hard) {
            let (committed, reserved) = (self.committed(cap.period, now), self.reserved(now));
            if committed + reserved + ask.cost_micros > cap.limit_micros.get() {
                denials.push(LimitDenial::Spend {
                    period: cap.period,
                    limit_micros: cap.limit_micros.get(),
                    committed_micros: committed,
                    reserved_micros: reserved,
                    asked_micros: ask.cost_micros,
                    reset_at_ms: naive_period(cap.period, now).1,
                });
            }
        }
        let worst = denials.iter().map(persistence).max()?;
        denials.into_iter().find(|d| persistence(d) == worst)
    }

    /// Each event is new for its period and threshold, and every threshold reached has fired.
    fn check_events(&mut self, events: &[SpendEvent], now: u64) {
        for event in events {
            let cap = self.limits.spend.iter().find(|c| c.period == event.period).expect("events come from caps");
            assert!(
                self.fired.insert((event.period, event.period_start_ms, event.threshold_percent)),
                "fired twice: {event:?}"
            );
            assert_eq!(event.period_start_ms, naive_period(event.period, now).0);
            assert_eq!(event.spent_micros, self.committed(event.period, now));
            assert_eq!(event.limit_micros, cap.limit_micros.get());
            assert_eq!(event.kind == SpendEventKind::LimitReached, event.threshold_percent >= 100);
        }
        for cap in &self.limits.spend {
            let (start, spent) = (naive_period(cap.period, now).0, self.committed(cap.period, now));
            for percent in thresholds(cap).into_iter().filter(|&p| reaches(cap, p, spent)) {
                assert!(self.fired.contains(&(cap.period, start, percent)), "{percent} % of {cap:?} never fired");
            }
        }
    }

    fn check(&self) {
        let now = self.wall;
        if self.mode != Mode::Changing {
            self.check_spans();
        }
        if self.mode == Mode::Exact {
            for cap in self.limits.spend.iter().filter(|c| c.mode == CapMode::Hard) {
                let held = self.committed(cap.period, now) + self.reserved(now);
                assert!(held <= cap.limit_micros.get(), "{held} over {cap:?}");
            }
        }
        assert_eq!(self.ledger.headroom(&self.limits, now), self.expected_headroom(now));
    }

    fn check_round_trip(&self) {
        let json = serde_json::to_string(&self.ledger).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), self.ledger);
    }

    /// Every span of 60 buckets starting at a bucket that holds a request (the spans with the
    /// largest sums) keeps the window guarantee.
    fn check_spans(&self) {
        for scope in WindowScope::ALL {
            let Some(limit) = scope.limit(&self.limits) else { continue };
            let buckets: Vec<u64> = self.log.iter().map(|r| scope.bucket_of(r.at_ms)).collect();
            let (mut end, mut counted, mut guaranteed, mut overrun) = (0, 0, 0, 0);
            for start in 0..self.log.len() {
                if start > 0 {
                    let r = &self.log[start - 1];
                    counted -= r.counted(scope);
                    guaranteed -= r.guaranteed(scope);
                    overrun -= r.overrun();
                }
                while end < self.log.len() && buckets[end] < buckets[start] + 60 {
                    let r = &self.log[end];
                    counted += r.counted(scope);
                    guaranteed += r.guaranteed(scope);
                    overrun += r.overrun();
                    end += 1;
                }
                if start > 0 && buckets[start] == buckets[start - 1] {
                    continue;
                }
                if scope.counts_tokens() {
                    assert!(guaranteed <= limit, "{scope:?}: Σ min(estimate, final) = {guaranteed} > {limit}");
                    assert!(counted <= limit + overrun, "{scope:?}: {counted} > {limit} + overrun {overrun}");
                    if self.mode == Mode::Exact {
                        assert!(counted <= limit, "{scope:?}: {counted} > {limit}");
                    }
                } else {
                    assert!(counted <= limit, "{scope:?}: {counted} requests > {limit}");
                }
            }
        }
    }

    fn expected_headroom(&self, now: u64) -> Headroom {
        let tightest = |scopes: &[WindowScope]| {
            scopes
                .iter()
                .filter_map(|&scope| {
                    let limit = scope.limit(&self.limits)?;
                    let sums = self.bucket_sums(scope, now);
                    let newest = sums.iter().rev().find(|&(_, &sum)| sum > 0);
                    let reset_ms = newest.map_or(now, |(b, _)| (b + 60) * scope.bucket_ms());
                    Some(Remaining { limit, remaining: limit.saturating_sub(self.used(scope, now)), reset_ms })
                })
                .min_by_key(|r| r.remaining)
        };
        let spend = (!self.limits.spend.is_empty()).then(|| {
            let reserved = self.reserved(now);
            let remaining_micros = self
                .limits
                .spend
                .iter()
                .map(|c| c.limit_micros.get().saturating_sub(self.committed(c.period, now) + reserved))
                .min()
                .unwrap();
            let warning = self
                .limits
                .spend
                .iter()
                .filter_map(|c| {
                    thresholds(c).into_iter().filter(|&p| reaches(c, p, self.committed(c.period, now))).max()
                })
                .max();
            SpendHeadroom { remaining_micros, warning }
        });
        Headroom { requests: tightest(&WindowScope::REQUESTS), tokens: tightest(&WindowScope::TOKENS), spend }
    }
}

/// 2026-01-31 20:00 UTC: the runs cross a month end within their first day.
const JAN_31_2026_8PM: u64 = 1_769_889_600_000;
/// 2028-02-29 12:00 UTC: from the leap day into March.
const FEB_29_2028_NOON: u64 = 1_835_438_400_000;
/// 2026-12-31 06:00 UTC: across a new year.
const DEC_31_2026_6AM: u64 = 1_798_696_800_000;

#[test]
fn exact_actuals_keep_every_guarantee() {
    for (seed, start) in [(1, JAN_31_2026_8PM), (2, FEB_29_2028_NOON), (3, DEC_31_2026_6AM), (4, 0)] {
        Sim::new(seed, Mode::Exact, start).run(2_500);
    }
}

#[test]
fn overruns_stay_within_the_documented_bound() {
    for (seed, start) in [(11, FEB_29_2028_NOON), (12, JAN_31_2026_8PM), (13, DEC_31_2026_6AM)] {
        Sim::new(seed, Mode::Overruns, start).run(2_500);
    }
}

#[test]
fn changing_limits_apply_at_once() {
    for (seed, start) in [(21, DEC_31_2026_6AM), (22, JAN_31_2026_8PM), (23, FEB_29_2028_NOON)] {
        Sim::new(seed, Mode::Changing, start).run(2_500);
    }
}

#[test]
fn the_naive_calendar_agrees_on_known_dates() {
    assert_eq!(naive_period(SpendPeriod::Monthly, FEB_29_2028_NOON), (1_832_976_000_000, Some(1_835_481_600_000)));
    assert_eq!(naive_period(SpendPeriod::Monthly, JAN_31_2026_8PM).1, Some(1_769_904_000_000));
    assert_eq!(naive_period(SpendPeriod::Daily, DEC_31_2026_6AM).1, Some(1_798_761_600_000));
}
