//! `usage.alert` and `usage.limit_reached`: the spend events of a key (its own caps, a model
//! pattern's or an end user's), or of a project's or the organisation's budget, as webhook
//! events. A key's name it (`key_id`), and a scope inside it its level and scope (`level`
//! `model` with `pattern`, `level` `end_user` with `end_user`; the key's own caps: no `level`);
//! a budget's name its level (`project`, `organisation`) and, for a project's, the project
//! (`project_id`).

use super::envelope::{Event, EventId};
use super::kind::EventType;
use crate::limits::{KeyScope, Level, SpendEvent, SpendEventKind, SpendPeriod};
use serde::Serialize;

/// Whose spend an event is about.
#[derive(Serialize)]
#[serde(untagged)]
enum Whose<'a> {
    Key {
        key_id: &'a str,
        #[serde(flatten)]
        scope: Option<InKey<'a>>,
    },
    Budget {
        level: Level,
        #[serde(skip_serializing_if = "Option::is_none")]
        project_id: Option<&'a str>,
    },
}

/// A scope inside a key, as an event names it.
#[derive(Serialize)]
#[serde(tag = "level", rename_all = "snake_case")]
enum InKey<'a> {
    Model { pattern: &'a str },
    EndUser { end_user: &'a str },
}

/// The `data` of a usage event. Money in integer micro-dollars; times in Unix milliseconds.
#[derive(Serialize)]
struct UsageData<'a> {
    #[serde(flatten)]
    whose: Whose<'a>,
    period: SpendPeriod,
    threshold_percent: u8,
    limit_micros: u64,
    spent_micros: u64,
    period_start_ms: u64,
}

/// The event announcing `spend` of `scope` of key `key_id`, seen at `now_ms`.
pub fn usage_event(id: EventId, key_id: &str, scope: &KeyScope, spend: &SpendEvent, now_ms: u64) -> Event {
    let scope = match scope {
        KeyScope::Key => None,
        KeyScope::Model(pattern) => Some(InKey::Model { pattern }),
        KeyScope::EndUser(end_user) => Some(InKey::EndUser { end_user }),
    };
    spend_event(id, Whose::Key { key_id, scope }, spend, now_ms)
}

/// The event announcing `spend` of the budget of `level` (of project `project_id` for a
/// project's), seen at `now_ms`.
pub fn budget_event(id: EventId, level: Level, project_id: Option<&str>, spend: &SpendEvent, now_ms: u64) -> Event {
    spend_event(id, Whose::Budget { level, project_id }, spend, now_ms)
}

fn spend_event(id: EventId, whose: Whose, spend: &SpendEvent, now_ms: u64) -> Event {
    let kind = match spend.kind {
        SpendEventKind::Alert => EventType::UsageAlert,
        SpendEventKind::LimitReached => EventType::UsageLimitReached,
    };
    let data = UsageData {
        whose,
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
        let event = usage_event(EventId::new([1; 16]), "key_a", &KeyScope::Key, &spend, 90_000_000);
        assert_eq!(event.kind, EventType::UsageLimitReached);
        assert_eq!(event.created_at, 90_000_000);
        assert_eq!(
            serde_json::Value::Object(event.data),
            json!({"key_id": "key_a", "period": "daily", "threshold_percent": 100, "limit_micros": 1_000,
                   "spent_micros": 1_200, "period_start_ms": 86_400_000})
        );
        let project = budget_event(EventId::new([2; 16]), Level::Project, Some("prj_1"), &spend, 90_000_000);
        assert_eq!(project.kind, EventType::UsageLimitReached);
        assert_eq!(
            serde_json::Value::Object(project.data),
            json!({"level": "project", "project_id": "prj_1", "period": "daily", "threshold_percent": 100,
                   "limit_micros": 1_000, "spent_micros": 1_200, "period_start_ms": 86_400_000})
        );
        let pattern = KeyScope::Model("o3*".into());
        let model = usage_event(EventId::new([4; 16]), "key_a", &pattern, &spend, 90_000_000);
        assert_eq!(
            serde_json::Value::Object(model.data),
            json!({"key_id": "key_a", "level": "model", "pattern": "o3*", "period": "daily", "threshold_percent": 100,
                   "limit_micros": 1_000, "spent_micros": 1_200, "period_start_ms": 86_400_000})
        );
        let end_user = usage_event(EventId::new([5; 16]), "key_a", &KeyScope::EndUser("u-42".into()), &spend, 0);
        assert_eq!(
            (end_user.data["level"].as_str(), end_user.data["end_user"].as_str()),
            (Some("end_user"), Some("u-42"))
        );
        let org = budget_event(EventId::new([3; 16]), Level::Organisation, None, &spend, 90_000_000);
        assert_eq!(org.data["level"], "organisation");
        assert!(!org.data.contains_key("project_id") && !org.data.contains_key("key_id"));
    }
}
