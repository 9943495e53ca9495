//! `KeyLedger`, the Durable Object that holds one key's counters (one object per key, named
//! `<org_id>/<key_id>`, or by the key id alone for a key from before organisations:
//! [`naming::ledger_object`]).
//!
//! Flow of a call: read the command → one synchronous step of the pure [`KeyState`] (no `.await`
//! between reading the state and writing it back, so concurrent calls cannot interleave inside
//! it) → persist the state as one SQLite row and queue any spend events, as `usage.*` webhook
//! events, in the same step → answer. Queued events reach the outbox through the object's
//! alarm ([`PendingEvents`]), retried until its organisation's outbox has them (the organisation
//! read from the object's own name: [`naming::ledger_object_owner`]).
//! The state is loaded from SQLite once per object instance and then kept in memory.
//!
//! End users: each end user's ledger is a row of its own (`end_users`, its JSON the format of a
//! [`Ledger`]), loaded when a command first needs it ([`KeyState::end_user_to_load`]) and written
//! back, alone, when a command changed it, in the same step as the state, so a call costs the
//! same whatever the number of end users the key tracks.

use super::outbox::{new_event_id, PendingEvents};
use crate::events::usage_event;
use crate::ledger::{Command, Handled, KeyState};
use crate::limits::Ledger;
use crate::naming;
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

#[durable_object]
pub struct KeyLedger {
    sql: SqlStorage,
    state: RefCell<Option<KeyState>>,
    pending: PendingEvents,
    /// The id of the key this object counts for (its events name it).
    key_id: String,
    /// Its organisation, whose outbox receives its events.
    org_id: String,
    env: Env,
}

#[derive(serde::Deserialize)]
struct StateRow {
    json: String,
}

impl KeyLedger {
    fn load(&self) -> Result<KeyState> {
        let rows: Vec<StateRow> = self.sql.exec("SELECT json FROM state WHERE id = 1", None)?.to_array()?;
        match rows.first() {
            Some(row) => serde_json::from_str(&row.json).map_err(|e| worker::Error::RustError(e.to_string())),
            None => Ok(KeyState::default()),
        }
    }

    fn save(&self, state: &KeyState) -> Result<()> {
        let json = serde_json::to_string(state).map_err(|e| worker::Error::RustError(e.to_string()))?;
        self.sql.exec("INSERT OR REPLACE INTO state (id, json) VALUES (1, ?)", vec![json.into()])?;
        Ok(())
    }

    /// The stored ledger of `end_user`; `None` for an end user the key does not track yet.
    fn load_end_user(&self, end_user: &str) -> Result<Option<Ledger>> {
        let rows: Vec<StateRow> =
            self.sql.exec("SELECT json FROM end_users WHERE id = ?", vec![end_user.into()])?.to_array()?;
        rows.first()
            .map(|row| serde_json::from_str(&row.json).map_err(|e| worker::Error::RustError(e.to_string())))
            .transpose()
    }

    fn save_end_user(&self, end_user: &str, ledger: &Ledger) -> Result<()> {
        let json = serde_json::to_string(ledger).map_err(|e| worker::Error::RustError(e.to_string()))?;
        self.sql
            .exec("INSERT OR REPLACE INTO end_users (id, json) VALUES (?, ?)", vec![end_user.into(), json.into()])?;
        Ok(())
    }

    /// One atomic step: the command against the state (the end user's ledger it reads loaded
    /// first), the state and that ledger saved if they changed, its spend events queued for the
    /// outbox.
    fn step(&self, command: Command, now_ms: u64) -> Result<Handled> {
        let mut slot = self.state.borrow_mut();
        let state = match slot.as_mut() {
            Some(state) => state,
            None => slot.insert(self.load()?),
        };
        if let Some(end_user) = state.end_user_to_load(&command) {
            if let Some(ledger) = self.load_end_user(&end_user)? {
                state.load_end_user(&end_user, ledger);
            }
        }
        let handled = state.handle(command, now_ms);
        let recorded = self.record(state, &handled, now_ms);
        if recorded.is_err() {
            // The change may not be on disk: forget the in-memory copy so the next call reloads.
            *slot = None;
        }
        recorded.map(|()| handled)
    }

    /// Persists a handled command: the state if it changed, and its spend events.
    fn record(&self, state: &KeyState, handled: &Handled, now_ms: u64) -> Result<()> {
        if handled.changed {
            self.save(state)?;
        }
        if let Some((end_user, ledger)) =
            handled.end_user_changed.as_deref().and_then(|id| Some((id, state.end_user_ledger(id)?)))
        {
            self.save_end_user(end_user, ledger)?;
        }
        let events = handled
            .events
            .iter()
            .map(|spend| Ok(usage_event(new_event_id()?, &self.key_id, spend, now_ms)))
            .collect::<Result<Vec<_>>>()?;
        self.pending.push(&events)
    }
}

impl DurableObject for KeyLedger {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, json TEXT NOT NULL)", None)
            .expect("create state table");
        sql.exec("CREATE TABLE IF NOT EXISTS end_users (id TEXT PRIMARY KEY, json TEXT NOT NULL)", None)
            .expect("create end users table");
        let object = state.id().name().unwrap_or_else(|| state.id().to_string());
        let (org_id, key_id) = naming::ledger_object_owner(&object);
        let pending = PendingEvents::open(&state).expect("create the pending events table");
        KeyLedger { sql, state: RefCell::new(None), pending, key_id: key_id.to_owned(), org_id: org_id.to_owned(), env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = req.json().await?;
        let handled = self.step(command, worker::Date::now().as_millis())?;
        if !handled.events.is_empty() {
            // The events are stored; a failed wake-up only delays their hand-over to the next one.
            if let Err(e) = self.pending.wake().await {
                worker::console_error!("ledger: waking the event hand-over failed: {e}");
            }
        }
        Response::from_json(&handled.reply)
    }

    async fn alarm(&self) -> Result<Response> {
        self.pending.hand_over_to(&self.env, &self.org_id).await?;
        Response::ok("")
    }
}
