//! The outbox's statements ([`teamkeys::events::outbox_store::OutboxStore`]) and a producer's
//! hand-off queue ([`teamkeys::events::pending::EventQueue`]) run against real SQLite, as the
//! Durable Objects run them.

mod common;

use common::Sqlite;
use serde_json::json;
use teamkeys::events::outbox_store::{OutboxStore, RETENTION_MS};
use teamkeys::events::pending::{EventQueue, KEPT};
use teamkeys::events::{Delivery, DeliveryStatus, Event, EventFilter, EventId, EventType, NewEndpoint};

fn event(n: u8, kind: EventType, at: u64) -> Event {
    Event::new(EventId::new([n; 16]), kind, at, &json!({ "n": n })).unwrap()
}

fn endpoint(url: &str, events: EventFilter) -> NewEndpoint {
    NewEndpoint { url: url.to_owned(), events }
}

fn outbox() -> OutboxStore {
    OutboxStore::open(Sqlite::new().boxed()).unwrap()
}

#[test]
fn endpoints_are_listed_oldest_first_without_secrets_and_deleted_with_their_deliveries() {
    let store = outbox();
    store.insert_endpoint("whk_b", &endpoint("https://b.test/", EventFilter::All), "whsec_b", 20).unwrap();
    store
        .insert_endpoint(
            "whk_a",
            &endpoint("https://a.test/", EventFilter::Only(vec![EventType::KeyCreated])),
            "whsec_a",
            10,
        )
        .unwrap();
    let listed = store.endpoints().unwrap();
    assert_eq!(listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["whk_a", "whk_b"]);
    assert_eq!(
        (listed[0].events.clone(), listed[0].secret.clone()),
        (EventFilter::Only(vec![EventType::KeyCreated]), None)
    );
    assert_eq!(store.endpoint_count().unwrap(), 2);

    store.enqueue(&event(1, EventType::KeyCreated, 5), 100).unwrap();
    assert!(store.delete_endpoint("whk_b").unwrap());
    assert!(!store.delete_endpoint("whk_b").unwrap(), "a second delete finds nothing");
    assert!(!store.endpoint_exists("whk_b").unwrap());
    assert!(store.deliveries("whk_b", 10).unwrap().is_empty());
    assert_eq!(store.due(100, 10).unwrap().len(), 1, "the other endpoint's delivery stays");
}

#[test]
fn an_event_is_stored_once_with_a_delivery_per_endpoint_that_wants_it() {
    let store = outbox();
    store.insert_endpoint("whk_all", &endpoint("https://all.test/", EventFilter::All), "s1", 1).unwrap();
    store
        .insert_endpoint(
            "whk_usage",
            &endpoint("https://u.test/", EventFilter::Only(vec![EventType::UsageAlert])),
            "s2",
            2,
        )
        .unwrap();
    assert_eq!(store.enqueue(&event(1, EventType::KeyCreated, 5), 100).unwrap(), 1);
    assert_eq!(store.enqueue(&event(2, EventType::UsageAlert, 6), 101).unwrap(), 2);
    assert_eq!(store.enqueue(&event(1, EventType::KeyCreated, 5), 102).unwrap(), 0, "a repeated hand-off adds nothing");

    let due = store.due(101, 10).unwrap();
    let sent: Vec<(&str, &str)> = due.iter().map(|d| (d.url.as_str(), d.secret.as_str())).collect();
    assert_eq!(sent, [("https://all.test/", "s1"), ("https://all.test/", "s1"), ("https://u.test/", "s2")]);
    assert_eq!(due[0].body, event(1, EventType::KeyCreated, 5).body(), "the exact body is delivered");
    assert_eq!((due[0].received_at_ms, due[0].attempts), (100, 0));
    assert_eq!(store.due(100, 10).unwrap().len(), 1, "not due before it was received");
    assert_eq!(store.due(101, 2).unwrap().len(), 2, "the limit holds");
    assert_eq!(store.next_due().unwrap(), Some(100));
}

#[test]
fn attempts_are_recorded_and_finished_rows_pruned_after_retention() {
    let store = outbox();
    store.insert_endpoint("whk_1", &endpoint("https://1.test/", EventFilter::All), "s", 1).unwrap();
    store.enqueue(&event(1, EventType::KeyCreated, 5), 100).unwrap();
    store.enqueue(&event(2, EventType::KeyDeleted, 6), 100).unwrap();
    let due = store.due(100, 10).unwrap();
    let retry = Delivery {
        status: DeliveryStatus::Pending,
        attempts: 1,
        next_at_ms: Some(2_000),
        last_status: Some(503),
        last_error: Some("busy".into()),
    };
    store.record(due[0].id, &retry, 150).unwrap();
    let delivered = Delivery {
        status: DeliveryStatus::Delivered,
        attempts: 1,
        next_at_ms: None,
        last_status: Some(200),
        last_error: None,
    };
    store.record(due[1].id, &delivered, 160).unwrap();

    assert_eq!(store.next_due().unwrap(), Some(2_000));
    assert!(store.due(1_999, 10).unwrap().is_empty());
    let listed = store.deliveries("whk_1", 10).unwrap();
    let view = serde_json::to_value(&listed).unwrap();
    assert_eq!(view[0]["status"], "delivered", "newest first");
    assert_eq!(
        (view[1]["type"].clone(), view[1]["attempts"].clone(), view[1]["next_attempt_at"].clone()),
        (json!("key.created"), json!(1), json!(2_000))
    );
    assert_eq!(
        (view[1]["last_status"].clone(), view[1]["last_error"].clone(), view[1]["updated_at"].clone()),
        (json!(503), json!("busy"), json!(150))
    );
    assert_eq!(store.deliveries("whk_1", 1).unwrap().len(), 1);

    store.prune(160 + RETENTION_MS).unwrap();
    assert_eq!(store.deliveries("whk_1", 10).unwrap().len(), 2, "kept for the whole retention");
    assert_eq!(store.enqueue(&event(2, EventType::KeyDeleted, 6), 200).unwrap(), 0, "a repeat is still known");
    store.prune(161 + RETENTION_MS).unwrap();
    assert_eq!(store.deliveries("whk_1", 10).unwrap().len(), 1, "the finished delivery goes, the pending one stays");
    assert_eq!(
        store.enqueue(&event(1, EventType::KeyCreated, 5), 300).unwrap(),
        0,
        "an event with a pending delivery stays"
    );
    assert_eq!(store.enqueue(&event(2, EventType::KeyDeleted, 6), 300).unwrap(), 1, "the finished one is forgotten");
}

#[test]
fn a_producers_queue_hands_over_in_order_and_keeps_at_most_its_bound() {
    let sql = Sqlite::new();
    let queue = EventQueue::open(sql.boxed()).unwrap();
    assert!(queue.oldest(10).unwrap().last.is_none());
    assert_eq!(queue.push(&[event(1, EventType::KeyCreated, 1), event(2, EventType::KeyUpdated, 2)]).unwrap(), 0);
    sql.raw("INSERT INTO outbox_pending (event) VALUES ('not json')");
    queue.push(&[event(3, EventType::KeyDeleted, 3)]).unwrap();

    let first = queue.oldest(3).unwrap();
    let kinds: Vec<&str> = first.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!((kinds, first.unreadable.clone(), first.full), (vec!["key.created", "key.updated"], vec![3], true));
    queue.acknowledge(first.last.unwrap()).unwrap();
    let rest = queue.oldest(3).unwrap();
    assert_eq!(
        (rest.events.len(), rest.events[0].id.as_str().to_owned(), rest.full),
        (1, event(3, EventType::KeyDeleted, 3).id.as_str().to_owned(), false)
    );
    queue.acknowledge(rest.last.unwrap()).unwrap();

    let many: Vec<Event> = (0..KEPT + 5).map(|i| event((i % 250) as u8, EventType::UsageAlert, i as u64)).collect();
    assert_eq!(queue.push(&many).unwrap(), 5, "the oldest beyond the bound are dropped");
    let kept = queue.oldest(2 * KEPT).unwrap();
    assert_eq!((kept.events.len() as i64, kept.events[0].created_at), (KEPT, 5));
}
