//! `usage.alert` and `usage.limit_reached`: a key's spend events as webhook events.

use super::envelope::{Event, EventId};
use super::kind::EventType;
use crate::limits::{SpendEvent, SpendEventKind, SpendPeriod};
use serde::Serialize;

/// The `data` of a usage event. Money in integer micro-dollars; times in Unix milliseconds.
#[derive(Serialize)]
struct UsageData<'a> {
    key_id: &'a str,
    period: SpendPeriod,
    threshold_percent: u8,
    limit_micros: u64,
    spent_micros: u64,
    period_start_ms: u64,
}

/// The event announcing `spend` of key `key_id`, seen at `now_ms`.
pub fn usage_event(id: EventId, key_id: &str, spend: &SpendEvent, now_ms: u64) -> Event {
    let kind = match spend.kind {
        SpendEventKind::Alert => EventType::UsageAlert,
        SpendEventKind::LimitReached => EventType::UsageLimitReached,
    };
    let data = UsageData {
        key_id,
        period: spend.period,
        threshold_percent: spend.threshold_percent,
        limit_micros: spend.limit_micros,
        spent_micros: spend.spent_micros,
        period_start_ms: spend.period_start_ms,
    };
    Event::new(id, kind, now_ms, &data).expect("a struct serializes to an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limit_reached_carries_the_key_and_the_numbers() {
        let spend = SpendEvent {
            period: SpendPeriod::Daily,
            threshold_percent: 100,
            limit_micros: 1_000,
            spent_micros: 1_200,
            period_start_ms: 86_400_000,
            kind: SpendEventKind::LimitReached,
        };
        let event = usage_event(EventId::new([1; 16]), "key_a", &spend, 90_000_000);
        assert_eq!(event.kind, EventType::UsageLimitReached);
        assert_eq!(event.created_at, 90_000_000);
        assert_eq!(
            serde_json::Value::Object(event.data),
            json!({"key_id": "key_a", "period": "daily", "threshold_percent": 100, "limit_micros": 1_000,
                   "spent_micros": 1_200, "period_start_ms": 86_400_000})
        );
    }
}
