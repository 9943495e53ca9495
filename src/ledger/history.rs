//! A key's daily history, for the console's charts: per UTC day, the last [`HISTORY_DAYS`] days'
//! totals (requests, tokens, input and output tokens, cost), and per UTC hour, the last
//! [`HISTORY_HOURS`] hours' requests. Kept by the key's object beside its [`super::usage_book`],
//! counted at the same moments (a request at admission, tokens and cost at settlement).
//!
//! Bounded: at most [`HISTORY_DAYS`] day records and [`HISTORY_HOURS`] hour records whatever the
//! traffic (under 12 KiB of JSON, about 10 KiB when full); older ones are dropped as new periods begin. A clock
//! stepping back counts into the newest record, as the usage book does.

use super::usage_book::Totals;
use crate::limits::calendar::{civil_from_days, DAY_MS};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

pub const HISTORY_DAYS: u64 = 90;
pub const HISTORY_HOURS: u64 = 48;
const HOUR_MS: u64 = 3_600_000;

/// One period's record: its index (UTC days or hours since 1970) and what it counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record<T> {
    at: u64,
    counted: T,
}

/// The key's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    days: VecDeque<Record<Totals>>,
    hours: VecDeque<Record<u64>>,
}

/// One day of a chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DayPoint {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// One hour of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HourPoint {
    /// The hour's start (Unix ms, UTC).
    pub start_ms: u64,
    pub requests: u64,
}

/// Adds `amount` to the record of period `at` (the newest, if the clock stepped back), keeping
/// at most `keep` periods.
fn count<T: Default + Copy>(records: &mut VecDeque<Record<T>>, at: u64, keep: u64, add: impl FnOnce(&mut T)) {
    match records.back_mut() {
        Some(last) if last.at >= at => add(&mut last.counted),
        _ => {
            let mut record = Record { at, counted: T::default() };
            add(&mut record.counted);
            records.push_back(record);
        }
    }
    let newest = records.back().map_or(at, |last| last.at);
    while records.front().is_some_and(|first| first.at + keep <= newest) {
        records.pop_front();
    }
}

impl History {
    /// Counts `amount` at `now_ms`: into its day, and its requests into its hour.
    pub fn count(&mut self, now_ms: u64, amount: &Totals) {
        count(&mut self.days, now_ms / DAY_MS, HISTORY_DAYS, |totals| totals.add(amount));
        if amount.requests > 0 {
            count(&mut self.hours, now_ms / HOUR_MS, HISTORY_HOURS, |requests| {
                *requests = requests.saturating_add(amount.requests)
            });
        }
    }

    /// The last `days` days up to today (at most [`HISTORY_DAYS`]), oldest first, a day without
    /// use included as zeros.
    pub fn days(&self, now_ms: u64, days: u64) -> Vec<DayPoint> {
        let today = now_ms / DAY_MS;
        let first = today + 1 - days.clamp(1, HISTORY_DAYS).min(today + 1);
        (first..=today)
            .map(|day| {
                let totals = self.days.iter().find(|r| r.at == day).map(|r| r.counted).unwrap_or_default();
                let date = civil_from_days(day);
                DayPoint { date: format!("{:04}-{:02}-{:02}", date.year, date.month, date.day), totals }
            })
            .collect()
    }

    /// The last [`HISTORY_HOURS`] hours up to this one, oldest first, zeros included.
    pub fn hours(&self, now_ms: u64) -> Vec<HourPoint> {
        let this = now_ms / HOUR_MS;
        let first = (this + 1).saturating_sub(HISTORY_HOURS);
        (first..=this)
            .map(|hour| HourPoint {
                start_ms: hour * HOUR_MS,
                requests: self.hours.iter().find(|r| r.at == hour).map_or(0, |r| r.counted),
            })
            .collect()
    }
}

/// Adds `other`'s points to `sum`'s, position by position (charts of the same window).
pub fn add_days(sum: &mut [DayPoint], other: &[DayPoint]) {
    sum.iter_mut().zip(other).for_each(|(a, b)| a.totals.add(&b.totals));
}

/// Adds `other`'s hours to `sum`'s, position by position.
pub fn add_hours(sum: &mut [HourPoint], other: &[HourPoint]) {
    sum.iter_mut().zip(other).for_each(|(a, b)| a.requests = a.requests.saturating_add(b.requests));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T10:30Z.
    const NOW: u64 = 1_796_121_000_000;

    fn request() -> Totals {
        Totals { requests: 1, ..Totals::default() }
    }

    #[test]
    fn days_and_hours_are_counted_and_shown_densely() {
        let mut history = History::default();
        history.count(NOW - DAY_MS, &request());
        history.count(NOW, &request());
        history.count(
            NOW,
            &Totals { tokens: 30, input_tokens: 20, output_tokens: 10, cost_micros: 7, ..Totals::default() },
        );
        let days = history.days(NOW, 30);
        assert_eq!(days.len(), 30);
        assert_eq!(days[29].date, "2026-12-01");
        assert_eq!(days[28].date, "2026-11-30");
        assert_eq!((days[29].totals.requests, days[29].totals.tokens, days[29].totals.cost_micros), (1, 30, 7));
        assert_eq!(days[28].totals.requests, 1);
        assert!(days[..28].iter().all(|d| d.totals == Totals::default()));
        let hours = history.hours(NOW);
        assert_eq!(hours.len(), 48);
        assert_eq!(hours[47], HourPoint { start_ms: NOW - NOW % HOUR_MS, requests: 1 });
        assert_eq!(hours[23].requests, 1, "24 hours before");
        assert_eq!(hours.iter().map(|h| h.requests).sum::<u64>(), 2, "settlements count no requests");
    }

    #[test]
    fn the_history_is_bounded_whatever_the_traffic() {
        let mut history = History::default();
        for hour in 0..(HISTORY_DAYS + 30) * 24 {
            history.count(NOW + hour * HOUR_MS, &request());
            assert!(history.days.len() as u64 <= HISTORY_DAYS && history.hours.len() as u64 <= HISTORY_HOURS);
        }
        let end = NOW + ((HISTORY_DAYS + 30) * 24 - 1) * HOUR_MS;
        let days = history.days(end, 1_000);
        assert_eq!(days.len() as u64, HISTORY_DAYS, "at most 90 days are shown");
        assert!(days[..89].iter().all(|d| d.totals.requests == 24), "every whole day kept");
        assert_eq!(days[89].totals.requests, 10, "today so far (until 09:30)");
        assert!(history.hours(end).iter().all(|h| h.requests == 1));
        let json = serde_json::to_string(&history).unwrap();
        assert!(json.len() < 12 * 1024, "{} bytes", json.len());
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), history);
    }

    #[test]
    fn a_clock_stepping_back_counts_into_the_newest_record() {
        let mut history = History::default();
        history.count(NOW, &request());
        history.count(NOW - 3 * DAY_MS, &request());
        assert_eq!(history.days(NOW, 30)[29].totals.requests, 2);
        assert_eq!(history.days.len(), 1);
    }

    #[test]
    fn charts_add_up_point_by_point() {
        let mut a = History::default();
        a.count(NOW, &request());
        let mut sum = a.days(NOW, 30);
        add_days(&mut sum, &a.days(NOW, 30));
        assert_eq!(sum[29].totals.requests, 2);
        let mut hours = a.hours(NOW);
        add_hours(&mut hours, &a.hours(NOW));
        assert_eq!(hours[47].requests, 2);
    }
}
