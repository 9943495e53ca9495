//! `BudgetLedger`, the Durable Object of one budget: a project's (`budget:<org_id>/<project_id>`)
//! or an organisation's (`budget:<org_id>`), [`naming::budget_object_owner`]. A thin adapter
//! over the pure [`BudgetState`].
//!
//! Flow of a call: read the [`BudgetCall`] (a key object's lease message with the limits its
//! record carries, or the registry's pushed limits) → one synchronous step of the state (no
//! `.await` between reading and writing it) → persist the state as one SQLite row and queue its
//! spend events as `usage.*` webhook events (naming the level and project) in the same step →
//! answer. After a lease its alarm runs within [`CATCH_UP_MS`] (`Alarm`: leases whose holders
//! went silent are charged once past their TTL), again while that changes something or more
//! leases were asked meanwhile; it also hands queued events to the organisation's outbox
//! ([`PendingEvents`]).

use super::key_ledger::StateRow;
use crate::budget::{Answered, BudgetCommand, BudgetState};
use crate::edge::outbox::{new_event_id, PendingEvents};
use crate::events::budget_event;
use crate::ledger::budgets::BudgetCall;
use crate::limits::{Level, RESERVATION_TTL_MS};
use crate::naming::{self, DEFAULT_ORG};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State, Storage};

/// How often the alarm catches up while leases are out: a lease's TTL.
const CATCH_UP_MS: u64 = RESERVATION_TTL_MS;

#[durable_object]
pub struct BudgetLedger {
    sql: SqlStorage,
    storage: Storage,
    state: RefCell<Option<BudgetState>>,
    pending: PendingEvents,
    level: Level,
    org_id: String,
    project_id: Option<String>,
    /// Whether a lease was asked since the alarm last ran (in memory: a restarted object
    /// catches up at its holders' next message instead).
    leased_since_alarm: Cell<bool>,
    env: Env,
}

impl BudgetLedger {
    fn load(&self) -> Result<BudgetState> {
        let rows: Vec<StateRow> = self.sql.exec("SELECT json FROM state WHERE id = 1", None)?.to_array()?;
        match rows.first() {
            Some(row) => serde_json::from_str(&row.json).map_err(|e| worker::Error::RustError(e.to_string())),
            None => Ok(BudgetState::new(self.level)),
        }
    }

    /// One atomic step: the call against the state, the state saved if it changed, its spend
    /// events queued for the outbox.
    fn step(&self, call: BudgetCall, now_ms: u64) -> Result<Answered> {
        let mut slot = self.state.borrow_mut();
        let state = match slot.as_mut() {
            Some(state) => state,
            None => slot.insert(self.load()?),
        };
        let answered = call.apply(state, now_ms);
        let recorded = self.record(state, &answered, now_ms);
        if recorded.is_err() {
            // The change may not be on disk: forget the in-memory copy so the next call reloads.
            *slot = None;
        }
        recorded.map(|()| answered)
    }

    fn record(&self, state: &BudgetState, answered: &Answered, now_ms: u64) -> Result<()> {
        if answered.changed {
            let json = serde_json::to_string(state).map_err(|e| worker::Error::RustError(e.to_string()))?;
            self.sql.exec("INSERT OR REPLACE INTO state (id, json) VALUES (1, ?)", vec![json.into()])?;
        }
        let events = answered
            .events
            .iter()
            .map(|event| {
                Ok(budget_event(new_event_id()?, event.level, self.project_id.as_deref(), &event.spend, now_ms))
            })
            .collect::<Result<Vec<_>>>()?;
        self.pending.push(&events)
    }

    /// Sets the alarm `CATCH_UP_MS` from now unless one is set.
    async fn keep_catching_up(&self) -> Result<()> {
        if self.storage.get_alarm().await?.is_none() {
            self.storage.set_alarm(Duration::from_millis(CATCH_UP_MS)).await?;
        }
        Ok(())
    }
}

impl DurableObject for BudgetLedger {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, json TEXT NOT NULL)", None)
            .expect("create state table");
        let object = state.id().name().unwrap_or_default();
        let (org_id, project_id) = naming::budget_object_owner(&object).unwrap_or((DEFAULT_ORG, None));
        let level = if project_id.is_some() { Level::Project } else { Level::Organisation };
        let pending = PendingEvents::open(&state).expect("create the pending events table");
        BudgetLedger {
            sql,
            storage: state.storage(),
            state: RefCell::new(None),
            pending,
            level,
            org_id: org_id.to_owned(),
            project_id: project_id.map(str::to_owned),
            leased_since_alarm: Cell::new(false),
            env,
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call: BudgetCall = req.json().await?;
        let leases = matches!(call.command, BudgetCommand::Lease { .. });
        let answered = self.step(call, worker::Date::now().as_millis())?;
        if !answered.events.is_empty() {
            // The events are stored; a failed wake-up only delays their hand-over to the next one.
            if let Err(e) = self.pending.wake().await {
                worker::console_error!("budget: waking the event hand-over failed: {e}");
            }
        }
        if leases {
            self.leased_since_alarm.set(true);
            self.keep_catching_up().await?;
        }
        Response::from_json(&answered.reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let alarm = BudgetCall { carried: None, command: BudgetCommand::Alarm };
        let caught_up = self.step(alarm, worker::Date::now().as_millis())?.changed;
        let leased = self.leased_since_alarm.replace(false);
        self.pending.hand_over_to(&self.env, &self.org_id).await?;
        if caught_up || leased {
            self.keep_catching_up().await?;
        }
        Response::ok("")
    }
}
