//! The event envelope: the JSON body of every webhook request,
//! `{"id":"evt_…","type":"key.created","created_at":<unix ms>,"data":{…}}`.
//!
//! The producer builds the whole envelope, id and time included, before handing it to the
//! outbox, so a hand-off retried after a lost acknowledgement carries the same id and the outbox
//! stores it once. The body sent (and signed) is [`Event::body`], the same bytes on every retry.

use super::ids::{format_id, is_id};
use super::kind::EventType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const EVENT_ID_PREFIX: &str = "evt_";
/// How many random bytes an event id carries.
pub const EVENT_ID_RANDOM_BYTES: usize = 16;

/// An event's id: `evt_` and 32 lowercase hex digits, unique per event and the same in every
/// delivery and retry of it (receivers deduplicate on it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn new(random: [u8; EVENT_ID_RANDOM_BYTES]) -> EventId {
        EventId(format_id(EVENT_ID_PREFIX, &random))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = String;

    fn try_from(text: String) -> Result<EventId, String> {
        if is_id(EVENT_ID_PREFIX, EVENT_ID_RANDOM_BYTES, &text) {
            Ok(EventId(text))
        } else {
            Err(format!("'{text}' is not an event id (evt_ and 32 lowercase hex digits)"))
        }
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

/// One event. Invariant: `data` is a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened, Unix milliseconds, by the producer's clock.
    pub created_at: u64,
    /// The details, by type (see the README).
    pub data: Map<String, Value>,
}

impl Event {
    /// An event whose `data` is `data` serialized; refused unless that is a JSON object (a
    /// struct or a map always is).
    pub fn new(id: EventId, kind: EventType, created_at_ms: u64, data: &impl Serialize) -> Result<Event, String> {
        match serde_json::to_value(data) {
            Ok(Value::Object(data)) => Ok(Event { id, kind, created_at: created_at_ms, data }),
            Ok(other) => Err(format!("event data must be a JSON object, not {other}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The exact body delivered and signed.
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

/// What a producer hands to the outbox: `{"events":[…]}`.
#[derive(Debug, Serialize)]
pub struct Batch<'a> {
    pub events: &'a [Event],
}

/// Reads a batch as the outbox receives it: each entry is an [`Event`] or the reason it is not
/// one, so one malformed entry never holds back the others. `Err` when the body is not a batch.
pub fn read_batch(json: &[u8]) -> Result<Vec<Result<Event, String>>, String> {
    #[derive(Deserialize)]
    struct RawBatch {
        events: Vec<Value>,
    }
    let batch: RawBatch = serde_json::from_slice(json).map_err(|e| format!("not an event batch: {e}"))?;
    Ok(batch.events.into_iter().map(|entry| serde_json::from_value(entry).map_err(|e| e.to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::new(EventId::new([7; 16]), EventType::KeyCreated, 1_700_000_000_000, &json!({"key_id": "key_1"}))
            .unwrap()
    }

    #[test]
    fn body_is_the_documented_envelope() {
        let body: Value = serde_json::from_str(&event().body()).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "evt_07070707070707070707070707070707",
                "type": "key.created",
                "created_at": 1_700_000_000_000u64,
                "data": {"key_id": "key_1"}
            })
        );
    }

    #[test]
    fn data_must_be_an_object() {
        let id = EventId::new([0; 16]);
        assert!(Event::new(id, EventType::KeyDeleted, 0, &json!([1, 2])).is_err());
    }

    #[test]
    fn a_batch_keeps_good_entries_and_names_bad_ones() {
        let good = serde_json::to_value(event()).unwrap();
        let body = json!({"events": [good, {"id": "evt_nothex", "type": "key.created", "created_at": 0, "data": {}},
            {"id": "evt_07070707070707070707070707070707", "type": "key.created", "created_at": 0, "data": 5}]});
        let read = read_batch(body.to_string().as_bytes()).unwrap();
        assert_eq!(read[0].as_ref().unwrap(), &event());
        assert!(read[1].as_ref().unwrap_err().contains("not an event id"));
        assert!(read[2].is_err(), "data must be an object");
        assert!(read_batch(b"[]").is_err());
    }
}
