//! The pure behaviour of a key's Durable Object: one [`KeyState`] per key id, changed only by
//! [`KeyState::handle`], one command at a time.
//!
//! Flow: the edge sends `Admit` before forwarding a call (revocation is checked first, then the
//! slices of the budgets above the key are tried ([`BudgetHolders`]: a slice that cannot cover
//! the call answers [`Reply::NeedsLease`], which the object's adapter turns into a lease and a
//! second step), then the ledger admits atomically; a call counts at every level or none), then
//! exactly one of `Settle` (the upstream answered; true usage) or `Release` (the upstream
//! failed), which also ends the call at every budget level. The control plane sends `Control` on disable, enable,
//! rotate and delete, `PushLimits` whenever the key's effective limits change, and `Report`
//! (read-only) for usage; `Quota` (read-only, revocation checked) answers `GET /v1/key`. The
//! object persists the state after every change and keeps the spend events for delivery.
//!
//! Scopes inside the key ([`crate::limits::ScopeLedgers`]): an admission names the call's model
//! and end user and carries the scopes' limits (versioned with the key's); the state keeps the
//! model patterns' ledgers and what each admission recorded, while each end user's ledger is
//! stored apart by the object, one row each: [`KeyState::end_user_to_load`] says which row a
//! command needs, [`Handled::end_user_changed`] which one to write back. A settle carries the
//! scopes' limits too, so every scope's spend caps raise their events ([`Handled::events`], each
//! naming its scope).
//!
//! The state is stored as a versioned JSON document ([`STATE_FORMAT`], [`crate::versioned`]):
//! states saved before versions existed are version 1; version 2 replaced `pushed_limits` by
//! `limits` (the newest versioned limits seen; a version 1 state's pushed limits read as
//! version 0); version 3 added `last_used_at` (when the object last admitted a call: Unix ms,
//! absent before the first; shown by `Report`). The ledger's record of expired reservations (late settles) is a member of
//! `ledger` with a default: a build that does not know it drops it, which only charges late
//! settles at their estimate. Later versions: [`STATE_FORMAT`].
//!
//! Edge leases ([`crate::gateway::edge_leases`]): an isolate may lease a slice of a *leasable*
//! key's headroom (`Lease`, the lease protocol of [`crate::budget`], the isolate a holder and
//! this object its upper level) and admit the key's calls from it, reporting their settles in
//! batches. Leasable: every limit in force lives in the key's own counters — its windows,
//! `max_in_flight` and spend caps (total, daily, monthly; hard or warn) — or in the budgets above
//! it, but no model-pattern or end-user limits (and the record's `admission` is `auto`, which
//! the edge checks). Under budgets a slice is granted only as far as every level covers it:
//! [`BudgetHolders::cover`] (a level whose slice cannot cover one call answers
//! [`Reply::NeedsLease`] first, as for an admission), the grant narrowed to that
//! ([`Budget::handle_within`]), then reserved at every level in one piece
//! ([`BudgetHolders::reserve_edge`]); the isolate's reports go down to those reservations
//! ([`BudgetHolders::report_edge`]): its settled calls at their actual, its unused part back.
//! Spend caps hold as per call: a slice holds micro-dollars for its calls'
//! reservations (each the call's bound), so committed + reserved + outstanding slices ≤ a hard
//! cap; a slice whose isolate vanished counts whole until its TTL, is then charged at what it
//! held, and a late report corrects the charge; the cap's thresholds fire from these counters as
//! reports bring the settled calls' cost ([`Handled::events`]). One counter set is in force at a
//! time:
//! - per call (every key at first, and every key that is not leasable): `ledger`, with the
//!   scopes and budgets as before;
//! - leasing (`edge_leases`, from the first `Lease` of a leasable key with an honoured secret):
//!   a [`Budget`] made from the ledger ([`Budget::from_ledger`]: the same windows, committed
//!   spend and open reservations, under the same ids) counts both the calls the object admits
//!   one by one and the isolates' leases, so committed + reserved + outstanding leases ≤ limit
//!   whichever way calls come;
//! - back to per call as soon as the key is no longer leasable (a pushed or carried policy with
//!   scopes): the budget becomes a ledger again
//!   ([`Budget::into_ledger_parts`]: its windows, spend and open calls; each outstanding lease
//!   stays reserved for a reservation's time to live), and later lease messages are answered
//!   `Stopped`.
//!
//! A revoked secret is refused per call and answered `Stopped` on a lease (the isolate drops
//! its slice); a slice admits nothing after [`EDGE_LEASE_MS`](crate::budget::EDGE_LEASE_MS)
//! from when its message left, which bounds revocation for leased keys. The usage book and
//! history count leased calls when their reports arrive (requests, then tokens and cost; the
//! upstream's input/output split is not reported for them).
//!
//! Limits: every edge command carries the limits and policy version of the KV record it read,
//! which an edge cache may hold for up to a minute; the control plane pushes them on every
//! change. The object enforces the limits of the newest version it has seen, pushed or carried
//! ([`NewestLimits`]), so a failed push never leaves older limits in force than the record an
//! edge carries, and a raise applies as soon as it is pushed. `Report` shows the limits the
//! object enforces.

use crate::budget::{Budget, Declined, HolderMessage, LeaseOutcome, Received, Slice, UpperReply};
use crate::error::{ApiError, Code};
use crate::ledger::budgets::{Blocked, BudgetHolders, Direct};
use crate::ledger::history::{DayPoint, History, HourPoint};
use crate::ledger::quota::{EndUserQuota, KeyLevelQuota, KeyQuota, PatternQuota};
use crate::ledger::refusal::Refusal;
use crate::ledger::revocation::{Control, Revocation, Revoked};
use crate::ledger::usage_book::{UsageBook, UsageTotals};
use crate::limits::{
    Actual, Ask, CallScope, Headroom, Ledger, Level, LimitUse, Limits, ModelLimits, NewestLimits, ScopeEvent,
    ScopeLedgers, ScopeLimits, VersionedLimits,
};
use crate::policy::BudgetLink;
use crate::usage::Usage;
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// What the edge or the control plane asks of a key's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// `policy_version` is the version of `limits` and `scopes` (0: a record from before
    /// versions existed); `model` (as the client named it) and `end_user` say which scopes
    /// inside the key the call counts in. `budgets`: the budgets above the key, as its record
    /// names them (their objects lease the key slices of their headroom: [`BudgetHolders`]).
    Admit {
        secret_version: u32,
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
        ask: Ask,
        #[serde(default, skip_serializing_if = "ScopeLimits::is_empty")]
        scopes: ScopeLimits,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_user: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        budgets: Vec<BudgetLink>,
    },
    /// `usage` is what the upstream reported (input/output split), if it reported any.
    Settle {
        reservation_id: u64,
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
        /// The limits of the scopes inside the key (versioned with `limits`), for their spend
        /// events.
        #[serde(default, skip_serializing_if = "ScopeLimits::is_empty")]
        scopes: ScopeLimits,
        actual: Actual,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    Release {
        reservation_id: u64,
    },
    Control {
        control: Control,
    },
    /// The key's effective limits, its scopes' limits and their policy version, from the
    /// control plane.
    PushLimits {
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
        #[serde(default, skip_serializing_if = "ScopeLimits::is_empty")]
        scopes: ScopeLimits,
    },
    /// Usage totals and the state of each limit (`limits` unless the object has seen versioned
    /// limits: then those) and of each of `model_limits`' patterns (likewise); read-only.
    Report {
        limits: Limits,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        model_limits: Vec<ModelLimits>,
    },
    /// What the key holder may read with the key itself (revocation checked first): the limits
    /// in force (the newest version seen, as for `Admit`) and their use, for the key, its model
    /// patterns and `end_user`, and for each of `budgets`' levels what its leases tell of that
    /// budget ([`BudgetHolders::quota`]); read-only.
    Quota {
        secret_version: u32,
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
        #[serde(default, skip_serializing_if = "ScopeLimits::is_empty")]
        scopes: ScopeLimits,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_user: Option<String>,
        /// The levels of the budgets the key's record puts it under.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        budgets: Vec<Level>,
    },
    /// The daily history of the last `days` days (at most 90) and the last 48 hours; read-only.
    History {
        days: u64,
    },
    /// An edge isolate's message of the lease protocol ([`crate::budget`]): its reports, and
    /// the ask for a lease for the call waiting, under the limits of the record it read (a
    /// leasable key's: see the module's docs). `budgets`: the budgets above the key, as its
    /// record names them: a slice is granted only as far as every level covers it
    /// ([`BudgetHolders::cover`]; a level that must lease first answers [`Reply::NeedsLease`]).
    Lease {
        secret_version: u32,
        limits: Limits,
        #[serde(default)]
        policy_version: u64,
        message: HolderMessage,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        budgets: Vec<BudgetLink>,
    },
}

impl Command {
    /// What a step answered [`Reply::NeedsLease`] leases for: the budgets the command names and
    /// the call waiting (an `Admit`'s; a `Lease`'s asking a slice: its waiting call's).
    pub fn budget_ask(&self) -> Option<(&[BudgetLink], Ask)> {
        match self {
            Command::Admit { budgets, ask, .. } => Some((budgets, *ask)),
            Command::Lease { budgets, message, .. } => Some((budgets, message.want?.ask)),
            _ => None,
        }
    }

    /// The answer to an isolate's lease message `seq` whose slice `level` cannot cover because
    /// its object declined to lease to the key: declined (the isolate asks the call alone).
    pub fn declined(seq: u64, level: Level) -> Reply {
        let headroom = Headroom { requests: None, tokens: None, spend: None };
        let outcome = LeaseOutcome::Declined { level, why: Declined::Cover };
        Reply::Lease { reply: UpperReply { seq, outcome, finished: vec![], headroom } }
    }

    /// The answer to this command when a budget above the key leaves it unanswered with `error`
    /// (the level refused the call, or could not be reached): the refusal itself; to a `Lease`,
    /// `Stopped`, so the isolate asks the call alone, which answers why.
    pub fn unanswered(&self, error: ApiError) -> Reply {
        match self {
            Command::Lease { message, .. } => {
                let headroom = Headroom { requests: None, tokens: None, spend: None };
                let outcome = LeaseOutcome::Stopped;
                Reply::Lease { reply: UpperReply { seq: message.seq, outcome, finished: vec![], headroom } }
            }
            _ => Reply::Refused(Refusal { error, hold_until_ms: None }),
        }
    }
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reply {
    Admitted {
        reservation_id: u64,
        headroom: Headroom,
    },
    /// A refusal for the edge to render (its members: [`Refusal`]).
    Refused(Refusal),
    /// Internal to the key's object, never answered: the slice of `level`'s budget cannot cover
    /// the call; the object leases from that budget's object and sends the command again.
    NeedsLease {
        level: Level,
    },
    /// Internal to the key's object, never answered: `level`'s object declined to lease lately;
    /// the object admits the call directly there and sends the command again.
    NeedsDirect {
        level: Level,
    },
    Done,
    Report {
        usage: UsageTotals,
        limits: Vec<LimitUse>,
        headroom: Headroom,
        /// When the object last admitted a call (Unix ms); absent before the first, and from
        /// objects of builds before it was kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_used_at: Option<u64>,
        /// Each model pattern's limits, in the key's order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        models: Vec<PatternQuota>,
    },
    History {
        days: Vec<DayPoint>,
        hours: Vec<HourPoint>,
    },
    Quota(KeyQuota),
    /// The answer to a `Lease`; a revoked secret, a key that is not leasable, or a slice a
    /// budget above the key cannot cover (its lease refused, its object unreachable:
    /// [`Command::unanswered`]) is answered `Stopped`, and the isolate asks the call alone; a
    /// refusal the key's slice of a budget holds is answered `Refused`, naming that level. A struct variant: the reply has an `outcome` of its own, which the tag would
    /// collide with.
    Lease {
        reply: UpperReply,
    },
}

/// The longest an edge may repeat a refusal without asking the object: a full request window
/// stays full until its reset, but the control plane may raise the limit meanwhile, and a
/// raised limit must apply within this time.
pub const REFUSAL_HOLD_MAX_MS: u64 = 1_000;

impl Reply {
    fn refused(error: ApiError, hold_until_ms: Option<u64>) -> Reply {
        Reply::Refused(Refusal { error, hold_until_ms })
    }
}

/// The result of one command: the reply, the spend events it raised, whether the state changed
/// and which end user's ledger (stored apart: [`ScopeLedgers`]) it changed.
#[derive(Debug)]
pub struct Handled {
    pub reply: Reply,
    /// Spend thresholds reached, each naming the key's scope (its own, a pattern, an end user).
    pub events: Vec<ScopeEvent>,
    pub changed: bool,
    pub end_user_changed: Option<String>,
}

impl Handled {
    fn reply(reply: Reply, changed: bool) -> Handled {
        Handled { reply, events: vec![], changed, end_user_changed: None }
    }
}

/// Everything one key's object remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", from = "StoredState")]
pub struct KeyState {
    revocation: Revocation,
    ledger: Ledger,
    usage: UsageBook,
    /// The newest versioned limits pushed or carried; they override older ones a command carries.
    #[serde(skip_serializing_if = "NewestLimits::is_empty")]
    limits: NewestLimits,
    /// When a call was last admitted (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<u64>,
    /// The newest versioned limits of the scopes inside the key, as `limits` for the key's own.
    #[serde(skip_serializing_if = "NewestLimits::is_empty")]
    scope_limits: NewestLimits<ScopeLimits>,
    /// The ledgers of the key's model patterns, what each admission recorded in a scope, and
    /// how many end users it tracks (their ledgers are stored apart).
    #[serde(skip_serializing_if = "ScopeLedgers::is_empty")]
    scopes: ScopeLedgers,
    /// Per-day totals and per-hour requests, for charts (bounded: [`crate::ledger::history`]).
    #[serde(skip_serializing_if = "is_empty_history")]
    history: History,
    /// The key's leases from the budgets above it and its calls' tickets.
    #[serde(skip_serializing_if = "BudgetHolders::is_empty")]
    budgets: BudgetHolders,
    /// While the key is leasing, its counters (then `ledger` is empty and unused): the calls
    /// admitted one by one and the leases edge isolates hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_leases: Option<Budget>,
}

fn is_empty_history(history: &History) -> bool {
    *history == History::default()
}

/// The members a stored state may have, of every version: `pushed_limits` (version 1) is read,
/// never written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredState {
    #[serde(default)]
    revocation: Revocation,
    #[serde(default)]
    ledger: Ledger,
    #[serde(default)]
    usage: UsageBook,
    #[serde(default)]
    limits: NewestLimits,
    #[serde(default)]
    pushed_limits: Option<Limits>,
    #[serde(default)]
    last_used_at: Option<u64>,
    #[serde(default)]
    scope_limits: NewestLimits<ScopeLimits>,
    #[serde(default)]
    scopes: ScopeLedgers,
    #[serde(default)]
    history: History,
    #[serde(default)]
    budgets: BudgetHolders,
    #[serde(default)]
    edge_leases: Option<Budget>,
}

impl From<StoredState> for KeyState {
    fn from(stored: StoredState) -> Self {
        let mut limits = stored.limits;
        if let Some(pushed) = stored.pushed_limits.filter(|_| limits.is_empty()) {
            limits.push(VersionedLimits { version: 0, limits: pushed });
        }
        KeyState {
            revocation: stored.revocation,
            ledger: stored.ledger,
            usage: stored.usage,
            limits,
            last_used_at: stored.last_used_at,
            scope_limits: stored.scope_limits,
            scopes: stored.scopes,
            history: stored.history,
            budgets: stored.budgets,
            edge_leases: stored.edge_leases,
        }
    }
}

/// The state's stored format: version 6 (`limits` replaced version 1's `pushed_limits` in 2;
/// `last_used_at` came in 3, not critical: losing it loses only information; `scope_limits` and
/// `scopes` came in 4, critical: a build that drops them would forget the scopes' limits and
/// counts, so it refuses the state, failing closed, as it refuses the key's record; `history` came
/// in 5, not critical: losing it loses only the charts' information, never a counter a limit reads;
/// `budgets` in 6, not critical: a build that drops it forgets its leases, which their budget
/// objects count in full until their TTL, so nothing is admitted beyond a budget; `edge_leases`
/// in 7, critical: while present it holds the key's counters, which a build that dropped it
/// would start again from an empty ledger).
pub const STATE_FORMAT: Format = Format {
    version: 7,
    members: &[
        "revocation",
        "ledger",
        "usage",
        "limits",
        "last_used_at",
        "scope_limits",
        "scopes",
        "history",
        "budgets",
        "edge_leases",
    ],
    critical: &["scope_limits", "scopes", "edge_leases"],
};
stored_serde!(KeyState, STATE_FORMAT);

impl KeyState {
    /// The end user whose stored ledger `command` reads and which is not in memory yet: the
    /// object loads it ([`KeyState::load_end_user`]) before [`KeyState::handle`].
    pub fn end_user_to_load(&self, command: &Command) -> Option<String> {
        let end_user = match command {
            Command::Admit { end_user, .. } | Command::Quota { end_user, .. } => end_user.as_deref(),
            Command::Settle { reservation_id, .. } | Command::Release { reservation_id } => {
                self.scopes.end_user_of(*reservation_id)
            }
            _ => None,
        };
        end_user.filter(|id| self.scopes.needs_end_user(id)).map(str::to_owned)
    }

    /// Puts `end_user`'s stored ledger in memory (a new end user has none).
    pub fn load_end_user(&mut self, end_user: &str, ledger: Ledger) {
        self.scopes.load_end_user(end_user, ledger);
    }

    /// The state of every limit of each model pattern of `scopes`, in their order.
    fn patterns(&self, scopes: &ScopeLimits, now_ms: u64) -> Vec<PatternQuota> {
        let uses = self.scopes.model_uses(scopes, now_ms);
        uses.into_iter().map(|(pattern, limits)| PatternQuota { pattern, limits }).collect()
    }

    /// The ledger of `end_user`, as its row is to hold it after [`Handled::end_user_changed`].
    pub fn end_user_ledger(&self, end_user: &str) -> Option<&Ledger> {
        self.scopes.end_user(end_user)
    }

    pub fn handle(&mut self, command: Command, now_ms: u64) -> Handled {
        self.handle_with_direct(command, &[], now_ms)
    }

    /// [`KeyState::handle`], an `Admit` taken as admitted at each level of `direct` by that
    /// level's object (a level that declined to lease: [`crate::ledger::lease_rounds`]).
    pub fn handle_with_direct(&mut self, command: Command, direct: &[Direct], now_ms: u64) -> Handled {
        match command {
            Command::Admit { secret_version, limits, policy_version, ask, scopes, model, end_user, budgets } => {
                if let Err(revoked) = self.revocation.check(secret_version, now_ms) {
                    return Handled::reply(Reply::refused(revoked_error(revoked), None), false);
                }
                let trial = match self.budgets.trial(&budgets, ask, direct, now_ms) {
                    Ok(trial) => trial,
                    Err(blocked) => {
                        let reply = match blocked {
                            Blocked::NeedLease(level) => Reply::NeedsLease { level },
                            Blocked::Declined(level) => Reply::NeedsDirect { level },
                            Blocked::Refused(denial) => Reply::refused(denial.into_api_error(now_ms), None),
                        };
                        return Handled::reply(reply, false);
                    }
                };
                let (limits, remembered) = self.limits.carried(VersionedLimits { version: policy_version, limits });
                let (scopes, scopes_remembered) =
                    self.scope_limits.carried(VersionedLimits { version: policy_version, limits: scopes });
                let left = self.leave_leasing_unless(scopes.is_empty(), now_ms);
                let remembered = remembered || scopes_remembered || left;
                if let Some(counters) = &mut self.edge_leases {
                    return match counters.admit_call(&limits, ask, now_ms) {
                        Ok(reservation_id) => {
                            let headroom = counters.headroom(&limits, now_ms);
                            self.budgets.commit(trial, reservation_id, now_ms);
                            self.count_admitted(now_ms);
                            Handled::reply(Reply::Admitted { reservation_id, headroom }, true)
                        }
                        Err(denial) => {
                            let hold = denial
                                .refuses_every_request_until()
                                .map(|reset| reset.min(now_ms + REFUSAL_HOLD_MAX_MS));
                            Handled::reply(Reply::refused(denial.into_api_error(now_ms), hold), remembered)
                        }
                    };
                }
                let call = CallScope { model: model.as_deref(), end_user: end_user.as_deref() };
                match self.scopes.admit(&mut self.ledger, &limits, &scopes, call, ask, now_ms) {
                    Ok((admitted, events)) => {
                        self.budgets.commit(trial, admitted.reservation_id, now_ms);
                        self.count_admitted(now_ms);
                        Handled {
                            reply: Reply::Admitted {
                                reservation_id: admitted.reservation_id,
                                headroom: admitted.headroom,
                            },
                            events,
                            changed: true,
                            end_user_changed: end_user.filter(|_| scopes.tracks_end_users()),
                        }
                    }
                    Err(refusal) => {
                        let hold =
                            refusal.refuses_every_request_until().map(|reset| reset.min(now_ms + REFUSAL_HOLD_MAX_MS));
                        let reply = Reply::refused(refusal.into_api_error(now_ms), hold);
                        Handled::reply(reply, remembered)
                    }
                }
            }
            Command::Settle { reservation_id, limits, policy_version, scopes, actual, usage } => {
                let (limits, remembered) = self.limits.carried(VersionedLimits { version: policy_version, limits });
                let (scopes, scopes_remembered) =
                    self.scope_limits.carried(VersionedLimits { version: policy_version, limits: scopes });
                if let Some(counters) = &mut self.edge_leases {
                    let (settled, events) = counters.settle_call(&limits, reservation_id, actual, now_ms);
                    if settled {
                        let counted = self.usage.count_settled(now_ms, actual.tokens, actual.cost_micros, usage);
                        self.history.count(now_ms, &counted);
                    }
                    let ended = self.budgets.settle(reservation_id, actual, now_ms);
                    let changed = settled || remembered || scopes_remembered || ended;
                    let events = ScopeEvent::of_key(events);
                    return Handled { reply: Reply::Done, events, changed, end_user_changed: None };
                }
                let end_user = self.scopes.end_user_of(reservation_id).map(str::to_owned);
                let outcome = self.scopes.settle(&mut self.ledger, &limits, &scopes, reservation_id, actual, now_ms);
                if outcome.settled {
                    let counted = self.usage.count_settled(now_ms, actual.tokens, actual.cost_micros, usage);
                    self.history.count(now_ms, &counted);
                }
                let ended = self.budgets.settle(reservation_id, actual, now_ms);
                let changed = outcome.settled || remembered || scopes_remembered || ended || end_user.is_some();
                Handled { reply: Reply::Done, events: outcome.events, changed, end_user_changed: end_user }
            }
            Command::Release { reservation_id } => {
                if let Some(counters) = &mut self.edge_leases {
                    let none = VersionedLimits { version: 0, limits: Limits::default() };
                    let limits = self.limits.peek(&none);
                    let (released, events) = counters.settle_call(limits, reservation_id, Actual::ZERO, now_ms);
                    let ended = self.budgets.settle(reservation_id, Actual::ZERO, now_ms);
                    let events = ScopeEvent::of_key(events);
                    let changed = released || ended;
                    return Handled { reply: Reply::Done, events, changed, end_user_changed: None };
                }
                let end_user = self.scopes.end_user_of(reservation_id).map(str::to_owned);
                let released = self.scopes.release(&mut self.ledger, reservation_id, now_ms);
                let ended = self.budgets.settle(reservation_id, Actual::ZERO, now_ms);
                let changed = released || ended || end_user.is_some();
                Handled { reply: Reply::Done, events: vec![], changed, end_user_changed: end_user }
            }
            Command::Control { control } => {
                self.revocation.apply(&control);
                Handled::reply(Reply::Done, true)
            }
            Command::PushLimits { limits, policy_version, scopes } => {
                let changed = self.limits.push(VersionedLimits { version: policy_version, limits });
                let scopes_changed =
                    self.scope_limits.push(VersionedLimits { version: policy_version, limits: scopes });
                let left = self.leave_leasing_unless(self.leasable_now(), now_ms);
                Handled::reply(Reply::Done, changed || scopes_changed || left)
            }
            Command::Report { limits, model_limits } => {
                let carried = VersionedLimits { version: 0, limits };
                let limits = self.limits.peek(&carried);
                let carried_scopes =
                    VersionedLimits { version: 0, limits: ScopeLimits { model_limits, ..Default::default() } };
                let scopes = self.scope_limits.peek(&carried_scopes);
                let reply = Reply::Report {
                    usage: self.usage.report(now_ms),
                    limits: self.key_limit_uses(limits, now_ms),
                    headroom: self.key_headroom(limits, now_ms),
                    last_used_at: self.last_used_at,
                    models: self.patterns(scopes, now_ms),
                };
                Handled::reply(reply, false)
            }
            Command::Quota { secret_version, limits, policy_version, scopes, end_user, budgets } => {
                if let Err(revoked) = self.revocation.check(secret_version, now_ms) {
                    return Handled::reply(Reply::refused(revoked_error(revoked), None), false);
                }
                let carried = VersionedLimits { version: policy_version, limits };
                let limits = self.limits.peek(&carried);
                let carried_scopes = VersionedLimits { version: policy_version, limits: scopes };
                let scopes = self.scope_limits.peek(&carried_scopes);
                let end_user = end_user.and_then(|id| {
                    let limits = self.scopes.end_user_uses(scopes, &id, now_ms)?;
                    Some(EndUserQuota { id, limits })
                });
                let quota = KeyQuota {
                    key: KeyLevelQuota {
                        limits: self.key_limit_uses(limits, now_ms),
                        usage: self.usage.report(now_ms),
                    },
                    models: self.patterns(scopes, now_ms),
                    end_user,
                    budgets: self.budgets.quota(&budgets, now_ms),
                };
                Handled::reply(Reply::Quota(quota), false)
            }
            Command::History { days } => {
                let reply = Reply::History { days: self.history.days(now_ms, days), hours: self.history.hours(now_ms) };
                Handled::reply(reply, false)
            }
            Command::Lease { secret_version, limits, policy_version, message, budgets } => {
                let honoured = self.revocation.check(secret_version, now_ms).is_ok();
                let (limits, remembered) = self.limits.carried(VersionedLimits { version: policy_version, limits });
                let leasable = self.leasable_now();
                if honoured && leasable && self.edge_leases.is_none() {
                    self.edge_leases = Some(Budget::from_ledger(std::mem::take(&mut self.ledger).into_parts()));
                }
                let Some(counters) = &mut self.edge_leases else {
                    let headroom = self.ledger.headroom(&limits, now_ms);
                    let reply =
                        UpperReply { seq: message.seq, outcome: LeaseOutcome::Stopped, finished: vec![], headroom };
                    return Handled::reply(Reply::Lease { reply }, remembered);
                };
                let granting = honoured && leasable;
                // The levels above the key first: the reports go to each level's bulks, and the
                // slice asked is covered by every level (or waits for a level's lease).
                let mut passed = false;
                if counters.is_newer(&message) {
                    for report in &message.leases {
                        if counters.reported(report.lease, &message.holder, message.epoch).is_some() {
                            passed |= self.budgets.report_edge(report, now_ms);
                        }
                    }
                }
                let cover = match message.want.filter(|_| granting && !budgets.is_empty()) {
                    None => Ok(Slice::default()),
                    Some(want) => match self.budgets.cover(&budgets, want.ask, now_ms) {
                        Ok(cover) => Ok(cover),
                        Err(Blocked::Refused(denial)) => Err(denial),
                        Err(Blocked::NeedLease(level)) => {
                            return Handled::reply(Reply::NeedsLease { level }, passed || remembered);
                        }
                        Err(Blocked::Declined(level)) => {
                            return Handled::reply(Command::declined(message.seq, level), passed || remembered);
                        }
                    },
                };
                let counted = count_lease_usage(counters, &message);
                let mut handled = counters.handle_within(&limits, Level::Key, message, granting, cover, now_ms);
                passed |= self.budgets.forget_edge(|lease| counters.remembers(lease), now_ms);
                if let LeaseOutcome::Granted(grant) = &handled.reply.outcome {
                    if !budgets.is_empty() && !self.budgets.reserve_edge(&budgets, grant.lease, grant.slice, now_ms) {
                        // Not covered after all (never expected): the isolate asks per call; the
                        // slice it never takes closes at zero with its next message.
                        handled.reply.outcome = LeaseOutcome::Stopped;
                    }
                }
                if counted.requests > 0 {
                    let requests = self.usage.count_requests(now_ms, counted.requests);
                    self.history.count(now_ms, &requests);
                    self.last_used_at = Some(now_ms);
                }
                if counted.settled {
                    let settled = self.usage.count_settled(now_ms, counted.tokens, counted.cost_micros, None);
                    self.history.count(now_ms, &settled);
                }
                let left = self.leave_leasing_unless(leasable, now_ms);
                Handled {
                    reply: Reply::Lease { reply: handled.reply },
                    events: ScopeEvent::of_key(handled.events),
                    changed: handled.changed || remembered || left || passed,
                    end_user_changed: None,
                }
            }
        }
    }

    /// Counts one admitted call in the usage book and the history.
    fn count_admitted(&mut self, now_ms: u64) {
        let counted = self.usage.count_request(now_ms);
        self.history.count(now_ms, &counted);
        self.last_used_at = Some(now_ms);
    }

    /// Whether the limits in force (the newest seen) leave the key leasable: no scope limits
    /// (see the module's docs; budgets above the key cover its slices).
    fn leasable_now(&self) -> bool {
        let no_scopes = VersionedLimits { version: 0, limits: ScopeLimits::default() };
        self.scope_limits.peek(&no_scopes).is_empty()
    }

    /// Goes back to per-call counters unless `leasable` (see the module's docs); answers whether
    /// it did.
    fn leave_leasing_unless(&mut self, leasable: bool, now_ms: u64) -> bool {
        if leasable {
            return false;
        }
        let Some(counters) = self.edge_leases.take() else { return false };
        self.ledger = Ledger::from_parts(counters.into_ledger_parts(now_ms));
        true
    }

    /// The use of each of the key's own limits, from the counters in force.
    fn key_limit_uses(&self, limits: &Limits, now_ms: u64) -> Vec<LimitUse> {
        match &self.edge_leases {
            Some(counters) => counters.limit_uses(limits, now_ms),
            None => self.ledger.limit_uses(limits, now_ms),
        }
    }

    /// What is left of the key's own limits, from the counters in force.
    fn key_headroom(&self, limits: &Limits, now_ms: u64) -> Headroom {
        match &self.edge_leases {
            Some(counters) => counters.headroom(limits, now_ms),
            None => self.ledger.headroom(limits, now_ms),
        }
    }
}

/// What a lease message reports beyond what the counters had recorded of its leases: calls
/// admitted from them, and the tokens and cost of those that ended.
#[derive(Debug, Default)]
struct LeaseUsage {
    requests: u64,
    settled: bool,
    tokens: u64,
    cost_micros: u64,
}

/// [`LeaseUsage`] of `message` against `counters`, before they apply it. A message the
/// counters will not apply (older than one applied) adds nothing, as does a lease they no longer
/// remember or that is another holder's; a repeated report adds nothing.
fn count_lease_usage(counters: &Budget, message: &HolderMessage) -> LeaseUsage {
    let mut usage = LeaseUsage::default();
    if !counters.is_newer(message) {
        return usage;
    }
    for report in &message.leases {
        let Some(before) = counters.reported(report.lease, &message.holder, message.epoch) else { continue };
        if !before.closed {
            usage.requests += report.used.calls.saturating_sub(before.used.calls);
        }
        if report.settled.calls > before.settled.calls {
            usage.settled = true;
            usage.tokens += report.actual.tokens.saturating_sub(before.actual.tokens);
            usage.cost_micros += report.actual.cost_micros.saturating_sub(before.actual.cost_micros);
        }
    }
    usage
}

/// The key's side of the leases from the budgets above it (the object's adapter sends the
/// messages: see [`BudgetHolders`]). Each call changes the state, which the adapter saves.
impl KeyState {
    /// The message asking `link`'s budget object for a lease covering `ask`, from the holder
    /// named `holder_id` (the key object's name).
    pub fn lease_request(
        &mut self,
        holder_id: &str,
        link: &BudgetLink,
        ask: Ask,
        now_ms: u64,
    ) -> Option<HolderMessage> {
        self.budgets.request(holder_id, link, ask, now_ms)
    }

    /// Takes `level`'s budget object's reply.
    pub fn lease_reply(&mut self, level: Level, reply: UpperReply, now_ms: u64) -> Received {
        self.budgets.receive(level, reply, now_ms)
    }

    /// Direct admissions at the levels above that no call kept: released with the next settles.
    pub fn release_direct(&mut self, direct: &[Direct]) {
        self.budgets.release_direct(direct)
    }

    /// The settles of direct calls to send now: each budget's link, the call's id there, its
    /// actual.
    pub fn direct_settles(&mut self) -> Vec<(BudgetLink, u64, Actual)> {
        self.budgets.direct_settles()
    }

    /// The reports of settled calls due to go up, each with its budget's link.
    pub fn budget_flushes(&mut self, now_ms: u64) -> Vec<(BudgetLink, HolderMessage)> {
        self.budgets.flushes(now_ms)
    }

    /// When the next report to a budget is due (as of `now_ms`).
    pub fn next_budget_flush_at(&self, now_ms: u64) -> Option<u64> {
        self.budgets.next_flush_at(now_ms)
    }
}

/// 403 `organisation_suspended`: the key's organisation is suspended by the platform operator.
pub fn organisation_suspended() -> ApiError {
    ApiError::new(Code::OrganisationSuspended, "This organisation is suspended.")
}

/// The answer to a secret the object no longer honours: the same 401 as an unknown or disabled
/// key, so a stale KV copy at some edge never changes what the caller sees.
fn revoked_error(revoked: Revoked) -> ApiError {
    match revoked {
        Revoked::Disabled => ApiError::new(Code::KeyDisabled, "This API key has been disabled."),
        Revoked::Deleted | Revoked::Rotated => ApiError::new(Code::InvalidApiKey, "Incorrect API key provided."),
        Revoked::Suspended => organisation_suspended(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{CapMode, KeyScope, Level, ModelLimits, SpendCap, SpendEventKind, SpendPeriod, MAX_END_USERS};
    use crate::versioned::check;
    use proptest::prelude::*;
    use serde_json::json;
    use std::num::NonZeroU64;

    fn admit(state: &mut KeyState, limits: &Limits, version: u32) -> Reply {
        admit_at_policy(state, limits, 0, version)
    }

    fn admit_at_policy(state: &mut KeyState, limits: &Limits, policy_version: u64, version: u32) -> Reply {
        let ask = Ask { tokens: 10, cost_micros: 5 };
        state.handle(unscoped_admit(limits, policy_version, version, ask), 1_000).reply
    }

    /// An admission of `ask` for a key without scopes or budgets.
    fn unscoped_admit(limits: &Limits, policy_version: u64, secret_version: u32, ask: Ask) -> Command {
        Command::Admit {
            secret_version,
            limits: limits.clone(),
            policy_version,
            ask,
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: vec![],
        }
    }

    fn push(state: &mut KeyState, limits: &Limits, policy_version: u64) -> bool {
        let scopes = ScopeLimits::default();
        state.handle(Command::PushLimits { limits: limits.clone(), policy_version, scopes }, 0).changed
    }

    /// A settle of a record from before versions, of a key without scopes.
    fn unscoped_settle(reservation_id: u64, limits: Limits, actual: Actual, usage: Option<Usage>) -> Command {
        Command::Settle { reservation_id, limits, policy_version: 0, scopes: Default::default(), actual, usage }
    }

    fn rpm(n: u64) -> Limits {
        Limits { rpm: NonZeroU64::new(n), ..Limits::default() }
    }

    #[test]
    fn admits_then_refuses_over_rpm() {
        let limits = Limits { rpm: NonZeroU64::new(1), ..Limits::default() };
        let mut state = KeyState::default();
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
        let Reply::Refused(Refusal { error, hold_until_ms }) = admit(&mut state, &limits, 1) else {
            panic!("expected a refusal")
        };
        assert_eq!((error.code(), error.retry_after_s().is_some()), (Code::RateLimitExceeded, true));
        // A full request window: the edge may repeat it, for at most the hold's maximum.
        assert_eq!(hold_until_ms, Some(1_000 + REFUSAL_HOLD_MAX_MS));
    }

    /// The code and hold of a refusal.
    fn refused(reply: Reply) -> Option<(Code, Option<u64>)> {
        match reply {
            Reply::Refused(Refusal { error, hold_until_ms }) => Some((error.code(), hold_until_ms)),
            _ => None,
        }
    }

    #[test]
    fn only_request_window_refusals_may_be_held() {
        let limits = Limits { tpm: NonZeroU64::new(15), ..Limits::default() };
        let mut state = KeyState::default();
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
        // Tokens can free early (a settle below the estimate): never held.
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::TokenLimitExceeded, None)));
        state.handle(Command::Control { control: Control::Disable }, 0);
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::KeyDisabled, None)));
    }

    #[test]
    fn disabled_key_is_refused_before_the_ledger_counts() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        state.handle(Command::Control { control: Control::Disable }, 0);
        assert_eq!(refused(admit(&mut state, &limits, 1)), Some((Code::KeyDisabled, None)));
        state.handle(Command::Control { control: Control::Enable }, 0);
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
    }

    #[test]
    fn settle_twice_counts_once() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let actual = Actual { tokens: 3, cost_micros: 1 };
        let settle = unscoped_settle(reservation_id, limits, actual, None);
        assert!(state.handle(settle.clone(), 2_000).changed);
        assert!(!state.handle(settle, 2_000).changed);
    }

    fn report(state: &mut KeyState, limits: &Limits) -> (UsageTotals, Vec<LimitUse>) {
        match state.handle(Command::Report { limits: limits.clone(), model_limits: vec![] }, 3_000) {
            Handled { reply: Reply::Report { usage, limits, .. }, changed: false, .. } => (usage, limits),
            other => panic!("expected a report, got {other:?}"),
        }
    }

    #[test]
    fn usage_counts_admissions_and_settled_tokens() {
        let limits = Limits { rpm: NonZeroU64::new(5), ..Limits::default() };
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let Reply::Admitted { reservation_id: released, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let usage = Some(Usage::new(7, 0, 3));
        let actual = Actual { tokens: 10, cost_micros: 4 };
        let settle = unscoped_settle(reservation_id, limits.clone(), actual, usage);
        state.handle(settle, 2_000);
        state.handle(Command::Release { reservation_id: released }, 2_000);
        let (usage, uses) = report(&mut state, &limits);
        let total = usage.total;
        assert_eq!(
            (total.requests, total.tokens, total.input_tokens, total.output_tokens, total.cost_micros),
            (2, 10, 7, 3, 4)
        );
        assert_eq!((uses[0].scope.as_str(), uses[0].limit, uses[0].used), ("rpm", 5, 2));
    }

    #[test]
    fn the_report_says_when_a_call_was_last_admitted() {
        let limits = rpm(1);
        let last_used = |state: &mut KeyState| match state
            .handle(Command::Report { limits: rpm(1), model_limits: vec![] }, 3_000)
            .reply
        {
            Reply::Report { last_used_at, .. } => last_used_at,
            other => panic!("expected a report, got {other:?}"),
        };
        let mut state = KeyState::default();
        assert_eq!(last_used(&mut state), None);
        assert!(matches!(admit(&mut state, &limits, 1), Reply::Admitted { .. }));
        let refused = unscoped_admit(&limits, 0, 1, Ask { tokens: 10, cost_micros: 5 });
        assert!(matches!(state.handle(refused, 2_000).reply, Reply::Refused(_)));
        assert_eq!(last_used(&mut state), Some(1_000), "a refused call is no use");
    }

    #[test]
    fn the_history_counts_admissions_and_settlements() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!() };
        let actual = Actual { tokens: 10, cost_micros: 4 };
        let settle = unscoped_settle(reservation_id, limits, actual, Some(Usage::new(7, 0, 3)));
        state.handle(settle, 2_000);
        let handled = state.handle(Command::History { days: 30 }, 3_000);
        let Reply::History { days, hours } = handled.reply else { panic!("expected the history") };
        assert!(!handled.changed);
        let today = days.last().unwrap();
        assert_eq!((days.len(), today.date.as_str()), (1, "1970-01-01"), "no day before 1970");
        assert_eq!((today.totals.requests, today.totals.tokens, today.totals.cost_micros), (1, 10, 4));
        assert_eq!((hours.len(), hours.last().unwrap().requests), (1, 1), "no hour before 1970");
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), state, "the history is stored");
    }

    #[test]
    fn pushed_limits_override_an_older_records_copy() {
        let mut state = KeyState::default();
        assert!(push(&mut state, &rpm(1), 2));
        assert!(matches!(admit_at_policy(&mut state, &rpm(100), 1, 1), Reply::Admitted { .. }));
        assert_eq!(
            refused(admit_at_policy(&mut state, &rpm(100), 1, 1)).map(|(code, _)| code),
            Some(Code::RateLimitExceeded)
        );
        assert_eq!(report(&mut state, &Limits::default()).1[0].limit, 1);
    }

    #[test]
    fn after_a_failed_push_a_newer_records_tighter_limits_apply_at_once() {
        let mut state = KeyState::default();
        push(&mut state, &rpm(100), 3);
        // The push of version 4 (rpm 1) failed; an edge reads the version 4 record.
        let newer = Command::Admit {
            secret_version: 1,
            limits: rpm(1),
            policy_version: 4,
            ask: Ask::ZERO,
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: vec![],
        };
        let handled = state.handle(newer, 1_000);
        assert!(matches!(handled.reply, Reply::Admitted { .. }) && handled.changed);
        assert_eq!(
            refused(admit_at_policy(&mut state, &rpm(100), 3, 1)).map(|(code, _)| code),
            Some(Code::RateLimitExceeded)
        );
        assert!(!push(&mut state, &rpm(100), 3), "the late old push loses too");
        let refused = Command::Admit {
            secret_version: 1,
            limits: rpm(2),
            policy_version: 5,
            ask: Ask::ZERO,
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: vec![],
        };
        let handled = state.handle(refused, 1_000);
        assert!(matches!(handled.reply, Reply::Admitted { .. }), "a raise carried by a newer record applies");
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), state, "the newest is stored");
    }

    #[test]
    fn equal_versions_keep_the_remembered_limits() {
        let mut state = KeyState::default();
        push(&mut state, &rpm(1), 7);
        assert!(matches!(admit_at_policy(&mut state, &rpm(1), 7, 1), Reply::Admitted { .. }));
        assert_eq!(
            refused(admit_at_policy(&mut state, &rpm(1), 7, 1)).map(|(code, _)| code),
            Some(Code::RateLimitExceeded)
        );
    }

    #[test]
    fn commands_round_trip_as_json() {
        let command = Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: Some(9) } };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
    }

    /// A state as saved before versions existed (version 1, no `v`).
    const SAVED: &str = r#"{"revocation":{"disabled":false,"deleted":false,"min_version":2,"grace":[1,9000]},
        "pushed_limits":{"rpm":1}}"#;

    #[test]
    fn states_saved_before_versions_read() {
        let state: KeyState = serde_json::from_str(SAVED).unwrap();
        let carried = VersionedLimits { version: 0, limits: Limits::default() };
        assert_eq!(state.limits.peek(&carried), &rpm(1), "version 1's pushed limits, at version 0");
        let newer = VersionedLimits { version: 1, limits: rpm(9) };
        assert_eq!(state.limits.peek(&newer), &rpm(9), "any version is newer");
        assert_eq!(state.revocation.check(1, 8_999), Ok(()));
        assert!(serde_json::from_str::<KeyState>(r#"{"pushed_limit":{}}"#).is_err(), "unknown members are refused");
    }

    /// Limits for the models `m*` (an rpm of `rpm + 1`), for generated histories.
    fn model_scopes(rpm: u64) -> ScopeLimits {
        let limits = Limits { rpm: NonZeroU64::new(rpm + 1), ..Limits::default() };
        ScopeLimits { model_limits: vec![ModelLimits { pattern: "m*".into(), limits }], ..ScopeLimits::default() }
    }

    /// A state with every member set, by commands.
    fn busy_state() -> KeyState {
        let limits = Limits { rpm: NonZeroU64::new(100), ..Limits::default() };
        let mut state = KeyState::default();
        admit(&mut state, &limits, 1);
        let scoped = Command::Admit {
            secret_version: 1,
            limits: limits.clone(),
            policy_version: 1,
            ask: Ask::ZERO,
            scopes: model_scopes(5),
            model: Some("m1".into()),
            end_user: None,
            budgets: vec![],
        };
        assert!(matches!(state.handle(scoped, 1_000).reply, Reply::Admitted { .. }));
        let link = BudgetLink {
            level: Level::Project,
            object: "budget:org_a/prj_1".into(),
            limits: limits.clone(),
            version: 1,
            jurisdiction: None,
            location_hint: None,
        };
        assert!(state.lease_request("org_a/key_1", &link, Ask::ZERO, 1_000).is_some());
        state.handle(Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: Some(5) } }, 0);
        push(&mut state, &limits, 1);
        state
    }

    #[test]
    fn the_state_follows_the_version_rule() {
        let mut state = busy_state();
        // Every member written at once (a real state never holds budget leases while leasing).
        state.edge_leases = Some(Budget::from_ledger(state.ledger.clone().into_parts()));
        check::members_match(&STATE_FORMAT, &state);
        check::version_rule(&STATE_FORMAT, &state, "leases", serde_json::json!([{"id": 1}]));
    }

    /// An admission of `model` for `end_user` under a key rpm of 100 and `scopes`.
    fn scoped_admit(scopes: &ScopeLimits, model: &str, end_user: Option<&str>) -> Command {
        Command::Admit {
            secret_version: 1,
            limits: rpm(100),
            policy_version: 1,
            ask: Ask { tokens: 10, cost_micros: 0 },
            scopes: scopes.clone(),
            model: Some(model.into()),
            end_user: end_user.map(str::to_owned),
            budgets: vec![],
        }
    }

    #[test]
    fn a_patterns_and_an_end_users_spend_caps_raise_events_naming_them() {
        let cap = |limit_micros| Limits {
            spend: vec![SpendCap {
                period: SpendPeriod::Daily,
                limit_micros: NonZeroU64::new(limit_micros).unwrap(),
                mode: CapMode::Hard,
                warn_at_percent: vec![50],
            }],
            ..Limits::default()
        };
        let pattern = ModelLimits { pattern: "o3*".into(), limits: cap(100) };
        let scopes = ScopeLimits { model_limits: vec![pattern], end_user_limits: cap(1_000) };
        // A call of 60 micro-dollars, settled at its estimate: the events its settle raised. The
        // record is of version 0 (never remembered): the settle's carried scopes apply.
        let call = |state: &mut KeyState, model: &str, end_user: &str, now_ms| {
            let mut command = scoped_admit(&scopes, model, Some(end_user));
            if let Command::Admit { ask, policy_version, .. } = &mut command {
                (ask.cost_micros, *policy_version) = (60, 0);
            }
            let Reply::Admitted { reservation_id, .. } = state.handle(command, now_ms).reply else {
                panic!("admitted")
            };
            let actual = Actual { tokens: 10, cost_micros: 60 };
            let settle = Command::Settle {
                reservation_id,
                scopes: scopes.clone(),
                limits: rpm(100),
                policy_version: 0,
                actual,
                usage: None,
            };
            let handled = state.handle(settle, now_ms + 1);
            handled.events.into_iter().map(|e| (e.scope, e.spend.threshold_percent, e.spend.kind)).collect::<Vec<_>>()
        };
        let mut state = KeyState::default();
        let o3 = KeyScope::Model("o3*".into());
        assert_eq!(call(&mut state, "o3-mini", "alice", 1_000), [(o3, 50, SpendEventKind::Alert)]);
        let fired: Vec<_> = (1..9).flat_map(|i| call(&mut state, "gpt-4o", "alice", 1_000 + i * 10)).collect();
        let alice = KeyScope::EndUser("alice".into());
        assert_eq!(fired, [(alice, 50, SpendEventKind::Alert)], "alice's 540 of 1,000, once in its period");
        assert_eq!(call(&mut state, "gpt-4o", "bob", 2_000), [], "bob's spend is his own");
    }

    /// A refusal's limit details and hold: (level, pattern, end user, scope, hold).
    type Refused = (Level, Option<String>, Option<String>, String, Option<u64>);

    /// The refusal's limit details and its hold.
    fn limit_of(reply: Reply) -> Option<Refused> {
        let Reply::Refused(Refusal { error, hold_until_ms }) = reply else { return None };
        let d = error.limit()?.clone();
        Some((d.level, d.pattern, d.end_user, d.scope.into_owned(), hold_until_ms))
    }

    #[test]
    fn a_model_patterns_limit_refuses_its_models_only_and_names_itself() {
        let mut state = KeyState::default();
        let scopes = ScopeLimits {
            model_limits: vec![ModelLimits { pattern: "o3*".into(), limits: rpm(1) }],
            ..Default::default()
        };
        assert!(matches!(state.handle(scoped_admit(&scopes, "o3-mini", None), 1_000).reply, Reply::Admitted { .. }));
        let refused = limit_of(state.handle(scoped_admit(&scopes, "o3-pro", None), 1_000).reply);
        assert_eq!(
            refused,
            Some((Level::Model, Some("o3*".into()), None, "rpm".into(), Some(1_000 + REFUSAL_HOLD_MAX_MS)))
        );
        for _ in 0..5 {
            let other = state.handle(scoped_admit(&scopes, "gpt-4o", None), 1_000);
            assert!(matches!(other.reply, Reply::Admitted { .. }), "other models pass");
        }
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["critical"], serde_json::json!(["scope_limits", "scopes"]), "older builds fail closed");
        assert_eq!(serde_json::from_value::<KeyState>(json).unwrap(), state);
    }

    #[test]
    fn end_users_are_counted_apart_and_settled_exactly_where_admitted() {
        let mut state = KeyState::default();
        let scopes = ScopeLimits {
            end_user_limits: Limits { tpm: NonZeroU64::new(15), ..Limits::default() },
            ..Default::default()
        };
        let missing = state.handle(scoped_admit(&scopes, "gpt-4o", None), 1_000);
        assert!(matches!(&missing.reply, Reply::Refused(r) if r.error.code() == Code::MissingEndUser));
        let Reply::Admitted { reservation_id, .. } =
            state.handle(scoped_admit(&scopes, "gpt-4o", Some("alice")), 1_000).reply
        else {
            panic!("alice's first call passes")
        };
        let refused = limit_of(state.handle(scoped_admit(&scopes, "gpt-4o", Some("alice")), 1_000).reply);
        assert_eq!(refused, Some((Level::EndUser, None, Some("alice".into()), "tpm".into(), None)));
        let bob = state.handle(scoped_admit(&scopes, "gpt-4o", Some("bob")), 1_000);
        assert!(matches!(bob.reply, Reply::Admitted { .. }));
        assert_eq!(bob.end_user_changed.as_deref(), Some("bob"), "only bob's row is written");
        let settle = Command::Settle {
            reservation_id,
            limits: rpm(100),
            policy_version: 1,
            scopes: scopes.clone(),
            actual: Actual { tokens: 2, cost_micros: 0 },
            usage: None,
        };
        let settled = state.handle(settle, 2_000);
        assert_eq!(settled.end_user_changed.as_deref(), Some("alice"), "the settle reaches alice's ledger");
        assert!(matches!(
            state.handle(scoped_admit(&scopes, "gpt-4o", Some("alice")), 2_000).reply,
            Reply::Admitted { .. }
        ));
    }

    /// What the object does: the state in one row, each end user in a row of its own, loaded
    /// when a command needs it.
    #[test]
    fn end_user_ledgers_are_stored_one_row_each() {
        let scopes = ScopeLimits { end_user_limits: rpm(1), ..Default::default() };
        let mut rows: std::collections::HashMap<String, String> = Default::default();
        let mut stored = serde_json::to_string(&KeyState::default()).unwrap();
        let mut step = |command: Command, rows: &mut std::collections::HashMap<String, String>| {
            let mut state: KeyState = serde_json::from_str(&stored).unwrap();
            if let Some(id) = state.end_user_to_load(&command) {
                if let Some(row) = rows.get(&id) {
                    state.load_end_user(&id, serde_json::from_str(row).unwrap());
                }
            }
            let handled = state.handle(command, 1_000);
            if let Some(id) = &handled.end_user_changed {
                rows.insert(id.clone(), serde_json::to_string(state.end_user_ledger(id).unwrap()).unwrap());
            }
            stored = serde_json::to_string(&state).unwrap();
            handled.reply
        };
        for user in ["u1", "u2", "u3"] {
            assert!(matches!(step(scoped_admit(&scopes, "m", Some(user)), &mut rows), Reply::Admitted { .. }));
        }
        assert_eq!(rows.len(), 3);
        let again = step(scoped_admit(&scopes, "m", Some("u2")), &mut rows);
        assert_eq!(limit_of(again).map(|l| l.0), Some(Level::EndUser), "u2's row was loaded and counted");
        assert_eq!(stored.matches("\"windows\"").count(), 1, "the state holds the key's ledger only: {stored}");
    }

    #[test]
    fn a_key_tracks_at_most_max_end_users() {
        let mut state = KeyState::default();
        let scopes = ScopeLimits { end_user_limits: rpm(5), ..Default::default() };
        let now = |i: usize| 1_000 * i as u64;
        for i in 0..MAX_END_USERS {
            let id = format!("u{i}");
            assert!(matches!(
                state.handle(scoped_admit(&scopes, "m", Some(&id)), now(i)).reply,
                Reply::Admitted { .. }
            ));
        }
        let new = state.handle(scoped_admit(&scopes, "m", Some("one-too-many")), now(MAX_END_USERS));
        assert!(matches!(&new.reply, Reply::Refused(r) if r.error.code() == Code::TooManyEndUsers), "{:?}", new.reply);
        assert!(!new.changed);
        let known = state.handle(scoped_admit(&scopes, "m", Some("u7")), now(MAX_END_USERS));
        assert!(matches!(known.reply, Reply::Admitted { .. }), "never evicted");
    }

    /// The cost of a call stays flat in the number of end users: the state the object writes
    /// after each change holds their count, not their ledgers.
    #[test]
    fn the_stored_state_does_not_grow_with_end_users() {
        let scopes = ScopeLimits { end_user_limits: rpm(5), ..Default::default() };
        let mut state = KeyState::default();
        let mut sizes = Vec::new();
        for i in 0..MAX_END_USERS {
            let now = 60_000 + 1_000 * i as u64;
            let Reply::Admitted { reservation_id, .. } =
                state.handle(scoped_admit(&scopes, "m", Some(&format!("u{i}"))), now).reply
            else {
                panic!("admitted")
            };
            let actual = Actual { tokens: 5, cost_micros: 0 };
            let settle = Command::Settle {
                reservation_id,
                scopes: Default::default(),
                limits: rpm(100),
                policy_version: 1,
                actual,
                usage: None,
            };
            assert_eq!(state.handle(settle, now).end_user_changed, Some(format!("u{i}")));
            if [0, MAX_END_USERS - 1].contains(&i) {
                sizes.push(serde_json::to_string(&state).unwrap().len());
            }
        }
        // Only the counters' digits grow (the key's windows count 1,000 calls).
        assert!(sizes[1] <= sizes[0] + 128, "state bytes with 1 and with {MAX_END_USERS} end users: {sizes:?}");
        let row = serde_json::to_string(state.end_user_ledger("u7").unwrap()).unwrap().len();
        assert!(row < 2_048, "one end user's row: {row} bytes");
    }

    #[test]
    fn the_quota_reads_every_scope_of_the_key() {
        let mut state = KeyState::default();
        let scopes = ScopeLimits {
            model_limits: vec![ModelLimits { pattern: "o3*".into(), limits: rpm(10) }],
            end_user_limits: rpm(3),
        };
        state.handle(scoped_admit(&scopes, "o3-mini", Some("alice")), 1_000);
        state.handle(scoped_admit(&scopes, "gpt-4o", Some("alice")), 1_000);
        let quota = |state: &mut KeyState, secret_version, end_user: Option<&str>| {
            let command = Command::Quota {
                secret_version,
                limits: rpm(100),
                policy_version: 1,
                scopes: scopes.clone(),
                end_user: end_user.map(str::to_owned),
                budgets: vec![],
            };
            let handled = state.handle(command, 2_000);
            assert!(!handled.changed, "read-only");
            handled.reply
        };
        let Reply::Quota(q) = quota(&mut state, 1, Some("alice")) else { panic!("a quota") };
        let used = |uses: &[LimitUse]| uses.iter().map(|u| (u.scope.clone(), u.limit, u.used)).collect::<Vec<_>>();
        assert_eq!(used(&q.key.limits), [("rpm".to_owned(), 100, 2)]);
        assert_eq!(q.key.usage.today.requests, 2);
        assert_eq!((q.models[0].pattern.as_str(), used(&q.models[0].limits)), ("o3*", vec![("rpm".to_owned(), 10, 1)]));
        let end_user = q.end_user.unwrap();
        assert_eq!((end_user.id.as_str(), used(&end_user.limits)), ("alice", vec![("rpm".to_owned(), 3, 2)]));
        let Reply::Quota(q) = quota(&mut state, 1, Some("bob")) else { panic!("a quota") };
        assert_eq!(used(&q.end_user.unwrap().limits), [("rpm".to_owned(), 3, 0)], "a new end user has used nothing");
        state.handle(Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: None } }, 0);
        assert!(matches!(quota(&mut state, 1, None), Reply::Refused(r) if r.error.code() == Code::InvalidApiKey));
    }

    /// An edge's lease command carrying `message` under `limits` (secret version 1, no budgets).
    fn lease_command(limits: &Limits, message: HolderMessage) -> Command {
        Command::Lease { secret_version: 1, limits: limits.clone(), policy_version: 0, message, budgets: vec![] }
    }

    /// An edge's lease message for `message` under `limits` (secret version 1).
    fn send_lease(state: &mut KeyState, limits: &Limits, message: HolderMessage, now_ms: u64) -> UpperReply {
        match state.handle(lease_command(limits, message), now_ms).reply {
            Reply::Lease { reply } => reply,
            other => panic!("{other:?}"),
        }
    }

    fn edge_holder() -> crate::budget::Holder {
        crate::budget::Holder::new("edge:i".into(), 0, crate::budget::EDGE_LEASE_MS, false)
    }

    /// A lease message and its reply cross the object's boundary as JSON: both read back as sent.
    #[test]
    fn a_lease_and_its_reply_round_trip_as_json() {
        let ask = Ask { tokens: 10, cost_micros: 5 };
        let message = edge_holder().request(ask, 1_000).expect("a message");
        let command =
            Command::Lease { secret_version: 1, limits: rpm(100), policy_version: 0, message, budgets: vec![] };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
        let reply = KeyState::default().handle(command, 1_000).reply;
        assert!(matches!(&reply, Reply::Lease { reply } if matches!(reply.outcome, LeaseOutcome::Granted(_))));
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
    }

    /// An edge's lease: granted, its calls counted in the usage book and history when reported
    /// (once, however often the report repeats), and no new slice for a disabled key (`Stopped`).
    #[test]
    fn leases_count_their_reported_calls_once_and_stop_on_revocation() {
        use crate::budget::{HolderAdmission, Received};
        let mut state = KeyState::default();
        let mut holder = edge_holder();
        let ask = Ask { tokens: 10, cost_micros: 5 };
        let reply = send_lease(&mut state, &rpm(100), holder.request(ask, 1_000).unwrap(), 1_000);
        assert_eq!(holder.receive(reply, 1_000), Received::Granted);
        let HolderAdmission::Admitted(ticket) = holder.admit(ask, 1_001) else { panic!("admitted") };
        holder.settle(ticket, Actual { tokens: 7, cost_micros: 3 }, 1_002);
        let flush = holder.flush(1_003).unwrap();
        let reply = send_lease(&mut state, &rpm(100), flush.clone(), 1_003);
        assert_eq!(holder.receive(reply, 1_003), Received::Reported);
        assert_eq!(send_lease(&mut state, &rpm(100), flush, 1_004).outcome, LeaseOutcome::Stale, "a repeat");
        let Reply::Report { usage, .. } =
            state.handle(Command::Report { limits: rpm(100), model_limits: vec![] }, 1_005).reply
        else {
            panic!("a report")
        };
        assert_eq!((usage.today.requests, usage.today.cost_micros), (1, 3), "counted once");
        let Reply::History { days, .. } = state.handle(Command::History { days: 1 }, 1_005).reply else { panic!() };
        assert_eq!(serde_json::to_value(&days).unwrap()[0]["requests"], 1, "{days:?}");
        state.handle(Command::Control { control: Control::Disable }, 1_006);
        let reply = send_lease(&mut state, &rpm(100), holder.request(ask, 1_007).unwrap(), 1_007);
        assert_eq!(reply.outcome, LeaseOutcome::Stopped);
    }

    /// A version 6 state (counters in `ledger`) reads with its counts; its key's first lease
    /// moves them into lease counters, where the window counted before stays full and the open
    /// reservation settles under its id.
    #[test]
    fn a_version_6_state_keeps_its_counts_and_open_reservations_when_leasing() {
        let mut ledger = Ledger::new();
        let ask = Ask { tokens: 10, cost_micros: 5 };
        let id = ledger.admit(&rpm(2), ask, 1_000).unwrap().reservation_id;
        ledger.admit(&rpm(2), ask, 1_000).unwrap();
        let v6 = serde_json::json!({ "v": 6, "ledger": ledger });
        let mut state: KeyState = serde_json::from_value(v6).unwrap();
        let reply = send_lease(&mut state, &rpm(2), edge_holder().request(ask, 1_001).unwrap(), 1_001);
        assert!(matches!(reply.outcome, LeaseOutcome::Refused { .. }), "{reply:?}");
        assert!(state.edge_leases.is_some(), "leasing");
        assert!(matches!(admit(&mut state, &rpm(2), 1), Reply::Refused(_)), "the window stays full");
        let settle = Command::Settle {
            reservation_id: id,
            limits: rpm(2),
            policy_version: 0,
            scopes: Default::default(),
            actual: ask,
            usage: None,
        };
        assert!(state.handle(settle.clone(), 1_002).changed, "the open reservation settles");
        assert!(!state.handle(settle, 1_003).changed, "once");
        let written = serde_json::to_value(&state).unwrap();
        assert_eq!((written["v"].clone(), written["critical"].clone()), (json!(7), json!(["edge_leases"])));
    }

    /// A key that is not leasable is never leased: a lease under scope limits (carried by an
    /// admission or pushed) is answered `Stopped`, and the key stays per call. (A spend cap of
    /// the key's own is leasable: below; so are budgets above the key: `crate::ledger::budgets`.)
    #[test]
    fn a_key_that_is_not_leasable_is_answered_stopped() {
        let ask = Ask { tokens: 10, cost_micros: 5 };
        let scopes: ScopeLimits = serde_json::from_value(json!({"end_user_limits": {"rpm": 5}})).unwrap();
        let mut state = KeyState::default();
        state.handle(Command::PushLimits { limits: rpm(100), policy_version: 2, scopes: scopes.clone() }, 0);
        let reply = send_lease(&mut state, &rpm(100), edge_holder().request(ask, 1_000).unwrap(), 1_000);
        assert_eq!((reply.outcome, state.edge_leases.is_none()), (LeaseOutcome::Stopped, true), "pushed scopes");
        let mut state = KeyState::default();
        let patterns = model_scopes(3);
        state.handle(scoped_admit(&patterns, "m1", None), 900);
        let reply = send_lease(&mut state, &rpm(100), edge_holder().request(ask, 1_000).unwrap(), 1_000);
        assert_eq!((reply.outcome, state.edge_leases.is_none()), (LeaseOutcome::Stopped, true), "carried scopes");
    }

    /// A leasing key that stops being leasable (end-user limits pushed) goes back to per-call
    /// counters at once: the lease's requests stay in the window, the slice it holds stays
    /// reserved (spend and in-flight), a call admitted while leasing settles under its id, and
    /// the edge's next message is answered `Stopped`.
    #[test]
    fn scopes_pushed_while_leasing_return_the_key_to_per_call_counters_with_its_counts() {
        let ask = Ask { tokens: 10, cost_micros: 5 };
        let limits: Limits = serde_json::from_value(json!({"rpm": 100, "max_in_flight": 50, "spend": [{"period":
            "daily", "limit_micros": 1_000_000, "mode": "hard"}]}))
        .unwrap();
        let mut state = KeyState::default();
        let mut holder = edge_holder();
        let reply = send_lease(&mut state, &limits, holder.request(ask, 1_000).unwrap(), 1_000);
        let LeaseOutcome::Granted(grant) = &reply.outcome else { panic!("{reply:?}") };
        let (requests, slots, held) =
            (grant.slice.requests.unwrap(), grant.slice.slots.unwrap(), grant.slice.cost_micros.unwrap());
        holder.receive(reply, 1_000);
        let Reply::Admitted { reservation_id, .. } = admit(&mut state, &limits, 1) else { panic!("per call too") };
        let scopes: ScopeLimits = serde_json::from_value(json!({"end_user_limits": {"rpm": 5}})).unwrap();
        let push = Command::PushLimits { limits: limits.clone(), policy_version: 1, scopes: scopes.clone() };
        assert!(state.handle(push, 1_000).changed);
        assert!(state.edge_leases.is_none(), "per call again");
        let uses = state.ledger.limit_uses(&limits, 1_000);
        let used = |scope: &str| uses.iter().find(|u| u.scope == scope).map(|u| u.used);
        assert_eq!(used("rpm"), Some(requests + 1), "the slice's requests and the call's");
        assert_eq!(used("max_in_flight"), Some(slots + 1), "the slice's slots and the call's");
        assert_eq!(used("spend_daily"), Some(held + ask.cost_micros), "the slice's micro-dollars and the call's");
        let settle = Command::Settle {
            reservation_id,
            limits: limits.clone(),
            policy_version: 1,
            scopes,
            actual: ask,
            usage: None,
        };
        assert!(state.handle(settle, 1_001).changed, "the call admitted while leasing settles");
        let reply = send_lease(
            &mut state,
            &limits,
            holder.request(ask, 1_002).unwrap_or_else(|| holder.flush(1_002).unwrap()),
            1_002,
        );
        assert_eq!(reply.outcome, LeaseOutcome::Stopped);
    }

    /// A hard daily cap warning at 50 %.
    fn daily_cap(limit_micros: u64) -> Limits {
        serde_json::from_value(json!({"spend": [{"period": "daily", "limit_micros": limit_micros, "mode": "hard",
            "warn_at_percent": [50]}]}))
        .unwrap()
    }

    /// What the object's counters hold against a daily cap: (committed, reserved incl.
    /// outstanding slices).
    fn spend_held(state: &KeyState, limits: &Limits, now_ms: u64) -> u64 {
        let uses = state.key_limit_uses(limits, now_ms);
        uses.iter().find(|u| u.scope == "spend_daily").map(|u| u.used).unwrap()
    }

    /// A key with a hard spend cap is leased: each slice holds micro-dollars for its calls'
    /// reservations, so committed + reserved + outstanding slices never pass the cap whatever
    /// several isolates and per-call admissions do; slices shrink to one call as the cap nears;
    /// the cap's events fire from the object's counters as reports arrive; and everything
    /// settled is what the usage book counts.
    #[test]
    fn a_capped_key_is_leased_within_its_cap_and_its_events_fire_from_reports() {
        use crate::budget::{Holder, HolderAdmission, Received, EDGE_LEASE_MS};
        const CAP: u64 = 100_000;
        let limits = daily_cap(CAP);
        let ask = Ask { tokens: 100, cost_micros: 1_000 };
        let actual = Actual { tokens: 60, cost_micros: 600 };
        let mut state = KeyState::default();
        let mut holders: Vec<Holder> =
            (0..3).map(|i| Holder::new(format!("edge:{i}"), 0, EDGE_LEASE_MS, false)).collect();
        let (mut billed, mut events, mut sizes) = (0, vec![], vec![]);
        let mut now_ms = 1_000;
        let mut refused = 0;
        for _ in 0..3_000 {
            now_ms += 3;
            let i = (now_ms as usize / 3) % holders.len();
            let holder = &mut holders[i];
            if holder.flush_due(now_ms) {
                let message = holder.flush(now_ms).expect("due");
                let command = lease_command(&limits, message);
                let handled = state.handle(command, now_ms);
                events.extend(handled.events);
                let Reply::Lease { reply } = handled.reply else { panic!("a lease reply") };
                holder.receive(reply, now_ms);
            }
            let ticket = match holder.admit(ask, now_ms) {
                HolderAdmission::Admitted(ticket) => ticket,
                HolderAdmission::Refused(_) => {
                    refused += 1;
                    continue;
                }
                HolderAdmission::Declined => panic!("a key's object declines no isolate here"),
                HolderAdmission::NeedLease => {
                    let Some(message) = holder.request(ask, now_ms) else { continue };
                    let command = lease_command(&limits, message);
                    let handled = state.handle(command, now_ms);
                    events.extend(handled.events);
                    let Reply::Lease { reply } = handled.reply else { panic!("a lease reply") };
                    if let LeaseOutcome::Granted(grant) = &reply.outcome {
                        sizes.push(grant.slice.cost_micros.unwrap() / ask.cost_micros);
                    }
                    match holder.receive(reply, now_ms) {
                        Received::Granted => {}
                        Received::Refused(denial) => {
                            assert!(matches!(denial.denial, crate::limits::LimitDenial::Spend { .. }), "{denial:?}");
                            refused += 1;
                        }
                        other => panic!("{other:?}"),
                    }
                    continue;
                }
            };
            // Every third call a per-call admission too, on the same counters.
            if now_ms % 9 == 0 {
                let command = unscoped_admit(&limits, 0, 1, ask);
                if let Reply::Admitted { reservation_id, .. } = state.handle(command, now_ms).reply {
                    let settle = unscoped_settle(reservation_id, limits.clone(), actual, None);
                    events.extend(state.handle(settle, now_ms).events);
                    billed += actual.cost_micros;
                }
            }
            holder.settle(ticket, actual, now_ms);
            billed += actual.cost_micros;
            assert!(spend_held(&state, &limits, now_ms) <= CAP, "committed + reserved + slices over the cap");
        }
        for holder in &mut holders {
            let Some(message) = holder.give_back(now_ms) else { continue };
            let command = lease_command(&limits, message);
            events.extend(state.handle(command, now_ms).events);
        }
        let Reply::Report { usage, .. } =
            state.handle(Command::Report { limits: limits.clone(), model_limits: vec![] }, now_ms).reply
        else {
            panic!("a report")
        };
        assert_eq!(usage.today.cost_micros, billed, "the usage book counts every settled call once");
        assert_eq!(spend_held(&state, &limits, now_ms), billed, "nothing reserved once every slice is back");
        assert!(refused > 0, "the cap was reached");
        assert!(billed <= CAP && billed + 3 * ask.cost_micros > CAP, "billed {billed}: within one call per holder");
        assert!(sizes.iter().any(|&n| n > 1), "slices of several calls while headroom lasts: {sizes:?}");
        assert_eq!(sizes.last(), Some(&1), "one call once headroom runs low: {sizes:?}");
        let fired: Vec<u8> = events.iter().map(|e| e.spend.threshold_percent).collect();
        assert_eq!(fired, vec![50], "the 50 % threshold fires once, from the counters");
    }

    /// A slice whose isolate vanished counts whole against the cap until its TTL, is then
    /// charged at what it held, and a late report corrects the charge to what its calls cost.
    #[test]
    fn a_vanished_isolates_capped_slice_counts_until_its_ttl_and_a_late_report_corrects_it() {
        use crate::budget::{HolderAdmission, Received};
        use crate::limits::RESERVATION_TTL_MS;
        let limits = daily_cap(1_000_000);
        let ask = Ask { tokens: 100, cost_micros: 1_000 };
        let mut state = KeyState::default();
        let mut holder = edge_holder();
        let reply = send_lease(&mut state, &limits, holder.request(ask, 1_000).unwrap(), 1_000);
        let LeaseOutcome::Granted(grant) = reply.outcome.clone() else { panic!("{reply:?}") };
        assert_eq!(holder.receive(reply, 1_000), Received::Granted);
        let HolderAdmission::Admitted(ticket) = holder.admit(ask, 1_001) else { panic!("admitted") };
        let held = grant.slice.cost_micros.unwrap();
        assert_eq!(spend_held(&state, &limits, 2_000), held, "the whole slice while it may still be used");
        let late = RESERVATION_TTL_MS + 2_000;
        assert_eq!(spend_held(&state, &limits, late), held, "charged at what it held past its TTL");
        holder.settle(ticket, Actual { tokens: 10, cost_micros: 250 }, late);
        let flush = holder.flush(late).unwrap();
        send_lease(&mut state, &limits, flush, late);
        assert_eq!(spend_held(&state, &limits, late), 250, "the late report corrects it");
    }

    /// One command of a generated history: admissions, settles and releases of earlier ones
    /// (by index), controls and pushed limits.
    fn command() -> impl Strategy<Value = (u8, u64, u64, Option<u64>)> {
        (0..5u8, 0..20u64, 0..10_000u64, prop::option::of(1..50u64))
    }

    proptest! {
        #[test]
        fn states_round_trip(history in prop::collection::vec(command(), 0..40)) {
            let mut state = KeyState::default();
            let mut now_ms = 0;
            let limits = Limits { tpm: NonZeroU64::new(5_000), ..Limits::default() };
            for (op, n, step_ms, limit) in history {
                now_ms += step_ms;
                let command = match op {
                    0 => Command::Admit {
                        secret_version: 1,
                        limits: limits.clone(),
                        policy_version: n % 3,
                        ask: Ask { tokens: n * 10, cost_micros: n },
                        scopes: model_scopes(n % 3),
                        model: Some(format!("m{}", n % 2)),
                        end_user: None,
                        budgets: vec![],
                    },
                    1 => Command::Settle {
                        reservation_id: n,
                        limits: limits.clone(),
                        policy_version: n % 3,
                        scopes: Default::default(),
                        actual: Actual { tokens: n, cost_micros: n },
                        usage: Some(Usage::new(n, 0, n)),
                    },
                    2 => Command::Release { reservation_id: n },
                    3 => Command::Control { control: Control::Rotate { new_version: 1 + n as u32, grace_until_ms: limit } },
                    _ => Command::PushLimits {
                        limits: Limits { rpm: limit.and_then(NonZeroU64::new), ..limits.clone() },
                        policy_version: n % 3,
                        scopes: model_scopes(n % 3),
                    },
                };
                state.handle(command, now_ms);
            }
            let json = serde_json::to_string(&state).unwrap();
            prop_assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), state);
        }
    }
}
