//! Applying the registry's pending work ([`crate::admin::work`]) to KV and the ledger objects,
//! and the alarm that retries it.
//!
//! Flow: after a change, the registry calls [`Propagator::drain`]: one drain at a time (a
//! second caller waits for the first, whose passes pick its rows up too) → passes over the due
//! rows in id order: apply, delete on success; on failure record the error and the retry time
//! ([`retry_delay_ms`]), and skip the rest of that lane → set the alarm for the next due row or
//! the next end of a rotation's grace period, whichever comes first (never later than an alarm
//! already set, which the event hand-off may own too).
//!
//! A drain makes at most [`PASSES`] passes of [`ROWS_PER_PASS`] rows, bounding the subrequests
//! of one invocation; what is left is due at once and taken up by the alarm.

use super::keys::Bounds;
use super::store::{Store, WorkRow};
use crate::admin::key::Key;
use crate::admin::work::{retry_delay_ms, Work};
use crate::edge::key_ledger_stub::KeyLedgerStub;
use crate::ledger::{Command, Reply};
use crate::policy::key_hash::record_name_of_hash;
use futures_util::lock::Mutex;
use std::collections::HashSet;
use worker::{Date, Env, ScheduledTime, Storage};

const ROWS_PER_PASS: usize = 50;
const PASSES: usize = 4;

pub struct Propagator {
    lock: Mutex<()>,
}

impl Propagator {
    pub fn new() -> Propagator {
        Propagator { lock: Mutex::new(()) }
    }

    /// Applies due work, then sets the alarm (at once if `events_queued`, for their hand-off).
    /// Failures stay recorded for the alarm; they never fail the caller (the registry holds
    /// the change either way).
    pub async fn drain(&self, store: &Store, env: &Env, storage: &Storage, events_queued: bool) {
        let _one_at_a_time = self.lock.lock().await;
        for _ in 0..PASSES {
            match self.pass(store, env).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    worker::console_error!("registry work: {e}");
                    break;
                }
            }
        }
        let now = Date::now().as_millis();
        if let Err(e) = schedule(store, storage, events_queued.then_some(now)).await {
            worker::console_error!("registry alarm: {e}");
        }
    }

    /// One pass; whether anything was due.
    async fn pass(&self, store: &Store, env: &Env) -> Result<bool, String> {
        let now = Date::now().as_millis();
        let rows = store.due_work(now, ROWS_PER_PASS).map_err(|e| e.message)?;
        let mut failed_lanes: HashSet<String> = HashSet::new();
        for row in &rows {
            if failed_lanes.contains(&row.lane) {
                continue;
            }
            match apply(store, env, row).await {
                Ok(()) => store.work_done(row.id),
                Err(error) => {
                    worker::console_warn!("registry work {} ({}) failed, will retry: {error}", row.id, row.lane);
                    failed_lanes.insert(row.lane.clone());
                    let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                    store.work_failed(row.id, &error, Date::now().as_millis() + retry_delay_ms(attempts))
                }
            }
            .map_err(|e| e.message)?;
        }
        Ok(!rows.is_empty())
    }
}

async fn apply(store: &Store, env: &Env, row: &WorkRow) -> Result<(), String> {
    let work: Work = serde_json::from_str(&row.work).map_err(|e| format!("unreadable work: {e}"))?;
    match work {
        Work::Project { key_id } => project(store, env, &load(store, &key_id)?).await,
        Work::Control { key_id, control } => tell(env, &key_id, Command::Control { control }).await,
        Work::PushLimits { key_id } => {
            let key = load(store, &key_id)?;
            let limits = key.effective(bounds(store, &key)?.get()).limits;
            tell(env, &key_id, Command::PushLimits { limits }).await
        }
    }
}

fn load(store: &Store, key_id: &str) -> Result<Key, String> {
    store.key(key_id).map_err(|e| e.message)?.ok_or_else(|| format!("key {key_id} is gone"))
}

fn bounds(store: &Store, key: &Key) -> Result<Bounds, String> {
    Bounds::load(store, &key.project).map_err(|e| e.message)
}

/// Writes the key's live secrets' records to KV and deletes the others (then forgets them).
async fn project(store: &Store, env: &Env, key: &Key) -> Result<(), String> {
    let now = Date::now().as_millis();
    let plan = store.secrets(&key.id).map_err(|e| e.message)?.project(key.status, now);
    let bounds = bounds(store, key)?;
    let kv = env.kv("KEYS").map_err(|e| e.to_string())?;
    for (hash, version) in &plan.put {
        let record = serde_json::to_string(&key.record(*version, bounds.get())).expect("records serialize");
        kv.put(&record_name_of_hash(hash), record)
            .map_err(|e| e.to_string())?
            .execute()
            .await
            .map_err(|e| e.to_string())?;
    }
    for hash in &plan.delete {
        kv.delete(&record_name_of_hash(hash)).await.map_err(|e| e.to_string())?;
    }
    store.forget_secrets(&plan.delete).map_err(|e| e.message)
}

async fn tell(env: &Env, key_id: &str, command: Command) -> Result<(), String> {
    let ledger = KeyLedgerStub::for_key(env, key_id).map_err(|e| e.message)?;
    match ledger.call(&command).await.map_err(|e| e.message)? {
        Reply::Done => Ok(()),
        other => Err(format!("unexpected ledger answer {other:?}")),
    }
}

/// Sets the alarm for the next due work, grace end or `also_at`, unless an earlier alarm is set.
async fn schedule(store: &Store, storage: &Storage, also_at: Option<u64>) -> Result<(), String> {
    let now = Date::now().as_millis();
    let work = store.next_work().map_err(|e| e.message)?;
    let grace = store.next_grace_end(now).map_err(|e| e.message)?;
    let Some(at) = work.into_iter().chain(grace).chain(also_at).min() else { return Ok(()) };
    let current = storage.get_alarm().await.map_err(|e| e.to_string())?;
    if current.is_some_and(|set| set as u64 <= at) {
        return Ok(());
    }
    let offset = at.saturating_sub(now) as i64;
    storage.set_alarm(ScheduledTime::from(offset)).await.map_err(|e| e.to_string())
}
