//! The producer side of the hand-off to the outbox: events waiting in a producer Durable
//! Object's own SQLite (`outbox_pending`) until the outbox has acknowledged them.
//!
//! Flow: [`EventQueue::push`] stores events synchronously, in the same step as the state change
//! that raised them (so both are kept or neither) → the producer's alarm takes
//! [`EventQueue::oldest`] and sends them → [`EventQueue::acknowledge`] deletes them once the
//! outbox has them. Each event carries its id from the start, so a batch sent twice (its
//! acknowledgement lost) is stored once.
//!
//! Bounded: at most [`KEPT`] events wait; beyond that the oldest are dropped (and counted).

use crate::events::Event;
use crate::sql::{rows, run, Sql, SqlError};
use serde::Deserialize;

/// Events kept waiting for the outbox, at most.
pub const KEPT: i64 = 1000;

pub struct EventQueue {
    sql: Box<dyn Sql>,
}

/// The oldest waiting events.
#[derive(Debug, Default)]
pub struct Waiting {
    pub events: Vec<Event>,
    /// The position of the last row taken, to acknowledge; `None` if nothing waits.
    pub last: Option<i64>,
    /// Whether the batch was full (more may wait).
    pub full: bool,
    /// Positions of rows that could not be read (they are acknowledged with the rest).
    pub unreadable: Vec<i64>,
}

#[derive(Deserialize)]
struct Row {
    seq: i64,
    event: String,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

impl EventQueue {
    /// The queue, its table created if missing.
    pub fn open(sql: Box<dyn Sql>) -> Result<EventQueue, SqlError> {
        run(
            &*sql,
            "CREATE TABLE IF NOT EXISTS outbox_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL)",
            &[],
        )?;
        Ok(EventQueue { sql })
    }

    /// Queues `events`; how many of the oldest waiting events were dropped to stay within [`KEPT`].
    pub fn push(&self, events: &[Event]) -> Result<i64, SqlError> {
        for event in events {
            run(&*self.sql, "INSERT INTO outbox_pending (event) VALUES (?)", &[event.body().into()])?;
        }
        if events.is_empty() {
            return Ok(0);
        }
        let beyond = "seq <= (SELECT MAX(seq) FROM outbox_pending) - ?";
        let count = format!("SELECT COUNT(*) AS n FROM outbox_pending WHERE {beyond}");
        let dropped = rows::<Count>(&*self.sql, &count, &[KEPT.into()])?.first().map_or(0, |c| c.n);
        if dropped > 0 {
            run(&*self.sql, &format!("DELETE FROM outbox_pending WHERE {beyond}"), &[KEPT.into()])?;
        }
        Ok(dropped)
    }

    /// Up to `limit` of the oldest waiting events.
    pub fn oldest(&self, limit: i64) -> Result<Waiting, SqlError> {
        let rows: Vec<Row> =
            rows(&*self.sql, "SELECT seq, event FROM outbox_pending ORDER BY seq LIMIT ?", &[limit.into()])?;
        let mut waiting =
            Waiting { last: rows.last().map(|row| row.seq), full: rows.len() as i64 == limit, ..Waiting::default() };
        for row in rows {
            match serde_json::from_str(&row.event) {
                Ok(event) => waiting.events.push(event),
                Err(_) => waiting.unreadable.push(row.seq),
            }
        }
        Ok(waiting)
    }

    /// Forgets every event up to `last`, which the outbox has.
    pub fn acknowledge(&self, last: i64) -> Result<(), SqlError> {
        run(&*self.sql, "DELETE FROM outbox_pending WHERE seq <= ?", &[last.into()])
    }
}
