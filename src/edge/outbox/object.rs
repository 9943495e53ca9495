//! `Outbox`, the Durable Object that holds the organisation's webhook endpoints, events and
//! deliveries (one instance, named "org").
//!
//! Requests (only from this worker, through the binding):
//! - `POST https://outbox/enqueue` `{"events":[…]}` → `{"accepted":n,"rejected":[reasons]}`;
//!   malformed entries are refused one by one (and logged), never holding back the rest.
//! - the webhook routes of the admin API ([`crate::events::WebhookRoute`]).
//!
//! Alarm: sends up to [`BATCH`] due deliveries concurrently, records each outcome
//! ([`crate::events::Delivery::after`]), prunes, and sets the alarm for the earliest pending
//! delivery (at once if more are due).

use super::config::retry_policy;
use super::random::{jitter, random_bytes};
use super::send::{send, Outgoing};
use crate::edge::respond::{error_response, internal};
use crate::edge::sql::ObjectSql;
use crate::error::{ApiError, Code};
use crate::events::outbox_store::OutboxStore;
use crate::events::{
    endpoint_id, parse_endpoint_request, read_batch, signing_secret, webhook_route, Delivery, EndpointView,
    WebhookRoute, MAX_ENDPOINTS,
};
use futures_util::future::join_all;
use serde::Serialize;
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State, Storage};

/// Deliveries sent per alarm run, at most.
const BATCH: usize = 25;
/// Deliveries listed per endpoint, at most.
const LISTED: usize = 100;

#[durable_object]
pub struct Outbox {
    store: OutboxStore,
    storage: Storage,
    env: Env,
}

#[derive(Serialize)]
struct List<T> {
    data: Vec<T>,
}

impl DurableObject for Outbox {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        let store = OutboxStore::open(ObjectSql::boxed(storage.sql(), "outbox")).expect("create the outbox tables");
        Outbox { store, storage, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        if path == "/enqueue" && req.method() == Method::Post {
            return self.enqueue(&req.bytes().await?).await;
        }
        let answer = match webhook_route(req.method().as_ref(), &path) {
            Ok(route) => self.admin(route, req).await,
            Err(error) => Err(error),
        };
        answer.or_else(|error| error_response(&error))
    }

    async fn alarm(&self) -> Result<Response> {
        let due = self.store.due(now_ms(), BATCH)?;
        let sent_at_s = now_ms() / 1000;
        let outgoing: Vec<Outgoing> = due
            .iter()
            .map(|d| Outgoing { url: &d.url, secret: &d.secret, event_id: &d.event_id, body: &d.body })
            .collect();
        let attempts = join_all(outgoing.iter().map(|o| send(o, sent_at_s))).await;
        let policy = retry_policy(&self.env);
        let now = now_ms();
        for (row, attempt) in due.iter().zip(attempts) {
            let delivery =
                Delivery::pending(row.attempts, now).after(attempt, row.received_at_ms, now, &policy, jitter()?);
            self.store.record(row.id, &delivery, now)?;
        }
        self.store.prune(now)?;
        if let Some(at) = self.store.next_due()? {
            self.storage.set_alarm(Duration::from_millis(at.saturating_sub(now))).await?;
        }
        Response::ok("")
    }
}

impl Outbox {
    async fn enqueue(&self, body: &[u8]) -> Result<Response> {
        #[derive(Serialize)]
        struct Enqueued {
            accepted: usize,
            rejected: Vec<String>,
        }
        let entries = match read_batch(body) {
            Ok(entries) => entries,
            Err(reason) => return error_response(&ApiError::new(Code::InvalidBatch, reason)),
        };
        let now = now_ms();
        let (mut accepted, mut rejected, mut deliveries) = (0, Vec::new(), 0);
        for entry in entries {
            match entry {
                Ok(event) => {
                    deliveries += self.store.enqueue(&event, now)?;
                    accepted += 1;
                }
                Err(reason) => {
                    worker::console_error!("outbox: refused an event: {reason}");
                    rejected.push(reason);
                }
            }
        }
        if deliveries > 0 && self.storage.get_alarm().await?.is_none_or(|at| at > now as i64) {
            self.storage.set_alarm(Duration::ZERO).await?;
        }
        Response::from_json(&Enqueued { accepted, rejected })
    }

    async fn admin(&self, route: WebhookRoute, mut req: Request) -> std::result::Result<Response, ApiError> {
        match route {
            WebhookRoute::Create => {
                let new = parse_endpoint_request(&req.bytes().await.map_err(|e| internal("outbox", e))?)?;
                if self.store.endpoint_count().map_err(|e| internal("outbox", e))? >= MAX_ENDPOINTS {
                    return Err(ApiError::new(
                        Code::TooManyWebhooks,
                        format!("At most {MAX_ENDPOINTS} webhook endpoints; delete one first."),
                    ));
                }
                let id = endpoint_id(random_bytes().map_err(|e| internal("outbox", e))?);
                let secret = signing_secret(random_bytes().map_err(|e| internal("outbox", e))?);
                let now = now_ms();
                self.store.insert_endpoint(&id, &new, &secret, now).map_err(|e| internal("outbox", e))?;
                let view = EndpointView { id, url: new.url, events: new.events, created_at: now, secret: Some(secret) };
                Ok(Response::from_json(&view).map_err(|e| internal("outbox", e))?.with_status(201))
            }
            WebhookRoute::List => json(&List { data: self.store.endpoints().map_err(|e| internal("outbox", e))? }),
            WebhookRoute::Delete { id } => {
                if !self.store.delete_endpoint(&id).map_err(|e| internal("outbox", e))? {
                    return Err(no_endpoint(&id));
                }
                json(&serde_json::json!({ "id": id, "deleted": true }))
            }
            WebhookRoute::Deliveries { id } => {
                if !self.store.endpoint_exists(&id).map_err(|e| internal("outbox", e))? {
                    return Err(no_endpoint(&id));
                }
                json(&List { data: self.store.deliveries(&id, LISTED).map_err(|e| internal("outbox", e))? })
            }
        }
    }
}

fn json(value: &impl Serialize) -> std::result::Result<Response, ApiError> {
    Response::from_json(value).map_err(|e| internal("outbox", e))
}

fn no_endpoint(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("No webhook endpoint {id}."))
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
