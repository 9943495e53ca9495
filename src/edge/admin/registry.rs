//! `Registry`, the Durable Object that is one organisation's control plane source of truth
//! (one per organisation, [`crate::naming::registry_object`], in its jurisdiction; SQLite):
//! the organisation's state, principals, projects, memberships, keys and their secrets' hashes,
//! the organisation policy, the audit log and pending work. What it answers and why is
//! [`crate::admin::api`]; this is the adapter.
//!
//! Flow of a request (forwarded by the worker with the caller's `Authorization` header and the
//! organisation in `teamkeys-org`, or sent by the platform with an order): the bearer token →
//! the body → the configuration (with the credentials keyring `CREDENTIALS_KEYS` and
//! `ALLOW_INSECURE_UPSTREAMS`, local development only) → [`api::Registry::serve`] with the clock, the
//! platform's randomness, KV and the ledger objects → the alarm it asks for → the answer as
//! JSON (`teamkeys-propagation: pending` while work of the change waits for a retry).
//!
//! Alarm: hands queued events to the outbox, then [`api::Registry::alarm`] (ended grace
//! periods, retention, due work).
//!
//! Configuration read here: `AUDIT_RETENTION_DAYS` (var; invalid: logged, the default kept) and,
//! only for a call with an `Idempotency-Key`, `CREDENTIALS_KEYS` (secret), which seals the
//! answer kept for it.

use super::ports::{Kv, Ledgers};
use super::sso::{FetchedKeys, WebCrypto};
use super::ORG_HEADER;
use crate::admin::api::propagate::{Drained, Targets};
use crate::admin::api::step::{Answer, Settings};
use crate::admin::api::{self, bootstrap_token, Call, Surroundings, MIN_ADMIN_TOKEN_CHARS};
use crate::admin::retention::Retention;
use crate::admin::session::Credential;
use crate::admin::sso::{self, certs_url_override, KeyCache};
use crate::admin::store::Store;
use crate::credentials::{BaseUrlPolicy, Keyring};
use crate::edge::config::Config;
use crate::edge::outbox::PendingEvents;
use crate::edge::respond::{error_response, logged};
use crate::edge::sql::ObjectSql;
use crate::error::{ApiError, Code};
use crate::naming::DEFAULT_ORG;
use std::cell::RefCell;
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, Response, Result, ScheduledTime, State, Storage,
};

/// Set on the answer to a change when some KV or ledger-object work is still waiting for a
/// retry: the change is made and will reach the request path once the retry succeeds.
const PROPAGATION_HEADER: &str = "teamkeys-propagation";
/// Set on an answer kept for an `Idempotency-Key` and given again.
const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The secret holding the master keys that seal stored credentials.
const CREDENTIALS_KEYS: &str = "CREDENTIALS_KEYS";

#[durable_object]
pub struct Registry {
    storage: Storage,
    env: Env,
    registry: api::Registry,
    events: PendingEvents,
    /// The Access team's keys last fetched ([`crate::admin::sso::KeyCache`]).
    access_keys: RefCell<KeyCache>,
}

impl DurableObject for Registry {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        let store = Store::open(ObjectSql::boxed(storage.sql(), "registry")).expect("create the registry tables");
        let events = PendingEvents::open(&state).expect("create the pending events table");
        let retention = Retention::from_var(env.var("AUDIT_RETENTION_DAYS").ok().map(|v| v.to_string()).as_deref())
            .unwrap_or_else(|e| {
                worker::console_error!("{}; keeping the default", e.message);
                Retention::default()
            });
        let registry = api::Registry::new(store).with_retention(retention);
        Registry { storage, env, registry, events, access_keys: RefCell::default() }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.serve(req).await {
            Ok(answer) => respond(answer),
            Err(error) => error_response(&error),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.events.hand_over_to(&self.env, &self.registry.org_id()).await {
            worker::console_error!("registry: event hand-off: {e}");
        }
        let drained = self.registry.alarm(&targets(&Kv(&self.env), &Ledgers(&self.env))).await;
        self.settle(drained).await;
        Response::ok("")
    }
}

impl Registry {
    async fn serve(&self, mut req: Request) -> std::result::Result<Answer, ApiError> {
        let url = req.url().map_err(|e| logged(api::step::internal(), "registry", e))?;
        let method = req.method();
        let authorization = req.headers().get("authorization").ok().flatten();
        let idempotency_key = req.headers().get("idempotency-key").ok().flatten();
        let credential = Credential::parse(authorization.as_deref())?;
        let body = match method {
            Method::Get | Method::Delete => Vec::new(),
            _ => req
                .bytes()
                .await
                .map_err(|_| ApiError::new(Code::InvalidBody, "The request body could not be read."))?,
        };
        let config = Config::get(&self.env)?;
        let admin_token = self.env.secret("ADMIN_TOKEN").map(|s| s.to_string()).ok();
        if admin_token.is_some() && bootstrap_token(admin_token.as_deref()).is_none() {
            worker::console_error!("ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_CHARS} characters and is ignored");
        }
        let org = req.headers().get(ORG_HEADER).ok().flatten().unwrap_or_else(|| DEFAULT_ORG.to_owned());
        let email = match credential {
            Credential::Access(jwt) => Some(self.verify_access(jwt).await?),
            _ => None,
        };
        let credential = email.as_deref().map_or(credential, Credential::Email);
        let call = Call {
            method: method.as_ref(),
            path: url.path(),
            query: url.query(),
            credential,
            body: &body,
            idempotency_key: idempotency_key.as_deref(),
            org: &org,
        };
        let (kv, ledgers) = (Kv(&self.env), Ledgers(&self.env));
        let keyring = keyring(&self.env);
        let around = Surroundings {
            settings: Settings {
                routing: Some(&config.routing),
                pricing_json: &config.pricing_json,
                keyring: keyring.as_ref(),
                base_urls: base_urls(&self.env),
            },
            admin_token: admin_token.as_deref(),
            events: self.events.queue(),
            targets: targets(&kv, &ledgers),
        };
        let served = self.registry.serve(&call, &around, &mut os_random).await?;
        self.settle(served.drained).await;
        Ok(served.answer)
    }

    /// The email of Access assertion `jwt`, verified against this organisation's settings.
    async fn verify_access(&self, jwt: &str) -> std::result::Result<String, ApiError> {
        let settings = self
            .registry
            .access_settings()?
            .ok_or_else(|| ApiError::new(Code::AccessDenied, "This organisation has no Cloudflare Access sign-in."))?;
        let var = |name: &str| self.env.var(name).ok().map(|v| v.to_string());
        let local = var("ALLOW_INSECURE_UPSTREAMS").as_deref() == Some("true");
        let override_url = certs_url_override(var("ACCESS_CERTS_URL").as_deref(), local).unwrap_or_else(|e| {
            worker::console_error!("{e}");
            None
        });
        let keys = FetchedKeys { cache: &self.access_keys, override_url };
        sso::verify(jwt, &settings, now_ms(), &keys, &WebCrypto).await
    }

    /// Logs what a drain could not do and sets the alarm it asks for, unless an earlier one is set.
    async fn settle(&self, drained: Drained) {
        for failure in &drained.failures {
            worker::console_warn!("{failure}");
        }
        let Some(at) = drained.wake_at else { return };
        let set = async {
            let current = self.storage.get_alarm().await?;
            if current.is_some_and(|set| set as u64 <= at) {
                return Ok(());
            }
            let offset = at.saturating_sub(now_ms()) as i64;
            self.storage.set_alarm(ScheduledTime::from(offset)).await
        };
        if let Err(e) = set.await {
            worker::console_error!("registry alarm: {e}");
        }
    }
}

/// The credentials keyring, if `CREDENTIALS_KEYS` is set and reads (a failure is logged by its
/// position, never its text).
fn keyring(env: &Env) -> Option<Keyring> {
    let text = env.secret(CREDENTIALS_KEYS).ok()?.to_string();
    Keyring::parse(&text).map_err(|e| worker::console_error!("{CREDENTIALS_KEYS}: {e}")).ok()
}

/// `https` only, unless `ALLOW_INSECURE_UPSTREAMS` is `true` (local development).
fn base_urls(env: &Env) -> BaseUrlPolicy {
    match env.var("ALLOW_INSECURE_UPSTREAMS").map(|v| v.to_string()).as_deref() {
        Ok("true") => BaseUrlPolicy::AllowInsecureLocal,
        _ => BaseUrlPolicy::HttpsOnly,
    }
}

fn targets<'a>(kv: &'a Kv<'a>, ledgers: &'a Ledgers<'a>) -> Targets<'a, Kv<'a>, Ledgers<'a>> {
    Targets { records: kv, ledgers, clock: &now_ms }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// The platform's CSPRNG.
fn os_random(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the platform's random number generator");
}

pub(super) fn respond(answer: Answer) -> Result<Response> {
    let response = if answer.status == 204 { Response::empty()? } else { Response::from_json(&answer.body)? };
    let mut response = response.with_status(answer.status);
    response.headers_mut().set("cache-control", "no-store")?;
    if answer.propagation_pending {
        response.headers_mut().set(PROPAGATION_HEADER, "pending")?;
    }
    if answer.replayed {
        response.headers_mut().set(REPLAYED_HEADER, "true")?;
    }
    Ok(response)
}
