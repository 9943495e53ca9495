//! The admin API's use-cases: every endpoint the [`Registry`] answers, over its [`Store`] and
//! the two [`ports`] (KV records, ledger objects). The edge's `Registry` Durable Object turns
//! HTTP into a [`Call`], passes its configuration, clock and randomness, and sets the alarm the
//! answer asks for; it decides nothing.
//!
//! Flow of a call ([`Registry::serve`]): the edge has taken the bearer token ([`bearer`]) →
//! one synchronous step: authenticate (SHA-256 of the token against `ADMIN_TOKEN`'s and the
//! principals' current and previous tokens; an expired one is 401 `token_expired`), route → for
//! a change sent with an `Idempotency-Key`, the answer kept for it if there is one
//! ([`crate::admin::idempotency`]) → check, change, audit, queue work and events, keep the
//! answer for the idempotency key → for a change, apply the work ([`propagate::drain`]) and say
//! whether some still waits → answer. Usage reports and a key's view read the ledger objects
//! after their step instead ([`usage`]). Two internal paths serve the webhook
//! routes, which the outbox answers: [`WHOAMI`] (who the caller is) and [`WEBHOOK_CHANGED`] (an
//! audit entry for a change made).
//!
//! Alarm ([`Registry::alarm`]): re-projects keys whose rotation grace ended, purges what its
//! retention ended ([`crate::admin::retention`]) and drains due work. Every drain asks to wake
//! by the next of: due work, a grace end, an expiry to purge.
//!
//! Organisations: a registry serves one organisation ([`OrgState`], told by the platform's
//! `open` order, [`orders`]); the worker routes a call to it by the organisation its token names
//! ([`Call::org`]). A call routed to another organisation than the registry's, or to a deleted
//! one, is 401 as an unknown token; since a registry holds only its organisation's rows, an id
//! of another organisation is answered exactly like a missing one (404), and a change naming
//! one is recorded in the audit log as `denied`. A suspended organisation's admins may read;
//! every change is 403 `organisation_suspended`. `ADMIN_TOKEN` acts as the bootstrap Admin of
//! the organisation from before organisations only ([`DEFAULT_ORG`]); elsewhere the operator
//! reaches a registry only through the platform's orders ([`ORDER_PATH`]).
//!
//! Modules: `step` (one synchronous step and its answer), `directory` (organisation policy,
//! projects, members, principals), `org` (the organisation's credentials and routing),
//! `orders` (the platform's), `keys`, `usage`, `audit`, `propagate` (pending work), `ports`.

pub mod audit;
pub mod charts;
pub mod directory;
pub mod keys;
pub mod orders;
pub mod org;
pub mod ports;
pub mod propagate;
pub mod sessions;
pub mod step;
pub mod usage;

use crate::admin::audit::Change;
use crate::admin::idempotency::{no_keyring, IdempotencyKey, Idempotent, WINDOW_MS};
use crate::admin::input::parse;
use crate::admin::membership::Memberships;
use crate::admin::org::OrgState;
use crate::admin::retention::{Retention, PURGE_BATCH};
use crate::admin::role::{Principal, BOOTSTRAP_ADMIN_ID};
use crate::admin::route::{classify, Endpoint};
use crate::admin::secret::Random;
use crate::admin::session::store::expired as session_expired;
use crate::admin::session::Credential;
use crate::admin::store::Store;
use crate::admin::work::Work;
use crate::error::{ApiError, Code};
use crate::events::pending::EventQueue;
use crate::naming::DEFAULT_ORG;
use crate::platform::order::{Order, ORDER_PATH};
use crate::policy::key_hash::sha256_hex;
use futures_util::lock::Mutex;
use ports::{KeyRecords, LedgerObjects};
use propagate::{drain, Drained, Targets};
use sessions::Authenticated;
use step::{Answer, Request, Settings, Step};

/// The path the worker asks to learn who a token belongs to.
pub const WHOAMI: &str = "/whoami";
/// The path the worker reports a webhook-endpoint change to, for the audit log:
/// `{"method","path","answer"}` of the outbox's successful answer.
pub const WEBHOOK_CHANGED: &str = "/webhook-changed";

/// `ADMIN_TOKEN` values shorter than this are ignored: a short bootstrap token would be
/// guessable.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// One call to the registry, as the edge read it.
pub struct Call<'a> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Who calls: a bearer token ([`bearer`]), a session, or a verified Access email.
    pub credential: Credential<'a>,
    /// Empty for GET and DELETE.
    pub body: &'a [u8],
    /// The `Idempotency-Key` header, if sent (honoured on every method but GET).
    pub idempotency_key: Option<&'a str>,
    /// The organisation the call is routed to (the one its token names,
    /// [`crate::platform::org_id::org_of_token`]).
    pub org: &'a str,
}

/// What a call runs against besides the registry's own storage.
pub struct Surroundings<'a, K, L> {
    pub settings: Settings<'a>,
    /// `ADMIN_TOKEN`, if set ([`bootstrap_token`] filters it).
    pub admin_token: Option<&'a str>,
    pub events: &'a EventQueue,
    pub targets: Targets<'a, K, L>,
}

/// An answer and what its drain left (when to wake, what failed).
#[derive(Debug)]
pub struct Served {
    pub answer: Answer,
    pub drained: Drained,
}

/// The control plane's source of truth and the lock that keeps drains one at a time (a second
/// caller waits for the first, whose passes pick its rows up too).
pub struct Registry {
    store: Store,
    draining: Mutex<()>,
    retention: Retention,
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry { store, draining: Mutex::new(()), retention: Retention::default() }
    }

    /// The registry keeping its audit log as `retention` says (the default: 400 days).
    pub fn with_retention(self, retention: Retention) -> Registry {
        Registry { retention, ..self }
    }

    pub async fn serve<K: KeyRecords, L: LedgerObjects>(
        &self,
        call: &Call<'_>,
        around: &Surroundings<'_, K, L>,
        random: &mut dyn Random,
    ) -> Result<Served, ApiError> {
        let now_ms = (around.targets.clock)();
        // From here to the end of the step nothing awaits: the step is atomic within the object.
        if call.path == ORDER_PATH {
            return self.order(call, around, random, now_ms).await;
        }
        let org = self.org(call.org)?;
        let who = self.authenticate(call.credential, around.admin_token, &org, now_ms)?;
        let answered = |answer| Served { answer, drained: Drained::default() };
        let endpoint = match call.path {
            WHOAMI | WEBHOOK_CHANGED => None,
            path => Some(classify(call.method, path)?),
        };
        use Endpoint::{CreateSession, CurrentSession, EndSession, EndSessions};
        match &endpoint {
            Some(endpoint @ (CreateSession | CurrentSession | EndSession | EndSessions)) => {
                return sessions::answer(&self.store, &org, endpoint, &who, now_ms, random).map(answered);
            }
            _ if matches!(who.credential, Credential::Access(_) | Credential::Email(_)) => {
                return Err(ApiError::new(Code::AccessDenied, "A Cloudflare Access assertion only signs in."));
            }
            _ => {}
        }
        let caller = who.caller;
        let changes = call.method != "GET";
        if changes && org.suspended() {
            return Err(suspended());
        }
        if call.path == WHOAMI {
            return Ok(answered(Answer::ok(&caller)));
        }
        let memberships = self.store.memberships(&caller.id)?;
        let settings = Settings { routing: org.routing(around.settings.routing), ..around.settings };
        let request = Request {
            org: &org,
            caller: &caller,
            memberships: &memberships,
            now_ms,
            body: call.body,
            query: call.query,
        };
        let step = Step::new(&self.store, settings, around.events, request, random);
        if call.path == WEBHOOK_CHANGED {
            return audit::webhook_changed(&step).map(answered);
        }
        let plan = match endpoint.ok_or_else(|| ApiError::new(Code::NotFound, "No such admin endpoint."))? {
            endpoint @ (Endpoint::GetAccess | Endpoint::PutAccess | Endpoint::DeleteAccess) => {
                return sessions::access(&self.store, &endpoint, &caller, call.body, now_ms).map(answered);
            }
            Endpoint::KeyHistory(id) => return charts_answer(charts::plan_key(&step, &id), around, now_ms).await,
            Endpoint::ProjectHistory(id) => {
                return charts_answer(charts::plan_project(&step, &id), around, now_ms).await
            }
            Endpoint::OrgHistory => return charts_answer(charts::plan_org(&step), around, now_ms).await,
            Endpoint::Headroom => return charts_answer(charts::plan_headroom(&step), around, now_ms).await,
            Endpoint::GetKey(id) => usage::plan_view(&step, &id)?,
            Endpoint::KeyUsage(id) => usage::plan_key(&step, &id)?,
            Endpoint::ProjectUsage(id) => usage::plan_project(&step, &id)?,
            Endpoint::OrgUsage => usage::plan_org(&step)?,
            endpoint if call.method == "GET" => return change(&step, endpoint).map(answered),
            endpoint => {
                let idempotent = match call.idempotency_key {
                    Some(key) => {
                        let key = IdempotencyKey::parse(key)?;
                        let keyring = around.settings.keyring.ok_or_else(no_keyring)?;
                        Some((Idempotent::new(&caller.id, key, call.method, call.path, call.body), keyring))
                    }
                    None => None,
                };
                if let Some((idempotent, keyring)) = &idempotent {
                    if let Some(entry) = self.store.kept_entry(&idempotent.entry_id(), now_ms)? {
                        let mut answer = idempotent.open(&entry, keyring)?;
                        answer.propagation_pending = self.store.next_work()?.is_some();
                        return Ok(answered(answer));
                    }
                }
                let mut answer = match change(&step, endpoint) {
                    Ok(answer) => answer,
                    Err(refusal) if refusal.code() == Code::NotFound.as_str() => {
                        step.audit(denied(call))?;
                        return Err(refusal);
                    }
                    Err(refusal) => return Err(refusal),
                };
                if let Some((idempotent, keyring)) = &idempotent {
                    let entry = idempotent.seal(&answer, keyring, &mut step.random());
                    self.store.keep_entry(&idempotent.entry_id(), &entry, now_ms + WINDOW_MS)?;
                }
                let drained = self.drain(&around.targets, step.queued_events()).await;
                answer.propagation_pending = self.store.next_work()?.is_some();
                return Ok(Served { answer, drained });
            }
        };
        usage::report(around.targets.ledgers, plan, now_ms).await.map(answered)
    }

    /// The platform's order ([`orders`]), from the operator's token only.
    async fn order<K: KeyRecords, L: LedgerObjects>(
        &self,
        call: &Call<'_>,
        around: &Surroundings<'_, K, L>,
        random: &mut dyn Random,
        now_ms: u64,
    ) -> Result<Served, ApiError> {
        if !is_operator(call.credential.token(), around.admin_token) {
            return Err(unknown_token());
        }
        let order: Order = parse(call.body)?;
        let current = match self.store.org_state()? {
            None if call.org == DEFAULT_ORG => Some(OrgState::legacy()),
            current => current,
        };
        let (org, body) = match (&order, current) {
            (Order::Open { org_id, jurisdiction, admin_name, platform_routing }, None) if org_id == call.org => {
                (OrgState::new(org_id, *jurisdiction, *platform_routing), orders::first_admin_body(admin_name))
            }
            (Order::Open { .. }, _) => {
                return Err(ApiError::new(Code::InvalidBody, "This registry cannot be opened for that organisation."))
            }
            (_, Some(current)) if current.id == call.org && !current.deleted => (current, Vec::new()),
            _ => return Err(ApiError::new(Code::NotFound, "This registry serves no such organisation.")),
        };
        let caller = Principal::operator();
        let memberships = Memberships::default();
        let settings = Settings { routing: org.routing(around.settings.routing), ..around.settings };
        let request =
            Request { org: &org, caller: &caller, memberships: &memberships, now_ms, body: &body, query: None };
        let step = Step::new(&self.store, settings, around.events, request, random);
        let mut answer = orders::apply(&step, order)?;
        let drained = self.drain(&around.targets, step.queued_events()).await;
        answer.propagation_pending = self.store.next_work()?.is_some();
        Ok(Served { answer, drained })
    }

    /// The organisation a call routed to `routed_to` is served as, or 401 if this registry is
    /// not that organisation's (or it is deleted).
    fn org(&self, routed_to: &str) -> Result<OrgState, ApiError> {
        match self.store.org_state()? {
            Some(state) if state.id == routed_to && !state.deleted => Ok(state),
            None if routed_to == DEFAULT_ORG => Ok(OrgState::legacy()),
            _ => Err(unknown_token()),
        }
    }

    /// The organisation's Cloudflare Access sign-in settings, if set.
    pub fn access_settings(&self) -> Result<Option<crate::admin::sso::AccessSettings>, ApiError> {
        self.store.access_settings()
    }

    /// The organisation the registry serves ([`DEFAULT_ORG`] before it is told otherwise, or if
    /// its state cannot be read).
    pub fn org_id(&self) -> String {
        self.store.org_state().ok().flatten().map_or_else(|| DEFAULT_ORG.to_owned(), |state| state.id)
    }

    /// The alarm's part: queues the KV projection of keys whose old secret's grace period has
    /// ended, purges a batch of what its retention ended, then drains due work.
    pub async fn alarm<K: KeyRecords, L: LedgerObjects>(&self, targets: &Targets<'_, K, L>) -> Drained {
        let now_ms = (targets.clock)();
        let graces = self.graces_ended(now_ms);
        let purged = self.store.purge(now_ms, now_ms.saturating_sub(self.retention.audit_ms), PURGE_BATCH);
        let mut drained = self.drain(targets, false).await;
        drained.failures.extend([graces, purged].into_iter().filter_map(Result::err).map(|e| e.message));
        drained
    }

    /// Applies due work; asks to wake for it or for the next expiry to purge, whichever is
    /// first (an expiry already passed: at once, so a full purge batch is followed by the next).
    async fn drain<K: KeyRecords, L: LedgerObjects>(
        &self,
        targets: &Targets<'_, K, L>,
        events_queued: bool,
    ) -> Drained {
        let _one_at_a_time = self.draining.lock().await;
        let mut drained = drain(&self.store, targets, events_queued).await;
        match self.store.next_expiry(self.retention.audit_ms) {
            Ok(expiry) => drained.wake_at = drained.wake_at.into_iter().chain(expiry).min(),
            Err(e) => drained.failures.push(format!("registry retention: {}", e.message)),
        }
        drained
    }

    /// Who `credential` is: a session's principal (its idle expiry slid), the principal of a
    /// verified Access email (401 `access_denied` if none has it), or [`Registry::principal_of`]
    /// a token. An Access assertion itself is refused: the edge verifies it first.
    fn authenticate<'c>(
        &self,
        credential: Credential<'c>,
        admin_token: Option<&str>,
        org: &OrgState,
        now_ms: u64,
    ) -> Result<Authenticated<'c>, ApiError> {
        let authenticated = |caller, session| Authenticated { caller, credential, session };
        match credential {
            Credential::Token(token) => Ok(authenticated(self.principal_of(token, admin_token, org, now_ms)?, None)),
            Credential::Session(id) => {
                let session = self.store.sessions().touch(id, now_ms)?;
                let bootstrap = session.principal == BOOTSTRAP_ADMIN_ID && org.id == DEFAULT_ORG;
                let caller = match self.store.principal(&session.principal)? {
                    Some(doc) => doc.principal(),
                    None if bootstrap && bootstrap_token(admin_token).is_some() => Principal::bootstrap_admin(),
                    None => return Err(session_expired()),
                };
                Ok(authenticated(caller, Some(session)))
            }
            Credential::Email(email) => match self.store.principal_by_email(email)? {
                Some(doc) => Ok(authenticated(doc.principal(), None)),
                None => Err(ApiError::new(
                    Code::AccessDenied,
                    "Cloudflare Access sign-in refused: no principal of this organisation has this email.",
                )),
            },
            Credential::Access(_) => Err(ApiError::new(Code::AccessDenied, "The Access assertion was not verified.")),
        }
    }

    /// The principal `token` belongs to: a stored one, by its current token (401 `token_expired`
    /// once that expired) or its previous one while the rotation's grace lasts, or, in the
    /// organisation from before organisations only, the bootstrap Admin (`ADMIN_TOKEN`).
    fn principal_of(
        &self,
        token: &str,
        admin_token: Option<&str>,
        org: &OrgState,
        now_ms: u64,
    ) -> Result<Principal, ApiError> {
        let hash = sha256_hex(token);
        if org.id == DEFAULT_ORG && bootstrap_token(admin_token).is_some_and(|t| sha256_hex(t) == hash) {
            return Ok(Principal::bootstrap_admin());
        }
        if let Some(doc) = self.store.principal_by_token(&hash)? {
            if doc.token_expired(now_ms) {
                return Err(ApiError::new(
                    Code::TokenExpired,
                    "This admin token has expired; ask an Admin for a new one.",
                ));
            }
            return Ok(doc.principal());
        }
        match self.store.principal_by_previous_token(&hash, now_ms)? {
            Some(doc) => Ok(doc.principal()),
            None => Err(unknown_token()),
        }
    }

    fn graces_ended(&self, now_ms: u64) -> Result<(), ApiError> {
        for key_id in self.store.keys_with_ended_grace(now_ms)? {
            self.store.push_work(&Work::Project { key_id })?;
        }
        Ok(())
    }
}

/// A chart's answer, once its step has planned it.
async fn charts_answer<K: KeyRecords, L: LedgerObjects>(
    plan: Result<charts::Chart, ApiError>,
    around: &Surroundings<'_, K, L>,
    now_ms: u64,
) -> Result<Served, ApiError> {
    let answer = charts::answer(around.targets.ledgers, plan?, now_ms).await?;
    Ok(Served { answer, drained: Drained::default() })
}

fn unknown_token() -> ApiError {
    ApiError::new(Code::InvalidAdminToken, "Unknown admin token.")
}

/// 403 `organisation_suspended`, for a change by an admin of a suspended organisation.
fn suspended() -> ApiError {
    ApiError::new(Code::OrganisationSuspended, "This organisation is suspended: its settings can be read, not changed.")
}

/// The audit entry of a change refused because what it names does not exist here (which is
/// also how an id of another organisation is answered).
fn denied(call: &Call) -> Change {
    let attempt = serde_json::json!({ "method": call.method, "path": call.path, "code": Code::NotFound.as_str() });
    Change::new("denied", "request", &format!("{} {}", call.method, call.path), None, Some(&attempt))
}

/// `ADMIN_TOKEN` if it is long enough to be used ([`MIN_ADMIN_TOKEN_CHARS`]).
pub fn bootstrap_token(configured: Option<&str>) -> Option<&str> {
    configured.filter(|t| t.chars().count() >= MIN_ADMIN_TOKEN_CHARS)
}

/// Whether `token` is the platform operator's: `ADMIN_TOKEN` ([`bootstrap_token`]).
pub fn is_operator(token: &str, admin_token: Option<&str>) -> bool {
    bootstrap_token(admin_token).is_some_and(|t| sha256_hex(t) == sha256_hex(token))
}

/// The bearer token of an `Authorization` header; 401 if there is none.
pub fn bearer(authorization: Option<&str>) -> Result<&str, ApiError> {
    let token = authorization
        .and_then(|header| header.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(ApiError::new(
            Code::MissingAdminToken,
            "No admin token provided. Send it as 'Authorization: Bearer <token>'.",
        )),
    }
}

/// The synchronous endpoints.
fn change(step: &Step, endpoint: Endpoint) -> Result<Answer, ApiError> {
    use Endpoint::*;
    match endpoint {
        Me => directory::me(step),
        CreateSession | CurrentSession | EndSession | EndSessions | GetAccess | PutAccess | DeleteAccess => {
            Err(ApiError::new(Code::NotFound, "Not served here."))
        }
        GetOrgPolicy => directory::get_org_policy(step),
        PutOrgPolicy => directory::put_org_policy(step),
        GetRouting => directory::get_routing(step),
        PutRouting => org::put_routing(step),
        ListCredentials => org::list_credentials(step),
        PutCredential(name) => org::put_credential(step, &name),
        DeleteCredential(name) => org::delete_credential(step, &name),
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
        RotatePrincipalToken(id) => directory::rotate_token(step, &id),
        CreateKey => keys::create(step),
        ListKeys => keys::list(step),
        UpdateKey(id) => keys::update(step, &id),
        ChangeKeyStatus(id, transition) => keys::change_status(step, &id, transition),
        RotateKey(id) => keys::rotate_secret(step, &id),
        Audit => audit::list(step),
        OpenApi | Webhooks | GetKey(_) | KeyUsage(_) | ProjectUsage(_) | OrgUsage | KeyHistory(_)
        | ProjectHistory(_) | OrgHistory | Headroom => {
            Err(ApiError::new(Code::NotFound, "Not served by the registry."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_taken_from_the_header() {
        assert_eq!(bearer(Some("Bearer abc ")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        for missing in [None, Some(""), Some("Bearer "), Some("Basic abc"), Some("abc")] {
            assert_eq!(bearer(missing).unwrap_err().code(), "missing_admin_token", "{missing:?}");
        }
    }

    #[test]
    fn a_short_admin_token_is_ignored() {
        assert_eq!(bootstrap_token(Some("0123456789abcdef")), Some("0123456789abcdef"));
        assert_eq!(bootstrap_token(Some("0123456789abcde")), None);
        assert_eq!(bootstrap_token(None), None);
    }
}
