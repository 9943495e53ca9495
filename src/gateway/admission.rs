//! Step 6 of a call: admission by the key's ledger object, per call or from this isolate's
//! lease ([`super::edge_leases`]), and, once the call ends, its settle: sent to the object for
//! a call it admitted, counted in the isolate for a leased one (reported with the next lease
//! message, or by a flush within [`FLUSH_MS`](crate::budget::FLUSH_MS), from the call's
//! settlement task in `waitUntil`).
//!
//! Which keys: only a leasable key ([`KeyRecord::leasable`]: every limit lives in the key's own
//! counters or its budgets' — its windows, `max_in_flight` and its spend caps of any period and
//! mode, and its project's and organisation's budgets, which its object covers each slice from;
//! no model-pattern or end-user limits — and its rules do not say `admission: exact`) is leased,
//! once hot; every other key is asked per call, exactly as without edge leases (scopes are
//! counted by the object per call). Lease messages carry the record's budgets. A leased call
//! reserves the same estimate from the slice as a per-call one reserves at the object
//! ([`Metering::reserve`](crate::gateway::metering::Metering::reserve)), so a capped key's call
//! is never billed more than it reserved whichever way it was admitted. The key's object checks
//! leasability from the limits it holds and answers `Stopped` to a lease of a key that is not
//! leasable.
//!
//! Fail closed: an object that cannot be reached, or answers nothing usable, admits nothing
//! (503 `ledger_unavailable`). A lease refused by a limit answers the call with that refusal
//! (one object call). A lease message that got no usable answer (stale, the object stopped
//! granting because the key was revoked, or declined for a reason of its own:
//! [`LeaseOutcome::Declined`](crate::budget::LeaseOutcome::Declined)) falls back to asking for
//! the call alone, which answers why or admits it; so does a call that finds another call's
//! message on its way, or that sent [`MAX_ASKS`] messages. A limit's refusal of a call asked
//! alone recalls the isolate's own slice first ([`Admit::recall`]) and asks once more.

use crate::budget::{CallTicket, Received};
use crate::error::{ApiError, Code};
use crate::gateway::call::ledger_unavailable;
use crate::gateway::edge_leases::{EdgeAdmission, EdgeLeases};
use crate::gateway::held_refusals::{Held, HeldRefusals};
use crate::gateway::metering::{Ending, Metering};
use crate::gateway::ports::{KeyLedger, Runtime};
use crate::gateway::settlement;
use crate::ledger::{Command, Refusal, Reply};
use crate::limits::{Charge, Headroom, Limits, ScopeLimits};
use crate::policy::{BudgetLink, KeyRecord};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The lease messages one call sends before it is asked of the object alone (each new slice
/// taken by other calls before it).
const MAX_ASKS: usize = 4;
/// How long a recall waits for a lease message on its way, and how often it looks whether the
/// reply came.
const WAIT_MS: u64 = 1_000;
const POLL_MS: u64 = 2;

/// A call let through.
pub enum Admitted {
    /// By the key's object, as reservation `reservation_id`.
    ByObject { reservation_id: u64, headroom: Headroom },
    /// From this isolate's lease.
    Leased { ticket: CallTicket, headroom: Option<Headroom> },
}

impl Admitted {
    /// What is left, for the limit headers (a leased call: as of the object's latest reply).
    pub fn headroom(&self) -> Option<&Headroom> {
        match self {
            Admitted::ByObject { headroom, .. } => Some(headroom),
            Admitted::Leased { headroom, .. } => headroom.as_ref(),
        }
    }
}

/// Admission's answer: let through, or refused with this answer.
pub enum Outcome {
    Admitted(Admitted),
    Refused(ApiError),
}

/// What the key's record tells its object with every command.
#[derive(Clone)]
struct Carried {
    secret_version: u32,
    limits: Limits,
    policy_version: u64,
    scopes: ScopeLimits,
    /// The budgets above the key: its object covers each slice at every level.
    budgets: Vec<BudgetLink>,
}

/// Admits one call of the key `record` describes, at its object `object` (the ledger's name);
/// `command` is the call's `Admit` for asking the object alone.
pub struct Admit<'a, L, R> {
    pub command: Command,
    pub ledger: &'a L,
    pub runtime: &'a R,
    pub object: &'a str,
    pub record: &'a KeyRecord,
    pub leases: &'a Rc<RefCell<EdgeLeases>>,
    pub held_refusals: &'a RefCell<HeldRefusals>,
}

impl<L: KeyLedger, R: Runtime> Admit<'_, L, R> {
    /// Admits the call that arrived at `arrived_ms`. The isolate's slices are used at the time
    /// read when each step runs ([`Admit::now_ms`]), so a slice's end is its end in real time
    /// however long the call's body took to arrive or a message took to be answered.
    pub async fn run(&self, metering: &Metering, arrived_ms: u64) -> Result<Outcome, ApiError> {
        let exact = !self.record.leasable();
        let secret_version = self.record.secret_version;
        let mut asked = 0;
        loop {
            let now_ms = self.now_ms(arrived_ms);
            let admission =
                self.leases.borrow_mut().admission(self.object, exact, secret_version, metering.ask, now_ms);
            let message = match admission {
                EdgeAdmission::Leased(ticket) => return Ok(self.leased(ticket)),
                EdgeAdmission::Refused(denial) => return Ok(Outcome::Refused(denial.into_api_error(now_ms))),
                EdgeAdmission::Ask(message) if asked < MAX_ASKS => message,
                EdgeAdmission::Exact | EdgeAdmission::Wait | EdgeAdmission::Ask(_) => break,
            };
            asked += 1;
            let reply = match self.ledger.send(&lease_command(&self.carried(), message)).await {
                Ok(Reply::Lease { reply }) => reply,
                Ok(_) => return Err(no_admission()),
                Err(_) => return Err(ledger_unavailable()),
            };
            let now_ms = self.now_ms(arrived_ms);
            let received = self.leases.borrow_mut().receive(self.object, reply, now_ms);
            match received {
                // Admitted from the new slice on the next round.
                Received::Granted => {}
                // A limit (or the object's bound on the calls it remembers, which the call asked
                // alone meets too): answered here, one object call.
                Received::Refused(denial) => return Ok(Outcome::Refused(denial.into_api_error(now_ms))),
                // The object's own reason (the isolates it remembers, a budget above the key
                // that cannot cover a slice), or nothing usable: the call is asked alone.
                Received::Declined | Received::Stopped | Received::Reported | Received::Ignored => break,
            }
        }
        self.by_object(self.now_ms(arrived_ms)).await
    }

    /// The time now: the runtime's clock, never before the call arrived (`arrived_ms`).
    fn now_ms(&self, arrived_ms: u64) -> u64 {
        self.runtime.now_ms().max(arrived_ms)
    }

    fn leased(&self, ticket: CallTicket) -> Outcome {
        Outcome::Admitted(Admitted::Leased { ticket, headroom: self.leases.borrow().headroom(self.object) })
    }

    fn carried(&self) -> Carried {
        Carried {
            secret_version: self.record.secret_version,
            limits: self.record.rules.limits.clone(),
            policy_version: self.record.policy_version,
            scopes: self.record.rules.scopes(),
            budgets: self.record.budgets.clone(),
        }
    }

    /// The object admits (or refuses) this call alone. A limit's refusal while this isolate
    /// holds a slice of the key may be that slice's doing: the slice is given back and the call
    /// asked once more (so one isolate's calls never miss headroom its own slice holds).
    async fn by_object(&self, now_ms: u64) -> Result<Outcome, ApiError> {
        let mut reply = self.admit_alone().await?;
        if matches!(&reply, Reply::Refused(refusal) if refusal.error.status() == 429) && self.recall(now_ms).await? {
            reply = self.admit_alone().await?;
        }
        match reply {
            Reply::Admitted { reservation_id, headroom } => {
                Ok(Outcome::Admitted(Admitted::ByObject { reservation_id, headroom }))
            }
            Reply::Refused(Refusal { error, hold_until_ms }) => {
                if let Some(until_ms) = hold_until_ms {
                    self.held_refusals.borrow_mut().hold(self.object, Held { until_ms, error: error.clone() }, now_ms);
                }
                Ok(Outcome::Refused(error))
            }
            Reply::Done
            | Reply::Report { .. }
            | Reply::Lease { .. }
            | Reply::Quota(_)
            | Reply::History { .. }
            | Reply::NeedsLease { .. }
            | Reply::NeedsDirect { .. } => Err(no_admission()),
        }
    }

    async fn admit_alone(&self) -> Result<Reply, ApiError> {
        self.ledger.send(&self.command).await.map_err(|_| ledger_unavailable())
    }

    /// Gives this isolate's slice of the key back to its object (waiting, on its own timer, for
    /// a message on its way first); answers whether it did.
    async fn recall(&self, now_ms: u64) -> Result<bool, ApiError> {
        let mut waited = 0;
        loop {
            let give_back = self.leases.borrow_mut().give_back(self.object, now_ms);
            let message = match give_back {
                EdgeAdmission::Ask(message) => message,
                EdgeAdmission::Wait if waited < WAIT_MS => {
                    waited += POLL_MS;
                    self.runtime.sleep(POLL_MS).await;
                    continue;
                }
                _ => return Ok(false),
            };
            let reply = match self.ledger.send(&lease_command(&self.carried(), message)).await {
                Ok(Reply::Lease { reply }) => reply,
                Ok(_) => return Err(no_admission()),
                Err(_) => return Err(ledger_unavailable()),
            };
            self.leases.borrow_mut().receive(self.object, reply, now_ms);
            return Ok(true);
        }
    }

    /// What settling the admitted call needs, borrowing nothing ([`Settle::finish`]).
    pub fn settle(&self, admitted: &Admitted) -> Settle {
        Settle {
            carried: self.carried(),
            leases: Rc::clone(self.leases),
            object: self.object.to_owned(),
            admitted: match admitted {
                Admitted::ByObject { reservation_id, .. } => Err(*reservation_id),
                Admitted::Leased { ticket, .. } => Ok(*ticket),
            },
        }
    }
}

/// How an admitted call is settled.
pub struct Settle {
    carried: Carried,
    leases: Rc<RefCell<EdgeLeases>>,
    object: String,
    /// A leased call's ticket, or the object's reservation.
    admitted: Result<CallTicket, u64>,
}

impl Settle {
    /// `finish` of [`settlement::open`]: the ending sent to `ledger` as a `Settle` or `Release`
    /// of the object's reservation; or, for a leased call, counted in the isolate, the first
    /// unreported end flushing the holder's reports once `nap` resolves (it resolves
    /// [`FLUSH_MS`](crate::budget::FLUSH_MS) after it is first polled, with the time then). A
    /// slice still open after that flush (asked after the settle that scheduled it) is given back
    /// by a second flush once `then` resolves ([`EDGE_LEASE_MS`](crate::budget::EDGE_LEASE_MS)
    /// later: past the end of any slice open at the first), so a burst that ends mid-slice
    /// leaves nothing held at the object.
    pub fn finish<L, N, M>(
        self,
        metering: Metering,
        ledger: L,
        (nap, then): (N, M),
        now_ms: u64,
    ) -> impl FnOnce(Ending) -> Pin<Box<dyn Future<Output = ()>>> + 'static
    where
        L: KeyLedger + 'static,
        N: Future<Output = u64> + 'static,
        M: Future<Output = u64> + 'static,
    {
        let Settle { carried, leases, object, admitted } = self;
        move |ending| match admitted {
            Err(reservation_id) => {
                let command = match metering.settle(ending) {
                    Some(actual) => Command::Settle {
                        reservation_id,
                        limits: carried.limits,
                        policy_version: carried.policy_version,
                        scopes: carried.scopes,
                        actual,
                        usage: ending.usage(),
                    },
                    None => Command::Release { reservation_id },
                };
                Box::pin(settlement::send(ledger, command))
            }
            Ok(ticket) => Box::pin(async move {
                let actual = metering.settle(ending).unwrap_or(Charge::ZERO);
                if !leases.borrow_mut().settle(&object, ticket, actual, now_ms) {
                    return;
                }
                flush(&leases, &object, &ledger, &carried, nap.await).await;
                if leases.borrow().flush_pending(&object) {
                    flush(&leases, &object, &ledger, &carried, then.await).await;
                }
            }),
        }
    }
}

/// Sends the flush of `object`'s holder at `now_ms`, if it has one, and takes the reply.
async fn flush(leases: &RefCell<EdgeLeases>, object: &str, ledger: &impl KeyLedger, carried: &Carried, now_ms: u64) {
    let Some(message) = leases.borrow_mut().flush(object, now_ms) else { return };
    if let Ok(Reply::Lease { reply }) = ledger.send(&lease_command(carried, message)).await {
        leases.borrow_mut().receive(object, reply, now_ms);
    }
}

fn lease_command(carried: &Carried, message: crate::budget::HolderMessage) -> Command {
    Command::Lease {
        secret_version: carried.secret_version,
        limits: carried.limits.clone(),
        policy_version: carried.policy_version,
        message,
        budgets: carried.budgets.clone(),
    }
}

fn no_admission() -> ApiError {
    ApiError::new(Code::LedgerUnavailable, "The ledger gave no admission.")
}
