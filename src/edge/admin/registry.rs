//! `Registry`, the Durable Object that is the control plane's source of truth (one instance,
//! named "org", SQLite): principals, projects, memberships, keys and their secrets' hashes, the
//! organisation policy, the audit log and pending work.
//!
//! Flow of a request (forwarded by the worker with the caller's `Authorization` header): read
//! the body → one synchronous step: authenticate (SHA-256 of the bearer token against
//! `ADMIN_TOKEN`'s and the principals'), route, check, change, audit, queue work and events →
//! apply the work ([`Propagator::drain`]) → answer. Usage reports read the ledger objects after
//! their step instead. Two internal paths serve the webhook routes, which the outbox answers:
//! [`WHOAMI`] (who the caller is) and [`WEBHOOK_CHANGED`] (an audit entry for a change made).
//!
//! Alarm: hands queued events to the outbox, re-projects keys whose rotation grace ended, and
//! drains due work.

use super::audit;
use super::directory;
use super::keys;
use super::propagate::Propagator;
use super::step::{internal, Answer, Step};
use super::store::Store;
use super::usage;
use crate::admin::role::Principal;
use crate::admin::route::{classify, Endpoint};
use crate::admin::work::Work;
use crate::edge::config::Config;
use crate::edge::outbox::PendingEvents;
use crate::edge::respond::error_response;
use crate::error::ApiError;
use crate::policy::key_hash::sha256_hex;
use worker::{durable_object, Date, DurableObject, Env, Method, Request, Response, Result, State, Storage};

/// The path the worker asks to learn who a token belongs to.
pub const WHOAMI: &str = "/whoami";
/// The path the worker reports a webhook-endpoint change to, for the audit log:
/// `{"method","path","answer"}` of the outbox's successful answer.
pub const WEBHOOK_CHANGED: &str = "/webhook-changed";

/// Set on the answer to a change when some KV or ledger-object work is still waiting for a
/// retry: the change is made and will reach the request path once the retry succeeds.
const PROPAGATION_HEADER: &str = "teamkeys-propagation";

/// `ADMIN_TOKEN` values shorter than this are ignored (and logged): a short bootstrap token
/// would be guessable.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

#[durable_object]
pub struct Registry {
    storage: Storage,
    env: Env,
    store: Store,
    events: PendingEvents,
    propagator: Propagator,
}

impl DurableObject for Registry {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        let store = Store::open(storage.sql()).expect("create the registry tables");
        let events = PendingEvents::open(&state).expect("create the pending events table");
        Registry { storage, env, store, events, propagator: Propagator::new() }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.serve(req).await {
            Ok(answer) => respond(answer),
            Err(error) => error_response(&error),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.events.hand_over(&self.env).await {
            worker::console_error!("registry: event hand-off: {e}");
        }
        if let Err(e) = self.graces_ended() {
            worker::console_error!("registry: {}", e.message);
        }
        self.propagator.drain(&self.store, &self.env, &self.storage, false).await;
        Response::ok("")
    }
}

impl Registry {
    async fn serve(&self, mut req: Request) -> std::result::Result<Answer, ApiError> {
        let url = req.url().map_err(internal)?;
        let method = req.method();
        let token = bearer(&req)?;
        let body = match method {
            Method::Get | Method::Delete => Vec::new(),
            _ => req
                .bytes()
                .await
                .map_err(|_| ApiError::bad_request("invalid_body", "The request body could not be read."))?,
        };
        let config = Config::get(&self.env)?;
        let now_ms = Date::now().as_millis();
        // From here to the end of the step nothing awaits: the step is atomic within the object.
        let caller = self.authenticate(&token)?;
        if url.path() == WHOAMI {
            return Ok(Answer::ok(&caller));
        }
        let memberships = self.store.memberships(&caller.id)?;
        let step = Step::new(&self.store, &config, &self.events, &caller, &memberships, now_ms, &body, url.query());
        if url.path() == WEBHOOK_CHANGED {
            return audit::webhook_changed(&step);
        }
        let endpoint = classify(method.as_ref(), url.path())?;
        let plan = match endpoint {
            Endpoint::KeyUsage(id) => usage::plan_key(&step, &id)?,
            Endpoint::ProjectUsage(id) => usage::plan_project(&step, &id)?,
            Endpoint::OrgUsage => usage::plan_org(&step)?,
            endpoint => {
                let mut answer = change(&step, endpoint)?;
                if method != Method::Get {
                    self.propagator.drain(&self.store, &self.env, &self.storage, step.queued_events()).await;
                    answer.propagation_pending = self.store.next_work()?.is_some();
                }
                return Ok(answer);
            }
        };
        usage::report(&self.env, plan, now_ms).await
    }

    /// The principal `token` belongs to: the bootstrap Admin (`ADMIN_TOKEN`) or a stored one.
    fn authenticate(&self, token: &str) -> std::result::Result<Principal, ApiError> {
        let hash = sha256_hex(token);
        let bootstrap = self.env.secret("ADMIN_TOKEN").map(|s| s.to_string()).ok().filter(|t| {
            let long_enough = t.chars().count() >= MIN_ADMIN_TOKEN_CHARS;
            if !long_enough {
                worker::console_error!("ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_CHARS} characters and is ignored");
            }
            long_enough
        });
        if bootstrap.is_some_and(|t| sha256_hex(&t) == hash) {
            return Ok(Principal::bootstrap_admin());
        }
        match self.store.principal_by_token(&hash)? {
            Some(doc) => Ok(doc.principal()),
            None => Err(ApiError::unauthenticated("invalid_admin_token", "Unknown admin token.")),
        }
    }

    /// Queues the KV projection of keys whose old secret's grace period has ended.
    fn graces_ended(&self) -> std::result::Result<(), ApiError> {
        for key_id in self.store.keys_with_ended_grace(Date::now().as_millis())? {
            self.store.push_work(&Work::Project { key_id })?;
        }
        Ok(())
    }
}

/// The synchronous endpoints.
fn change(step: &Step, endpoint: Endpoint) -> std::result::Result<Answer, ApiError> {
    use Endpoint::*;
    match endpoint {
        Me => directory::me(step),
        GetOrgPolicy => directory::get_org_policy(step),
        PutOrgPolicy => directory::put_org_policy(step),
        GetRouting => directory::get_routing(step),
        GetPricing => directory::get_pricing(step),
        CreateProject => directory::create_project(step),
        ListProjects => directory::list_projects(step),
        GetProject(id) => directory::get_project(step, &id),
        UpdateProject(id) => directory::update_project(step, &id),
        DeleteProject(id) => directory::delete_project(step, &id),
        ListMembers(id) => directory::list_members(step, &id),
        PutMember { project, principal } => directory::put_member(step, &project, &principal),
        DeleteMember { project, principal } => directory::delete_member(step, &project, &principal),
        CreatePrincipal => directory::create_principal(step),
        ListPrincipals => directory::list_principals(step),
        GetPrincipal(id) => directory::get_principal(step, &id),
        DeletePrincipal(id) => directory::delete_principal(step, &id),
        CreateKey => keys::create(step),
        ListKeys => keys::list(step),
        GetKey(id) => keys::get(step, &id),
        UpdateKey(id) => keys::update(step, &id),
        ChangeKeyStatus(id, transition) => keys::change_status(step, &id, transition),
        RotateKey(id) => keys::rotate_secret(step, &id),
        Audit => audit::list(step),
        OpenApi | Webhooks | KeyUsage(_) | ProjectUsage(_) | OrgUsage => {
            Err(ApiError::not_found("Not served by the registry."))
        }
    }
}

/// The bearer token of the `Authorization` header; 401 if there is none.
fn bearer(req: &Request) -> std::result::Result<String, ApiError> {
    let header = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let token =
        header.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
    match token {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        _ => Err(ApiError::unauthenticated(
            "missing_admin_token",
            "No admin token provided. Send it as 'Authorization: Bearer <token>'.",
        )),
    }
}

fn respond(answer: Answer) -> Result<Response> {
    let response = if answer.status == 204 { Response::empty()? } else { Response::from_json(&answer.body)? };
    let mut response = response.with_status(answer.status);
    response.headers_mut().set("cache-control", "no-store")?;
    if answer.propagation_pending {
        response.headers_mut().set(PROPAGATION_HEADER, "pending")?;
    }
    Ok(response)
}
