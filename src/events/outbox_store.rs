//! The outbox's SQLite tables and every query on them, over the [`Sql`] port. All calls are
//! synchronous: a sequence of them with no `.await` between is atomic within the object.
//!
//! - `endpoints(id, url, secret, events, created_at_ms)`: `events` is the filter as JSON.
//! - `events(id, type, created_at_ms, received_at_ms, body)`: `body` is the exact JSON delivered.
//! - `deliveries(id, event_id, endpoint_id, status, attempts, next_at_ms, last_status,
//!   last_error, updated_at_ms)`: one per event and endpoint; `next_at_ms` set while pending.
//!
//! Bounded: finished deliveries, and events without a pending delivery, are pruned
//! [`RETENTION_MS`] after they last changed (events are kept that long, delivered or not, so a
//! repeated hand-off of the same id within that time is still recognised).

use crate::events::{Delivery, DeliveryStatus, EndpointView, Event, EventFilter, EventType, NewEndpoint};
use crate::sql::{int, rows, run, Sql, SqlError, SqlValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long finished deliveries and old events are kept.
pub const RETENTION_MS: u64 = 7 * 86_400_000;

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, \
     events TEXT NOT NULL, created_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT NOT NULL, created_at_ms INTEGER NOT NULL, \
     received_at_ms INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, \
     endpoint_id TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, next_at_ms INTEGER, \
     last_status INTEGER, last_error TEXT, updated_at_ms INTEGER NOT NULL, UNIQUE (event_id, endpoint_id))",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at_ms)",
    "CREATE INDEX IF NOT EXISTS deliveries_by_endpoint ON deliveries (endpoint_id, id)",
];

/// A due delivery with everything needed to send it.
#[derive(Deserialize)]
pub struct Due {
    pub id: i64,
    pub attempts: u32,
    pub event_id: String,
    pub received_at_ms: u64,
    pub body: String,
    pub url: String,
    pub secret: String,
}

/// A delivery as listed to an Admin (times in Unix ms; `created_at` is the event's).
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "WebhookDelivery"))]
pub struct DeliveryView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<u64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Deserialize)]
struct EndpointRow {
    id: String,
    url: String,
    events: String,
    created_at_ms: u64,
}

#[derive(Deserialize)]
struct Count {
    n: usize,
}

#[derive(Deserialize)]
struct NextDue {
    at: Option<u64>,
}

pub struct OutboxStore {
    sql: Box<dyn Sql>,
}

impl OutboxStore {
    /// The store, its tables created if missing.
    pub fn open(sql: Box<dyn Sql>) -> Result<OutboxStore, SqlError> {
        for statement in SCHEMA {
            run(&*sql, statement, &[])?;
        }
        Ok(OutboxStore { sql })
    }

    fn rows<T: DeserializeOwned>(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<T>, SqlError> {
        rows(&*self.sql, statement, params)
    }

    fn run(&self, statement: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        run(&*self.sql, statement, params)
    }

    /// The one row of a `SELECT COUNT(*) AS n` or `SELECT MIN(…) AS at`.
    fn one<T: DeserializeOwned>(&self, statement: &str, params: &[SqlValue]) -> Result<T, SqlError> {
        self.rows(statement, params)?.into_iter().next().ok_or_else(|| SqlError(format!("no row from {statement}")))
    }

    pub fn endpoint_count(&self) -> Result<usize, SqlError> {
        Ok(self.one::<Count>("SELECT COUNT(*) AS n FROM endpoints", &[])?.n)
    }

    pub fn insert_endpoint(&self, id: &str, endpoint: &NewEndpoint, secret: &str, now_ms: u64) -> Result<(), SqlError> {
        self.run(
            "INSERT INTO endpoints (id, url, secret, events, created_at_ms) VALUES (?, ?, ?, ?, ?)",
            &[id.into(), endpoint.url.as_str().into(), secret.into(), json(&endpoint.events).into(), int(now_ms)],
        )
    }

    /// Every endpoint, oldest first, without secrets.
    pub fn endpoints(&self) -> Result<Vec<EndpointView>, SqlError> {
        let rows: Vec<EndpointRow> =
            self.rows("SELECT id, url, events, created_at_ms FROM endpoints ORDER BY created_at_ms, id", &[])?;
        rows.into_iter()
            .map(|row| {
                let events: EventFilter = serde_json::from_str(&row.events).map_err(|e| SqlError(e.to_string()))?;
                Ok(EndpointView { id: row.id, url: row.url, events, created_at: row.created_at_ms, secret: None })
            })
            .collect()
    }

    pub fn endpoint_exists(&self, id: &str) -> Result<bool, SqlError> {
        Ok(self.one::<Count>("SELECT COUNT(*) AS n FROM endpoints WHERE id = ?", &[id.into()])?.n > 0)
    }

    /// Deletes an endpoint and all its deliveries; false if there was no such endpoint.
    pub fn delete_endpoint(&self, id: &str) -> Result<bool, SqlError> {
        if !self.endpoint_exists(id)? {
            return Ok(false);
        }
        self.run("DELETE FROM deliveries WHERE endpoint_id = ?", &[id.into()])?;
        self.run("DELETE FROM endpoints WHERE id = ?", &[id.into()])?;
        Ok(true)
    }

    /// Stores `event` and a pending delivery, due now, for each endpoint that wants it; returns
    /// how many. An event id already stored changes nothing and returns 0.
    pub fn enqueue(&self, event: &Event, now_ms: u64) -> Result<usize, SqlError> {
        let id = event.id.as_str();
        if self.one::<Count>("SELECT COUNT(*) AS n FROM events WHERE id = ?", &[id.into()])?.n > 0 {
            return Ok(0);
        }
        self.run(
            "INSERT INTO events (id, type, created_at_ms, received_at_ms, body) VALUES (?, ?, ?, ?, ?)",
            &[id.into(), event.kind.as_str().into(), int(event.created_at), int(now_ms), event.body().into()],
        )?;
        let wanting: Vec<EndpointView> =
            self.endpoints()?.into_iter().filter(|e| e.events.matches(event.kind)).collect();
        let delivery = Delivery::pending(0, now_ms);
        for endpoint in &wanting {
            self.run(
                "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_at_ms, updated_at_ms) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    id.into(),
                    endpoint.id.as_str().into(),
                    delivery.status.as_str().into(),
                    i64::from(delivery.attempts).into(),
                    delivery.next_at_ms.map(int).into(),
                    int(now_ms),
                ],
            )?;
        }
        Ok(wanting.len())
    }

    /// Up to `limit` pending deliveries due by `now_ms`, earliest first.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Due>, SqlError> {
        self.rows(
            "SELECT d.id AS id, d.attempts AS attempts, d.event_id AS event_id, e.received_at_ms AS received_at_ms, \
             e.body AS body, p.url AS url, p.secret AS secret \
             FROM deliveries d JOIN events e ON e.id = d.event_id JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.status = ? AND d.next_at_ms <= ? ORDER BY d.next_at_ms LIMIT ?",
            &[DeliveryStatus::Pending.as_str().into(), int(now_ms), int(limit as u64)],
        )
    }

    /// Writes the state of delivery `id` after an attempt (nothing if it was deleted meanwhile).
    pub fn record(&self, id: i64, delivery: &Delivery, now_ms: u64) -> Result<(), SqlError> {
        self.run(
            "UPDATE deliveries SET status = ?, attempts = ?, next_at_ms = ?, last_status = ?, last_error = ?, \
             updated_at_ms = ? WHERE id = ?",
            &[
                delivery.status.as_str().into(),
                i64::from(delivery.attempts).into(),
                delivery.next_at_ms.map(int).into(),
                delivery.last_status.map(i32::from).into(),
                delivery.last_error.clone().into(),
                int(now_ms),
                id.into(),
            ],
        )
    }

    /// When the earliest pending delivery is due, if any is.
    pub fn next_due(&self) -> Result<Option<u64>, SqlError> {
        let next: NextDue = self.one(
            "SELECT MIN(next_at_ms) AS at FROM deliveries WHERE status = ?",
            &[DeliveryStatus::Pending.as_str().into()],
        )?;
        Ok(next.at)
    }

    /// The latest `limit` deliveries to endpoint `id`, newest first.
    pub fn deliveries(&self, endpoint_id: &str, limit: usize) -> Result<Vec<DeliveryView>, SqlError> {
        self.rows(
            "SELECT d.event_id AS event_id, e.type AS type, d.status AS status, d.attempts AS attempts, \
             d.next_at_ms AS next_attempt_at, d.last_status AS last_status, d.last_error AS last_error, \
             e.created_at_ms AS created_at, d.updated_at_ms AS updated_at \
             FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.endpoint_id = ? ORDER BY d.id DESC LIMIT ?",
            &[endpoint_id.into(), int(limit as u64)],
        )
    }

    /// Drops finished deliveries, and events left without deliveries, older than [`RETENTION_MS`].
    pub fn prune(&self, now_ms: u64) -> Result<(), SqlError> {
        let before = int(now_ms.saturating_sub(RETENTION_MS));
        self.run(
            "DELETE FROM deliveries WHERE status != ? AND updated_at_ms < ?",
            &[DeliveryStatus::Pending.as_str().into(), before.clone()],
        )?;
        self.run(
            "DELETE FROM events WHERE received_at_ms < ? \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
            &[before],
        )
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("event filters serialize")
}
