//! One synchronous step of the registry: the caller, the store, and what the step leaves behind
//! (audit entries, work rows, events), all written before the step returns, so that a change
//! and everything it implies are kept together or not at all.

use crate::admin::audit::Change;
use crate::admin::membership::Memberships;
use crate::admin::org::OrgState;
use crate::admin::role::Principal;
use crate::admin::secret::Random;
use crate::admin::store::{Listed, Store};
use crate::admin::work::Work;
use crate::credentials::{BaseUrlPolicy, Keyring};
use crate::error::{ApiError, Code};
use crate::events::pending::EventQueue;
use crate::events::{Event, EventId, EventType};
use crate::policy::RoutingConfig;
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

/// The configuration a call runs with: from the worker's vars and secrets, and, for the
/// routing, the organisation's own ([`crate::admin::org::OrgState::routing`]).
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    /// The routing the organisation's keys are served by (`None`: none, so no group exists).
    pub routing: Option<&'a RoutingConfig>,
    /// The pricing table as configured.
    pub pricing_json: &'a str,
    /// The master keys that seal stored credentials and the answers kept for idempotency keys
    /// (`CREDENTIALS_KEYS`), if configured: without them a call with such a key is refused, not run.
    pub keyring: Option<&'a Keyring>,
    /// Which credential base URLs are accepted (`https` only outside local development).
    pub base_urls: BaseUrlPolicy,
}

impl<'a> Settings<'a> {
    /// The names of the routing groups, which keys and boundaries may name.
    pub fn known_groups(&self) -> Vec<&'a str> {
        self.routing.map_or_else(Vec::new, |routing| routing.groups().iter().map(|g| g.name.as_str()).collect())
    }
}

pub struct Step<'a> {
    pub store: &'a Store,
    /// The organisation the registry serves.
    pub org: &'a OrgState,
    pub config: Settings<'a>,
    pub caller: &'a Principal,
    pub memberships: &'a Memberships,
    pub now_ms: u64,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
    events: &'a EventQueue,
    random: RefCell<&'a mut dyn Random>,
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
    /// Whether this is the answer kept for an idempotency key, answered again
    /// ([`crate::admin::idempotency`]).
    pub replayed: bool,
}

impl Answer {
    pub fn ok(body: &impl Serialize) -> Answer {
        Answer {
            status: 200,
            body: serde_json::to_value(body).expect("answers serialize"),
            propagation_pending: false,
            replayed: false,
        }
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

/// What a step reads besides the store: the request and its surroundings.
pub struct Request<'a> {
    pub org: &'a OrgState,
    pub caller: &'a Principal,
    pub memberships: &'a Memberships,
    pub now_ms: u64,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
}

impl<'a> Step<'a> {
    pub fn new(
        store: &'a Store,
        config: Settings<'a>,
        events: &'a EventQueue,
        request: Request<'a>,
        random: &'a mut dyn Random,
    ) -> Step<'a> {
        let Request { org, caller, memberships, now_ms, body, query } = request;
        Step {
            store,
            org,
            config,
            caller,
            memberships,
            now_ms,
            body,
            query,
            events,
            random: RefCell::new(random),
            queued_events: Cell::new(false),
        }
    }

    /// Randomness for the secrets and ids the step hands out.
    pub fn random(&self) -> impl Random + use<'_, 'a> {
        |bytes: &mut [u8]| self.random.borrow_mut().fill(bytes)
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
        let mut id = [0; crate::events::EVENT_ID_RANDOM_BYTES];
        self.random().fill(&mut id);
        let event = Event::new(EventId::new(id), kind, self.now_ms, &data).map_err(|_| internal())?;
        self.events.push(&[event]).map_err(|_| internal())?;
        self.queued_events.set(true);
        Ok(())
    }

    pub fn queued_events(&self) -> bool {
        self.queued_events.get()
    }
}

/// 500 `registry_error`: the registry failed on its own side.
pub fn internal() -> ApiError {
    ApiError::new(Code::RegistryError, "The registry failed while answering.")
}
