//! `KeyLedger`, the Durable Object that holds one key's counters (one object per key id).
//!
//! Flow of a call: read the command → one synchronous step of the pure [`KeyState`] (no `.await`
//! between reading the state and writing it back, so concurrent calls cannot interleave inside
//! it) → persist the state as one SQLite row and append any spend events → answer.
//! The state is loaded from SQLite once per object instance and then kept in memory.

use crate::key_object::{Command, KeyState};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

/// Spend events kept for delivery; older ones are dropped beyond this many.
const EVENTS_KEPT: i64 = 1000;

#[durable_object]
pub struct KeyLedger {
    sql: SqlStorage,
    state: RefCell<Option<KeyState>>,
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

    fn append_events(&self, now_ms: u64, events: &[impl serde::Serialize]) -> Result<()> {
        for event in events {
            let json = serde_json::to_string(event).map_err(|e| worker::Error::RustError(e.to_string()))?;
            self.sql.exec(
                "INSERT INTO events (at_ms, json) VALUES (?, ?)",
                vec![(now_ms as i64).into(), json.into()],
            )?;
        }
        if !events.is_empty() {
            self.sql.exec(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                vec![EVENTS_KEPT.into()],
            )?;
        }
        Ok(())
    }
}

impl DurableObject for KeyLedger {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, json TEXT NOT NULL)", None)
            .expect("create state table");
        sql.exec(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, json TEXT NOT NULL)",
            None,
        )
        .expect("create events table");
        KeyLedger { sql, state: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = req.json().await?;
        let now_ms = worker::Date::now().as_millis();
        // From here to the answer nothing awaits: the step is atomic within the object.
        let mut slot = self.state.borrow_mut();
        let state = match slot.as_mut() {
            Some(state) => state,
            None => slot.insert(self.load()?),
        };
        let handled = state.handle(command, now_ms);
        if handled.changed {
            self.save(state)?;
        }
        self.append_events(now_ms, &handled.events)?;
        Response::from_json(&handled.reply)
    }
}
