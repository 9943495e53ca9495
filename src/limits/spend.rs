//! Spend per period: the micro-dollars committed in total, today and this month (UTC), and
//! which alert thresholds have fired in the current period.
//!
//! Flow: settling a request commits its actual cost into all three periods (the periods of the
//! settle, not of the admission); the ledger compares committed + reserved + estimate with each
//! hard cap; after every change [`Spend::collect_events`] reports each threshold that committed
//! spend has reached and that has not fired yet in the current period, then remembers it, so
//! each fires once per period. Periods roll lazily: a record belongs to the period starting at
//! its `start_ms` and reads as empty once `now` lies in a later period.

use super::calendar::{day_start_ms, month_start_ms, next_day_start_ms, next_month_start_ms};
use super::config::{Limits, SpendCap, SpendPeriod};
use serde::{Deserialize, Serialize};

const PERIODS: [SpendPeriod; 3] = [SpendPeriod::Total, SpendPeriod::Daily, SpendPeriod::Monthly];

impl SpendPeriod {
    /// The start of the period containing `now_ms`: 0 for `Total`, else the UTC midnight
    /// starting the day or the first of the month.
    pub fn start_ms(self, now_ms: u64) -> u64 {
        match self {
            SpendPeriod::Total => 0,
            SpendPeriod::Daily => day_start_ms(now_ms),
            SpendPeriod::Monthly => month_start_ms(now_ms),
        }
    }

    /// When the period containing `now_ms` ends; `None` for `Total`, which never resets.
    pub fn next_reset_ms(self, now_ms: u64) -> Option<u64> {
        match self {
            SpendPeriod::Total => None,
            SpendPeriod::Daily => Some(next_day_start_ms(now_ms)),
            SpendPeriod::Monthly => Some(next_month_start_ms(now_ms)),
        }
    }
}

/// A spend threshold reached, for a `usage.alert` (or limit-reached) notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendEvent {
    pub period: SpendPeriod,
    pub threshold_percent: u8,
    pub limit_micros: u64,
    /// Committed spend in the period when the threshold was seen crossed.
    pub spent_micros: u64,
    pub period_start_ms: u64,
    pub kind: SpendEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendEventKind {
    /// A warning threshold below the cap.
    Alert,
    /// Spend reached the cap (threshold ≥ 100 %).
    LimitReached,
}

/// The thresholds of `cap`, ascending and distinct: its `warn_at_percent` (a 0 % threshold
/// means nothing and is ignored) and always 100 %, the cap itself, so reaching a cap is reported
/// even when no warning is configured.
pub fn thresholds(cap: &SpendCap) -> Vec<u8> {
    let mut percents: Vec<u8> = cap.warn_at_percent.iter().copied().filter(|&p| p > 0).chain([100]).collect();
    percents.sort_unstable();
    percents.dedup();
    percents
}

/// Whether `spent_micros` reaches `percent` % of `cap`.
pub fn crossed(cap: &SpendCap, percent: u8, spent_micros: u64) -> bool {
    u128::from(spent_micros) * 100 >= u128::from(cap.limit_micros.get()) * u128::from(percent)
}

/// The highest threshold of `cap` that `spent_micros` reaches.
pub fn highest_crossed(cap: &SpendCap, spent_micros: u64) -> Option<u8> {
    thresholds(cap).into_iter().rev().find(|&p| crossed(cap, p, spent_micros))
}

/// What was committed in one period and which thresholds fired in it.
///
/// Invariant: `fired` holds each percent at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PeriodSpend {
    start_ms: u64,
    committed_micros: u64,
    fired: Vec<u8>,
}

/// Committed spend per period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    total: PeriodSpend,
    daily: PeriodSpend,
    monthly: PeriodSpend,
}

impl Spend {
    /// Spend committed in the period containing `now_ms`.
    pub fn committed(&self, period: SpendPeriod, now_ms: u64) -> u64 {
        let record = self.get(period);
        if record.start_ms == period.start_ms(now_ms) {
            record.committed_micros
        } else {
            0
        }
    }

    /// Adds `micros` to every period containing `now_ms`.
    pub fn commit(&mut self, now_ms: u64, micros: u64) {
        for period in PERIODS {
            let record = self.current_mut(period, now_ms);
            record.committed_micros = record.committed_micros.saturating_add(micros);
        }
    }

    /// Replaces `old`, committed at `charged_ms`, by `new` in every period whose record still
    /// holds it (a late settle: see `expired`), never below zero. A period that has ended since
    /// is left alone: it no longer counts against any admission.
    pub fn correct(&mut self, charged_ms: u64, old: u64, new: u64) {
        for period in PERIODS {
            let record = self.get_mut(period);
            if record.start_ms == period.start_ms(charged_ms) {
                record.committed_micros = record.committed_micros.saturating_sub(old).saturating_add(new);
            }
        }
    }

    /// The thresholds of `limits.spend` reached in the current periods that have not fired yet;
    /// they are remembered as fired, so each is reported once per period.
    pub fn collect_events(&mut self, limits: &Limits, now_ms: u64) -> Vec<SpendEvent> {
        let mut events = Vec::new();
        for cap in &limits.spend {
            let record = self.current_mut(cap.period, now_ms);
            for percent in thresholds(cap) {
                if crossed(cap, percent, record.committed_micros) && !record.fired.contains(&percent) {
                    record.fired.push(percent);
                    events.push(SpendEvent {
                        period: cap.period,
                        threshold_percent: percent,
                        limit_micros: cap.limit_micros.get(),
                        spent_micros: record.committed_micros,
                        period_start_ms: record.start_ms,
                        kind: if percent >= 100 { SpendEventKind::LimitReached } else { SpendEventKind::Alert },
                    });
                }
            }
        }
        events
    }

    fn get(&self, period: SpendPeriod) -> &PeriodSpend {
        match period {
            SpendPeriod::Total => &self.total,
            SpendPeriod::Daily => &self.daily,
            SpendPeriod::Monthly => &self.monthly,
        }
    }

    fn get_mut(&mut self, period: SpendPeriod) -> &mut PeriodSpend {
        match period {
            SpendPeriod::Total => &mut self.total,
            SpendPeriod::Daily => &mut self.daily,
            SpendPeriod::Monthly => &mut self.monthly,
        }
    }

    /// The record of the period containing `now_ms`, emptied first if it belongs to an older one.
    fn current_mut(&mut self, period: SpendPeriod, now_ms: u64) -> &mut PeriodSpend {
        let start_ms = period.start_ms(now_ms);
        let record = self.get_mut(period);
        if record.start_ms != start_ms {
            *record = PeriodSpend { start_ms, ..PeriodSpend::default() };
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::super::calendar::{days_from_civil, Date, DAY_MS};
    use super::super::config::CapMode;
    use super::*;
    use std::num::NonZeroU64;

    fn cap(period: SpendPeriod, limit: u64, warn_at_percent: Vec<u8>) -> SpendCap {
        SpendCap { period, limit_micros: NonZeroU64::new(limit).unwrap(), mode: CapMode::Hard, warn_at_percent }
    }

    fn limits(caps: Vec<SpendCap>) -> Limits {
        Limits { spend: caps, ..Limits::default() }
    }

    fn midnight(year: u64, month: u64, day: u64) -> u64 {
        days_from_civil(Date { year, month, day }) * DAY_MS
    }

    fn fired(events: &[SpendEvent]) -> Vec<(SpendPeriod, u8, SpendEventKind)> {
        events.iter().map(|e| (e.period, e.threshold_percent, e.kind)).collect()
    }

    #[test]
    fn each_threshold_fires_once_per_period() {
        let l = limits(vec![cap(SpendPeriod::Daily, 1_000, vec![50, 80])]);
        let day = midnight(2026, 3, 10);
        let mut s = Spend::default();
        s.commit(day, 400);
        assert!(s.collect_events(&l, day).is_empty());
        s.commit(day + 1, 100);
        let events = s.collect_events(&l, day + 1);
        assert_eq!(fired(&events), vec![(SpendPeriod::Daily, 50, SpendEventKind::Alert)]);
        assert_eq!((events[0].spent_micros, events[0].period_start_ms, events[0].limit_micros), (500, day, 1_000));
        assert!(s.collect_events(&l, day + 2).is_empty(), "already fired");
        s.commit(day + 3, 600);
        assert_eq!(
            fired(&s.collect_events(&l, day + 3)),
            vec![
                (SpendPeriod::Daily, 80, SpendEventKind::Alert),
                (SpendPeriod::Daily, 100, SpendEventKind::LimitReached)
            ]
        );
        s.commit(day + 4, 600);
        assert!(s.collect_events(&l, day + 4).is_empty());
    }

    #[test]
    fn thresholds_fire_again_in_the_next_period() {
        let l = limits(vec![cap(SpendPeriod::Monthly, 1_000, vec![50])]);
        let jan = midnight(2026, 1, 31) + 5;
        let feb = midnight(2026, 2, 1);
        let mut s = Spend::default();
        s.commit(jan, 600);
        assert_eq!(s.collect_events(&l, jan).len(), 1);
        assert_eq!(s.committed(SpendPeriod::Monthly, feb), 0, "rolled at the first of the month");
        assert_eq!(s.committed(SpendPeriod::Total, feb), 600, "total never rolls");
        assert!(s.collect_events(&l, feb).is_empty());
        s.commit(feb, 500);
        let events = s.collect_events(&l, feb);
        assert_eq!(fired(&events), vec![(SpendPeriod::Monthly, 50, SpendEventKind::Alert)]);
        assert_eq!(events[0].period_start_ms, feb);
    }

    #[test]
    fn daily_spend_resets_at_utc_midnight() {
        let midnight_ms = midnight(2028, 2, 29);
        let mut s = Spend::default();
        s.commit(midnight_ms - 1, 70);
        assert_eq!(s.committed(SpendPeriod::Daily, midnight_ms - 1), 70);
        assert_eq!(s.committed(SpendPeriod::Daily, midnight_ms), 0);
        assert_eq!(s.committed(SpendPeriod::Monthly, midnight_ms), 70, "Feb 28 and the leap day share a month");
        assert_eq!(s.committed(SpendPeriod::Monthly, midnight(2028, 3, 1)), 0);
        assert_eq!(SpendPeriod::Daily.next_reset_ms(midnight_ms - 1), Some(midnight_ms));
        assert_eq!(SpendPeriod::Monthly.next_reset_ms(midnight_ms), Some(midnight(2028, 3, 1)));
        assert_eq!(SpendPeriod::Total.next_reset_ms(midnight_ms), None);
    }

    #[test]
    fn limit_reached_fires_without_a_configured_100() {
        let c = cap(SpendPeriod::Total, 1_000, vec![0, 90, 90]);
        assert_eq!(thresholds(&c), vec![90, 100]);
        assert_eq!(highest_crossed(&c, 899), None);
        assert_eq!(highest_crossed(&c, 900), Some(90));
        assert_eq!(highest_crossed(&c, 1_000), Some(100));
        let mut s = Spend::default();
        s.commit(0, 2_000);
        let events = s.collect_events(&limits(vec![c]), 0);
        assert_eq!(
            fired(&events),
            vec![
                (SpendPeriod::Total, 90, SpendEventKind::Alert),
                (SpendPeriod::Total, 100, SpendEventKind::LimitReached)
            ]
        );
    }

    #[test]
    fn corrections_apply_to_the_periods_still_holding_the_charge() {
        let (yesterday, today) = (midnight(2026, 1, 30) + 5, midnight(2026, 1, 31));
        let mut s = Spend::default();
        s.commit(yesterday, 500);
        s.correct(yesterday, 500, 200);
        assert_eq!(s.committed(SpendPeriod::Daily, yesterday), 200);
        s.commit(today, 100);
        s.correct(yesterday, 200, 50);
        assert_eq!(s.committed(SpendPeriod::Daily, today), 100, "yesterday's record has rolled");
        assert_eq!(s.committed(SpendPeriod::Monthly, today), 150, "the month still holds it");
        assert_eq!(s.committed(SpendPeriod::Total, today), 150);
        s.correct(yesterday, 1_000, 0);
        assert_eq!(s.committed(SpendPeriod::Total, today), 0, "never below zero");
    }

    #[test]
    fn thresholds_above_100_are_limit_reached() {
        let c = cap(SpendPeriod::Total, u64::MAX, vec![150]);
        assert!(!crossed(&c, 150, u64::MAX), "no overflow near u64::MAX");
        let mut s = Spend::default();
        s.commit(0, u64::MAX);
        let kinds: Vec<_> = s.collect_events(&limits(vec![cap(SpendPeriod::Total, 10, vec![150])]), 0);
        assert_eq!(kinds.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![SpendEventKind::LimitReached; 2]);
    }
}
