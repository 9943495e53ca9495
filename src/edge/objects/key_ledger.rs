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
//!
//! Budgets (a key under its project's or organisation's budget): when the step answers
//! [`Reply::NeedsLease`], the call takes that level's lease lock ([`Self::lease`]) and steps
//! again (a lease that came while it waited may cover it), else leases from the budget's object
//! and is stepped in the same synchronous step as the lease's reply; what to do after each step
//! and reply is decided by the pure [`LeaseRounds`] (shared with the host fake). A budget
//! object that declines to lease (past its holder bound) admits the call directly (no lock: no
//! holder is involved); its settle, and the release of a direct admission the answer did not
//! keep, are sent from the alarm, at once. A budget object that cannot answer refuses the call 503 `budget_unavailable` (fail
//! closed: nothing beyond the current slice). Settled calls go up with the next lease request,
//! or from the alarm within [`crate::budget::FLUSH_MS`]; the alarm also gives a lease back when
//! it ends, so its unused part returns to the budget at once.

use super::budget_stub::call_budget;
use crate::budget::BudgetReply;
use crate::edge::outbox::{new_event_id, PendingEvents};
use crate::error::ApiError;
use crate::events::usage_event;
use crate::ledger::budgets::BudgetCall;
use crate::ledger::lease_rounds::{budget_unavailable, AfterReply, LeaseRounds, Next};
use crate::ledger::{Command, Handled, KeyState, Reply};
use crate::limits::{Ledger, Level};
use crate::naming;
use crate::policy::BudgetLink;
use futures_util::lock::Mutex;
use std::cell::{Cell, RefCell};
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State, Storage};

#[durable_object]
pub struct KeyLedger {
    sql: SqlStorage,
    storage: Storage,
    state: RefCell<Option<KeyState>>,
    pending: PendingEvents,
    /// The object's name: its holder id toward the budgets above the key.
    name: String,
    /// The id of the key this object counts for (its events name it).
    key_id: String,
    /// Its organisation, whose outbox receives its events.
    org_id: String,
    /// One lease request at a time toward the project's budget, and toward the organisation's.
    leasing: [Mutex<()>; 2],
    /// The alarm this instance set for reports of settled calls, if any.
    flush_alarm_at: Cell<Option<u64>>,
    env: Env,
}

#[derive(serde::Deserialize)]
pub(super) struct StateRow {
    pub(super) json: String,
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

    /// One atomic step: `rounds`' command against the state (with its direct admissions; the
    /// end user's ledger it reads loaded first), the state and that ledger saved if they
    /// changed, its spend events queued for the outbox.
    fn step(&self, rounds: &LeaseRounds, now_ms: u64) -> Result<Handled> {
        self.change(|state| self.handle(state, rounds, now_ms), |state, handled| self.record(state, handled, now_ms))
    }

    /// `rounds`' command against `state`, the ledger of the end user it names loaded first.
    fn handle(&self, state: &mut KeyState, rounds: &LeaseRounds, now_ms: u64) -> Result<Handled> {
        let command = rounds.command();
        if let Some(end_user) = state.end_user_to_load(command) {
            if let Some(ledger) = self.load_end_user(&end_user)? {
                state.load_end_user(&end_user, ledger);
            }
        }
        Ok(state.handle_with_direct(command.clone(), rounds.direct(), now_ms))
    }

    /// One atomic step: `apply` to the state, then `persist`; on a failure to persist the
    /// in-memory copy is forgotten (the change may not be on disk), so the next call reloads.
    fn change<T>(
        &self,
        apply: impl FnOnce(&mut KeyState) -> Result<T>,
        persist: impl FnOnce(&KeyState, &T) -> Result<()>,
    ) -> Result<T> {
        let mut slot = self.state.borrow_mut();
        let state = match slot.as_mut() {
            Some(state) => state,
            None => slot.insert(self.load()?),
        };
        let done = apply(state)?;
        let persisted = persist(state, &done);
        if persisted.is_err() {
            *slot = None;
        }
        persisted.map(|()| done)
    }

    /// A change of the leases, always saved.
    fn change_leases<T>(&self, apply: impl FnOnce(&mut KeyState) -> T) -> Result<T> {
        self.change(|state| Ok(apply(state)), |state, _| self.save(state))
    }

    /// Answers `command`: the steps, leases and direct admissions [`LeaseRounds`] asks for
    /// (this adapter does the I/O: the lease locks, the budget objects' calls, persistence); a
    /// direct admission the answer does not keep is queued for release.
    async fn answer(&self, command: Command) -> Result<Handled> {
        let mut rounds = LeaseRounds::new(command);
        let mut next = rounds.after_step(self.step(&rounds, now())?);
        let handled = loop {
            next = match next {
                Next::Answer(handled) => break handled,
                Next::Lease(link) => self.lease(&link, &mut rounds).await,
                Next::AdmitDirectly(link) => self.admit_directly(&link, &mut rounds).await,
            }
            .unwrap_or_else(|error| Next::Answer(rounds.unanswered(error)));
        };
        let (handled, release) = rounds.finish(handled);
        if !release.is_empty() {
            self.change_leases(|state| state.release_direct(&release))?;
        }
        Ok(handled)
    }

    /// Steps the command holding `link`'s level's lease lock: a lease that came while it waited
    /// may cover it; if not, it leases from the budget's object and steps again in the same
    /// synchronous step as the lease's reply ([`LeaseRounds::after_reply`]). So a call that
    /// holds the lock is decided (or waits for another level), however many calls wait behind it.
    async fn lease(&self, link: &BudgetLink, rounds: &mut LeaseRounds) -> std::result::Result<Next, ApiError> {
        let Some((_, ask)) = rounds.command().budget_ask() else { return Err(budget_unavailable()) };
        let lock = &self.leasing[usize::from(link.level == Level::Organisation)];
        let _one_at_a_time = lock.lock().await;
        let handled = self.step(rounds, now()).map_err(failed)?;
        if !matches!(handled.reply, Reply::NeedsLease { level } if level == link.level) {
            return Ok(rounds.after_step(handled));
        }
        let message = self
            .change_leases(|state| state.lease_request(&self.name, link, ask, now()))
            .map_err(failed)?
            .ok_or_else(budget_unavailable)?;
        let call = BudgetCall::lease(link, message);
        let reply = call_budget(&self.env, &link.object, link.jurisdiction, link.location_hint, &call).await?;
        let BudgetReply::Lease(reply) = reply else { return Err(failed("not a lease reply")) };
        let now_ms = now();
        let stepped = self
            .change(
                |state| match rounds.after_reply(link, state.lease_reply(link.level, reply, now_ms), now_ms) {
                    AfterReply::StepAgain => self.handle(state, rounds, now_ms).map(Ok),
                    AfterReply::Then(next) => Ok(Err(next)),
                },
                |state, stepped| match stepped {
                    Ok(handled) if handled.changed => self.record(state, handled, now_ms),
                    Ok(handled) => self.save(state).and_then(|()| self.record(state, handled, now_ms)),
                    Err(_) => self.save(state),
                },
            )
            .map_err(failed)?;
        Ok(match stepped {
            Ok(handled) => rounds.after_step(handled),
            Err(next) => *next,
        })
    }

    /// Admits the call directly at `link`'s object (its level declined to lease: no lock, no
    /// holder), then steps the command with that admission.
    async fn admit_directly(&self, link: &BudgetLink, rounds: &mut LeaseRounds) -> std::result::Result<Next, ApiError> {
        let Some((_, ask)) = rounds.command().budget_ask() else { return Err(budget_unavailable()) };
        let call = BudgetCall::admit(link, ask);
        let reply = call_budget(&self.env, &link.object, link.jurisdiction, link.location_hint, &call).await?;
        Ok(match rounds.after_direct(link, reply, now()) {
            AfterReply::StepAgain => rounds.after_step(self.step(rounds, now()).map_err(failed)?),
            AfterReply::Then(next) => *next,
        })
    }

    /// Sends the reports that are due to their budgets' objects: ended leases given back,
    /// settled calls (a failed one is sent again later: reports are cumulative).
    async fn flush_budgets(&self) -> Result<()> {
        // Both lease locks, always in this order (a lease holds one at a time): a call that needs
        // a lease waits for the reports' replies rather than find a message on its way.
        let _project = self.leasing[0].lock().await;
        let _organisation = self.leasing[1].lock().await;
        let (flushes, settles) = self.change_leases(|state| (state.budget_flushes(now()), state.direct_settles()))?;
        for (link, call, actual) in settles {
            let settle = BudgetCall::settle(&link, call, actual);
            if let Err(e) = call_budget(&self.env, &link.object, link.jurisdiction, link.location_hint, &settle).await {
                worker::console_error!("key ledger: settling a direct call at {} failed: {}", link.object, e.message);
            }
        }
        for (link, message) in flushes {
            let call = BudgetCall::lease(&link, message);
            match call_budget(&self.env, &link.object, link.jurisdiction, link.location_hint, &call).await {
                Ok(BudgetReply::Lease(reply)) => {
                    self.change_leases(|state| state.lease_reply(link.level, reply, now()))?;
                }
                Ok(other) => worker::console_error!("key ledger: unexpected budget answer {other:?}"),
                Err(e) => worker::console_error!("key ledger: reporting to {} failed: {}", link.object, e.message),
            }
        }
        Ok(())
    }

    /// Sets the alarm for the next report (a lease's end, settled calls), unless this instance
    /// set one as early.
    async fn arm_flush(&self) -> Result<()> {
        let now_ms = now();
        let Some(at) = self.state.borrow().as_ref().and_then(|state| state.next_budget_flush_at(now_ms)) else {
            return Ok(());
        };
        if self.flush_alarm_at.get().is_some_and(|armed| armed <= at) {
            return Ok(());
        }
        self.storage.set_alarm(Duration::from_millis(at.saturating_sub(now_ms))).await?;
        self.flush_alarm_at.set(Some(at));
        Ok(())
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
            .map(|event| Ok(usage_event(new_event_id()?, &self.key_id, &event.scope, &event.spend, now_ms)))
            .collect::<Result<Vec<_>>>()?;
        self.pending.push(&events)
    }
}

fn now() -> u64 {
    worker::Date::now().as_millis()
}

/// 503 `budget_unavailable` for a failure of the leases' I/O, logged.
fn failed(e: impl std::fmt::Display) -> ApiError {
    crate::edge::respond::logged(budget_unavailable(), "key ledger: leases", e)
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
        KeyLedger {
            sql,
            storage: state.storage(),
            state: RefCell::new(None),
            pending,
            key_id: key_id.to_owned(),
            org_id: org_id.to_owned(),
            name: object,
            leasing: [Mutex::new(()), Mutex::new(())],
            flush_alarm_at: Cell::new(None),
            env,
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = req.json().await?;
        let handled = self.answer(command).await?;
        self.arm_flush().await?;
        if !handled.events.is_empty() {
            // The events are stored; a failed wake-up only delays their hand-over to the next one.
            if let Err(e) = self.pending.wake().await {
                worker::console_error!("ledger: waking the event hand-over failed: {e}");
            }
        }
        Response::from_json(&handled.reply)
    }

    async fn alarm(&self) -> Result<Response> {
        self.flush_alarm_at.set(None);
        self.flush_budgets().await?;
        self.pending.hand_over_to(&self.env, &self.org_id).await?;
        self.arm_flush().await?;
        Response::ok("")
    }
}
