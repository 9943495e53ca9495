//! In-memory fakes of every port of the pipeline, with knobs to make each fail, for host tests
//! of the whole flow (`tests/gateway_flow.rs`). Built with `cfg(test)` or the `test-util`
//! feature only.
//!
//! - [`FakeKeyStore`]: key records by plaintext key, organisation records by id; knob:
//!   unreachable.
//! - [`FakeKeyLedgers`]: the real [`KeyState`] per ledger object, in memory, recording every
//!   command sent, to which object in which jurisdiction, and what became of it; knobs, at
//!   admission, at settlement or for the control plane's commands: unreachable, the write fails
//!   after applying (the state changed but the reply is lost), the command is delivered twice,
//!   or it is held and delivered late ([`FakeKeyLedgers::deliver_delayed`]).
//! - [`FakeUpstream`]: answers scripted per call (a JSON or SSE body in chunks, any status),
//!   or a connect error, or a timeout; an answer may wait for a [`Signal`] and its body may be
//!   cut after some bytes. Records every request it was sent.
//! - [`FakeRuntime`]: hands background tasks to the test's executor, keeps log lines.
//! - [`Signal`]: a one-way latch the test fires (the client leaving, the upstream answering).

use crate::budget::{BudgetCommand, BudgetReply};
use crate::error::ApiError;
use crate::gateway::ports::{
    KeyLedger, KeyLedgers, KeyStore, LedgerAddress, RequestBody, Runtime, Unreachable, Upstream, UpstreamAnswer,
    UpstreamFailure, UpstreamRequest,
};
use crate::gateway::request::body_too_large;
use crate::ledger::budgets::in_memory::BudgetsInMemory;
use crate::ledger::{Command, KeyState, Reply};
use crate::limits::LimitUse;
use crate::naming;
use crate::policy::key_hash::record_name;
use crate::policy::Jurisdiction;
use futures_util::Stream;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A latch: futures from [`Signal::wait`] resolve once [`Signal::fire`] was called.
#[derive(Clone, Default)]
pub struct Signal(Rc<SignalState>);

#[derive(Default)]
struct SignalState {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Signal {
    pub fn fire(&self) {
        self.0.fired.set(true);
        self.0.wakers.take().into_iter().for_each(Waker::wake);
    }

    pub fn wait(&self) -> impl Future<Output = ()> + 'static {
        let state = self.0.clone();
        std::future::poll_fn(move |cx| {
            if state.fired.get() {
                Poll::Ready(())
            } else {
                state.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// The client's body, read with the gateway's cap.
impl RequestBody for Vec<u8> {
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        if self.len() > max_bytes {
            return Err(body_too_large());
        }
        Ok(self)
    }
}

/// Key and organisation records by record name.
#[derive(Default)]
pub struct FakeKeyStore {
    records: RefCell<HashMap<String, Vec<u8>>>,
    /// Every lookup fails.
    pub unreachable: Cell<bool>,
    lookups: Cell<usize>,
}

impl FakeKeyStore {
    /// Stores `record` (a key record's JSON) under the name of the plaintext `key`.
    pub fn insert(&self, key: &str, record: &str) {
        self.records.borrow_mut().insert(record_name(key), record.as_bytes().to_vec());
    }

    /// Stores `record` (an organisation record's JSON) as organisation `org_id`'s.
    pub fn insert_org(&self, org_id: &str, record: &str) {
        self.records.borrow_mut().insert(naming::org_record(org_id), record.as_bytes().to_vec());
    }

    /// Stores `record` under its record name `name` (as the control plane's projection writes it).
    pub fn put_named(&self, name: &str, record: &[u8]) {
        self.records.borrow_mut().insert(name.to_owned(), record.to_vec());
    }

    /// Removes the record named `name`.
    pub fn delete_named(&self, name: &str) {
        self.records.borrow_mut().remove(name);
    }

    /// How many lookups were made (failed ones included).
    pub fn lookups(&self) -> usize {
        self.lookups.get()
    }
}

impl KeyStore for FakeKeyStore {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Unreachable> {
        self.lookups.set(self.lookups.get() + 1);
        if self.unreachable.get() {
            return Err(Unreachable);
        }
        Ok(self.records.borrow().get(name).cloned())
    }
}

/// Which commands a [`LedgerFault`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStage {
    /// `Admit`.
    Admission,
    /// `Settle` and `Release`.
    Settlement,
    /// The control plane's `Control` and `PushLimits`.
    Control,
    /// An edge isolate's lease messages (`Lease`: asks, flushes, slices given back).
    Lease,
}

impl LedgerStage {
    fn of(command: &Command) -> Option<LedgerStage> {
        match command {
            Command::Admit { .. } => Some(LedgerStage::Admission),
            Command::Settle { .. } | Command::Release { .. } => Some(LedgerStage::Settlement),
            Command::Control { .. } | Command::PushLimits { .. } => Some(LedgerStage::Control),
            Command::Lease { .. } => Some(LedgerStage::Lease),
            Command::Report { .. } | Command::Quota { .. } | Command::History { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFault {
    /// The command never reaches the ledger.
    Unreachable,
    /// The ledger applies the command, then its write fails: the state changed, the reply is lost.
    ReplyLost,
    /// The command is applied and answered, then delivered once more (an at-least-once
    /// transport): the second delivery is recorded as [`Outcome::Redelivered`].
    Duplicated,
    /// The command is held (the sender sees the ledger unreachable) and applied only when the
    /// test calls [`FakeKeyLedgers::deliver_delayed`], whatever the time then.
    Delayed,
}

/// What became of one command sent to a key's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and answered.
    Replied(Reply),
    /// Applied, reply lost.
    ReplyLost(Reply),
    /// Not applied.
    Unreachable,
    /// Held, to be applied later; the sender saw the ledger unreachable.
    Delayed,
    /// A command applied once more, after it was first sent: a duplicate or a late delivery of
    /// one held.
    Redelivered(Reply),
}

/// One command sent to a key's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The ledger object's name.
    pub object: String,
    pub jurisdiction: Option<Jurisdiction>,
    pub command: Command,
    pub outcome: Outcome,
}

/// The key ledgers of every key, by object name, sharing one clock.
#[derive(Clone, Default)]
pub struct FakeKeyLedgers(Rc<LedgersState>);

#[derive(Default)]
struct LedgersState {
    states: RefCell<HashMap<String, KeyState>>,
    /// The budget objects the keys lease from.
    budgets: RefCell<BudgetsInMemory>,
    sent: RefCell<Vec<Sent>>,
    now_ms: Cell<u64>,
    fault: Cell<Option<(LedgerStage, LedgerFault)>>,
    delayed: RefCell<Vec<(LedgerAddress, Command)>>,
}

impl FakeKeyLedgers {
    /// The ledgers' clock (the ledger reads its own clock, not the edge's).
    pub fn set_now_ms(&self, now_ms: u64) {
        self.0.now_ms.set(now_ms);
    }

    /// Makes every later command of `stage` fail with `fault`.
    pub fn fail(&self, stage: LedgerStage, fault: LedgerFault) {
        self.0.fault.set(Some((stage, fault)));
    }

    /// Ends the fault set by [`FakeKeyLedgers::fail`].
    pub fn heal(&self) {
        self.0.fault.set(None);
    }

    /// Every command sent so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent_since(0)
    }

    /// The commands sent after the first `count`, in order.
    pub fn sent_since(&self, count: usize) -> Vec<Sent> {
        self.0.sent.borrow()[count..].to_vec()
    }

    /// Every command sent since the last call, in order, forgotten here (a long soak reads
    /// millions).
    pub fn take_sent(&self) -> Vec<Sent> {
        self.0.sent.take()
    }

    /// Applies every held command ([`LedgerFault::Delayed`]) now, in the order sent, recording
    /// each as [`Outcome::Redelivered`]; how many there were.
    pub fn deliver_delayed(&self) -> usize {
        let delayed = self.0.delayed.take();
        for (address, command) in &delayed {
            let reply = self.apply(&address.object, command.clone());
            self.record(address, command, Outcome::Redelivered(reply));
        }
        delayed.len()
    }

    fn record(&self, address: &LedgerAddress, command: &Command, outcome: Outcome) {
        let sent = Sent {
            object: address.object.clone(),
            jurisdiction: address.jurisdiction,
            command: command.clone(),
            outcome,
        };
        self.0.sent.borrow_mut().push(sent);
    }

    /// Sends every key object's reports due to its budgets' objects at the ledgers' clock (what
    /// the objects' alarms do): settled calls, and leases that ended given back.
    pub fn flush_budgets(&self) {
        let now_ms = self.0.now_ms.get();
        let mut budgets = self.0.budgets.borrow_mut();
        for state in self.0.states.borrow_mut().values_mut() {
            budgets.flush(state, now_ms);
        }
    }

    /// The state of every limit of budget object `object` at the ledgers' clock (none before a
    /// key leased from it).
    pub fn budget_uses(&self, object: &str) -> Vec<LimitUse> {
        let mut budgets = self.0.budgets.borrow_mut();
        let Some(budget) = budgets.objects.get_mut(object) else { return vec![] };
        match budget.handle(BudgetCommand::Report, self.0.now_ms.get()).reply {
            BudgetReply::Report { limits, .. } => limits,
            _ => vec![],
        }
    }

    /// Applies `command` to the state of ledger `object` directly (as the control plane would),
    /// leasing from the budgets above the key as its object does.
    pub fn apply(&self, object: &str, command: Command) -> Reply {
        let mut states = self.0.states.borrow_mut();
        let state = states.entry(object.to_owned()).or_default();
        self.0.budgets.borrow_mut().answer(state, object, command, self.0.now_ms.get())
    }
}

impl KeyLedgers for FakeKeyLedgers {
    type Ledger = FakeKeyLedger;

    fn ledger(&self, address: &LedgerAddress) -> Result<FakeKeyLedger, Unreachable> {
        Ok(FakeKeyLedger { address: address.clone(), ledgers: self.clone() })
    }
}

/// One key's ledger in [`FakeKeyLedgers`].
pub struct FakeKeyLedger {
    address: LedgerAddress,
    ledgers: FakeKeyLedgers,
}

impl KeyLedger for FakeKeyLedger {
    async fn send(&self, command: &Command) -> Result<Reply, Unreachable> {
        let ledgers = &self.ledgers;
        let fault = ledgers.0.fault.get().filter(|(stage, _)| LedgerStage::of(command) == Some(*stage)).map(|(_, f)| f);
        let apply = || ledgers.apply(&self.address.object, command.clone());
        let outcome = match fault {
            Some(LedgerFault::Unreachable) => Outcome::Unreachable,
            Some(LedgerFault::ReplyLost) => Outcome::ReplyLost(apply()),
            Some(LedgerFault::Delayed) => {
                ledgers.0.delayed.borrow_mut().push((self.address.clone(), command.clone()));
                Outcome::Delayed
            }
            None | Some(LedgerFault::Duplicated) => Outcome::Replied(apply()),
        };
        ledgers.record(&self.address, command, outcome.clone());
        if fault == Some(LedgerFault::Duplicated) {
            ledgers.record(&self.address, command, Outcome::Redelivered(apply()));
        }
        match outcome {
            Outcome::Replied(reply) => Ok(reply),
            _ => Err(Unreachable),
        }
    }
}

/// A scripted upstream answer.
#[derive(Clone)]
pub struct FakeAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Vec<u8>>,
    /// The body fails after this many bytes.
    pub cut_after_bytes: Option<usize>,
    /// The answer arrives only once this fires.
    pub wait_for: Option<Signal>,
}

impl FakeAnswer {
    /// A JSON answer sent in one chunk.
    pub fn json(status: u16, body: &str) -> FakeAnswer {
        FakeAnswer {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            chunks: vec![body.as_bytes().to_vec()],
            cut_after_bytes: None,
            wait_for: None,
        }
    }

    /// A 200 event stream, one chunk per event (each given without its `data: ` framing).
    pub fn sse(events: &[&str]) -> FakeAnswer {
        FakeAnswer {
            status: 200,
            headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
            chunks: events.iter().map(|event| format!("data: {event}\n\n").into_bytes()).collect(),
            cut_after_bytes: None,
            wait_for: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> FakeAnswer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> FakeAnswer {
        self.cut_after_bytes = Some(bytes);
        self
    }

    pub fn wait_for(mut self, signal: &Signal) -> FakeAnswer {
        self.wait_for = Some(signal.clone());
        self
    }
}

/// What the fake upstream does with one request.
#[derive(Clone)]
pub enum Scripted {
    Answer(FakeAnswer),
    ConnectError,
    Timeout,
}

/// One request the fake upstream was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An upstream answering from a script, one entry per request, in order.
#[derive(Default)]
pub struct FakeUpstream {
    script: RefCell<VecDeque<Scripted>>,
    sent: RefCell<Vec<SentRequest>>,
}

/// The credential the fake upstream finds in secret `name`.
pub fn fake_credential(secret_name: &str) -> String {
    format!("upstream-secret-of-{secret_name}")
}

impl FakeUpstream {
    pub fn script(&self, scripted: impl IntoIterator<Item = Scripted>) {
        self.script.borrow_mut().extend(scripted);
    }

    /// Every request sent so far, in order.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.borrow().clone()
    }
}

impl Upstream for FakeUpstream {
    type Body = FakeBody;
    type BodyError = StreamCut;

    fn credential(&self, secret_name: &str) -> Option<String> {
        Some(fake_credential(secret_name))
    }

    async fn send(&self, request: &UpstreamRequest<'_>) -> Result<UpstreamAnswer<FakeBody>, UpstreamFailure> {
        self.sent.borrow_mut().push(SentRequest {
            method: request.method,
            url: request.url.clone(),
            headers: request.headers.iter().map(|(n, v)| ((*n).to_owned(), v.to_string())).collect(),
            body: request.body.to_vec(),
        });
        let scripted = self.script.borrow_mut().pop_front().expect("the test scripted an answer for every request");
        match scripted {
            Scripted::ConnectError => Err(UpstreamFailure::Unreachable("connection refused".to_owned())),
            Scripted::Timeout => Err(UpstreamFailure::TimedOut),
            Scripted::Answer(answer) => {
                if let Some(signal) = &answer.wait_for {
                    signal.wait().await;
                }
                let body = FakeBody { chunks: answer.chunks.into(), left_before_cut: answer.cut_after_bytes };
                Ok(UpstreamAnswer { status: answer.status, headers: answer.headers, body })
            }
        }
    }
}

/// The error of a body cut mid-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCut;

/// A scripted body: its chunks, failing once the cut is reached.
pub struct FakeBody {
    chunks: VecDeque<Vec<u8>>,
    left_before_cut: Option<usize>,
}

impl Stream for FakeBody {
    type Item = Result<Vec<u8>, StreamCut>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.left_before_cut == Some(0) {
            this.chunks.clear();
            this.left_before_cut = None;
            return Poll::Ready(Some(Err(StreamCut)));
        }
        let Some(mut chunk) = this.chunks.pop_front() else {
            return Poll::Ready(None);
        };
        if let Some(left) = this.left_before_cut.as_mut() {
            chunk.truncate(*left);
            *left -= chunk.len();
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// A background task, boxed for the test's executor.
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// A sleep waiting: when it is due, and how to wake it (telling it the time).
type Sleeper = (u64, futures_channel::oneshot::Sender<u64>);

/// Background tasks go to the test's executor through `spawn`; log lines are kept.
pub struct FakeRuntime {
    spawn: Box<dyn Fn(Task)>,
    lines: RefCell<Vec<String>>,
    /// Each sleep waiting, with when it is due (the runtime's clock at its first poll + its ms).
    sleepers: Rc<RefCell<Vec<Sleeper>>>,
    /// The runtime's clock, for when a sleep is due ([`FakeRuntime::set_now_ms`]).
    now_ms: Rc<Cell<u64>>,
}

impl FakeRuntime {
    pub fn new(spawn: impl Fn(Task) + 'static) -> FakeRuntime {
        FakeRuntime {
            spawn: Box::new(spawn),
            lines: RefCell::default(),
            sleepers: Rc::default(),
            now_ms: Rc::default(),
        }
    }

    /// Wakes every [`Runtime::sleep`] waiting, telling them it is `now_ms` (a sleep resolves
    /// only when the test says time has passed); answers how many woke.
    pub fn wake_sleepers(&self, now_ms: u64) -> usize {
        self.wake(now_ms, |_| true)
    }

    /// Sets the runtime's clock: a sleep first polled now is due this much later.
    pub fn set_now_ms(&self, now_ms: u64) {
        self.now_ms.set(now_ms);
    }

    /// Wakes the sleeps due by `now_ms` (as a real runtime would by then), telling them it is
    /// `now_ms`; answers how many woke. The clock is not moved.
    pub fn wake_due(&self, now_ms: u64) -> usize {
        self.wake(now_ms, |due| due <= now_ms)
    }

    fn wake(&self, now_ms: u64, due: impl Fn(u64) -> bool) -> usize {
        let sleepers = std::mem::take(&mut *self.sleepers.borrow_mut());
        let (woken, asleep): (Vec<_>, Vec<_>) = sleepers.into_iter().partition(|(at, _)| due(*at));
        self.sleepers.borrow_mut().extend(asleep);
        let count = woken.len();
        for (_, sleeper) in woken {
            let _ = sleeper.send(now_ms);
        }
        count
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

impl Runtime for FakeRuntime {
    fn wait_until(&self, task: impl Future<Output = ()> + 'static) {
        (self.spawn)(Box::pin(task));
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = u64> + 'static {
        let (sleepers, now_ms) = (Rc::clone(&self.sleepers), Rc::clone(&self.now_ms));
        // Asleep from its first poll; a runtime dropped with sleepers waiting never wakes them.
        async move {
            let (tx, rx) = futures_channel::oneshot::channel();
            sleepers.borrow_mut().push((now_ms.get().saturating_add(ms), tx));
            match rx.await {
                Ok(now_ms) => now_ms,
                Err(_) => futures_util::future::pending().await,
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn warn(&self, line: &str) {
        self.lines.borrow_mut().push(format!("warn: {line}"));
    }

    fn error(&self, line: &str) {
        self.lines.borrow_mut().push(format!("error: {line}"));
    }
}
