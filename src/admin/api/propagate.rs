//! Applying the registry's pending work ([`crate::admin::work`]) to KV and the ledger objects,
//! and when to try again.
//!
//! Flow: after a change (and from the registry's alarm), [`drain`] runs: passes over the due
//! rows in id order: apply, delete on success; on failure record the error and the retry time
//! ([`retry_delay_ms`]), and skip the rest of that lane → answer when the registry should wake
//! next: the next due row or the next end of a rotation's grace period, whichever comes first
//! (the edge sets its alarm then, unless an earlier one is set).
//!
//! A drain makes at most `PASSES` passes of `ROWS_PER_PASS` rows, bounding the subrequests
//! of one invocation; what is left is due at once and taken up by the alarm. So an
//! organisation's suspension, one `Control` row per key, reaches at most [`ROWS_PER_DRAIN`]
//! ledger objects per invocation (the change's own, then one alarm after another). The caller runs
//! one drain at a time ([`super::Registry`] holds the lock).

use super::keys::Bounds;
use super::ports::{KeyRecords, LedgerAddress, LedgerObjects};
use crate::admin::key::Key;
use crate::admin::org::OrgState;
use crate::admin::store::{Store, WorkRow};
use crate::admin::work::{retry_delay_ms, Work};
use crate::ledger::{Command, Reply};
use crate::naming::org_record;
use crate::policy::key_hash::record_name_of_hash;
use std::collections::HashSet;

const ROWS_PER_PASS: usize = 50;
const PASSES: usize = 4;
/// The most rows one drain applies.
pub const ROWS_PER_DRAIN: usize = ROWS_PER_PASS * PASSES;

/// The stores pending work is applied to, and the clock it is timed by.
pub struct Targets<'a, K, L> {
    pub records: &'a K,
    pub ledgers: &'a L,
    /// Unix milliseconds now (read again after every await).
    pub clock: &'a dyn Fn() -> u64,
}

/// What a drain leaves: when to wake for what waits, and what failed (for the log; the
/// failures of work rows are also recorded on the rows, for their retry).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub wake_at: Option<u64>,
    pub failures: Vec<String>,
}

/// Applies due work, then answers when to wake (at once if `events_queued`, for their
/// hand-off). Failures stay recorded for the retry; they never fail the caller (the registry
/// holds the change either way).
pub async fn drain<K: KeyRecords, L: LedgerObjects>(
    store: &Store,
    targets: &Targets<'_, K, L>,
    events_queued: bool,
) -> Drained {
    let mut failures = Vec::new();
    for _ in 0..PASSES {
        match pass(store, targets, &mut failures).await {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                failures.push(format!("registry work: {e}"));
                break;
            }
        }
    }
    let now = (targets.clock)();
    let wake_at = wake_at(store, now, events_queued.then_some(now)).unwrap_or_else(|e| {
        failures.push(format!("registry alarm: {e}"));
        None
    });
    Drained { wake_at, failures }
}

/// One pass; whether anything was due.
async fn pass<K: KeyRecords, L: LedgerObjects>(
    store: &Store,
    targets: &Targets<'_, K, L>,
    failures: &mut Vec<String>,
) -> Result<bool, String> {
    let rows = store.due_work((targets.clock)(), ROWS_PER_PASS).map_err(|e| e.message)?;
    let mut failed_lanes: HashSet<String> = HashSet::new();
    for row in &rows {
        if failed_lanes.contains(&row.lane) {
            continue;
        }
        match apply(store, targets, row).await {
            Ok(()) => store.work_done(row.id),
            Err(error) => {
                failures.push(format!("registry work {} ({}) failed, will retry: {error}", row.id, row.lane));
                failed_lanes.insert(row.lane.clone());
                let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                store.work_failed(row.id, &error, (targets.clock)() + retry_delay_ms(attempts))
            }
        }
        .map_err(|e| e.message)?;
    }
    Ok(!rows.is_empty())
}

async fn apply<K: KeyRecords, L: LedgerObjects>(
    store: &Store,
    targets: &Targets<'_, K, L>,
    row: &WorkRow,
) -> Result<(), String> {
    let work: Work = serde_json::from_str(&row.work).map_err(|e| format!("unreadable work: {e}"))?;
    match work {
        Work::Project { key_id } => project(store, targets, &load(store, &key_id)?).await,
        Work::Control { key_id, control } => {
            tell(targets.ledgers, &load(store, &key_id)?, Command::Control { control }).await
        }
        Work::PushLimits { key_id } => {
            let key = load(store, &key_id)?;
            let limits = key.effective(bounds(store, &key)?.get()).limits;
            let policy_version = store.policy_version(&key_id).map_err(|e| e.message)?;
            let scopes = key.policy.scopes();
            tell(targets.ledgers, &key, Command::PushLimits { limits, policy_version, scopes }).await
        }
        Work::ProjectOrg => project_org(store, targets.records).await,
        Work::Purge => match store.other_work(row.id).map_err(|e| e.message)? {
            0 => store.purge_deleted_org().map_err(|e| e.message),
            left => Err(format!("the deleted organisation's purge waits for {left} other rows")),
        },
    }
}

fn load(store: &Store, key_id: &str) -> Result<Key, String> {
    store.key(key_id).map_err(|e| e.message)?.ok_or_else(|| format!("key {key_id} is gone"))
}

fn bounds(store: &Store, key: &Key) -> Result<Bounds, String> {
    Bounds::load(store, &key.project).map_err(|e| e.message)
}

/// Writes the key's live secrets' records to KV and deletes the others (then forgets them).
async fn project<K: KeyRecords, L>(store: &Store, targets: &Targets<'_, K, L>, key: &Key) -> Result<(), String> {
    let plan = store.secrets(&key.id).map_err(|e| e.message)?.project(key.status, (targets.clock)());
    let bounds = bounds(store, key)?;
    let policy_version = store.policy_version(&key.id).map_err(|e| e.message)?;
    for (hash, version) in &plan.put {
        let record = key.record(*version, policy_version, bounds.get());
        let record = serde_json::to_string(&record).expect("records serialize");
        targets.records.put(&record_name_of_hash(hash), record).await?;
    }
    for hash in &plan.delete {
        targets.records.delete(&record_name_of_hash(hash)).await?;
    }
    store.forget_secrets(&plan.delete).map_err(|e| e.message)
}

/// Writes the organisation's record to KV, or deletes it once the organisation is deleted.
async fn project_org(store: &Store, records: &impl KeyRecords) -> Result<(), String> {
    let state = store.org_state().map_err(|e| e.message)?.unwrap_or_else(OrgState::legacy);
    let name = org_record(&state.id);
    if state.deleted {
        return records.delete(&name).await;
    }
    records.put(&name, serde_json::to_string(&state.record()).expect("records serialize")).await
}

async fn tell(ledgers: &impl LedgerObjects, key: &Key, command: Command) -> Result<(), String> {
    match ledgers.call(&LedgerAddress::of(key), &command).await.map_err(|e| e.message)? {
        Reply::Done => Ok(()),
        other => Err(format!("unexpected ledger answer {other:?}")),
    }
}

/// The earliest of the next due work, the next grace end after `now` and `also_at`.
fn wake_at(store: &Store, now: u64, also_at: Option<u64>) -> Result<Option<u64>, String> {
    let work = store.next_work().map_err(|e| e.message)?;
    let grace = store.next_grace_end(now).map_err(|e| e.message)?;
    Ok(work.into_iter().chain(grace).chain(also_at).min())
}
