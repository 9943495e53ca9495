//! A key's side of the budgets above it (its project's and its organisation's): one lease
//! [`Holder`] per level, and which calls of the key were admitted from which lease.
//!
//! Flow of an admission ([`BudgetHolders::trial`], then [`BudgetHolders::commit`]): every level the
//! key's record names is tried on a copy of its holder, so a call is admitted at every level or
//! counted at none: a level whose slice cannot cover the call answers [`Blocked::NeedLease`]
//! (the key's object leases from that level's object — [`BudgetHolders::request`], send,
//! [`BudgetHolders::receive`] — and admits again); a level that refuses answers
//! [`Blocked::Refused`], naming its level and scope. A level whose object declines to lease
//! (it remembers [`MAX_HOLDERS`](crate::budget::MAX_HOLDERS) holders, not this key) admits the
//! call directly, exact ([`Direct`], [`crate::ledger::lease_rounds`]): the trial takes that level
//! as admitted; the call's end goes there as a settle ([`BudgetHolders::direct_settles`], due at
//! once, from the object's alarm), as does the release of a direct admission no call kept
//! ([`BudgetHolders::release_direct`]). Only once the key's own ledger has admitted
//! the call too is the trial committed, with the call's tickets remembered by its reservation.
//! Its settle or release ends it at every level ([`BudgetHolders::settle`]); what was settled
//! goes up with the next lease request or, within [`FLUSH_MS`], by a flush
//! ([`BudgetHolders::flushes`], sent from the object's alarm).
//!
//! Edge slices (a leasable key under budgets, [`crate::ledger::object`]): before the key's
//! object grants an isolate a slice, [`BudgetHolders::cover`] says what every level's current
//! slice can still cover (a level that cannot cover one call leases first, as for a call); the
//! grant is narrowed to it and reserved at each level as one bulk ([`BudgetHolders::reserve_edge`],
//! [`Holder::reserve`]); the isolate's reports set what each bulk counts
//! ([`BudgetHolders::report_edge`]): the whole slice while it is open, what its calls used once
//! closed (the unused part goes back, even after the level's lease closed), settled calls at
//! their actual. So every level counts an edge slice as it counts the key's own calls, and ends
//! with what the calls really used.
//!
//! The budget objects' side is [`BudgetState`]; [`BudgetCall`] is one call to such an object,
//! with the limits a key's record carries.
//!
//! Bounds: a key's object admits from a slice only while its lease is valid (at most
//! [`KEY_LEASE_MS`] after it asked); a budget object that cannot answer admits nothing more than
//! the current slice (fail closed). A call whose settle never arrives is ended at its estimate
//! once its reservation would have expired ([`RESERVATION_TTL_MS`]), so a lease is never held
//! open by a lost call.

use crate::budget::{
    Answered, BudgetCommand, BudgetDenial, BudgetState, BulkTicket, CallTicket, Holder, HolderAdmission, HolderMessage,
    LeaseReport, Received, Slice, Tally, UpperReply, FLUSH_MS, KEY_LEASE_MS,
};
use crate::ledger::LevelQuota;
use crate::limits::{Actual, Ask, Charge, Level, Limits, VersionedLimits, RESERVATION_TTL_MS, SETTLE_DEADLINE_MS};
use crate::policy::BudgetLink;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The lease holders of one key's object, by level, and its calls' tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetHolders {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    holders: BTreeMap<Level, Held>,
    /// The tickets of each call admitted under a budget, by its reservation id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    calls: BTreeMap<u64, OpenCall>,
    /// The edge slices the key's object granted while under budgets, by their lease id, each
    /// covered at every level by a bulk reservation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    edge: BTreeMap<u64, EdgeSlice>,
}

/// The calls an edge slice under budgets admits at most when neither the key nor any level
/// limits requests or in-flight calls (far more than an isolate admits in one lease interval):
/// such a slice still reserves its calls at each level, so its bulk stays open there until the
/// isolate reports the slice closed and its calls settled.
pub const UNLIMITED_EDGE_CALLS: u64 = 1_000_000;

/// An edge slice and its bulk reservation at each level, with what was last passed to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EdgeSlice {
    granted_ms: u64,
    slice: Slice,
    bulks: Vec<(Level, BulkTicket)>,
    /// What each bulk counts: used (or still reserved), settled, their actual.
    counted: (Tally, Tally, Charge),
}

/// One level's holder and where its budget object is (the link it was last used with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    holder: Holder,
    link: BudgetLink,
    /// Direct calls at the level's object that ended, with their actual (zero: released), whose
    /// settle is still to be sent ([`BudgetHolders::direct_settles`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    settles: Vec<(u64, Actual)>,
}

/// A call admitted under budgets: its ticket at each level it was admitted from a slice, and
/// its id at each level whose object admitted it directly (a level that declined to lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpenCall {
    admitted_at: u64,
    tickets: Vec<(Level, CallTicket)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    direct: Vec<(Level, u64)>,
}

/// A call admitted directly by a level's budget object (`BudgetCommand::Admit`), as its id
/// there: the levels a call's way through the budgets was admitted at this way.
pub type Direct = (Level, u64);

/// Why a trial admitted nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// That level's slice cannot cover the call: lease, then try again.
    NeedLease(Level),
    /// That level's slice cannot cover the call and its object declined to lease lately
    /// ([`Holder::declined`]): admit the call directly there.
    Declined(Level),
    Refused(BudgetDenial),
}

/// A call admitted at every level on copies of their holders (or directly at a level's
/// object): [`BudgetHolders::commit`] keeps it.
#[derive(Debug)]
pub struct Trial {
    holders: Vec<(Level, Held)>,
    tickets: Vec<(Level, CallTicket)>,
    direct: Vec<Direct>,
}

impl BudgetHolders {
    /// Tries `ask` at every level of `links` (see the module doc) without changing anything; a
    /// level of `direct` admitted the call directly and is not tried.
    pub fn trial(&self, links: &[BudgetLink], ask: Ask, direct: &[Direct], now_ms: u64) -> Result<Trial, Blocked> {
        let mut trial = Trial {
            holders: Vec::with_capacity(links.len()),
            tickets: Vec::with_capacity(links.len()),
            direct: Vec::new(),
        };
        for link in links {
            if let Some(&admitted) = direct.iter().find(|(level, _)| *level == link.level) {
                trial.direct.push(admitted);
                continue;
            }
            let Some(held) = self.holders.get(&link.level) else { return Err(Blocked::NeedLease(link.level)) };
            let mut held = Held { link: link.clone(), ..held.clone() };
            match held.holder.admit(ask, now_ms) {
                HolderAdmission::Admitted(ticket) => trial.tickets.push((link.level, ticket)),
                HolderAdmission::Refused(denial) => return Err(Blocked::Refused(denial)),
                HolderAdmission::NeedLease => return Err(Blocked::NeedLease(link.level)),
                HolderAdmission::Declined => return Err(Blocked::Declined(link.level)),
            }
            trial.holders.push((link.level, held));
        }
        Ok(trial)
    }

    /// Keeps an admitted trial: its holders replace the current ones and its tickets are
    /// remembered under `reservation_id`. Calls older than a reservation's life are ended at
    /// their estimate first.
    pub fn commit(&mut self, trial: Trial, reservation_id: u64, now_ms: u64) {
        self.end_expired(now_ms);
        self.end_expired_edge(now_ms);
        self.holders.extend(trial.holders);
        if !trial.tickets.is_empty() || !trial.direct.is_empty() {
            let call = OpenCall { admitted_at: now_ms, tickets: trial.tickets, direct: trial.direct };
            self.calls.insert(reservation_id, call);
        }
    }

    /// Direct calls that no call of the key kept (its way ended refused at another level, or
    /// by the key): each is released at its level's object with the next settles.
    pub fn release_direct(&mut self, direct: &[Direct]) {
        for &(level, call) in direct {
            self.direct_ended(level, call, Actual::ZERO);
        }
    }

    /// Queues the settle of direct call `call` at `level`'s object. Without a holder at that
    /// level (never expected: a level is asked directly only after declining a lease) nothing is
    /// sent and the object charges the call at its estimate once its reservation would expire.
    fn direct_ended(&mut self, level: Level, call: u64, actual: Actual) {
        if let Some(held) = self.holders.get_mut(&level) {
            held.settles.push((call, actual));
        }
    }

    /// The settles of direct calls to send, each with its level's link (forgotten here once
    /// handed out: a settle lost on its way leaves the call charged at its estimate by its
    /// object past [`RESERVATION_TTL_MS`], fail closed).
    pub fn direct_settles(&mut self) -> Vec<(BudgetLink, u64, Actual)> {
        let held = self.holders.values_mut();
        held.flat_map(|held| held.settles.drain(..).map(|(call, actual)| (held.link.clone(), call, actual))).collect()
    }

    /// Ends the call of `reservation_id` at every level at `actual` (zero: released); whether
    /// it had tickets.
    pub fn settle(&mut self, reservation_id: u64, actual: Actual, now_ms: u64) -> bool {
        let Some(call) = self.calls.remove(&reservation_id) else { return false };
        self.end(call, Some(actual), now_ms);
        true
    }

    /// Ends `call` at every level: at `actual`, or at its estimate (`None`: expired, when a
    /// direct call's object ends it by itself).
    fn end(&mut self, call: OpenCall, actual: Option<Actual>, now_ms: u64) {
        for (level, ticket) in call.tickets {
            if let Some(held) = self.holders.get_mut(&level) {
                held.holder.settle(ticket, actual.unwrap_or(ticket.estimate), now_ms);
            }
        }
        if let Some(actual) = actual {
            for (level, id) in call.direct {
                self.direct_ended(level, id, actual);
            }
        }
    }

    /// Ends, at their estimate, the calls admitted longer ago than a reservation lives.
    fn end_expired(&mut self, now_ms: u64) {
        let expired: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, call)| now_ms.saturating_sub(call.admitted_at) > RESERVATION_TTL_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let call = self.calls.remove(&id).expect("listed above");
            self.end(call, None, now_ms);
        }
    }

    /// What every level of `links` can cover of an edge slice at `now_ms` ([`Holder::cover`]):
    /// each dimension the most every level limiting it has left, calls no more than any level's
    /// free slots, at most [`UNLIMITED_EDGE_CALLS`]; if every level covers one call of `ask`.
    /// Else the first level that needs a lease or refuses. Changes no count.
    pub fn cover(&mut self, links: &[BudgetLink], ask: Ask, now_ms: u64) -> Result<Slice, Blocked> {
        let mut cover = Slice { requests: Some(UNLIMITED_EDGE_CALLS), ..Slice::default() };
        for link in links {
            let Some(held) = self.holders.get_mut(&link.level) else { return Err(Blocked::NeedLease(link.level)) };
            if held.holder.declined(now_ms) {
                return Err(Blocked::Declined(link.level));
            }
            match held.holder.cover(ask, now_ms) {
                Ok(level) => cover = cover.within(&level),
                Err(Some(denial)) => return Err(Blocked::Refused(denial)),
                Err(None) => return Err(Blocked::NeedLease(link.level)),
            }
        }
        Ok(cover)
    }

    /// Reserves edge slice `slice` (lease `lease` of the key's object, within what
    /// [`BudgetHolders::cover`] answered at the same `now_ms`) at every level of `links` in one
    /// piece each; answers whether every level did (if not, none holds it: the grant must not
    /// reach its isolate).
    pub fn reserve_edge(&mut self, links: &[BudgetLink], lease: u64, slice: Slice, now_ms: u64) -> bool {
        self.end_expired_edge(now_ms);
        let reserved = slice.as_tally();
        let mut bulks = Vec::with_capacity(links.len());
        for link in links {
            let ticket = self.holders.get_mut(&link.level).and_then(|held| held.holder.reserve(reserved, now_ms));
            let Some(ticket) = ticket else {
                let nothing = (Tally::default(), Tally::default(), Charge::ZERO);
                for (level, ticket) in bulks {
                    if let Some(held) = self.holders.get_mut(&level) {
                        held.holder.report_bulk(ticket, nothing, true, now_ms);
                    }
                }
                return false;
            };
            bulks.push((link.level, ticket));
        }
        let counted = (reserved, Tally::default(), Charge::ZERO);
        self.edge.insert(lease, EdgeSlice { granted_ms: now_ms, slice, bulks, counted });
        true
    }

    /// Passes an isolate's report of edge slice `report.lease` (applied by the key's object as
    /// newer than any before) to its bulk at every level: while the slice is open each bulk
    /// holds its whole slice (or what was used, if more in a dimension it leaves unlimited);
    /// once closed, what its calls used; settled calls at their actual. A slice closed with every
    /// call settled ends its bulks. Answers whether it knew the slice.
    pub fn report_edge(&mut self, report: &LeaseReport, now_ms: u64) -> bool {
        let Some(edge) = self.edge.get_mut(&report.lease) else { return false };
        let used = if report.closed { report.used } else { at_least(report.used, edge.slice.as_tally()) };
        edge.counted = (used, report.settled, report.actual);
        let ended = report.closed && report.settled.calls >= report.used.calls;
        let edge = if ended { self.edge.remove(&report.lease).expect("found above") } else { edge.clone() };
        for (level, ticket) in &edge.bulks {
            if let Some(held) = self.holders.get_mut(level) {
                held.holder.report_bulk(*ticket, edge.counted, ended, now_ms);
            }
        }
        true
    }

    /// Ends the bulks of the edge slices the key's counters no longer remember (`remembers`
    /// false): a slice its isolate never took (the grant's reply was lost), which the key's
    /// counters closed unused, so nothing of it was used at any level either (a slice its
    /// isolate reported finished ended with that report). Answers whether any ended.
    pub fn forget_edge(&mut self, remembers: impl Fn(u64) -> bool, now_ms: u64) -> bool {
        let forgotten: Vec<u64> = self.edge.keys().copied().filter(|&id| !remembers(id)).collect();
        for id in &forgotten {
            let edge = self.edge.remove(id).expect("listed above");
            let (_, settled, actual) = edge.counted;
            for (level, ticket) in &edge.bulks {
                if let Some(held) = self.holders.get_mut(level) {
                    held.holder.report_bulk(*ticket, (settled, settled, actual), true, now_ms);
                }
            }
        }
        !forgotten.is_empty()
    }

    /// Forgets the edge slices no report can correct any more ([`SETTLE_DEADLINE_MS`] after
    /// their grant; their isolate went silent): each bulk ends as it was last counted. Until
    /// then a vanished isolate's slice stays reserved at every level: each budget object counts
    /// the key's lease that holds it until [`RESERVATION_TTL_MS`] after that lease's grant, then
    /// charges it at what it held, and a late report of the slice corrects every level.
    fn end_expired_edge(&mut self, now_ms: u64) {
        let expired: Vec<u64> = self
            .edge
            .iter()
            .filter(|(_, edge)| now_ms.saturating_sub(edge.granted_ms) >= SETTLE_DEADLINE_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let edge = self.edge.remove(&id).expect("listed above");
            for (level, ticket) in &edge.bulks {
                if let Some(held) = self.holders.get_mut(level) {
                    held.holder.report_bulk(*ticket, edge.counted, true, now_ms);
                }
            }
        }
    }

    /// The message asking the object of `link` for a lease covering `ask` (the level's holder,
    /// named `holder_id`, is created on its first lease); `None` while a message of that level
    /// awaits its reply.
    pub fn request(&mut self, holder_id: &str, link: &BudgetLink, ask: Ask, now_ms: u64) -> Option<HolderMessage> {
        let held = self.holders.entry(link.level).or_insert_with(|| Held {
            holder: Holder::new(holder_id.to_owned(), now_ms, KEY_LEASE_MS, false),
            link: link.clone(),
            settles: Vec::new(),
        });
        held.link = link.clone();
        held.holder.request(ask, now_ms)
    }

    /// Takes `level`'s object's reply.
    pub fn receive(&mut self, level: Level, reply: UpperReply, now_ms: u64) -> Received {
        self.holders.get_mut(&level).map_or(Received::Ignored, |held| held.holder.receive(reply, now_ms))
    }

    /// The reports due, each with its budget's link: settled calls unreported for a second,
    /// and a lease that ended (its unused part goes back): [`Holder::flush_at`].
    pub fn flushes(&mut self, now_ms: u64) -> Vec<(BudgetLink, HolderMessage)> {
        let due = self.holders.values_mut().filter(|held| held.holder.flush_due(now_ms));
        due.filter_map(|held| Some((held.link.clone(), held.holder.flush(now_ms)?))).collect()
    }

    /// When the next report is due, if one will be without another call; one that is due but
    /// cannot go yet (a message awaits its reply) is tried again a [`FLUSH_MS`] later. Settles
    /// of direct calls are due at once.
    pub fn next_flush_at(&self, now_ms: u64) -> Option<u64> {
        let when = |held: &Held| {
            let at = held.holder.flush_at()?;
            Some(if at <= now_ms && !held.holder.flush_due(now_ms) { now_ms + FLUSH_MS } else { at })
        };
        let settles = self.holders.values().any(|held| !held.settles.is_empty()).then_some(now_ms);
        self.holders.values().filter_map(when).chain(settles).min()
    }

    pub fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.calls.is_empty() && self.edge.is_empty()
    }

    /// For each of `levels`, what bounds this key there at `now_ms` as far as its leases tell:
    /// the budget's headroom at its latest reply (and when), and what the current slice holds.
    /// Nothing else of the budget (other keys' use) is known here.
    pub fn quota(&self, levels: &[Level], now_ms: u64) -> Vec<LevelQuota> {
        let of = |level: Level| {
            let holder = self.holders.get(&level).map(|held| &held.holder);
            let read = holder.and_then(Holder::upper_headroom);
            LevelQuota {
                level,
                headroom: read.map(|(headroom, _)| headroom.clone()),
                as_of_ms: read.map(|(_, at)| at),
                slice: holder.and_then(|holder| holder.slice_left(now_ms)),
            }
        };
        levels.iter().map(|&level| of(level)).collect()
    }
}

/// `a`, raised to `b` in each member.
fn at_least(a: Tally, b: Tally) -> Tally {
    Tally {
        calls: a.calls.max(b.calls),
        charge: Charge {
            tokens: a.charge.tokens.max(b.charge.tokens),
            cost_micros: a.charge.cost_micros.max(b.charge.cost_micros),
        },
    }
}

/// One call to a budget object, as its adapter receives it: the command, and the limits the
/// caller carries (a key's record's copy, with its version), applied first, so the object
/// enforces the newest limits it has seen whether or not the control plane's push has arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<VersionedLimits>,
    pub command: BudgetCommand,
}

impl BudgetCall {
    /// A lease message from a key's object, carrying its link's limits.
    pub fn lease(link: &BudgetLink, message: HolderMessage) -> BudgetCall {
        BudgetCall::carrying(link, BudgetCommand::Lease { message })
    }

    /// A call of a key admitted directly (its level declined to lease), carrying its link's
    /// limits.
    pub fn admit(link: &BudgetLink, ask: Ask) -> BudgetCall {
        BudgetCall::carrying(link, BudgetCommand::Admit { ask })
    }

    /// The settle of a direct call, carrying its link's limits (a cap's events fire by them).
    pub fn settle(link: &BudgetLink, call: u64, actual: Actual) -> BudgetCall {
        BudgetCall::carrying(link, BudgetCommand::Settle { call, actual })
    }

    fn carrying(link: &BudgetLink, command: BudgetCommand) -> BudgetCall {
        BudgetCall { carried: Some(VersionedLimits { version: link.version, limits: link.limits.clone() }), command }
    }

    /// The control plane's push.
    pub fn push(limits: Limits, version: u64) -> BudgetCall {
        BudgetCall { carried: None, command: BudgetCommand::PushLimits { limits, policy_version: version } }
    }

    /// Applies the call to `state` in one step: the carried limits, then the command.
    pub fn apply(self, state: &mut BudgetState, now_ms: u64) -> Answered {
        let pushed = self.carried.map(|carried| {
            let push = BudgetCommand::PushLimits { limits: carried.limits, policy_version: carried.version };
            state.handle(push, now_ms).changed
        });
        let mut answered = state.handle(self.command, now_ms);
        answered.changed |= pushed.unwrap_or(false);
        answered
    }
}

/// Budget objects in memory, for host tests and the gateway's fakes.
#[cfg(any(test, feature = "test-util"))]
pub mod in_memory;

#[cfg(test)]
mod tests {
    use super::in_memory::BudgetsInMemory;
    use super::BudgetCall;
    use crate::budget::{BudgetCommand, BudgetReply, CallTicket, Received, KEY_LEASE_MS, REPLY_TIMEOUT_MS};
    use crate::ledger::{Command, KeyState, Refusal, Reply};
    use crate::limits::{Actual, Ask, Level, Limits};
    use crate::policy::BudgetLink;
    use serde_json::json;

    type Uppers = BudgetsInMemory;

    fn link(level: Level, object: &str, limits: serde_json::Value) -> BudgetLink {
        BudgetLink {
            level,
            object: object.to_owned(),
            limits: serde_json::from_value(limits).unwrap(),
            version: 1,
            jurisdiction: None,
            location_hint: None,
        }
    }

    fn answer(key: &mut KeyState, name: &str, uppers: &mut Uppers, command: Command, now_ms: u64) -> Reply {
        uppers.answer(key, name, command, now_ms)
    }

    fn admit(budgets: &[BudgetLink], cost_micros: u64) -> Command {
        Command::Admit {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            ask: Ask { tokens: 10, cost_micros },
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: budgets.to_vec(),
        }
    }

    /// The settle of `reservation_id` at `actual`, under `limits`.
    fn settle(reservation_id: u64, limits: Limits, actual: Actual) -> Command {
        Command::Settle { reservation_id, limits, policy_version: 0, scopes: Default::default(), actual, usage: None }
    }

    /// The level and scope a refusal names.
    fn named(reply: &Reply) -> (String, String) {
        let Reply::Refused(Refusal { error, .. }) = reply else { panic!("expected a refusal, got {reply:?}") };
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        let limit = &body["error"]["limit"];
        (limit["level"].as_str().unwrap().to_owned(), limit["scope"].as_str().unwrap().to_owned())
    }

    #[test]
    fn keys_of_a_project_share_its_rpm_and_a_refusal_names_the_level() {
        let project = [link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 10}))];
        let mut uppers = Uppers::default();
        let mut keys: Vec<KeyState> = (0..3).map(|_| KeyState::default()).collect();
        let mut admitted = 0;
        let mut last = None;
        for i in 0..30 {
            let reply =
                answer(&mut keys[i % 3], &format!("org_a/key_{}", i % 3), &mut uppers, admit(&project, 1), 1_000);
            match reply {
                Reply::Admitted { .. } => admitted += 1,
                refused => last = Some(refused),
            }
        }
        assert!(admitted <= 10, "the project's rpm holds across its keys: {admitted}");
        assert!(admitted >= 7, "under-admission stays small: {admitted}");
        assert_eq!(named(&last.unwrap()), ("project".to_owned(), "rpm".to_owned()));
    }

    #[test]
    fn a_call_refused_by_one_level_counts_at_none() {
        let budgets = [
            link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 100})),
            link(Level::Organisation, "budget:org_a", json!({"spend": [{"period": "daily", "limit_micros": 100}]})),
        ];
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        let Reply::Admitted { reservation_id, .. } =
            answer(&mut key, "org_a/key_1", &mut uppers, admit(&budgets, 60), 1_000)
        else {
            panic!("the first call fits both budgets")
        };
        let refused = answer(&mut key, "org_a/key_1", &mut uppers, admit(&budgets, 60), 1_000);
        assert_eq!(named(&refused), ("organisation".to_owned(), "spend_daily".to_owned()));
        // The call settles below its estimate: the organisation's budget has room again.
        let settle = settle(reservation_id, Limits::default(), Actual { tokens: 5, cost_micros: 10 });
        assert_eq!(answer(&mut key, "org_a/key_1", &mut uppers, settle, 1_500), Reply::Done);
        let again = answer(&mut key, "org_a/key_1", &mut uppers, admit(&budgets, 60), 2_000);
        assert!(matches!(again, Reply::Admitted { .. }), "{again:?}");
    }

    #[test]
    fn an_unreachable_budget_admits_nothing_beyond_the_keys_current_slice() {
        let project = [link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 1000}))];
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        let mut admitted = 0;
        // Calls at a steady rate: the key's slices grow with its demand.
        for i in 0..40 {
            let reply = answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_000 + i);
            assert!(matches!(reply, Reply::Admitted { .. }), "{reply:?}");
        }
        uppers.unreachable.push("budget:org_a/prj_1".to_owned());
        let refused = loop {
            match answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_100) {
                Reply::Admitted { .. } => admitted += 1,
                refused => break refused,
            }
            assert!(admitted <= 1_000, "the slice is finite");
        };
        let Reply::Refused(Refusal { error, .. }) = refused else { unreachable!() };
        assert_eq!((error.status(), error.code()), (503, crate::error::Code::BudgetUnavailable));
        let report = uppers.objects.get_mut("budget:org_a/prj_1").unwrap().handle(BudgetCommand::Report, 1_100).reply;
        let BudgetReply::Report { limits, .. } = report else { panic!("a report") };
        let granted = limits.iter().find(|limit| limit.scope == "rpm").unwrap().used;
        assert!(40 + admitted <= granted, "nothing beyond what was granted: {admitted} more, {granted} granted");
        // Reachable again: the lost message is abandoned after REPLY_TIMEOUT_MS, then the key
        // leases and admits.
        uppers.unreachable.clear();
        let waiting = answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_100 + REPLY_TIMEOUT_MS - 1);
        assert!(matches!(waiting, Reply::Refused(_)), "{waiting:?}");
        let again = answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_100 + REPLY_TIMEOUT_MS);
        assert!(matches!(again, Reply::Admitted { .. }), "{again:?}");
    }

    /// Other calls of the key take every slice the waiting call leases before it steps again,
    /// so it is admitted exactly by the step after its last allowed lease: that admission is the
    /// answer (answering 503 would leave a call counted and never forwarded); one slice taken
    /// more and it is refused `budget_unavailable`, counted nowhere.
    #[test]
    fn a_call_admitted_after_its_last_allowed_lease_is_answered_admitted() {
        use crate::ledger::lease_rounds::MAX_LEASE_ROUNDS;
        let project = [link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 1_000}))];
        let rpm_used = |uppers: &mut Uppers| {
            let report = uppers.objects.get_mut("budget:org_a/prj_1").unwrap().handle(BudgetCommand::Report, 1_000);
            let BudgetReply::Report { limits, .. } = report.reply else { panic!("a report") };
            limits.iter().find(|limit| limit.scope == "rpm").unwrap().used
        };
        let mut uppers = Uppers { slices_taken: MAX_LEASE_ROUNDS - 1, ..Uppers::default() };
        let mut key = KeyState::default();
        let last = answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_000);
        assert!(matches!(last, Reply::Admitted { .. }), "admitted in the last round: {last:?}");
        assert_eq!(uppers.slices_taken, 0, "every round's slice but the last was taken");
        let mut uppers = Uppers { slices_taken: MAX_LEASE_ROUNDS, ..Uppers::default() };
        let mut key = KeyState::default();
        let refused = answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_000);
        let Reply::Refused(Refusal { error, .. }) = refused else { panic!("{refused:?}") };
        assert_eq!(error.code(), crate::error::Code::BudgetUnavailable);
        let report = Command::Report { limits: Limits::default(), model_limits: vec![] };
        let Reply::Report { usage, .. } = key.handle(report, 1_000).reply else { panic!("a report") };
        assert_eq!(usage.today.requests, rpm_used(&mut uppers), "the calls that took the slices, not the refused one");
    }

    /// More keys active under one organisation budget than its object remembers holders
    /// ([`MAX_HOLDERS`](crate::budget::MAX_HOLDERS)): the keys past the bound are declined a
    /// lease and admitted directly at the organisation's object, exactly — every call admitted
    /// while the budget has room, none past it (the oracle: the calls really admitted), a
    /// refusal naming the level and scope; a direct call's settle reaches the object, and a
    /// direct admission a lower level refused is released there.
    #[test]
    fn keys_past_the_holder_bound_are_admitted_directly_and_exactly() {
        use crate::budget::MAX_HOLDERS;
        let keys = MAX_HOLDERS + 76;
        let rpm = keys as u64 + 50;
        let org = link(
            Level::Organisation,
            "budget:org_a",
            json!({"rpm": rpm, "spend": [{"period": "daily", "limit_micros": 1_000_000_000, "mode": "hard"}]}),
        );
        let budgets = [org];
        let mut uppers = Uppers::default();
        let mut states: Vec<KeyState> = (0..keys).map(|_| KeyState::default()).collect();
        let name = |k: usize| format!("org_a/key_{k}");
        let mut admitted = Vec::new();
        for (k, state) in states.iter_mut().enumerate() {
            let reply = answer(state, &name(k), &mut uppers, admit(&budgets, 10), 1_000);
            let Reply::Admitted { reservation_id, .. } = reply else { panic!("key {k}: {reply:?}") };
            admitted.push((k, reservation_id));
        }
        let uses = budget_uses(&mut uppers, "budget:org_a", 1_000);
        assert_eq!(used(&uses, "rpm"), keys as u64, "one request per key, leased or direct");
        // The keys past the bound call again: exactly the budget's room is admitted, then each is
        // refused naming the organisation's rpm; declined lately, they ask no lease first (one
        // object call each).
        let (mut again, calls) = (0, uppers.calls);
        for (k, state) in states.iter_mut().enumerate().skip(MAX_HOLDERS) {
            match answer(state, &name(k), &mut uppers, admit(&budgets, 10), 1_000) {
                Reply::Admitted { .. } => again += 1,
                refused => assert_eq!(named(&refused), ("organisation".to_owned(), "rpm".to_owned())),
            }
            assert!(used(&budget_uses(&mut uppers, "budget:org_a", 1_000), "rpm") <= rpm, "never past the limit");
        }
        assert_eq!(again, 50, "every request the budget had room for");
        assert_eq!(uppers.calls - calls, keys - MAX_HOLDERS, "one direct admission each, no lease message");
        let leased = answer(&mut states[0], &name(0), &mut uppers, admit(&budgets, 10), 1_000);
        assert_eq!(named(&leased), ("organisation".to_owned(), "rpm".to_owned()));
        // A direct call settles at its actual: the object's spend follows once the settle is sent.
        let (k, reservation_id) = admitted[keys - 1];
        let spend = |uppers: &mut Uppers| used(&budget_uses(uppers, "budget:org_a", 1_500), "spend_daily");
        let before = spend(&mut uppers);
        let settle = settle(reservation_id, Limits::default(), Actual { tokens: 5, cost_micros: 3 });
        assert_eq!(answer(&mut states[k], &name(k), &mut uppers, settle, 1_500), Reply::Done);
        assert_eq!(states[k].next_budget_flush_at(1_500), Some(1_500), "a direct settle is due at once");
        uppers.flush(&mut states[k], 1_500);
        assert_eq!(spend(&mut uppers), before - 10 + 3, "settled at its actual");
        // A key whose own limit refuses the call (its first call still open) after the
        // organisation admitted it directly: the direct admission is released.
        let before = spend(&mut uppers);
        let k = keys - 2;
        let refusing = Command::Admit {
            secret_version: 1,
            limits: serde_json::from_value(json!({"max_in_flight": 1})).unwrap(),
            policy_version: 0,
            ask: Ask { tokens: 10, cost_micros: 10 },
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: budgets.to_vec(),
        };
        let refused = answer(&mut states[k], &name(k), &mut uppers, refusing, 120_000);
        assert!(matches!(&refused, Reply::Refused(r) if r.error.code() == crate::error::Code::RateLimitExceeded));
        assert_eq!(spend(&mut uppers), before + 10, "admitted directly at the organisation");
        uppers.flush(&mut states[k], 120_000);
        assert_eq!(spend(&mut uppers), before, "and released");
    }

    #[test]
    fn settled_calls_are_flushed_within_a_second() {
        let project = [link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 100}))];
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        let Reply::Admitted { reservation_id, .. } =
            answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_000)
        else {
            panic!("admitted")
        };
        assert!(
            key.next_budget_flush_at(0).is_none_or(|at| at == 1_000 + KEY_LEASE_MS),
            "a lease goes back when it ends"
        );
        key.handle(Command::Release { reservation_id }, 1_200);
        assert_eq!(key.next_budget_flush_at(0), Some(2_200), "a settled call is reported within a second");
        assert!(key.budget_flushes(1_500).is_empty(), "not due yet");
        let flushes = key.budget_flushes(2_200);
        assert_eq!(flushes.len(), 1);
        assert_eq!((flushes[0].0.object.as_str(), flushes[0].1.want), ("budget:org_a/prj_1", None));
        // The flush's reply arrives; a lease still open goes back when it ends, then nothing is due.
        let upper = uppers.objects.get_mut("budget:org_a/prj_1").unwrap();
        let BudgetReply::Lease(reply) = BudgetCall::lease(&project[0], flushes[0].1.clone()).apply(upper, 2_300).reply
        else {
            panic!("a lease reply")
        };
        key.lease_reply(Level::Project, reply, 2_300);
        if let Some(at) = key.next_budget_flush_at(0) {
            assert_eq!(at, 1_000 + KEY_LEASE_MS);
            let given_back = key.budget_flushes(at);
            assert!(given_back.iter().all(|(_, m)| m.leases.iter().all(|lease| lease.closed)), "{given_back:?}");
        }
        assert_eq!(key.next_budget_flush_at(0), None);
    }

    #[test]
    fn the_quota_tells_each_budgets_headroom_as_of_its_last_reply_and_the_slice_left() {
        let budgets = [
            link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 100})),
            link(Level::Organisation, "budget:org_a", json!({"spend": [{"period": "daily", "limit_micros": 1000}]})),
        ];
        let levels = vec![Level::Project, Level::Organisation];
        let quota = |key: &mut KeyState, now_ms| {
            let command = Command::Quota {
                secret_version: 1,
                limits: Limits::default(),
                policy_version: 0,
                scopes: Default::default(),
                end_user: None,
                budgets: levels.clone(),
            };
            let Reply::Quota(quota) = key.handle(command, now_ms).reply else { panic!("a quota") };
            quota.budgets
        };
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        let before = quota(&mut key, 500);
        assert_eq!(
            before.iter().map(|b| (b.level, b.as_of_ms, b.slice.is_some())).collect::<Vec<_>>(),
            [(Level::Project, None, false), (Level::Organisation, None, false)],
            "nothing known before a lease"
        );
        // Another key of the project leases and spends: this key learns of it only from its replies.
        let other = answer(&mut KeyState::default(), "org_a/key_2", &mut uppers, admit(&budgets[..1], 1), 900);
        assert!(matches!(other, Reply::Admitted { .. }));
        // Calls at a steady rate: the key's slices grow with its demand.
        for i in 0..40 {
            let reply = answer(&mut key, "org_a/key_1", &mut uppers, admit(&budgets, 10), 1_000 + i);
            assert!(matches!(reply, Reply::Admitted { .. }), "{reply:?}");
        }
        let read = quota(&mut key, 1_100);
        let project = &read[0];
        let as_of = project.as_of_ms.unwrap();
        assert!(project.level == Level::Project && (1_000..1_040).contains(&as_of), "{project:?}");
        let slice = project.slice.unwrap();
        let (left, ends) = (slice.left.requests.unwrap(), slice.ends_at_ms);
        assert!(left >= 1 && ends >= 1_000 + KEY_LEASE_MS, "{slice:?}");
        let upper = project.headroom.as_ref().unwrap().requests.unwrap();
        assert_eq!(upper.limit, 100);
        assert!(
            upper.remaining + left + 40 < 100,
            "every slice counts as used there, the other key's too: {} + {left} + 40",
            upper.remaining
        );
        let org = &read[1];
        let spend = org.headroom.as_ref().unwrap().spend.unwrap();
        let org_left = org.slice.unwrap().left.cost_micros.unwrap();
        assert!(spend.remaining_micros + org_left + 400 <= 1_000, "the calls' estimates and the slice are held");
        // Idle past its lease: the slice is gone, the headroom stays as of the last reply.
        let idle = quota(&mut key, ends);
        assert_eq!((idle[0].as_of_ms, idle[0].slice), (Some(as_of), None));
        assert_eq!(serde_json::to_value(&idle[0]).unwrap()["as_of_ms"], as_of);
    }

    #[test]
    fn a_state_with_leases_round_trips() {
        let project = [link(Level::Project, "budget:org_a/prj_1", json!({"tpm": 1000}))];
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        answer(&mut key, "org_a/key_1", &mut uppers, admit(&project, 1), 1_000);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), key);
        let call =
            BudgetCall::lease(&project[0], key.lease_request("org_a/key_1", &project[0], Ask::ZERO, 1_000).unwrap());
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<BudgetCall>(&json).unwrap(), call);
        let reply = call.apply(uppers.objects.get_mut("budget:org_a/prj_1").unwrap(), 1_000).reply;
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<BudgetReply>(&json).unwrap(), reply, "{json}");
    }

    /// What a run of isolates leasing keys under budgets did ([`leased_run`]).
    #[derive(Debug, Default)]
    struct Run {
        /// Calls admitted, from slices or per call.
        admitted: u64,
        /// What they really cost, each key's.
        billed: Vec<u64>,
        /// Messages to the keys' objects (leases, flushes, per-call admissions and settles).
        object_calls: u64,
        /// The level and scope each refusal named.
        refusals: Vec<(String, String)>,
        /// The slices granted, in micro-dollars (0: unlimited).
        slice_micros: Vec<u64>,
    }

    /// A call in flight: when it ends, its key and isolate, and the edge's ticket or the
    /// object's reservation.
    type InFlight = (u64, usize, usize, Result<CallTicket, u64>);

    const ASK: Ask = Ask { tokens: 100, cost_micros: 1_000 };
    const ACTUAL: Actual = Actual { tokens: 60, cost_micros: 600 };
    /// A minute's start: every call of a run falls in it.
    const T0: u64 = 600_000;

    /// Every limit of `limits` at `uses` ≤ its limit.
    fn within(uses: &[crate::limits::LimitUse], what: &str) {
        for u in uses {
            assert!(u.used <= u.limit, "{what} over its {}: {} > {}", u.scope, u.used, u.limit);
        }
    }

    fn budget_uses(uppers: &mut Uppers, object: &str, now_ms: u64) -> Vec<crate::limits::LimitUse> {
        let upper = uppers.objects.get_mut(object).unwrap();
        let BudgetReply::Report { limits, .. } = upper.handle(BudgetCommand::Report, now_ms).reply else { panic!() };
        limits
    }

    fn used(uses: &[crate::limits::LimitUse], scope: &str) -> u64 {
        uses.iter().find(|u| u.scope == scope).map_or(0, |u| u.used)
    }

    /// `calls` calls, one every `step_ms`, over `keys` keys of one project (each with
    /// `key_limits`) under `budgets`, from two isolates that lease each key once hot (here:
    /// always), every seventh call also admitted per call at the key's object; calls last 50 ms
    /// and cost `ACTUAL` of their `ASK`. At every step every level's counters stay within its
    /// limits, and so do the calls really admitted: requests (all in one minute) and spend
    /// (billed + estimates of calls in flight). At the end every slice is given back and every
    /// report sent.
    fn leased_run(budgets: &[BudgetLink], key_limits: &Limits, keys: usize, calls: u64, step_ms: u64) -> (Run, Uppers) {
        use crate::budget::{Holder, HolderAdmission, LeaseOutcome, EDGE_LEASE_MS};
        let mut uppers = Uppers::default();
        let mut states: Vec<KeyState> = (0..keys).map(|_| KeyState::default()).collect();
        let names: Vec<String> = (0..keys).map(|k| format!("org_a/key_{k}")).collect();
        let mut edges: Vec<Vec<Holder>> = (0..2)
            .map(|i| (0..keys).map(|_| Holder::new(format!("edge:{i}"), 0, EDGE_LEASE_MS, false)).collect())
            .collect();
        let mut run = Run { billed: vec![0; keys], ..Run::default() };
        // Calls in flight: (ends at, key, isolate, the edge's ticket or the object's reservation).
        let mut open: Vec<InFlight> = Vec::new();
        let lease = |message, budgets: &[BudgetLink]| Command::Lease {
            secret_version: 1,
            limits: key_limits.clone(),
            policy_version: 0,
            message,
            budgets: budgets.to_vec(),
        };
        let name_of = |error: crate::error::ApiError| {
            let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
            let limit = &body["error"]["limit"];
            (limit["level"].as_str().unwrap().to_owned(), limit["scope"].as_str().unwrap().to_owned())
        };
        let end = T0 + calls * step_ms;
        let mut now = T0;
        let step = |now: u64,
                    run: &mut Run,
                    uppers: &mut Uppers,
                    states: &mut Vec<KeyState>,
                    open: &mut Vec<InFlight>,
                    edges: &mut Vec<Vec<Holder>>| {
            for (k, state) in states.iter_mut().enumerate() {
                let _ = k;
                uppers.flush(state, now);
            }
            let (ended, still): (Vec<_>, Vec<_>) = open.drain(..).partition(|(at, ..)| *at <= now);
            *open = still;
            for (_, k, i, admitted) in ended {
                run.billed[k] += ACTUAL.cost_micros;
                match admitted {
                    Ok(ticket) => edges[i][k].settle(ticket, ACTUAL, now),
                    Err(reservation_id) => {
                        let settle = settle(reservation_id, key_limits.clone(), ACTUAL);
                        run.object_calls += 1;
                        assert_eq!(uppers.answer(&mut states[k], &names[k], settle, now), Reply::Done);
                    }
                }
            }
            for (i, isolate) in edges.iter_mut().enumerate() {
                for (k, holder) in isolate.iter_mut().enumerate() {
                    let _ = i;
                    if holder.flush_due(now) {
                        let message = holder.flush(now).expect("due");
                        run.object_calls += 1;
                        let Reply::Lease { reply } =
                            uppers.answer(&mut states[k], &names[k], lease(message, budgets), now)
                        else {
                            panic!("a lease reply")
                        };
                        holder.receive(reply, now);
                    }
                }
            }
        };
        for n in 0..calls {
            now += step_ms;
            step(now, &mut run, &mut uppers, &mut states, &mut open, &mut edges);
            let (k, i) = ((n as usize) % keys, (n as usize / keys) % 2);
            let mut per_call = n % 7 == 0;
            let holder = &mut edges[i][k];
            match holder.admit(ASK, now) {
                HolderAdmission::Admitted(ticket) => {
                    run.admitted += 1;
                    open.push((now + 50, k, i, Ok(ticket)));
                }
                HolderAdmission::Refused(denial) => run.refusals.push(name_of(denial.into_api_error(now))),
                HolderAdmission::Declined => per_call = true,
                HolderAdmission::NeedLease => match holder.request(ASK, now) {
                    None => per_call = true,
                    Some(message) => {
                        run.object_calls += 1;
                        let Reply::Lease { reply } =
                            uppers.answer(&mut states[k], &names[k], lease(message, budgets), now)
                        else {
                            panic!("a lease reply")
                        };
                        if let LeaseOutcome::Granted(grant) = &reply.outcome {
                            run.slice_micros.push(grant.slice.cost_micros.unwrap_or(0));
                        }
                        match holder.receive(reply, now) {
                            Received::Granted => {
                                let HolderAdmission::Admitted(ticket) = holder.admit(ASK, now) else {
                                    panic!("a new slice covers its waiting call")
                                };
                                run.admitted += 1;
                                open.push((now + 50, k, i, Ok(ticket)));
                            }
                            Received::Refused(denial) => run.refusals.push(name_of(denial.into_api_error(now))),
                            _ => per_call = true,
                        }
                    }
                },
            }
            if per_call {
                run.object_calls += 1;
                match answer(&mut states[k], &names[k], &mut uppers, admit_with(budgets, key_limits, ASK), now) {
                    Reply::Admitted { reservation_id, .. } => {
                        run.admitted += 1;
                        open.push((now + 50, k, i, Err(reservation_id)));
                    }
                    refused => run.refusals.push(named(&refused)),
                }
            }
            // Every level within its limits, by its own counters and by what was really admitted.
            for link in budgets {
                let uses = budget_uses(&mut uppers, &link.object, now);
                within(&uses, &link.object);
                for u in &uses {
                    let truth = match u.scope.as_str() {
                        "rpm" => run.admitted,
                        "spend_daily" => run.billed.iter().sum::<u64>() + open.len() as u64 * ASK.cost_micros,
                        _ => 0,
                    };
                    assert!(truth <= u.limit, "{} admitted {truth} over its {} of {}", link.object, u.scope, u.limit);
                }
            }
            for state in states.iter_mut() {
                let report = Command::Report { limits: key_limits.clone(), model_limits: vec![] };
                let Reply::Report { limits, .. } = state.handle(report, now).reply else { panic!("a report") };
                within(&limits, "a key");
            }
        }
        // Every call ends; then every slice goes back and every report goes up.
        now = end + 100;
        step(now, &mut run, &mut uppers, &mut states, &mut open, &mut edges);
        for _ in 0..10 {
            now += 1_000;
            for isolate in edges.iter_mut() {
                for (k, holder) in isolate.iter_mut().enumerate() {
                    if let Some(message) = holder.give_back(now) {
                        let reply = uppers.answer(&mut states[k], &names[k], lease(message, budgets), now);
                        let Reply::Lease { reply } = reply else { panic!("a lease reply") };
                        holder.receive(reply, now);
                    }
                }
            }
            step(now, &mut run, &mut uppers, &mut states, &mut open, &mut edges);
        }
        assert!(open.is_empty());
        for state in &states {
            assert_eq!(state.next_budget_flush_at(now), None, "every report sent: {state:?}");
        }
        // Each key's usage is what its calls cost.
        for (k, state) in states.iter_mut().enumerate() {
            let report = Command::Report { limits: key_limits.clone(), model_limits: vec![] };
            let Reply::Report { usage, .. } = state.handle(report, now).reply else { panic!("a report") };
            assert_eq!(usage.today.cost_micros, run.billed[k], "key {k}'s usage");
        }
        (run, uppers)
    }

    fn admit_with(budgets: &[BudgetLink], limits: &Limits, ask: Ask) -> Command {
        Command::Admit {
            secret_version: 1,
            limits: limits.clone(),
            policy_version: 0,
            ask,
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: budgets.to_vec(),
        }
    }

    /// Keys under a project's daily cap and RPM and their organisation's cap, leased at the edge:
    /// no level is ever above its limit (by its counters and by what was really admitted), the
    /// project's and organisation's spend equal the sum of their keys' once settled, their request
    /// windows count exactly the calls admitted (the unused part of every slice came back),
    /// refusals name the level and scope that refused, and the edge's slices admit most calls
    /// while the cap is far (few messages to the keys' objects).
    #[test]
    fn keys_under_budgets_are_leased_within_every_level() {
        let project = link(
            Level::Project,
            "budget:org_a/prj_1",
            json!({"rpm": 2_000, "spend": [{"period": "daily",
            "limit_micros": 300_000, "mode": "hard"}]}),
        );
        let org = link(
            Level::Organisation,
            "budget:org_a",
            json!({"spend": [{"period": "daily",
            "limit_micros": 1_000_000, "mode": "hard"}]}),
        );
        let budgets = [project, org];
        let key_limits: Limits = serde_json::from_value(json!({"rpm": 600})).unwrap();
        let (run, mut uppers) = leased_run(&budgets, &key_limits, 3, 1_500, 10);
        let billed: u64 = run.billed.iter().sum();
        let now = T0 + 30_000;
        for link in &budgets {
            let uses = budget_uses(&mut uppers, &link.object, now);
            assert_eq!(used(&uses, "spend_daily"), billed, "{}'s spend is its keys'", link.object);
        }
        let project_uses = budget_uses(&mut uppers, "budget:org_a/prj_1", now);
        assert_eq!(used(&project_uses, "rpm"), run.admitted, "the project's requests are its keys' calls");
        assert!(billed <= 300_000 && billed + 10 * ACTUAL.cost_micros > 300_000, "near the cap: {billed}");
        assert!(!run.refusals.is_empty(), "the cap was reached");
        assert!(
            run.refusals.iter().all(|r| r == &("project".to_owned(), "spend_daily".to_owned())),
            "{:?}",
            run.refusals
        );
        // Far from the cap (the first 200 calls), slices of several calls: few object calls.
        assert!(run.slice_micros.iter().any(|&m| m >= 5 * ASK.cost_micros), "{:?}", run.slice_micros);
        assert!(run.slice_micros.last().is_some_and(|&m| m <= 2 * ASK.cost_micros), "{:?}", run.slice_micros);
    }

    /// A project's RPM binds before any spend: exactly the project's requests are admitted across
    /// its keys' isolates, less at most what open slices held at a refusal, and refusals name
    /// `project`/`rpm`.
    #[test]
    fn a_projects_rpm_holds_across_its_keys_isolates() {
        let project = link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 300}));
        let key_limits = Limits::default();
        let (run, mut uppers) = leased_run(&[project], &key_limits, 4, 1_000, 20);
        let uses = budget_uses(&mut uppers, "budget:org_a/prj_1", T0 + 30_000);
        assert_eq!(used(&uses, "rpm"), run.admitted, "the project counts exactly its keys' calls");
        assert!(run.admitted <= 300 && run.admitted >= 290, "admitted {}", run.admitted);
        assert!(run.refusals.iter().any(|r| r == &("project".to_owned(), "rpm".to_owned())), "{:?}", run.refusals);
        assert!(run.refusals.iter().all(|r| r.0 == "project"), "{:?}", run.refusals);
    }

    /// An edge slice of a key under a project's cap, asked and granted through the key's
    /// object: (the isolate's holder, the key, the slice's micro-dollars, 0 if unlimited).
    fn leased_slice(uppers: &mut Uppers, project: &BudgetLink, now_ms: u64) -> (crate::budget::Holder, KeyState, u64) {
        use crate::budget::{Holder, LeaseOutcome, EDGE_LEASE_MS};
        let mut key = KeyState::default();
        let mut holder = Holder::new("edge:0".into(), 0, EDGE_LEASE_MS, false);
        let message = holder.request(ASK, now_ms).unwrap();
        let command = Command::Lease {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            message,
            budgets: vec![project.clone()],
        };
        let Reply::Lease { reply } = uppers.answer(&mut key, "org_a/key_1", command, now_ms) else { panic!() };
        let LeaseOutcome::Granted(grant) = &reply.outcome else { panic!("{reply:?}") };
        let micros = grant.slice.cost_micros.unwrap_or(0);
        assert_eq!(holder.receive(reply, now_ms), Received::Granted);
        (holder, key, micros)
    }

    /// The project `prj_1` of `org_a` with a hard daily cap of $1.
    fn project_with_daily_cap() -> BudgetLink {
        let cap = json!({"spend": [{"period": "daily", "limit_micros": 1_000_000, "mode": "hard"}]});
        link(Level::Project, "budget:org_a/prj_1", cap)
    }

    /// A slice whose isolate vanished stays reserved at the project after the key's own lease
    /// of the project ended and went back, is charged at what it held past its TTL, and a late
    /// report corrects the project's spend to what its call cost.
    #[test]
    fn a_vanished_isolates_slice_stays_reserved_at_the_project_until_its_ttl() {
        use crate::budget::HolderAdmission;
        use crate::limits::RESERVATION_TTL_MS;
        let project = project_with_daily_cap();
        let mut uppers = Uppers::default();
        let (mut holder, mut key, held) = leased_slice(&mut uppers, &project, 1_000);
        let HolderAdmission::Admitted(ticket) = holder.admit(ASK, 1_001) else { panic!("admitted") };
        // The key's lease of the project ends and goes back: the edge slice stays reserved.
        let ended = key.next_budget_flush_at(1_001).unwrap();
        uppers.flush(&mut key, ended);
        let spend = |uppers: &mut Uppers, now_ms| used(&budget_uses(uppers, &project.object, now_ms), "spend_daily");
        assert_eq!(spend(&mut uppers, ended), held, "the edge slice, whole");
        let late = 1_000 + RESERVATION_TTL_MS + 1_000;
        assert_eq!(spend(&mut uppers, late), held, "charged at what it held");
        holder.settle(ticket, ACTUAL, late);
        let report = Command::Lease {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            message: holder.give_back(late).unwrap(),
            budgets: vec![project.clone()],
        };
        assert!(matches!(uppers.answer(&mut key, "org_a/key_1", report, late), Reply::Lease { .. }));
        let due = key.next_budget_flush_at(late).unwrap();
        uppers.flush(&mut key, due);
        assert_eq!(spend(&mut uppers, late + 2_000), ACTUAL.cost_micros, "corrected by the late report");
    }

    /// Revoking a key under a budget is bounded by the edge lease as for any leased key: its
    /// slice admits nothing past the lease's end, the next message is answered `Stopped`, and
    /// the slice's unused part goes back to the project.
    #[test]
    fn a_revoked_key_under_a_budget_is_stopped_within_the_edge_lease_and_its_slice_goes_back() {
        use crate::budget::{HolderAdmission, LeaseOutcome, EDGE_LEASE_MS};
        use crate::ledger::revocation::Control;
        let project = link(Level::Project, "budget:org_a/prj_1", json!({"rpm": 1_000}));
        let mut uppers = Uppers::default();
        let (mut holder, mut key, _) = leased_slice(&mut uppers, &project, 1_000);
        key.handle(Command::Control { control: Control::Disable }, 1_001);
        let mut admitted = 0;
        while let HolderAdmission::Admitted(_) = holder.admit(ASK, 1_000 + EDGE_LEASE_MS - 1) {
            admitted += 1;
        }
        assert!(admitted >= 1, "the slice admits until its end");
        assert_eq!(holder.admit(ASK, 1_000 + EDGE_LEASE_MS), HolderAdmission::NeedLease, "nothing past its end");
        let message = holder.request(ASK, 1_000 + EDGE_LEASE_MS).unwrap();
        let command = Command::Lease {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            message,
            budgets: vec![project.clone()],
        };
        let Reply::Lease { reply } = uppers.answer(&mut key, "org_a/key_1", command, 2_000) else { panic!() };
        assert_eq!(reply.outcome, LeaseOutcome::Stopped);
        let due = key.next_budget_flush_at(2_000).unwrap().max(2_000);
        uppers.flush(&mut key, due);
        assert_eq!(used(&budget_uses(&mut uppers, &project.object, 4_000), "rpm"), admitted, "its calls, no more");
    }

    /// A slice whose grant never reached its isolate (the reply lost) is closed unused by the
    /// key's counters at the isolate's next message, and so at the project: nothing of it stays
    /// reserved or is charged there.
    #[test]
    fn a_slice_whose_grant_was_lost_goes_back_to_the_project_whole() {
        use crate::budget::{Holder, LeaseOutcome, EDGE_LEASE_MS};
        let project = project_with_daily_cap();
        let mut uppers = Uppers::default();
        let mut key = KeyState::default();
        let mut holder = Holder::new("edge:0".into(), 0, EDGE_LEASE_MS, false);
        let lease = |message| Command::Lease {
            secret_version: 1,
            limits: Limits::default(),
            policy_version: 0,
            message,
            budgets: vec![project.clone()],
        };
        let lost = uppers.answer(&mut key, "org_a/key_1", lease(holder.request(ASK, 1_000).unwrap()), 1_000);
        assert!(matches!(&lost, Reply::Lease { reply } if matches!(reply.outcome, LeaseOutcome::Granted(_))));
        // The isolate never took it: its next message, once the first is abandoned, lists no lease.
        let later = 1_000 + REPLY_TIMEOUT_MS;
        let Reply::Lease { reply } =
            uppers.answer(&mut key, "org_a/key_1", lease(holder.request(ASK, later).unwrap()), later)
        else {
            panic!("a lease reply")
        };
        assert_eq!(holder.receive(reply, later), Received::Granted);
        let Reply::Lease { reply } =
            uppers.answer(&mut key, "org_a/key_1", lease(holder.give_back(later).unwrap()), later)
        else {
            panic!("a lease reply")
        };
        holder.receive(reply, later);
        while let Some(due) = key.next_budget_flush_at(later) {
            uppers.flush(&mut key, due.max(later));
            if due > later + 10 * KEY_LEASE_MS {
                break;
            }
        }
        let spend = used(&budget_uses(&mut uppers, &project.object, later + 10_000), "spend_daily");
        assert_eq!(spend, 0, "neither slice held at the project");
    }
}
