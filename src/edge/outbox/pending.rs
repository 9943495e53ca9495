//! Durable hand-off of events from a producer Durable Object (a key's ledger) to the outbox.
//!
//! Flow: [`PendingEvents::push`] stores the events in the producer's own SQLite, synchronously,
//! in the same step as the state change that raised them (so both are kept or neither) →
//! [`PendingEvents::wake`] sets the producer's alarm → the producer's `alarm` calls
//! [`PendingEvents::hand_over`], which sends the oldest pending events to the outbox in one
//! batch and deletes them once it has acknowledged; on failure the alarm is set again with
//! backoff ([`crate::events::RetryPolicy::delay_ms`], never giving up). Each event carries its
//! id from the start, so a batch sent twice (its acknowledgement lost) is stored once.
//!
//! Bounded: at most [`KEPT`] events wait; beyond that the oldest are dropped (and logged).

use super::client::enqueue;
use super::config::retry_policy;
use super::random::jitter;
use crate::events::Event;
use std::cell::Cell;
use std::time::Duration;
use worker::{Env, SqlStorage, State, Storage};

/// Events kept waiting for the outbox, at most.
const KEPT: i64 = 1000;
/// Events per hand-off, at most.
const BATCH: i64 = 100;

pub struct PendingEvents {
    sql: SqlStorage,
    storage: Storage,
    /// Failed hand-offs in a row (in memory: a restarted object starts again from the base wait).
    failures: Cell<u32>,
}

#[derive(serde::Deserialize)]
struct Row {
    seq: i64,
    event: String,
}

impl PendingEvents {
    /// The producer's queue, its table created if missing.
    pub fn open(state: &State) -> worker::Result<PendingEvents> {
        let storage = state.storage();
        let sql = storage.sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS outbox_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL)",
            None,
        )?;
        Ok(PendingEvents { sql, storage, failures: Cell::new(0) })
    }

    /// Queues `events` (synchronous; call [`PendingEvents::wake`] after the step).
    pub fn push(&self, events: &[Event]) -> worker::Result<()> {
        for event in events {
            self.sql.exec("INSERT INTO outbox_pending (event) VALUES (?)", vec![event.body().into()])?;
        }
        if !events.is_empty() {
            let dropped = self
                .sql
                .exec(
                    "DELETE FROM outbox_pending WHERE seq <= (SELECT MAX(seq) FROM outbox_pending) - ?",
                    vec![KEPT.into()],
                )?
                .rows_written();
            if dropped > 0 {
                worker::console_error!(
                    "outbox hand-off: {dropped} undelivered events dropped (more than {KEPT} waiting)"
                );
            }
        }
        Ok(())
    }

    /// Asks for a hand-off at once (through the producer's alarm).
    pub async fn wake(&self) -> worker::Result<()> {
        self.storage.set_alarm(Duration::ZERO).await
    }

    /// Sends the oldest pending events to the outbox; sets the alarm again if more wait or on
    /// failure. Call from the producer's `alarm`.
    pub async fn hand_over(&self, env: &Env) -> worker::Result<()> {
        match self.send_batch(env).await {
            Ok(more) => {
                self.failures.set(0);
                if more {
                    self.storage.set_alarm(Duration::ZERO).await?;
                }
            }
            Err(e) => {
                let failures = self.failures.get().saturating_add(1);
                self.failures.set(failures);
                let wait = retry_policy(env).delay_ms(failures, jitter()?);
                worker::console_error!("outbox hand-off failed ({failures} in a row), retrying in {wait} ms: {e}");
                self.storage.set_alarm(Duration::from_millis(wait)).await?;
            }
        }
        Ok(())
    }

    /// Hands over one batch; whether more events wait.
    async fn send_batch(&self, env: &Env) -> worker::Result<bool> {
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT seq, event FROM outbox_pending ORDER BY seq LIMIT ?", vec![BATCH.into()])?
            .to_array()?;
        let Some(last) = rows.last().map(|row| row.seq) else {
            return Ok(false);
        };
        let events: Vec<Event> = rows
            .iter()
            .filter_map(|row| {
                serde_json::from_str(&row.event)
                    .inspect_err(|e| {
                        worker::console_error!("outbox hand-off: dropping unreadable event {}: {e}", row.seq)
                    })
                    .ok()
            })
            .collect();
        enqueue(env, &events).await?;
        self.sql.exec("DELETE FROM outbox_pending WHERE seq <= ?", vec![last.into()])?;
        Ok(rows.len() as i64 == BATCH)
    }
}
