//! One synchronous step of the registry: the caller, the store, and what the step leaves behind
//! (audit entries, work rows, events), all written before the step returns, so that a change
//! and everything it implies are kept together or not at all.

use super::store::{Listed, Store};
use crate::admin::audit::Change;
use crate::admin::membership::Memberships;
use crate::admin::role::Principal;
use crate::admin::secret::Random;
use crate::admin::work::Work;
use crate::edge::config::Config;
use crate::edge::outbox::{new_event_id, PendingEvents};
use crate::error::ApiError;
use crate::events::{Event, EventType};
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::Cell;

pub struct Step<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub events: &'a PendingEvents,
    pub caller: &'a Principal,
    pub memberships: &'a Memberships,
    pub now_ms: u64,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
    /// Whether the step queued events (the caller then wakes the hand-off).
    queued_events: Cell<bool>,
}

/// A finished answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Whether work of a change is still waiting to reach KV or a ledger object.
    pub propagation_pending: bool,
}

impl Answer {
    pub fn ok(body: &impl Serialize) -> Answer {
        Answer { status: 200, body: serde_json::to_value(body).expect("answers serialize"), propagation_pending: false }
    }

    pub fn created(body: &impl Serialize) -> Answer {
        Answer { status: 201, ..Answer::ok(body) }
    }

    /// A page of a list: `{"data":[…],"next_cursor":…}`.
    pub fn list<T: Serialize>((items, next_cursor): Listed<T>) -> Answer {
        Answer::ok(&json!({ "data": items, "next_cursor": next_cursor }))
    }

    pub fn no_content() -> Answer {
        Answer { status: 204, ..Answer::ok(&Value::Null) }
    }
}

/// The platform's CSPRNG.
pub struct Os;

impl Random for Os {
    fn fill(&mut self, bytes: &mut [u8]) {
        getrandom::fill(bytes).expect("the platform's random number generator");
    }
}

impl<'a> Step<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: &'a Store,
        config: &'a Config,
        events: &'a PendingEvents,
        caller: &'a Principal,
        memberships: &'a Memberships,
        now_ms: u64,
        body: &'a [u8],
        query: Option<&'a str>,
    ) -> Step<'a> {
        Step { store, config, events, caller, memberships, now_ms, body, query, queued_events: Cell::new(false) }
    }

    /// Records `change` in the audit log under the caller's name.
    pub fn audit(&self, change: Change) -> Result<(), ApiError> {
        self.store.audit(&change, &self.caller.id, self.now_ms)
    }

    pub fn work(&self, work: impl IntoIterator<Item = Work>) -> Result<(), ApiError> {
        for work in work {
            self.store.push_work(&work)?;
        }
        Ok(())
    }

    /// Queues a webhook event: `data` plus the acting principal.
    pub fn event(&self, kind: EventType, data: &impl Serialize) -> Result<(), ApiError> {
        let mut data = serde_json::to_value(data).expect("event data serializes");
        if let Value::Object(fields) = &mut data {
            fields.insert("actor".to_owned(), Value::String(self.caller.id.clone()));
        }
        let id = new_event_id().map_err(internal)?;
        let event = Event::new(id, kind, self.now_ms, &data).map_err(|e| internal(worker::Error::RustError(e)))?;
        self.events.push(&[event]).map_err(internal)?;
        self.queued_events.set(true);
        Ok(())
    }

    pub fn queued_events(&self) -> bool {
        self.queued_events.get()
    }
}

pub fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("registry: {e}");
    ApiError::internal("registry_error", "The registry failed while answering.")
}
