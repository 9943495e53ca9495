//! Durable hand-off of events from a producer Durable Object (a key's ledger, the registry) to
//! the outbox, over the core's [`EventQueue`] in the producer's own SQLite.
//!
//! Flow: [`PendingEvents::push`] stores the events synchronously, in the same step as the state
//! change that raised them (so both are kept or neither) → [`PendingEvents::wake`] sets the
//! producer's alarm → the producer's `alarm` calls [`PendingEvents::hand_over`], which sends the
//! oldest pending events to the outbox in one batch and deletes them once it has acknowledged;
//! on failure the alarm is set again with backoff ([`crate::events::RetryPolicy::delay_ms`],
//! never giving up). Bounded by [`crate::events::pending::KEPT`].

use super::client::enqueue;
use super::config::retry_policy;
use super::random::jitter;
use crate::edge::sql::ObjectSql;
use crate::events::pending::{EventQueue, KEPT};
use crate::events::Event;
use std::cell::Cell;
use std::time::Duration;
use worker::{Env, State, Storage};

/// Events per hand-off, at most.
const BATCH: i64 = 100;

pub struct PendingEvents {
    queue: EventQueue,
    storage: Storage,
    /// Failed hand-offs in a row (in memory: a restarted object starts again from the base wait).
    failures: Cell<u32>,
}

impl PendingEvents {
    /// The producer's queue, its table created if missing.
    pub fn open(state: &State) -> worker::Result<PendingEvents> {
        let storage = state.storage();
        let queue = EventQueue::open(ObjectSql::boxed(storage.sql(), "outbox hand-off"))?;
        Ok(PendingEvents { queue, storage, failures: Cell::new(0) })
    }

    /// The queue itself, for the core's steps.
    #[cfg(feature = "control-plane")]
    pub fn queue(&self) -> &EventQueue {
        &self.queue
    }

    /// Queues `events` (synchronous; call [`PendingEvents::wake`] after the step).
    pub fn push(&self, events: &[Event]) -> worker::Result<()> {
        let dropped = self.queue.push(events)?;
        if dropped > 0 {
            worker::console_error!("outbox hand-off: {dropped} undelivered events dropped (more than {KEPT} waiting)");
        }
        Ok(())
    }

    /// Asks for a hand-off at once (through the producer's alarm).
    pub async fn wake(&self) -> worker::Result<()> {
        self.storage.set_alarm(Duration::ZERO).await
    }

    /// Sends the oldest pending events to organisation `org_id`'s outbox; sets the alarm again
    /// if more wait or on failure. Call from the producer's `alarm`.
    pub async fn hand_over_to(&self, env: &Env, org_id: &str) -> worker::Result<()> {
        match self.send_batch(env, org_id).await {
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
    async fn send_batch(&self, env: &Env, org_id: &str) -> worker::Result<bool> {
        let waiting = self.queue.oldest(BATCH)?;
        let Some(last) = waiting.last else {
            return Ok(false);
        };
        for seq in &waiting.unreadable {
            worker::console_error!("outbox hand-off: dropping unreadable event {seq}");
        }
        enqueue(env, org_id, &waiting.events).await?;
        self.queue.acknowledge(last)?;
        Ok(waiting.full)
    }
}
