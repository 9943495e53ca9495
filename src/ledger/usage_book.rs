//! A key's usage totals: requests, tokens and spend today (UTC), this month (UTC) and in total,
//! kept by the key's object for the control plane's usage reports.
//!
//! Flow: the object counts a request when it admits it (a request that fails upstream still
//! counts, as in the request windows), and adds tokens and cost when it settles one, to the
//! periods current at the settle (as spend does). Reports read a period that has ended as empty.
//!
//! Bounded: three records whatever the traffic. The day and month records roll lazily and only
//! forward: a clock that steps back into an earlier period still counts into the current record.

use crate::limits::SpendPeriod;
use crate::usage::Usage;
use serde::{Deserialize, Serialize};

/// What a key used over one period.
///
/// `tokens` is what the ledger counted: input + output as the upstream reported them, or the
/// reservation's estimate when a successful call reported no usage. `input_tokens` and
/// `output_tokens` hold reported usage only, so `tokens >= input_tokens + output_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Totals {
    pub requests: u64,
    pub tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

impl Totals {
    /// Adds `other` field by field, saturating.
    pub fn add(&mut self, other: &Totals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_micros = self.cost_micros.saturating_add(other.cost_micros);
    }
}

/// Usage per period, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct UsageTotals {
    pub today: Totals,
    pub month: Totals,
    pub total: Totals,
}

impl UsageTotals {
    /// Adds `other` period by period (a project's usage is the sum over its keys).
    pub fn add(&mut self, other: &UsageTotals) {
        self.today.add(&other.today);
        self.month.add(&other.month);
        self.total.add(&other.total);
    }
}

/// One period's totals and the start of the period they belong to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PeriodTotals {
    start_ms: u64,
    totals: Totals,
}

impl PeriodTotals {
    /// The totals to count into at `now_ms`: emptied first if a later period has begun.
    fn current(&mut self, period: SpendPeriod, now_ms: u64) -> &mut Totals {
        let start_ms = period.start_ms(now_ms);
        if start_ms > self.start_ms {
            *self = PeriodTotals { start_ms, totals: Totals::default() };
        }
        &mut self.totals
    }

    fn read(&self, period: SpendPeriod, now_ms: u64) -> Totals {
        if period.start_ms(now_ms) > self.start_ms {
            Totals::default()
        } else {
            self.totals
        }
    }
}

/// The usage record of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBook {
    today: PeriodTotals,
    month: PeriodTotals,
    total: Totals,
}

impl UsageBook {
    /// One admitted request; what was counted.
    pub fn count_request(&mut self, now_ms: u64) -> Totals {
        self.count_requests(now_ms, 1)
    }

    /// `n` admitted requests (calls an edge admitted from a lease, reported together); what was
    /// counted.
    pub fn count_requests(&mut self, now_ms: u64, n: u64) -> Totals {
        let requests = Totals { requests: n, ..Totals::default() };
        self.count(now_ms, &requests);
        requests
    }

    /// One settled request: the `tokens` and `cost_micros` the ledger counted, and the usage the
    /// upstream reported, if it did; what was counted.
    pub fn count_settled(&mut self, now_ms: u64, tokens: u64, cost_micros: u64, reported: Option<Usage>) -> Totals {
        let reported = reported.unwrap_or_default();
        let settled = Totals {
            requests: 0,
            tokens,
            input_tokens: reported.input_tokens,
            output_tokens: reported.output_tokens,
            cost_micros,
        };
        self.count(now_ms, &settled);
        settled
    }

    /// The totals of the periods containing `now_ms`.
    pub fn report(&self, now_ms: u64) -> UsageTotals {
        UsageTotals {
            today: self.today.read(SpendPeriod::Daily, now_ms),
            month: self.month.read(SpendPeriod::Monthly, now_ms),
            total: self.total,
        }
    }

    fn count(&mut self, now_ms: u64, amount: &Totals) {
        self.today.current(SpendPeriod::Daily, now_ms).add(amount);
        self.month.current(SpendPeriod::Monthly, now_ms).add(amount);
        self.total.add(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::SpendPeriod;

    const DAY: u64 = 86_400_000;
    /// 2026-01-31T12:00Z and the next day, 2026-02-01T12:00Z.
    const JAN_31: u64 = 1_769_860_800_000;
    const FEB_1: u64 = JAN_31 + DAY;

    #[test]
    fn counts_requests_and_settled_usage() {
        let mut book = UsageBook::default();
        book.count_request(JAN_31);
        book.count_request(JAN_31);
        book.count_settled(JAN_31, 30, 7, Some(Usage::new(20, 5, 10)));
        book.count_settled(JAN_31, 100, 9, None);
        let expected = Totals { requests: 2, tokens: 130, input_tokens: 20, output_tokens: 10, cost_micros: 16 };
        assert_eq!(book.report(JAN_31), UsageTotals { today: expected, month: expected, total: expected });
    }

    #[test]
    fn day_and_month_roll_at_utc_boundaries() {
        assert_eq!(SpendPeriod::Monthly.start_ms(FEB_1), SpendPeriod::Daily.start_ms(FEB_1));
        let mut book = UsageBook::default();
        book.count_request(JAN_31);
        let report = book.report(FEB_1);
        assert_eq!((report.today.requests, report.month.requests, report.total.requests), (0, 0, 1));
        book.count_request(FEB_1);
        book.count_request(FEB_1 + DAY);
        let report = book.report(FEB_1 + DAY);
        assert_eq!((report.today.requests, report.month.requests, report.total.requests), (1, 2, 3));
    }

    #[test]
    fn a_clock_stepping_back_counts_into_the_current_period() {
        let mut book = UsageBook::default();
        book.count_request(FEB_1);
        book.count_request(JAN_31);
        let report = book.report(FEB_1);
        assert_eq!((report.today.requests, report.month.requests, report.total.requests), (2, 2, 2));
    }

    #[test]
    fn totals_add_up_and_saturate() {
        let mut sum = UsageTotals::default();
        let one = Totals { requests: 1, tokens: 2, input_tokens: 1, output_tokens: 1, cost_micros: u64::MAX };
        sum.add(&UsageTotals { today: one, month: one, total: one });
        sum.add(&UsageTotals { today: one, month: one, total: one });
        assert_eq!(
            sum.total,
            Totals { requests: 2, tokens: 4, input_tokens: 2, output_tokens: 2, cost_micros: u64::MAX }
        );
    }
}
