//! One proxied call, top to bottom. Every step is pure or a port; the edge only converts the
//! platform's types (`src/edge/gateway.rs`).
//!
//! 1. route: method and path → [`Route`], or 404/405 (before the key is looked at);
//! 2. authenticate: the family's key header → its record in the [`KeyStore`] → [`KeyPolicy`];
//!    no key or an unknown one → 401, the store unreachable → 503 `key_store_unavailable`; then
//!    the key's [`Organisation`] (its record, when the key names one): a suspended one → 403
//!    `organisation_suspended`; it decides the routing and where credentials come from;
//! 3. read and inspect the body (413 past [`MAX_BODY_BYTES`], 400 when malformed);
//! 4. authorize (status, expiry, client IP, models, routing), the end user
//!    ([`END_USER_HEADER`]: valid when sent, required on a key with end-user limits → 400) and
//!    meter (the reservation asked for; capped when the key, the call's model pattern or its end
//!    users have a spend cap) → 400/401/403 without asking the ledger;
//! 5. a refusal this isolate holds for the key, or for the call's model pattern or end user, is
//!    repeated without asking the ledger;
//! 6. admit: the key's ledger (at its [`LedgerAddress`]: named with its organisation, in its
//!    jurisdiction), told the call's model and end user, reserves in every scope the call counts
//!    in or refuses (429, 401 for a revoked secret); unreachable → 503 `ledger_unavailable` and
//!    nothing is forwarded;
//! 7. open the [`settlement`] and hand its task to the runtime: from here
//!    every way the call ends sends exactly one `Settle` or `Release`;
//! 8. forward to the routing targets in order ([`fallback`]), each with its credential
//!    ([`crate::gateway::upstream_credentials`]);
//! 9. answer: an upstream 5xx/401/403 → 502 (released); a model list → filtered and settled;
//!    anything else → streamed through the [`MeteredBody`], settled when it ends.
//!
//! `GET /v1/key`, the gateway's own family-neutral route, is answered by
//! [`key_quota`](crate::gateway::key_quota) before step 1.
//!
//! Tested on the host through fakes of every port: `tests/gateway_flow.rs` (the order of the
//! checks, held refusals, and the fault table of every ending).

use crate::budget::{EDGE_LEASE_MS, FLUSH_MS};
use crate::credentials::Keyring;
use crate::error::{ApiError, Code};
use crate::gateway::admission::{Admit, Outcome};
use crate::gateway::exchange::{Answer, AnswerBody, ClientRequest};
use crate::gateway::fallback::{self, Call};
use crate::gateway::forwarding::forwards_response_header;
use crate::gateway::headers::limit_headers;
use crate::gateway::held_refusals::CallScopes;
use crate::gateway::isolate::Isolate;
use crate::gateway::members::UnknownMembers;
use crate::gateway::metered_body::MeteredBody;
use crate::gateway::metering::{Ending, Metering};
use crate::gateway::models_list::{filter_models_list, read_list};
use crate::gateway::organisation::{key_store_unavailable, unknown_key, Organisation};
use crate::gateway::ports::{header, KeyLedgers, KeyStore, LedgerAddress, RequestBody, Runtime, Upstream};
use crate::gateway::record_memo::record_weight;
use crate::gateway::request::{inspect, MAX_BODY_BYTES};
use crate::gateway::route::{classify, gateway_route, Endpoint, GatewayEndpoint, Route};
use crate::gateway::settlement::{self, Meter, SharedMeter};
use crate::gateway::upstream_credentials::CredentialSource;
use crate::gateway::upstream_errors;
use crate::ledger::Command;
use crate::limits::{Headroom, ScopeLimits};
use crate::naming;
use crate::policy::end_user::{end_user, missing_end_user, END_USER_HEADER};
use crate::policy::key_hash::record_name;
use crate::policy::{
    authorize, extract_key, visible_models, CallFacts, KeyPolicy, KeyRecord, KeyRules, RoutingConfig, Target,
};
use crate::usage::{BodyKind, Pricing, UsageScanner};
use std::future::Future;
use std::rc::Rc;

/// The gateway of one isolate: its ports and the platform's configuration.
pub struct Gateway<'a, K, L, U, R> {
    pub keys: &'a K,
    pub ledgers: &'a L,
    pub upstream: &'a U,
    pub runtime: &'a R,
    /// The platform's routing, for keys whose organisation has none of its own.
    pub routing: &'a RoutingConfig,
    /// The master keys of stored credentials (`CREDENTIALS_KEYS`); `None` when unset or
    /// unreadable, so that calls needing one fail (500) and the others are served.
    pub keyring: Option<&'a Keyring>,
    pub pricing: &'a Pricing,
    pub upstream_timeout_ms: u64,
    /// Whether body members the gateway's tables do not know pass or are refused (strict mode).
    pub unknown_members: UnknownMembers,
    /// What this isolate keeps between calls (held refusals, memoized records).
    pub isolate: &'a Isolate,
}

impl<K: KeyStore, L: KeyLedgers, U: Upstream, R: Runtime> Gateway<'_, K, L, U, R> {
    /// Answers one call (see the module doc). `client_gone` resolves when the client leaves.
    pub async fn call<B: RequestBody>(
        &self,
        request: ClientRequest<B>,
        client_gone: impl Future<Output = ()> + 'static,
        now_ms: u64,
    ) -> Result<Answer<U::Body>, ApiError> {
        if let Some(endpoint) = gateway_route(&request.method, &request.path)? {
            return match endpoint {
                GatewayEndpoint::KeyQuota => self.key_quota(&request.headers, now_ms).await,
            };
        }
        let route = classify(&request.method, &request.path)?;
        let policy = self.authenticate(extract_key(route.family, |name| request.header(name)), now_ms).await?;
        let record = policy.record();
        let organisation = self.organisation(record, now_ms).await?;
        let routing = organisation.routing(self.routing);
        let body = read_body(request.body, &route).await?;
        let mut facts = inspect(&route, &body)?;
        let call_facts = CallFacts::new(&route, &facts, header(&request.headers, "cf-connecting-ip"));
        let resolved = authorize(&policy, &call_facts, routing, now_ms)?;
        let end_user = end_user(header(&request.headers, END_USER_HEADER))?;
        let rules = &record.rules;
        if end_user.is_none() && !rules.end_user_limits.is_empty() {
            return Err(missing_end_user());
        }
        let credentials = organisation.credentials(self.keyring);
        let capped = record.capped(facts.model.as_deref());
        if capped {
            refuse_unmetered_targets(&resolved.targets, &credentials)?;
        }
        let price = facts.model.as_deref().and_then(|model| organisation.price(self.pricing, model)).copied();
        let metering = Metering::reserve(&route, &mut facts, rules, capped, price, self.unknown_members)?;

        let address = LedgerAddress::of(record);
        let scopes = call_scopes(rules, facts.model.as_deref(), end_user);
        if let Some(held) = self.isolate.held_refusals.borrow().get(&address.object, scopes, now_ms) {
            return Ok(Answer::refusal(&held.error));
        }
        let ledger = self.ledgers.ledger(&address).map_err(|_| ledger_unavailable())?;
        let admit = Command::Admit {
            secret_version: record.secret_version,
            limits: rules.limits.clone(),
            policy_version: record.policy_version,
            ask: metering.ask,
            scopes: rules.scopes(),
            model: facts.model.clone(),
            end_user: end_user.map(str::to_owned),
            budgets: record.budgets.clone(),
        };
        let admit = Admit {
            command: admit,
            ledger: &ledger,
            runtime: self.runtime,
            object: &address.object,
            record,
            leases: &self.isolate.leases,
            held_refusals: &self.isolate.held_refusals,
        };
        let admitted = match admit.run(&metering, now_ms).await? {
            Outcome::Admitted(admitted) => admitted,
            Outcome::Refused(error) => return Ok(Answer::refusal(&error)),
        };
        let headroom = admitted.headroom().cloned();
        let naps = (self.runtime.sleep(FLUSH_MS), self.runtime.sleep(EDGE_LEASE_MS));
        let finish = admit.settle(&admitted).finish(metering, ledger, naps, now_ms);
        let meter = SharedMeter::default();
        let (mut settlement, settle) = settlement::open(client_gone, meter.clone(), finish);
        self.runtime.wait_until(settle);

        let call = Call {
            route: &route,
            facts: &facts,
            body: &body,
            query: request.query.as_deref(),
            client_headers: &request.headers,
            credentials,
            timeout_ms: self.upstream_timeout_ms,
        };
        // Any early return from here drops `settlement`, which releases the reservation — unless
        // this future is dropped while the upstream has the call (the client left): then the
        // call is charged its reservation, as the upstream bills it.
        settlement.upstream_working(true);
        let forwarded = fallback::forward(self.upstream, self.runtime, &call, &resolved.targets).await;
        settlement.upstream_working(false);
        let upstream = forwarded?;
        let status = upstream.status;
        if let Some(error) = upstream_errors::withheld(status) {
            return Err(error);
        }
        let content_type = upstream.header("content-type").unwrap_or_default().to_owned();
        let headers = answer_headers(upstream.headers, headroom.as_ref(), now_ms);

        if matches!(route.endpoint, Endpoint::ModelsList) && status == 200 {
            let _reading = self.isolate.list_reads.start()?;
            let body = read_list(upstream.body).await.ok_or_else(|| upstream_errors::unusable(status))?;
            let visible = |name: &str| visible_models(&policy, routing, route.family, [name]).next().is_some();
            let filtered =
                filter_models_list(route.family, &body, visible).ok_or_else(|| upstream_errors::unusable(status))?;
            settlement.end(Ending::Answered { status, usage: None, complete: false });
            return Ok(Answer { status, headers, body: AnswerBody::Bytes(filtered) });
        }

        let strip = facts.stream && !facts.include_usage_requested;
        let scanner = UsageScanner::new(route.family, BodyKind::from_content_type(&content_type), strip);
        *meter.borrow_mut() = Some(Meter { status, scanner });
        Ok(Answer { status, headers, body: AnswerBody::Streamed(MeteredBody::new(upstream.body, meter, settlement)) })
    }

    /// The validated policy of `key` (read from the request's headers), from the record named
    /// by its hash: this isolate's memo of it if fresh, else the store's, parsed and remembered.
    pub(crate) async fn authenticate(&self, key: Option<&str>, now_ms: u64) -> Result<Rc<KeyPolicy>, ApiError> {
        let key = key.ok_or_else(|| {
            ApiError::new(
                Code::InvalidApiKey,
                "No API key provided. Send your team key as 'Authorization: Bearer <key>' (or x-api-key on /anthropic, x-goog-api-key on /gemini).",
            )
        })?;
        let name = record_name(key);
        if let Some(policy) = self.isolate.keys.borrow().get(&name, now_ms) {
            return Ok(policy);
        }
        let record = self.keys.get(&name).await.map_err(|_| key_store_unavailable())?.ok_or_else(unknown_key)?;
        let policy = Rc::new(KeyPolicy::from_json(&record).map_err(|invalid| {
            self.runtime.error(&format!("key record {} is invalid: {invalid}", invalid.key_id));
            ApiError::from(invalid)
        })?);
        self.isolate.keys.borrow_mut().remember(&name, Rc::clone(&policy), record_weight(&record), now_ms);
        Ok(policy)
    }

    /// The key's organisation: this isolate's memo of it if fresh, else [`Organisation::of_key`]
    /// (remembered when it admits calls).
    pub(crate) async fn organisation(&self, record: &KeyRecord, now_ms: u64) -> Result<Rc<Organisation>, ApiError> {
        let Some(org_id) = record.org.as_deref() else {
            return Ok(Rc::new(Organisation::Legacy));
        };
        let name = naming::org_record(org_id);
        if let Some(organisation) = self.isolate.organisations.borrow().get(&name, now_ms) {
            return Ok(organisation);
        }
        let (organisation, weight) = Organisation::of_key(self.keys, self.runtime, record).await?;
        let organisation = Rc::new(organisation);
        self.isolate.organisations.borrow_mut().remember(&name, Rc::clone(&organisation), weight, now_ms);
        Ok(organisation)
    }
}

/// The scopes inside the key a call counts in, for held refusals: its model's pattern (if one
/// matches) and its end user (if the key has end-user limits).
fn call_scopes<'a>(rules: &'a KeyRules, model: Option<&str>, end_user: Option<&'a str>) -> CallScopes<'a> {
    CallScopes {
        pattern: ScopeLimits::for_model_in(&rules.model_limits, model).map(|m| m.pattern.as_str()),
        end_user: end_user.filter(|_| !rules.end_user_limits.is_empty()),
    }
}

/// The request body (none on GET routes), refused past [`MAX_BODY_BYTES`].
async fn read_body(body: impl RequestBody, route: &Route) -> Result<Vec<u8>, ApiError> {
    if route.endpoint.method() == "GET" {
        return Ok(Vec::new());
    }
    body.read(MAX_BODY_BYTES).await
}

/// The whole upstream body, or `None` if it failed.
/// The upstream's forwardable headers, then the key's limit headers (which replace any
/// upstream header of the same name).
fn answer_headers(upstream: Vec<(String, String)>, headroom: Option<&Headroom>, now_ms: u64) -> Vec<(String, String)> {
    let limits = headroom.map(|headroom| limit_headers(headroom, now_ms)).unwrap_or_default();
    let mut headers: Vec<(String, String)> = upstream
        .into_iter()
        .filter(|(name, _)| forwards_response_header(name) && !limits.iter().any(|(limit, _)| limit == name))
        .collect();
    headers.extend(limits.into_iter().map(|(name, value)| (name.to_owned(), value)));
    headers
}

/// 503 for a key ledger that cannot be reached or gives no usable answer: nothing is forwarded.
pub fn ledger_unavailable() -> ApiError {
    ApiError::new(
        Code::LedgerUnavailable,
        "The rate and spend ledger for this key cannot be reached; the request was not forwarded. Retry shortly.",
    )
    .with_retry_after(1)
}

/// A capped key (a spend cap of its own or a hard budget above it: [`crate::policy::KeyRecord::capped`]) may
/// only reach targets whose bill its reservation bounds
/// ([`Target::is_metered`]): every target it could be sent to, fallbacks included.
fn refuse_unmetered_targets(targets: &[&Target], credentials: &CredentialSource) -> Result<(), ApiError> {
    match targets.iter().find(|target| !target.is_metered(credentials.base_url(target))) {
        Some(target) => Err(ApiError::new(
            Code::TargetNotMetered,
            format!(
                "This key has a spend limit and its routing group reaches '{}', an upstream whose billing teamkeys does not model (it may ignore the output cap). Ask an operator to mark the target metered, or use a key without a spend limit.",
                target
            ),
        )),
        None => Ok(()),
    }
}
