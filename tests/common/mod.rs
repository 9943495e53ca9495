//! Host test support: the [`Sql`] port over real SQLite (the same statements the Durable
//! Objects run), fakes of the registry's ports with failure knobs, a settable clock and
//! deterministic randomness. Each test binary uses the parts it needs.
#![allow(dead_code)]

use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::Connection;
use serde_json::{Number, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use teamkeys::admin::api::ports::{BudgetAddress, KeyRecords, LedgerAddress, LedgerObjects};
use teamkeys::error::{ApiError, Code};
use teamkeys::ledger::{Command, KeyState, Reply};
use teamkeys::limits::{LimitUse, Limits};
use teamkeys::policy::Jurisdiction;
use teamkeys::sql::{Row, Sql, SqlError, SqlValue};

/// One in-memory SQLite database; clones share it (as a Durable Object's stores share its
/// storage). No statement runs inside a transaction, as on the Durable Object.
#[derive(Clone)]
pub struct Sqlite(Rc<Connection>);

impl Sqlite {
    pub fn new() -> Sqlite {
        Sqlite(Rc::new(Connection::open_in_memory().expect("an in-memory SQLite")))
    }

    pub fn boxed(&self) -> Box<dyn Sql> {
        Box::new(self.clone())
    }

    /// A statement run directly, for a test to look at or break the tables.
    pub fn raw(&self, statement: &str) -> Vec<Row> {
        self.exec(statement, &[]).expect("the test's statement runs")
    }
}

impl Sql for Sqlite {
    fn exec(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let failed = |e: rusqlite::Error| SqlError(format!("{e} in {statement}"));
        let mut prepared = self.0.prepare(statement).map_err(failed)?;
        let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
        let bound = rusqlite::params_from_iter(params.iter().map(|value| match value {
            SqlValue::Null => SqliteValue::Null,
            SqlValue::Integer(n) => SqliteValue::Integer(*n),
            SqlValue::Text(text) => SqliteValue::Text(text.clone()),
        }));
        let mut rows = prepared.query(bound).map_err(failed)?;
        let mut answered = Vec::new();
        while let Some(row) = rows.next().map_err(failed)? {
            let mut fields = Row::new();
            for (i, name) in columns.iter().enumerate() {
                let value = match row.get_ref(i).map_err(failed)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::from(n),
                    ValueRef::Real(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
                    ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
                    ValueRef::Blob(bytes) => Value::from(bytes.to_vec()),
                };
                fields.insert(name.clone(), value);
            }
            answered.push(fields);
        }
        Ok(answered)
    }
}

/// Unix milliseconds, set by the test.
#[derive(Clone)]
pub struct Clock(Rc<Cell<u64>>);

impl Clock {
    pub fn at(ms: u64) -> Clock {
        Clock(Rc::new(Cell::new(ms)))
    }

    pub fn now(&self) -> u64 {
        self.0.get()
    }

    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

/// Deterministic bytes (xorshift), distinct across calls.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed.max(1))
    }
}

impl teamkeys::admin::secret::Random for Seeded {
    fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// KV in memory. `unreachable` makes every write fail (as a KV outage would).
#[derive(Default)]
pub struct FakeKv {
    pub records: RefCell<HashMap<String, String>>,
    pub unreachable: Cell<bool>,
    /// Writes that reached KV, in order: `put <name>` / `delete <name>`.
    pub log: RefCell<Vec<String>>,
}

impl FakeKv {
    pub fn record(&self, name: &str) -> Option<Value> {
        self.records.borrow().get(name).map(|r| serde_json::from_str(r).expect("records are JSON"))
    }

    fn reach(&self) -> Result<(), String> {
        if self.unreachable.get() {
            return Err("KV unreachable".to_owned());
        }
        Ok(())
    }
}

impl KeyRecords for FakeKv {
    async fn put(&self, name: &str, record: String) -> Result<(), String> {
        self.reach()?;
        self.log.borrow_mut().push(format!("put {name}"));
        self.records.borrow_mut().insert(name.to_owned(), record);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), String> {
        self.reach()?;
        self.log.borrow_mut().push(format!("delete {name}"));
        self.records.borrow_mut().remove(name);
        Ok(())
    }
}

/// The keys' ledger objects in memory, by object name, running the real state machine.
/// `unreachable` makes every call fail with the edge's 503.
pub struct FakeLedgers {
    pub states: RefCell<HashMap<String, KeyState>>,
    pub unreachable: Cell<bool>,
    /// Commands that reached an object, in order, with the object's name.
    pub received: RefCell<Vec<(String, Command)>>,
    /// The jurisdiction each object was addressed in.
    pub jurisdictions: RefCell<HashMap<String, Option<Jurisdiction>>>,
    /// The budget objects by name: the address of the last push and the newest limits pushed
    /// with their version.
    pub budgets: RefCell<HashMap<String, (BudgetAddress, Limits, u64)>>,
    clock: Clock,
}

impl FakeLedgers {
    pub fn new(clock: &Clock) -> FakeLedgers {
        FakeLedgers {
            states: RefCell::default(),
            unreachable: Cell::new(false),
            received: RefCell::default(),
            jurisdictions: RefCell::default(),
            budgets: RefCell::default(),
            clock: clock.clone(),
        }
    }

    /// The commands key `key_id`'s object received, as their `op` names.
    pub fn ops(&self, key_id: &str) -> Vec<String> {
        let received = self.received.borrow();
        let of_key = received.iter().filter(|(object, _)| Self::is_of(object, key_id));
        of_key.map(|(_, c)| serde_json::to_value(c).unwrap()["op"].as_str().unwrap().to_owned()).collect()
    }
}

impl FakeLedgers {
    /// Whether `object` is key `key_id`'s (`<org>/<key_id>`, or `<key_id>` from before
    /// organisations).
    fn is_of(object: &str, key_id: &str) -> bool {
        object == key_id || object.rsplit_once('/').is_some_and(|(_, id)| id == key_id)
    }

    /// The state of key `key_id`'s object, whatever its organisation.
    pub fn state_of(&self, key_id: &str) -> Option<KeyState> {
        self.states.borrow().iter().find(|(object, _)| Self::is_of(object, key_id)).map(|(_, s)| s.clone())
    }
}

impl LedgerObjects for FakeLedgers {
    async fn call(&self, ledger: &LedgerAddress, command: &Command) -> Result<Reply, ApiError> {
        if self.unreachable.get() {
            return Err(ApiError::new(Code::LedgerUnavailable, "The ledger object cannot be reached."));
        }
        let object = ledger.object.clone();
        self.jurisdictions.borrow_mut().insert(object.clone(), ledger.jurisdiction);
        self.received.borrow_mut().push((object.clone(), command.clone()));
        let mut states = self.states.borrow_mut();
        let state = states.entry(object).or_default();
        Ok(state.handle(command.clone(), self.clock.now()).reply)
    }

    async fn push_budget(&self, budget: &BudgetAddress, limits: &Limits, version: u64) -> Result<(), ApiError> {
        if self.unreachable.get() {
            return Err(ApiError::new(Code::LedgerUnavailable, "The budget object cannot be reached."));
        }
        let mut budgets = self.budgets.borrow_mut();
        let newer = budgets.get(&budget.object).is_none_or(|(_, _, held)| version > *held);
        if newer {
            budgets.insert(budget.object.clone(), (budget.clone(), limits.clone(), version));
        }
        Ok(())
    }

    /// A budget object's report: its pushed limits, none used (the host flows run no calls
    /// through budgets; `src/ledger/budgets.rs` tests the leases against the real objects).
    async fn budget_report(&self, budget: &BudgetAddress) -> Result<Vec<LimitUse>, ApiError> {
        if self.unreachable.get() {
            return Err(ApiError::new(Code::LedgerUnavailable, "The budget object cannot be reached."));
        }
        let budgets = self.budgets.borrow();
        let limits = budgets.get(&budget.object).map(|(_, limits, _)| limits.clone()).unwrap_or_default();
        Ok(limits
            .rpm
            .map(|rpm| LimitUse {
                scope: "rpm".into(),
                limit: rpm.get(),
                used: 0,
                remaining: rpm.get(),
                reset_at_ms: None,
            })
            .into_iter()
            .collect())
    }
}

/// Runs a future that never waits (the fakes answer at once); a future that would wait is a
/// test bug, so it panics rather than hangs.
pub fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a fake waited"),
    }
}
