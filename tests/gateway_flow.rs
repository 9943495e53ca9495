//! The whole request path on the host: `Gateway::call` over the fakes of every port
//! (`teamkeys::gateway::fakes`), the real key ledger state machine included.
//!
//! - The order of the checks: each refusal happens before the steps after it run (no key
//!   lookup for an unknown route, no ledger for a denied call, no upstream for an unadmitted one).
//! - Held refusals: repeated without asking the ledger, until the hold ends.
//! - Organisations: each key's calls follow its organisation's routing and carry its
//!   organisation's credential, reach its ledger object (named with the organisation, in its
//!   jurisdiction); a suspended organisation is refused before the ledger; a key from before
//!   organisations is served as before; a credential that cannot be opened forwards nothing.
//! - Scopes inside a key: the end-user header required, checked and never forwarded; an end
//!   user or a model pattern over its limit refused (and held) while the key's other end users
//!   and models pass; `GET /v1/key` answering what the key's ledger holds.
//! - [`FAULT_TABLE`]: every way a call can end, what the client gets and what the ledger
//!   records; every admitted call ends in exactly one `Settle` or `Release`.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use teamkeys::budget::{EDGE_LEASE_MS, FLUSH_MS};
use teamkeys::credentials::{BaseUrlPolicy, CredentialInput, Keyring, Provider, Slot, StoredCredential};
use teamkeys::gateway::call::Gateway;
use teamkeys::gateway::edge_leases::HOT_CALLS;
use teamkeys::gateway::exchange::{Answer, AnswerBody, ClientRequest};
use teamkeys::gateway::fakes::{
    fake_credential, FakeAnswer, FakeBody, FakeKeyLedgers, FakeKeyStore, FakeRuntime, FakeUpstream, LedgerFault,
    LedgerStage, Outcome, Scripted, Signal,
};
use teamkeys::gateway::isolate::Isolate;
use teamkeys::gateway::metered_body::MeteredBody;
use teamkeys::gateway::record_memo::{RecordMemo, RECORD_MEMO_MS};
use teamkeys::ledger::revocation::Control;
use teamkeys::ledger::{Command, Reply};
use teamkeys::limits::{Ask, Limits};
use teamkeys::policy::{Jurisdiction, OrgRecord, OrgStatus, RoutingConfig};
use teamkeys::usage::{Pricing, DEFAULT_PRICING_JSON};

const KEY: &str = "tk_flow_test_key";
const NOW_MS: u64 = 1_700_000_000_000;

/// Two targets per family in one group with fallback: `first.example`, then `second.example`.
const ROUTING: &str = r#"{"groups":[{"name":"default","models":["*"],"targets":[
    {"base_url":"https://first.example/anthropic/v1","family":"anthropic","credential_secret":"FIRST"},
    {"base_url":"https://second.example/anthropic/v1","family":"anthropic","credential_secret":"SECOND"},
    {"base_url":"https://first.example/openai/v1","family":"openai","credential_secret":"FIRST"},
    {"base_url":"https://second.example/openai/v1","family":"openai","credential_secret":"SECOND"}]}]}"#;

/// An Anthropic stream reporting 10 input tokens and 1 output token at its start, 20 output
/// tokens by its end.
const MESSAGE_START: &str =
    r#"{"type":"message_start","message":{"id":"m1","usage":{"input_tokens":10,"output_tokens":1}}}"#;
const STREAM: [&str; 4] = [
    MESSAGE_START,
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20}}"#,
    r#"{"type":"message_stop"}"#,
];
/// Tokens the stream reported by its end.
const TOKENS_AT_END: u64 = 30;

const MESSAGE: &str =
    r#"{"model":"claude-sonnet-4","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// The ports, the configuration and the client's signal of one test.
struct World {
    keys: FakeKeyStore,
    ledgers: FakeKeyLedgers,
    upstream: FakeUpstream,
    runtime: FakeRuntime,
    routing: RoutingConfig,
    keyring: Option<Keyring>,
    pricing: Pricing,
    isolate: Isolate,
    client_gone: Signal,
}

impl World {
    /// Publishes `record` under `key` as if it had changed longer than [`RECORD_MEMO_MS`] ago:
    /// the isolate forgets the records it read.
    fn republish(&self, key: &str, record: &str) {
        self.keys.insert(key, record);
        *self.isolate.keys.borrow_mut() = RecordMemo::default();
    }

    /// A world whose background tasks run on `pool`, with key [`KEY`] holding `limits`.
    fn new(pool: &LocalPool, limits: &str) -> World {
        let spawner = pool.spawner();
        let world = World {
            keys: FakeKeyStore::default(),
            ledgers: FakeKeyLedgers::default(),
            upstream: FakeUpstream::default(),
            runtime: FakeRuntime::new(move |task| spawner.spawn_local(task).expect("the pool runs")),
            routing: RoutingConfig::from_json(ROUTING).unwrap(),
            keyring: Some(keyring(MASTER_KEY)),
            pricing: Pricing::from_json(DEFAULT_PRICING_JSON).unwrap(),
            isolate: Isolate::new("test".to_owned()),
            client_gone: Signal::default(),
        };
        world.keys.insert(KEY, &record(limits, ""));
        world.ledgers.set_now_ms(NOW_MS);
        world
    }

    fn gateway(&self) -> Gateway<'_, FakeKeyStore, FakeKeyLedgers, FakeUpstream, FakeRuntime> {
        Gateway {
            keys: &self.keys,
            ledgers: &self.ledgers,
            upstream: &self.upstream,
            runtime: &self.runtime,
            routing: &self.routing,
            keyring: self.keyring.as_ref(),
            pricing: &self.pricing,
            upstream_timeout_ms: 1_000,
            unknown_members: teamkeys::gateway::members::UnknownMembers::Pass,
            isolate: &self.isolate,
        }
    }

    /// Runs one call to its answer (or error) and every background task that can run.
    fn call(
        &self,
        pool: &mut LocalPool,
        request: ClientRequest<Vec<u8>>,
        now_ms: u64,
    ) -> Result<Answer<FakeBody>, (u16, &'static str)> {
        let answer = pool.run_until(self.gateway().call(request, self.client_gone.wait(), now_ms));
        pool.run_until_stalled();
        answer.map_err(|error| (error.status(), error.code().as_str()))
    }

    /// Every command the pipeline sent that ends a reservation (`Settle` or `Release`).
    fn endings(&self) -> Vec<Command> {
        let ending = |command: &Command| matches!(command, Command::Settle { .. } | Command::Release { .. });
        self.ledgers.sent().into_iter().map(|sent| sent.command).filter(ending).collect()
    }

    /// The reservations the pipeline was told were admitted, with what each asked for.
    fn admitted(&self) -> Vec<(u64, Ask)> {
        self.ledgers
            .sent()
            .into_iter()
            .filter_map(|sent| match (sent.command, sent.outcome) {
                (Command::Admit { ask, .. }, Outcome::Replied(Reply::Admitted { reservation_id, .. })) => {
                    Some((reservation_id, ask))
                }
                _ => None,
            })
            .collect()
    }

    /// Asserts the invariant of settlement: every admitted call ended in exactly one `Settle`
    /// or `Release` (never zero, never two) at the ledger that admitted it, and nothing else
    /// ended.
    fn assert_each_admitted_call_ended_once(&self) {
        let sent = self.ledgers.sent();
        let endings: Vec<(&str, u64)> = sent
            .iter()
            .filter(|sent| matches!(sent.command, Command::Settle { .. } | Command::Release { .. }))
            .map(|sent| (sent.object.as_str(), ends(&sent.command)))
            .collect();
        let admitted: Vec<(&str, u64)> = sent
            .iter()
            .filter_map(|sent| match (&sent.command, &sent.outcome) {
                (Command::Admit { .. }, Outcome::Replied(Reply::Admitted { reservation_id, .. })) => {
                    Some((sent.object.as_str(), *reservation_id))
                }
                _ => None,
            })
            .collect();
        for call in &admitted {
            let count = endings.iter().filter(|ending| *ending == call).count();
            assert_eq!(count, 1, "reservation {call:?} ended {count} times: {endings:?}");
        }
        assert_eq!(endings.len(), admitted.len(), "{endings:?}");
    }
}

fn ends(command: &Command) -> u64 {
    match command {
        Command::Settle { reservation_id, .. } | Command::Release { reservation_id } => *reservation_id,
        other => panic!("not an ending: {other:?}"),
    }
}

/// A key record for [`KEY`] with `limits` (JSON) and `extra` members.
fn record(limits: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"k1","name":"n","creator":"c","project":"p","created_at":0,"status":"active","limits":{limits}{extra}}}"#
    )
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> ClientRequest<Vec<u8>> {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (path, None),
    };
    ClientRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A streamed Anthropic message call with key [`KEY`].
fn message() -> ClientRequest<Vec<u8>> {
    request(
        "POST",
        "/anthropic/v1/messages",
        &[("x-api-key", KEY), ("content-type", "application/json"), ("anthropic-version", "2023-06-01")],
        MESSAGE,
    )
}

fn streamed(answer: Answer<FakeBody>) -> MeteredBody<FakeBody> {
    match answer.body {
        AnswerBody::Streamed(body) => body,
        AnswerBody::Bytes(_) => panic!("expected a streamed answer"),
    }
}

/// The body a client reading to the end receives, and whether it ended in an error.
fn read_to_end(pool: &mut LocalPool, body: MeteredBody<FakeBody>) -> (String, bool) {
    let chunks: Vec<_> = pool.run_until(body.collect());
    let failed = chunks.iter().any(Result::is_err);
    let bytes: Vec<u8> = chunks.into_iter().filter_map(Result::ok).flatten().collect();
    (String::from_utf8(bytes).unwrap(), failed)
}

fn header<'a>(answer: &'a Answer<FakeBody>, name: &str) -> Option<&'a str> {
    answer.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// The order of the checks.

#[test]
fn an_unknown_route_is_refused_before_the_key_is_looked_up() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let refused = world.call(
        &mut pool,
        request("POST", "/openai/v1/secret-side-door", &[("authorization", "Bearer x")], "{}"),
        NOW_MS,
    );
    assert_eq!(refused.err(), Some((404, "not_found")));
    assert_eq!(world.keys.lookups(), 0);
}

#[test]
fn a_call_without_a_key_is_refused_before_the_key_store_is_asked() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let refused = world.call(&mut pool, request("POST", "/anthropic/v1/messages", &[], MESSAGE), NOW_MS);
    assert_eq!(refused.err(), Some((401, "invalid_api_key")));
    assert_eq!(world.keys.lookups(), 0);
    let unknown = request("POST", "/anthropic/v1/messages", &[("x-api-key", "tk_unknown")], MESSAGE);
    assert_eq!(world.call(&mut pool, unknown, NOW_MS).err(), Some((401, "invalid_api_key")));
    assert!(world.ledgers.sent().is_empty());
}

#[test]
fn an_unreachable_key_store_admits_nothing() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.keys.unreachable.set(true);
    assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((503, "key_store_unavailable")));
    assert!(world.ledgers.sent().is_empty());
    assert!(world.upstream.sent().is_empty());
}

#[test]
fn a_capped_key_reaches_only_targets_whose_billing_the_gateway_models() {
    let mut pool = LocalPool::new();
    // `first.example` and `second.example` are not the providers' hosts, and not marked metered.
    let world = World::new(&pool, r#"{"spend":[{"period":"daily","limit_micros":1000000}]}"#);
    world.keys.insert(KEY, &record(r#"{"spend":[{"period":"daily","limit_micros":1000000}]}"#, ""));
    assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((403, "target_not_metered")));
    assert!(world.ledgers.sent().is_empty() && world.upstream.sent().is_empty());
    // The same key without a cap reaches them (once the isolate's memo of the record expired).
    world.keys.insert(KEY, &record("{}", ""));
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let later = NOW_MS + RECORD_MEMO_MS;
    assert_eq!(world.call(&mut pool, message(), later).map(|answer| answer.status).ok(), Some(200));
}

/// The isolate's memo: a key calling steadily costs one key store read per [`RECORD_MEMO_MS`],
/// and a changed record applies once the memo of it expired, never later.
#[test]
fn a_steady_key_reads_its_record_once_per_memo_time_and_a_change_applies_after_it() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    for i in 0..5 {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        let status = world.call(&mut pool, message(), NOW_MS + i * (RECORD_MEMO_MS / 5)).map(|answer| answer.status);
        assert_eq!(status.ok(), Some(200));
    }
    assert_eq!(world.keys.lookups(), 1, "one read for five calls within the memo time");
    world.keys.insert(KEY, &record("{}", r#","models":{"block":["claude-*"]}"#));
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let stale = world.call(&mut pool, message(), NOW_MS + RECORD_MEMO_MS - 1).map(|answer| answer.status);
    assert_eq!(stale.ok(), Some(200), "within the memo time the record read before applies");
    let fresh = world.call(&mut pool, message(), NOW_MS + RECORD_MEMO_MS).err();
    assert_eq!(fresh, Some((403, "model_not_allowed")), "the change applies once the memo expired");
    assert_eq!(world.keys.lookups(), 2);
    // An unknown key is never remembered: a key created a moment later works at once.
    world.keys.insert(KEY, &record("{}", ""));
    let other = "tk_created_later";
    let unknown = world.call(&mut pool, message_with(other), NOW_MS + RECORD_MEMO_MS).err();
    assert_eq!(unknown, Some((401, "invalid_api_key")));
    world.keys.insert(other, &record("{}", ""));
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let created = world.call(&mut pool, message_with(other), NOW_MS + RECORD_MEMO_MS + 1).map(|answer| answer.status);
    assert_eq!(created.ok(), Some(200));
}

#[test]
fn a_key_under_a_hard_budget_counts_as_capped_and_carries_its_budgets_to_its_ledger() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let budget = |mode: &str| {
        format!(
            r#","v":3,"budgets":[{{"level":"project","object":"budget:org_a/p","version":1,
                "limits":{{"spend":[{{"period":"daily","limit_micros":5000000,"mode":"{mode}"}}]}}}}]"#
        )
    };
    world.keys.insert(KEY, &record("{}", &budget("hard")));
    assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((403, "target_not_metered")));
    assert!(world.ledgers.sent().is_empty() && world.upstream.sent().is_empty());
    // A warn-only budget does not cap the key; its budgets reach the key's ledger with the call.
    world.republish(KEY, &record("{}", &budget("warn")));
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(world.call(&mut pool, message(), NOW_MS).map(|answer| answer.status).ok(), Some(200));
    let Command::Admit { budgets, .. } = &world.ledgers.sent()[0].command else { panic!("an admission first") };
    assert_eq!((budgets.len(), budgets[0].object.as_str()), (1, "budget:org_a/p"));
}

/// `KEY` and another key (answered) under one project's budget of `limits`.
fn two_keys_of_a_project(world: &World, limits: &str) -> &'static str {
    let link =
        format!(r#","v":3,"budgets":[{{"level":"project","object":"budget:org_a/p","version":1,"limits":{limits}}}]"#);
    world.keys.insert(KEY, &record("{}", &link));
    let other = "tk_other_key_under_the_same_project_0001";
    world.keys.insert(other, &record("{}", &link).replace(r#""id":"k1""#, r#""id":"k2""#));
    other
}

#[test]
fn two_keys_share_their_projects_budget_and_the_refusal_names_the_project() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let other = two_keys_of_a_project(&world, r#"{"rpm":2}"#);
    let mut statuses = Vec::new();
    for key in [KEY, other, KEY] {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        let answer = world.call(&mut pool, message_with(key), NOW_MS).unwrap();
        statuses.push(answer.status);
        if answer.status == 429 {
            let AnswerBody::Bytes(body) = &answer.body else { panic!("a refusal is whole") };
            let body: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                (body["error"]["limit"]["level"].as_str(), body["error"]["limit"]["scope"].as_str()),
                (Some("project"), Some("rpm"))
            );
        } else {
            read_to_end(&mut pool, streamed(answer));
        }
    }
    assert_eq!(statuses, [200, 200, 429], "two calls a minute for the project, whichever key");
}

#[test]
fn a_policy_denial_is_answered_before_the_ledger_is_asked() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.keys.insert(KEY, &record("{}", r#","models":{"block":["claude-*"]}"#));
    assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((403, "model_not_allowed")));
    world.keys.insert(KEY, &record("{}", r#","expires_at":1"#));
    assert_eq!(world.call(&mut pool, message(), NOW_MS + RECORD_MEMO_MS).err(), Some((401, "key_expired")));
    assert!(world.ledgers.sent().is_empty());
    assert!(world.upstream.sent().is_empty());
}

#[test]
fn an_unreachable_ledger_admits_nothing_and_the_upstream_is_never_called() {
    for fault in [LedgerFault::Unreachable, LedgerFault::ReplyLost] {
        let mut pool = LocalPool::new();
        let world = World::new(&pool, "{}");
        world.ledgers.fail(LedgerStage::Admission, fault);
        assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((503, "ledger_unavailable")), "{fault:?}");
        assert!(world.upstream.sent().is_empty(), "{fault:?}");
        assert!(world.endings().is_empty(), "{fault:?}");
    }
}

#[test]
fn a_full_request_window_is_refused_without_asking_the_ledger_until_the_hold_ends() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":1}"#);
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let first = world.call(&mut pool, message(), NOW_MS).unwrap();
    read_to_end(&mut pool, streamed(first));
    let refused = world.call(&mut pool, message(), NOW_MS).unwrap();
    assert_eq!((refused.status, header(&refused, "retry-after")), (429, Some("60")));
    let asked = world.ledgers.sent().len();

    // The ledger now refuses the key for another reason; the held refusal still answers…
    let disable = serde_json::from_str(r#"{"op":"control","control":{"action":"disable"}}"#).unwrap();
    world.ledgers.apply("k1", disable);
    let held = world.call(&mut pool, message(), NOW_MS + 999).unwrap();
    assert_eq!(held.status, 429);
    assert_eq!(world.ledgers.sent().len(), asked, "the ledger was not asked");

    // …until the hold (at most a second) is over.
    world.ledgers.set_now_ms(NOW_MS + 1_000);
    let after = world.call(&mut pool, message(), NOW_MS + 1_000).unwrap();
    assert_eq!(after.status, 401);
    assert_eq!(world.ledgers.sent().len(), asked + 1);
}

#[test]
fn the_upstream_gets_the_targets_credential_and_never_the_client_key() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.upstream.script([Scripted::Answer(FakeAnswer::json(500, "{}")), Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let mut call = message();
    call.query = Some(format!("key={KEY}&alt=sse"));
    call.headers.push(("cf-connecting-ip".to_owned(), "203.0.113.9".to_owned()));
    let answer = world.call(&mut pool, call, NOW_MS).unwrap();
    read_to_end(&mut pool, streamed(answer));
    let sent = world.upstream.sent();
    let urls: Vec<&str> = sent.iter().map(|request| request.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://first.example/anthropic/v1/messages?alt=sse", "https://second.example/anthropic/v1/messages?alt=sse"]
    );
    for (request, secret) in sent.iter().zip(["FIRST", "SECOND"]) {
        assert!(request.headers.contains(&("x-api-key".to_owned(), fake_credential(secret))));
        assert!(request.headers.contains(&("anthropic-version".to_owned(), "2023-06-01".to_owned())));
        assert!(!request.headers.iter().any(|(name, value)| value.contains(KEY) || name == "cf-connecting-ip"));
        assert_eq!(request.body, MESSAGE.as_bytes(), "the client's bytes, untouched");
    }
    assert!(world.runtime.lines().iter().all(|line| !line.contains(KEY)), "{:?}", world.runtime.lines());
}

#[test]
fn the_answer_carries_the_upstreams_headers_and_the_keys_limits_not_the_upstream_accounts() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"tpd":1000000}"#);
    let answer = FakeAnswer::sse(&STREAM)
        .with_header("x-request-id", "req-1")
        .with_header("x-ratelimit-remaining-tokens", "999999999")
        .with_header("set-cookie", "account=1");
    world.upstream.script([Scripted::Answer(answer)]);
    let answer = world.call(&mut pool, message(), NOW_MS).unwrap();
    assert_eq!(header(&answer, "x-request-id"), Some("req-1"));
    assert_eq!(header(&answer, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&answer, "set-cookie"), None);
    let remaining = answer.headers.iter().filter(|(name, _)| name == "x-ratelimit-remaining-tokens");
    let [(_, remaining)] = remaining.collect::<Vec<_>>()[..] else { panic!("one remaining-tokens header") };
    let [(_, ask)] = world.admitted()[..] else { panic!("one admission") };
    assert_eq!(remaining.parse::<u64>().unwrap(), 1_000_000 - ask.tokens);
    read_to_end(&mut pool, streamed(answer));
}

#[test]
fn a_model_list_is_filtered_and_settled() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.keys.insert(KEY, &record("{}", r#","models":{"block":["gpt-4o-mini"]}"#));
    let list = r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"gpt-4o-mini","object":"model"}]}"#;
    world.upstream.script([Scripted::Answer(FakeAnswer::json(200, list))]);
    let call = request("GET", "/openai/v1/models", &[("authorization", &format!("Bearer {KEY}"))], "");
    let answer = world.call(&mut pool, call, NOW_MS).unwrap();
    let AnswerBody::Bytes(body) = answer.body else { panic!("a model list is answered whole") };
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(r#""gpt-4o""#) && !body.contains("gpt-4o-mini"), "{body}");
    assert!(matches!(world.endings()[..], [Command::Settle { .. }]));
    world.assert_each_admitted_call_ended_once();
}

// ---------------------------------------------------------------------------------------------
// Organisations.

/// Two master keys: the deployment's, and one it does not hold.
const MASTER_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_MASTER_KEY: &str = "k9:q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
const SECRET_A: &str = "sk-ant-org-a-0123456789-plaintext-AAAA";
const SECRET_B: &str = "sk-ant-org-b-0123456789-plaintext-BBBB";
const KEY_A: &str = "tk_org_a_key";
const KEY_B: &str = "tk_org_b_key";

fn keyring(text: &str) -> Keyring {
    Keyring::parse(text).unwrap()
}

/// `secret` stored as organisation `org_id`'s Anthropic credential `main`, sealed with
/// `master_key`, sent to `base_url` (else Anthropic's public API).
fn credential(org_id: &str, secret: &str, base_url: Option<&str>, master_key: &str) -> StoredCredential {
    let input = CredentialInput {
        provider: Provider::Anthropic,
        secret: secret.to_owned(),
        base_url: base_url.map(str::to_owned),
    };
    let slot = Slot { org_id, name: "main" };
    let mut random = |bytes: &mut [u8]| bytes.fill(7);
    StoredCredential::seal(
        input.validate(BaseUrlPolicy::HttpsOnly).unwrap(),
        slot,
        &keyring(master_key),
        1,
        None,
        &mut random,
    )
}

/// Organisation `id`'s record: one group serving `models` with its credential `main`.
fn org(id: &str, models: &str, credential: StoredCredential) -> OrgRecord {
    let routing = format!(
        r#"{{"groups":[{{"name":"own","models":["{models}"],"targets":[{{"family":"anthropic","credential":"main"}}]}}]}}"#
    );
    OrgRecord {
        id: id.to_owned(),
        status: OrgStatus::Active,
        jurisdiction: None,
        routing: Some(RoutingConfig::from_org_json(&routing).unwrap()),
        platform_routing: false,
        credentials: BTreeMap::from([("main".to_owned(), credential)]),
        pricing: None,
    }
}

/// A world with organisations `org_a` (in the EU, its credential sent to `a.example`) and
/// `org_b` (its credential sent to Anthropic), each with a key of id `k1`: [`KEY_A`], [`KEY_B`].
fn two_organisations(pool: &LocalPool) -> World {
    let world = World::new(pool, "{}");
    let org_a = org("org_a", "claude-*", credential("org_a", SECRET_A, Some("https://a.example/v1"), MASTER_KEY));
    let org_b = org("org_b", "*", credential("org_b", SECRET_B, None, MASTER_KEY));
    world.keys.insert_org("org_a", &serde_json::to_string(&org_a).unwrap());
    world.keys.insert_org("org_b", &serde_json::to_string(&org_b).unwrap());
    world.keys.insert(KEY_A, &record("{}", r#","org":"org_a","jurisdiction":"eu""#));
    world.keys.insert(KEY_B, &record("{}", r#","org":"org_b""#));
    world
}

fn message_with(key: &str) -> ClientRequest<Vec<u8>> {
    let mut call = message();
    call.headers[0].1 = key.to_owned();
    call
}

/// The call's answer status, after reading a streamed body to its end.
fn answered(world: &World, pool: &mut LocalPool, call: ClientRequest<Vec<u8>>) -> Result<u16, (u16, &'static str)> {
    answered_at(world, pool, call, NOW_MS)
}

/// [`answered`] at `now_ms`.
fn answered_at(
    world: &World,
    pool: &mut LocalPool,
    call: ClientRequest<Vec<u8>>,
    now_ms: u64,
) -> Result<u16, (u16, &'static str)> {
    world.ledgers.set_now_ms(now_ms);
    let answer = world.call(pool, call, now_ms)?;
    let status = answer.status;
    read_to_end(pool, streamed(answer));
    pool.run_until_stalled();
    Ok(status)
}

/// Whether any log line the runtime collected holds a plaintext credential.
fn logs_hold_a_secret(world: &World) -> bool {
    world.runtime.lines().iter().any(|line| line.contains(SECRET_A) || line.contains(SECRET_B))
}

#[test]
fn each_key_reaches_its_own_organisations_routing_credential_and_ledger() {
    let mut pool = LocalPool::new();
    let world = two_organisations(&pool);
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM)), Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message_with(KEY_A)), Ok(200));
    assert_eq!(answered(&world, &mut pool, message_with(KEY_B)), Ok(200));

    let sent = world.upstream.sent();
    let seen: Vec<(&str, Option<&str>)> = sent
        .iter()
        .map(|request| {
            let credential = request.headers.iter().find(|(name, _)| name == "x-api-key");
            (request.url.as_str(), credential.map(|(_, value)| value.as_str()))
        })
        .collect();
    assert_eq!(
        seen,
        [("https://a.example/v1/messages", Some(SECRET_A)), ("https://api.anthropic.com/v1/messages", Some(SECRET_B))]
    );
    let mut objects: Vec<(String, Option<Jurisdiction>)> =
        world.ledgers.sent().into_iter().map(|sent| (sent.object, sent.jurisdiction)).collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        objects,
        [
            ("org_a/k1".to_owned(), Some(Jurisdiction::Eu)),
            ("org_a/k1".to_owned(), Some(Jurisdiction::Eu)),
            ("org_b/k1".to_owned(), None),
            ("org_b/k1".to_owned(), None),
        ],
        "an admission and a settle each"
    );
    world.assert_each_admitted_call_ended_once();
    assert!(!logs_hold_a_secret(&world), "{:?}", world.runtime.lines());

    // Each organisation's routing: `org_a` serves claude-* only, `org_b` everything.
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let other_model = |key| {
        let mut call = message_with(key);
        call.body = MESSAGE.replace("claude-sonnet-4", "mistral-large").into_bytes();
        call
    };
    assert_eq!(world.call(&mut pool, other_model(KEY_A), NOW_MS).err(), Some((404, "model_not_found")));
    assert_eq!(answered(&world, &mut pool, other_model(KEY_B)), Ok(200));
}

/// The cost of the admission and of the settle each key's ledger was sent, by object.
fn costs(world: &World) -> Vec<(String, u64, u64)> {
    let sent = world.ledgers.sent();
    let cost = |object: &str, settle: bool| {
        sent.iter()
            .filter(|sent| sent.object == object)
            .find_map(|sent| match (&sent.command, settle) {
                (Command::Admit { ask, .. }, false) => Some(ask.cost_micros),
                (Command::Settle { actual, .. }, true) => Some(actual.cost_micros),
                _ => None,
            })
            .unwrap()
    };
    ["org_a/k1", "org_b/k1"].map(|o| (o.to_owned(), cost(o, false), cost(o, true))).to_vec()
}

#[test]
fn an_organisations_price_overrides_meter_its_calls_and_no_others() {
    let mut pool = LocalPool::new();
    let world = two_organisations(&pool);
    // The operator prices claude-* for org_a at ten times the platform's list price.
    let mut org_a = org("org_a", "claude-*", credential("org_a", SECRET_A, Some("https://a.example/v1"), MASTER_KEY));
    org_a.pricing = Some(
        Pricing::from_json(
            r#"[{"model": "claude-*", "input": 30000000, "output": 150000000, "cached_input": 3000000}]"#,
        )
        .unwrap(),
    );
    world.keys.insert_org("org_a", &serde_json::to_string(&org_a).unwrap());
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM)), Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message_with(KEY_A)), Ok(200));
    assert_eq!(answered(&world, &mut pool, message_with(KEY_B)), Ok(200));
    let [(_, ask_a, actual_a), (_, ask_b, actual_b)]: [(String, u64, u64); 2] = costs(&world).try_into().unwrap();
    assert!(actual_b > 0 && ask_b > 0);
    // Costs are rounded up once per call: ten times the price is ten times the cost, within 10.
    assert!(ask_a.abs_diff(10 * ask_b) <= 10 && actual_a.abs_diff(10 * actual_b) <= 10, "{:?}", costs(&world));
}

#[test]
fn an_organisation_without_routing_uses_the_platforms_routing_and_secrets() {
    let mut pool = LocalPool::new();
    let world = two_organisations(&pool);
    let platform_routed = OrgRecord {
        routing: None,
        platform_routing: true,
        ..org("org_a", "*", credential("org_a", SECRET_A, None, MASTER_KEY))
    };
    world.keys.insert_org("org_a", &serde_json::to_string(&platform_routed).unwrap());
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message_with(KEY_A)), Ok(200));
    let sent = world.upstream.sent();
    assert_eq!(sent[0].url, "https://first.example/anthropic/v1/messages");
    assert!(sent[0].headers.contains(&("x-api-key".to_owned(), fake_credential("FIRST"))));
}

#[test]
fn a_suspended_organisations_keys_are_refused_before_the_ledger() {
    let mut pool = LocalPool::new();
    let world = two_organisations(&pool);
    let suspended = OrgRecord {
        status: OrgStatus::Suspended,
        ..org("org_a", "*", credential("org_a", SECRET_A, None, MASTER_KEY))
    };
    world.keys.insert_org("org_a", &serde_json::to_string(&suspended).unwrap());
    assert_eq!(world.call(&mut pool, message_with(KEY_A), NOW_MS).err(), Some((403, "organisation_suspended")));
    assert!(world.ledgers.sent().is_empty());
    assert!(world.upstream.sent().is_empty());
    // The other organisation is served.
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message_with(KEY_B)), Ok(200));
}

#[test]
fn a_missing_or_unreadable_organisation_record_admits_nothing() {
    let stored_secret_target = r#"{"id":"org_a","status":"active","routing":{"groups":[{"name":"g","models":["*"],
        "targets":[{"family":"anthropic","base_url":"https://attacker.example","credential_secret":"UPSTREAM_API_KEY"}]}]}}"#;
    let cases = [
        (None, (401, "invalid_api_key")),
        (Some(r#"{"id":"org_b","status":"active"}"#), (500, "invalid_org_record")),
        (Some(r#"{"id":"org_a","status":"paused"}"#), (500, "invalid_org_record")),
        (Some(stored_secret_target), (500, "invalid_org_record")),
    ];
    for (stored, refusal) in cases {
        let mut pool = LocalPool::new();
        let world = World::new(&pool, "{}");
        if let Some(stored) = stored {
            world.keys.insert_org("org_a", stored);
        }
        world.keys.insert(KEY_A, &record("{}", r#","org":"org_a""#));
        assert_eq!(world.call(&mut pool, message_with(KEY_A), NOW_MS).err(), Some(refusal), "{stored:?}");
        assert!(world.ledgers.sent().is_empty() && world.upstream.sent().is_empty(), "{stored:?}");
    }
}

#[test]
fn a_key_from_before_organisations_is_served_as_before() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message()), Ok(200));
    assert_eq!(world.keys.lookups(), 1, "nothing but the key record is read");
    assert!(world.ledgers.sent().iter().all(|sent| sent.object == "k1" && sent.jurisdiction.is_none()));
    assert!(world.upstream.sent()[0].headers.contains(&("x-api-key".to_owned(), fake_credential("FIRST"))));
}

#[test]
fn the_default_organisation_without_a_record_is_served_on_the_platforms_routing() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.keys.insert(KEY, &record("{}", r#","org":"org_default""#));
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message()), Ok(200));
    assert!(world.ledgers.sent().iter().all(|sent| sent.object == "org_default/k1"));
    assert!(world.upstream.sent()[0].headers.contains(&("x-api-key".to_owned(), fake_credential("FIRST"))));
}

#[test]
fn a_credential_that_cannot_be_opened_forwards_nothing_and_releases_its_reservation() {
    let sealed_elsewhere = [
        // Sealed with a master key the deployment does not hold.
        credential("org_a", SECRET_A, None, OTHER_MASTER_KEY),
        // Sealed for another organisation and copied here.
        credential("org_b", SECRET_A, None, MASTER_KEY),
    ];
    let mut cases: Vec<(StoredCredential, bool)> = sealed_elsewhere.into_iter().map(|c| (c, true)).collect();
    // A good credential, but the deployment has no keyring.
    cases.push((credential("org_a", SECRET_A, None, MASTER_KEY), false));
    for (stored, with_keyring) in cases {
        let mut pool = LocalPool::new();
        let mut world = two_organisations(&pool);
        if !with_keyring {
            world.keyring = None;
        }
        world.keys.insert_org("org_a", &serde_json::to_string(&org("org_a", "*", stored)).unwrap());
        let refused = world.call(&mut pool, message_with(KEY_A), NOW_MS);
        let error =
            pool.run_until(world.gateway().call(message_with(KEY_A), world.client_gone.wait(), NOW_MS)).err().unwrap();
        pool.run_until_stalled();
        assert_eq!(refused.err(), Some((500, "upstream_credential_missing")));
        assert_eq!(error.message, "The upstream credential for this call cannot be used.");
        assert!(world.upstream.sent().is_empty(), "nothing forwarded");
        assert!(
            matches!(world.endings()[..], [Command::Release { .. }, Command::Release { .. }]),
            "{:?}",
            world.endings()
        );
        world.assert_each_admitted_call_ended_once();
        let lines = world.runtime.lines();
        assert!(
            lines.iter().any(|line| line.contains("organisation org_a: credential 'main' cannot be used")),
            "{lines:?}"
        );
        assert!(!logs_hold_a_secret(&world), "{lines:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes inside a key: model patterns and end users; the key's own quota.

/// [`message`] for end user `end_user` (if any), to model `model`.
fn message_for(end_user: Option<&str>, model: &str) -> ClientRequest<Vec<u8>> {
    let mut call = message();
    call.body = MESSAGE.replace("claude-sonnet-4", model).into_bytes();
    if let Some(id) = end_user {
        call.headers.push(("x-teamkeys-end-user".to_owned(), id.to_owned()));
    }
    call
}

/// The refusal's `limit` details as (level, pattern or end user, scope).
fn refused_limit(answer: &Answer<FakeBody>) -> (String, String, String) {
    let AnswerBody::Bytes(body) = &answer.body else { panic!("a refusal is answered whole") };
    let limit = serde_json::from_slice::<serde_json::Value>(body).unwrap()["error"]["limit"].clone();
    let whose = limit["pattern"].as_str().or(limit["end_user"].as_str()).unwrap_or_default().to_owned();
    (limit["level"].as_str().unwrap().to_owned(), whose, limit["scope"].as_str().unwrap().to_owned())
}

#[test]
fn a_key_with_end_user_limits_needs_the_header_and_never_forwards_it() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    world.keys.insert(KEY, &record("{}", r#","end_user_limits":{"rpm":5}"#));
    assert_eq!(world.call(&mut pool, message(), NOW_MS).err(), Some((400, "missing_end_user")));
    let invalid = message_for(Some("two words"), "claude-sonnet-4");
    assert_eq!(world.call(&mut pool, invalid, NOW_MS).err(), Some((400, "invalid_end_user")));
    assert!(world.ledgers.sent().is_empty(), "refused before the ledger");
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(answered(&world, &mut pool, message_for(Some("user-1"), "claude-sonnet-4")), Ok(200));
    let sent = world.upstream.sent();
    assert!(!sent[0].headers.iter().any(|(name, value)| name.starts_with("x-teamkeys") || value == "user-1"));
    let Command::Admit { end_user, .. } = &world.ledgers.sent()[0].command else { panic!("an admission first") };
    assert_eq!(end_user.as_deref(), Some("user-1"), "the ledger is told the end user");
    world.assert_each_admitted_call_ended_once();
}

#[test]
fn an_end_user_over_its_limit_is_refused_while_the_keys_other_end_users_pass() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100}"#);
    world.keys.insert(KEY, &record(r#"{"rpm":100}"#, r#","end_user_limits":{"rpm":1}"#));
    world.upstream.script((0..3).map(|_| Scripted::Answer(FakeAnswer::sse(&STREAM))));
    assert_eq!(answered(&world, &mut pool, message_for(Some("alice"), "claude-sonnet-4")), Ok(200));
    let refused = world.call(&mut pool, message_for(Some("alice"), "claude-sonnet-4"), NOW_MS).unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(refused_limit(&refused), ("end_user".into(), "alice".into(), "rpm".into()));
    let asked = world.ledgers.sent().len();
    assert_eq!(answered(&world, &mut pool, message_for(Some("bob"), "claude-sonnet-4")), Ok(200), "not held for bob");
    assert_eq!(world.ledgers.sent().len(), asked + 2, "bob's admission and settle");
    let held = world.call(&mut pool, message_for(Some("alice"), "claude-sonnet-4"), NOW_MS + 1).unwrap();
    assert_eq!((held.status, world.ledgers.sent().len()), (429, asked + 2), "alice's refusal is held");
    world.assert_each_admitted_call_ended_once();
}

#[test]
fn a_model_patterns_limit_refuses_its_models_while_the_others_pass() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let scoped =
        r#","model_limits":[{"pattern":"claude-opus*","limits":{"rpm":1}},{"pattern":"claude-*","limits":{"rpm":50}}]"#;
    world.keys.insert(KEY, &record(r#"{"rpm":100}"#, scoped));
    world.upstream.script((0..4).map(|_| Scripted::Answer(FakeAnswer::sse(&STREAM))));
    assert_eq!(answered(&world, &mut pool, message_for(None, "claude-opus-4")), Ok(200));
    let refused = world.call(&mut pool, message_for(None, "claude-opus-4-1"), NOW_MS).unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(refused_limit(&refused), ("model".into(), "claude-opus*".into(), "rpm".into()));
    for model in ["claude-sonnet-4", "claude-haiku-4", "mistral-large"] {
        assert_eq!(answered(&world, &mut pool, message_for(None, model)), Ok(200), "{model} is not held");
    }
    world.assert_each_admitted_call_ended_once();
}

/// `GET /v1/key` with `headers`: its status and JSON body.
fn quota(
    world: &World,
    pool: &mut LocalPool,
    headers: &[(&str, &str)],
) -> Result<(u16, serde_json::Value), (u16, &'static str)> {
    let answer = world.call(pool, request("GET", "/v1/key", headers, ""), NOW_MS)?;
    let AnswerBody::Bytes(body) = answer.body else { panic!("answered whole") };
    Ok((answer.status, serde_json::from_slice(&body).unwrap()))
}

#[test]
fn get_v1_key_answers_what_the_keys_ledger_holds_with_any_familys_header() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let scoped = r#","model_limits":[{"pattern":"claude-opus*","limits":{"rpm":3}}],"end_user_limits":{"rpm":4}"#;
    world.keys.insert(KEY, &record(r#"{"rpm":10}"#, scoped));
    world.upstream.script((0..2).map(|_| Scripted::Answer(FakeAnswer::sse(&STREAM))));
    assert_eq!(answered(&world, &mut pool, message_for(Some("alice"), "claude-opus-4")), Ok(200));
    assert_eq!(answered(&world, &mut pool, message_for(Some("alice"), "claude-sonnet-4")), Ok(200));

    let bearer = format!("Bearer {KEY}");
    let (status, body) =
        quota(&world, &mut pool, &[("authorization", &bearer), ("x-teamkeys-end-user", "alice")]).unwrap();
    assert_eq!(status, 200);
    assert_eq!((body["object"].as_str(), body["id"].as_str()), (Some("key_quota"), Some("k1")));
    let rpm = |limits: &serde_json::Value| {
        (
            limits[0]["scope"].clone(),
            limits[0]["limit"].clone(),
            limits[0]["used"].clone(),
            limits[0]["remaining"].clone(),
        )
    };
    assert_eq!(rpm(&body["key"]["limits"]), ("rpm".into(), 10.into(), 2.into(), 8.into()));
    assert_eq!(body["key"]["usage"]["today"]["requests"], 2);
    assert_eq!(body["models"][0]["pattern"], "claude-opus*");
    assert_eq!(rpm(&body["models"][0]["limits"]), ("rpm".into(), 3.into(), 1.into(), 2.into()));
    assert_eq!(body["end_user"]["id"], "alice");
    assert_eq!(rpm(&body["end_user"]["limits"]), ("rpm".into(), 4.into(), 2.into(), 2.into()));

    for header in [("x-api-key", KEY), ("x-goog-api-key", KEY)] {
        let (_, body) = quota(&world, &mut pool, &[header]).unwrap();
        assert_eq!(body["key"]["limits"][0]["used"], 2, "{header:?}");
        assert!(body.get("end_user").is_none(), "no end user asked");
    }
    let (_, bob) = quota(&world, &mut pool, &[("x-api-key", KEY), ("x-teamkeys-end-user", "bob")]).unwrap();
    assert_eq!(bob["end_user"]["limits"][0]["used"], 0, "nothing about other end users");
    assert!(world.upstream.sent().len() == 2, "the quota reaches no upstream");

    assert_eq!(quota(&world, &mut pool, &[]).err(), Some((401, "invalid_api_key")));
    assert_eq!(quota(&world, &mut pool, &[("x-api-key", "tk_unknown")]).err(), Some((401, "invalid_api_key")));
    let post = world.call(&mut pool, request("POST", "/v1/key", &[("x-api-key", KEY)], ""), NOW_MS);
    assert_eq!(post.err(), Some((405, "method_not_allowed")));
    world.republish(KEY, &record(r#"{"rpm":10}"#, r#","expires_at":1"#));
    assert_eq!(quota(&world, &mut pool, &[("x-api-key", KEY)]).err(), Some((401, "key_expired")));
}

#[test]
fn get_v1_key_answers_the_projects_headroom_that_bounds_the_key_as_of_its_last_lease() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, "{}");
    let other = two_keys_of_a_project(&world, r#"{"rpm":10}"#);
    let (_, before) = quota(&world, &mut pool, &[("x-api-key", KEY)]).unwrap();
    assert_eq!(before["budgets"], serde_json::json!([{"level": "project"}]), "nothing known before a lease");
    for key in [other, KEY] {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        let answer = world.call(&mut pool, message_with(key), NOW_MS).unwrap();
        read_to_end(&mut pool, streamed(answer));
    }
    let (_, body) = quota(&world, &mut pool, &[("x-api-key", KEY)]).unwrap();
    let project = &body["budgets"][0];
    assert_eq!((project["level"].as_str(), project["as_of_ms"].as_u64()), (Some("project"), Some(NOW_MS)));
    let requests = &project["headroom"]["requests"];
    assert_eq!(requests["limit"], 10);
    let remaining = requests["remaining"].as_u64().unwrap();
    assert!(remaining <= 8, "both keys' calls count, nothing says whose: {project}");
    assert!(project.get("keys").is_none() && body.get("project").is_none(), "no other key's use: {body}");
}

// ---------------------------------------------------------------------------------------------
// The former end-to-end `todo` tests: Miniflare does not propagate a client disconnect to the
// worker, so they could not run there; the fakes can.

#[test]
fn a_client_that_leaves_mid_stream_is_charged_its_reservation_and_frees_its_slot_at_once() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"tpd":1000000,"max_in_flight":1}"#);
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    let mut body = streamed(world.call(&mut pool, message(), NOW_MS).unwrap());
    let first = pool.run_until(body.next()).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    world.client_gone.fire();
    pool.run_until_stalled();
    // The usage seen (message_start) is not final: the reservation is charged.
    assert!(matches!(world.endings()[..], [Command::Settle { actual, .. }] if actual.tokens > TOKENS_AT_END));

    // The slot is free: the next call is admitted although the body was never finished.
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(world.call(&mut pool, message(), NOW_MS).map(|answer| answer.status).ok(), Some(200));
    drop(body);
    world.assert_each_admitted_call_ended_once();
}

#[test]
fn a_client_that_leaves_while_the_upstream_works_is_charged_its_reservation_and_frees_its_slot_at_once() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"tpd":1000000,"max_in_flight":1}"#);
    let upstream_answers = Signal::default();
    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM).wait_for(&upstream_answers))]);
    let gateway = world.gateway();
    let mut handler = Box::pin(gateway.call(message(), world.client_gone.wait(), NOW_MS));
    assert!(handler.as_mut().now_or_never().is_none(), "the upstream is working");
    pool.run_until_stalled();
    assert!(world.endings().is_empty(), "the upstream is still working");
    world.client_gone.fire();
    pool.run_until_stalled();
    let [(_, ask)] = world.admitted()[..] else { panic!("one admission") };
    assert!(matches!(world.endings()[..], [Command::Settle { actual, .. }] if actual.tokens == ask.tokens));
    drop(handler);
    pool.run_until_stalled();

    world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
    assert_eq!(world.call(&mut pool, message(), NOW_MS).map(|answer| answer.status).ok(), Some(200));
    world.assert_each_admitted_call_ended_once();
}

// ---------------------------------------------------------------------------------------------
// The fault table.

/// What the upstream does with one request.
#[derive(Debug, Clone, Copy)]
enum Up {
    ConnectError,
    Timeout,
    /// A JSON error answer with this status.
    Status(u16),
    /// [`STREAM`], whole.
    Stream,
    /// [`STREAM`], cut inside its second event.
    StreamCut,
    /// Works on the call and never answers.
    Working,
}

/// What the client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    ReadsToTheEnd,
    /// Leaves before the answer; the runtime signals it (the request's abort signal).
    LeavesBeforeTheAnswer,
    /// Leaves before the answer; the runtime drops the handler.
    CancelledBeforeTheAnswer,
    /// Reads the first event, then leaves; the runtime signals it.
    LeavesMidStream,
    /// Reads the first event, then leaves; the runtime drops the body.
    DropsTheBodyMidStream,
    /// Reads the whole answer, then the signal fires.
    LeavesAfterTheEnd,
}

/// What the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gets {
    /// An upstream answer with this status.
    Answer(u16),
    /// The gateway's error envelope.
    Error(u16, &'static str),
    /// Nothing: it left first.
    Nothing,
}

/// What the key's ledger records for the call's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Records {
    /// `Release`: nothing charged.
    Released,
    /// `Settle` with these tokens: the usage the upstream reported.
    Settled(u64),
    /// `Settle` with exactly what was reserved: the upstream bills a call it worked on.
    ChargedReservation,
    /// The `Settle` was sent once and never applied: the ledger expires the reservation at its
    /// estimate after its time to live.
    SettleLost(u64),
}

/// One way a call can end.
struct Row {
    fault: &'static str,
    /// The answers of the first target, then of the second.
    upstream: &'static [Up],
    ledger_fault: Option<(LedgerStage, LedgerFault)>,
    client: Client,
    gets: Gets,
    records: Records,
}

/// Every way an admitted call can end: the fault, what the client gets, what the ledger
/// records. Each row is run by [`every_ending_of_an_admitted_call_settles_or_releases_once`],
/// which also checks that the call ended in exactly one `Settle` or `Release`. Streams report
/// 11 tokens at their first event and 30 by their end.
#[rustfmt::skip]
const FAULT_TABLE: &[Row] = &[
    Row { fault: "none",                                 upstream: &[Up::Stream],                     ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Answer(200),                         records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "connect error, then the next target",  upstream: &[Up::ConnectError, Up::Stream],   ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Answer(200),                         records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "connect error on every target",        upstream: &[Up::ConnectError, Up::ConnectError], ledger_fault: None, client: Client::ReadsToTheEnd,        gets: Gets::Error(502, "upstream_unreachable"),  records: Records::Released },
    Row { fault: "timeout on every target",              upstream: &[Up::Timeout, Up::Timeout],       ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Error(504, "upstream_timeout"),      records: Records::Released },
    Row { fault: "5xx, then the next target",            upstream: &[Up::Status(503), Up::Stream],    ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Answer(200),                         records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "429, then the next target",            upstream: &[Up::Status(429), Up::Stream],    ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Answer(200),                         records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "last target 5xx",                      upstream: &[Up::Status(500), Up::Status(502)], ledger_fault: None, client: Client::ReadsToTheEnd,          gets: Gets::Error(502, "upstream_error"),        records: Records::Released },
    Row { fault: "last target 429",                      upstream: &[Up::Status(429), Up::Status(429)], ledger_fault: None, client: Client::ReadsToTheEnd,          gets: Gets::Answer(429),                         records: Records::Released },
    Row { fault: "upstream refuses the credential (401)", upstream: &[Up::Status(401)],               ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Error(502, "upstream_error"),        records: Records::Released },
    Row { fault: "stream cut mid-way",                   upstream: &[Up::StreamCut],                  ledger_fault: None, client: Client::ReadsToTheEnd,            gets: Gets::Answer(200),                         records: Records::ChargedReservation },
    Row { fault: "client gone before the answer (signal)", upstream: &[Up::Working],                  ledger_fault: None, client: Client::LeavesBeforeTheAnswer,    gets: Gets::Nothing,                             records: Records::ChargedReservation },
    Row { fault: "client gone before the answer (handler dropped)", upstream: &[Up::Working],         ledger_fault: None, client: Client::CancelledBeforeTheAnswer, gets: Gets::Nothing,                             records: Records::ChargedReservation },
    Row { fault: "client gone mid-stream (signal)",      upstream: &[Up::Stream],                     ledger_fault: None, client: Client::LeavesMidStream,          gets: Gets::Answer(200),                         records: Records::ChargedReservation },
    Row { fault: "client gone mid-stream (body dropped)", upstream: &[Up::Stream],                    ledger_fault: None, client: Client::DropsTheBodyMidStream,    gets: Gets::Answer(200),                         records: Records::ChargedReservation },
    Row { fault: "client gone after the end",            upstream: &[Up::Stream],                     ledger_fault: None, client: Client::LeavesAfterTheEnd,        gets: Gets::Answer(200),                         records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "the settle's write fails after applying", upstream: &[Up::Stream],                  ledger_fault: Some((LedgerStage::Settlement, LedgerFault::ReplyLost)), client: Client::ReadsToTheEnd, gets: Gets::Answer(200), records: Records::Settled(TOKENS_AT_END) },
    Row { fault: "the release's write fails after applying", upstream: &[Up::Status(500), Up::Status(500)], ledger_fault: Some((LedgerStage::Settlement, LedgerFault::ReplyLost)), client: Client::ReadsToTheEnd, gets: Gets::Error(502, "upstream_error"), records: Records::Released },
    Row { fault: "the ledger is unreachable at settlement", upstream: &[Up::Stream],                  ledger_fault: Some((LedgerStage::Settlement, LedgerFault::Unreachable)), client: Client::ReadsToTheEnd, gets: Gets::Answer(200), records: Records::SettleLost(TOKENS_AT_END) },
];

impl Up {
    fn scripted(self, never: &Signal) -> Scripted {
        match self {
            Up::ConnectError => Scripted::ConnectError,
            Up::Timeout => Scripted::Timeout,
            Up::Status(status) => {
                Scripted::Answer(FakeAnswer::json(status, r#"{"error":{"message":"upstream trouble"}}"#))
            }
            Up::Stream => Scripted::Answer(FakeAnswer::sse(&STREAM)),
            Up::StreamCut => {
                Scripted::Answer(FakeAnswer::sse(&STREAM).cut_after(format!("data: {MESSAGE_START}\n\n").len() + 10))
            }
            Up::Working => Scripted::Answer(FakeAnswer::sse(&STREAM).wait_for(never)),
        }
    }
}

/// Runs one row: what the client got, after every background task ran.
fn run(world: &World, pool: &mut LocalPool, row: &Row) -> Gets {
    let gateway = world.gateway();
    let mut handler = Box::pin(gateway.call(message(), world.client_gone.wait(), NOW_MS));
    if matches!(row.client, Client::LeavesBeforeTheAnswer | Client::CancelledBeforeTheAnswer) {
        assert!(handler.as_mut().now_or_never().is_none(), "{}: the upstream is working", row.fault);
        pool.run_until_stalled();
        if row.client == Client::LeavesBeforeTheAnswer {
            world.client_gone.fire();
            pool.run_until_stalled();
        }
        drop(handler);
        pool.run_until_stalled();
        return Gets::Nothing;
    }
    let answer = match pool.run_until(handler) {
        Ok(answer) => answer,
        Err(error) => {
            pool.run_until_stalled();
            return Gets::Error(error.status(), error.code().as_str());
        }
    };
    let status = answer.status;
    let mut body = streamed(answer);
    match row.client {
        Client::ReadsToTheEnd | Client::LeavesAfterTheEnd => {
            let (_, failed) = read_to_end(pool, body);
            assert_eq!(failed, matches!(row.upstream.last(), Some(Up::StreamCut)), "{}", row.fault);
        }
        Client::LeavesMidStream | Client::DropsTheBodyMidStream => {
            assert!(pool.run_until(body.next()).is_some_and(|chunk| chunk.is_ok()), "{}", row.fault);
            if row.client == Client::LeavesMidStream {
                world.client_gone.fire();
                pool.run_until_stalled();
            }
            drop(body);
        }
        Client::LeavesBeforeTheAnswer | Client::CancelledBeforeTheAnswer => unreachable!("handled above"),
    }
    pool.run_until_stalled();
    if row.client == Client::LeavesAfterTheEnd {
        world.client_gone.fire();
        pool.run_until_stalled();
    }
    Gets::Answer(status)
}

#[test]
fn every_ending_of_an_admitted_call_settles_or_releases_once() {
    for row in FAULT_TABLE {
        let mut pool = LocalPool::new();
        let world = World::new(&pool, r#"{"tpd":1000000,"max_in_flight":1}"#);
        let never = Signal::default();
        world.upstream.script(row.upstream.iter().map(|up| up.scripted(&never)));
        if let Some((stage, fault)) = row.ledger_fault {
            world.ledgers.fail(stage, fault);
        }

        assert_eq!(run(&world, &mut pool, row), row.gets, "{}: what the client gets", row.fault);

        let [(reservation_id, ask)] = world.admitted()[..] else { panic!("{}: one admission", row.fault) };
        world.assert_each_admitted_call_ended_once();
        let sent = world.ledgers.sent();
        let ending = sent.iter().find(|sent| matches!(sent.command, Command::Settle { .. } | Command::Release { .. }));
        let ending = ending.expect("one ending");
        assert_eq!(ends(&ending.command), reservation_id);
        let applied = !matches!(ending.outcome, Outcome::Unreachable);
        let recorded = match (&ending.command, applied) {
            (Command::Release { .. }, true) => Records::Released,
            (Command::Settle { actual, .. }, true) if actual.tokens == ask.tokens => Records::ChargedReservation,
            (Command::Settle { actual, .. }, true) => Records::Settled(actual.tokens),
            (Command::Settle { actual, .. }, false) => Records::SettleLost(actual.tokens),
            (command, _) => panic!("{}: unexpected {command:?}", row.fault),
        };
        assert_eq!(recorded, row.records, "{}: what the ledger records", row.fault);
        assert!(
            world.upstream.sent().len() == row.upstream.len(),
            "{}: every scripted answer was asked for",
            row.fault
        );
    }
}

/// Edge leases: a hot key's calls at a steady 100 per second cost at most 0.1 object calls per
/// call (lease messages and flushes), every call is counted in the key's usage once the last
/// flush is in, and a key whose rules say `admission: exact` asks its object for every call.
#[test]
fn a_hot_key_is_admitted_from_a_lease_with_few_object_calls_and_an_exact_key_never() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    let calls = 1_000;
    for i in 0..calls {
        let now_ms = NOW_MS + i * 10;
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(&world, &mut pool, message(), now_ms), Ok(200), "call {i}");
        if i % 100 == 99 {
            world.runtime.wake_sleepers(now_ms); // flushes due
            pool.run_until_stalled();
        }
    }
    let end_ms = NOW_MS + calls * 10 + FLUSH_MS;
    world.runtime.wake_sleepers(end_ms);
    pool.run_until_stalled();
    let sent = world.ledgers.sent();
    let leases = sent.iter().filter(|sent| matches!(sent.command, Command::Lease { .. })).count();
    let per_call = sent.iter().filter(|sent| matches!(sent.command, Command::Admit { .. })).count();
    assert_eq!(per_call, HOT_CALLS as usize - 1, "per call until the key is hot, then leased");
    assert!(
        sent.len() as f64 <= 0.1 * calls as f64,
        "{} object calls for {calls} calls ({leases} lease messages)",
        sent.len()
    );
    let Reply::Report { usage, .. } =
        world.ledgers.apply("k1", Command::Report { limits: Limits::default(), model_limits: vec![] })
    else {
        panic!("a report")
    };
    assert_eq!(usage.today.requests, calls, "every call counted once reported");
    world.assert_each_admitted_call_ended_once();

    let exact = World::new(&pool, r#"{"rpm":100000}"#);
    exact.keys.insert(KEY, &record(r#"{"rpm":100000}"#, r#","admission":"exact""#));
    for i in 0..50 {
        exact.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(&exact, &mut pool, message(), NOW_MS + i * 10), Ok(200));
    }
    let admits = exact.ledgers.sent().iter().filter(|sent| matches!(sent.command, Command::Admit { .. })).count();
    assert_eq!(admits, 50, "an exact key asks its object for every call");
    assert!(!exact.ledgers.sent().iter().any(|sent| matches!(sent.command, Command::Lease { .. })));
}

/// Two seconds of [`KEY`]'s calls at 100 per second from [`NOW_MS`], each answered 200: hot, and
/// its slices grown to its rate. Answers the time after them.
fn hot_for_two_seconds(world: &World, pool: &mut LocalPool) -> u64 {
    let mut now_ms = NOW_MS;
    for _ in 0..200 {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(world, pool, message(), now_ms), Ok(200));
        now_ms += 10;
    }
    now_ms
}

/// The revocation bound of a leased key: disabled at its object, it is still admitted from the
/// isolate's slice for at most the lease interval, then refused as disabled.
#[test]
fn a_leased_key_is_revoked_within_the_lease_interval() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    let mut now_ms = hot_for_two_seconds(&world, &mut pool);
    assert!(world.ledgers.sent().iter().any(|sent| matches!(sent.command, Command::Lease { .. })));
    world.ledgers.apply("k1", Command::Control { control: Control::Disable });
    let disabled_ms = now_ms;
    let mut last_admitted = disabled_ms;
    let refused = loop {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        world.ledgers.set_now_ms(now_ms);
        let answer = world.call(&mut pool, message(), now_ms).expect("an answer");
        match answer.body {
            AnswerBody::Streamed(body) => {
                read_to_end(&mut pool, body);
                last_admitted = now_ms;
            }
            AnswerBody::Bytes(bytes) => break (answer.status, String::from_utf8(bytes).unwrap()),
        }
        assert!(now_ms < disabled_ms + 10 * EDGE_LEASE_MS, "still admitted at {now_ms}");
        now_ms += 10;
    };
    assert_eq!(refused.0, 401);
    assert!(refused.1.contains("key_disabled"), "the object answers why: {}", refused.1);
    assert!(
        last_admitted < disabled_ms + EDGE_LEASE_MS,
        "admitted {} ms after the disable",
        last_admitted - disabled_ms
    );
    assert!(last_admitted > disabled_ms, "the slice kept admitting meanwhile (what the bound allows)");
}

/// A hot key at its real `max_in_flight` is refused by the refusal of its isolate's lease
/// message: at most one object call per refused call (not the call asked alone after it, nor a
/// recall of the slice and a second ask).
#[test]
fn a_hot_key_at_its_max_in_flight_is_refused_with_at_most_one_object_call_per_refused_call() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000,"max_in_flight":3}"#);
    let now_ms = hot_for_two_seconds(&world, &mut pool);
    let working = Signal::default();
    let gateway = world.gateway();
    let mut open = Vec::new();
    for _ in 0..3 {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM).wait_for(&working))]);
        let mut handler = Box::pin(gateway.call(message(), world.client_gone.wait(), now_ms));
        assert!(handler.as_mut().now_or_never().is_none(), "the upstream is working");
        open.push(handler);
    }
    for i in 0..20 {
        let before = world.ledgers.sent().len();
        let refused = world.call(&mut pool, message(), now_ms + i).map(|answer| answer.status);
        assert!(matches!(refused, Ok(429) | Err((429, _))), "call {i}: {:?}", refused.map_err(|e| e.1));
        let object_calls = world.ledgers.sent().len() - before;
        assert!(object_calls <= 1, "call {i}: {object_calls} object calls");
    }
    drop(open);
}

/// An isolate the key's object cannot remember (as many isolates hold leases of the key as it
/// remembers) is declined, not refused: its calls are asked alone and admitted, without asking
/// a lease again for `DECLINED_HOLD_MS`.
#[test]
fn an_isolate_past_its_key_objects_holder_bound_is_declined_and_admitted_per_call() {
    use teamkeys::budget::{HolderMessage, LeaseOutcome, MAX_HOLDERS};
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    for h in 0..MAX_HOLDERS {
        let message = HolderMessage { holder: format!("edge:{h}"), epoch: 0, seq: 1, leases: vec![], want: None };
        let lease = Command::Lease {
            secret_version: 1,
            limits: serde_json::from_str(r#"{"rpm":100000}"#).unwrap(),
            policy_version: 0,
            message,
            budgets: vec![],
        };
        let Reply::Lease { reply } = world.ledgers.apply("k1", lease) else { panic!("a lease reply") };
        assert_eq!(reply.outcome, LeaseOutcome::Reported, "holder {h} remembered");
    }
    hot_for_two_seconds(&world, &mut pool);
    let sent = world.ledgers.sent();
    let declined = sent.iter().filter(|sent| {
        matches!(&sent.outcome, Outcome::Replied(Reply::Lease { reply })
            if matches!(reply.outcome, LeaseOutcome::Declined { .. }))
    });
    assert_eq!(declined.count(), 1, "declined once, then asked alone for DECLINED_HOLD_MS");
    assert_eq!(sent.len(), 2 * 200 + 1, "an admission and a settle a call, and the declined lease message");
    let admits = sent.iter().filter(|sent| matches!(sent.command, Command::Admit { .. })).count();
    assert_eq!(admits, 200, "every call admitted per call");
}

/// A world whose key has a hard daily cap of `cap` micro-dollars (and its limits' JSON), routed
/// to targets marked metered.
fn daily_capped(pool: &LocalPool, cap: u64) -> (World, String) {
    let limits = format!(r#"{{"spend":[{{"period":"daily","limit_micros":{cap},"mode":"hard"}}]}}"#);
    let mut world = World::new(pool, &limits);
    world.routing = RoutingConfig::from_json(&ROUTING.replace(r#""family""#, r#""metered":true,"family""#)).unwrap();
    (world, limits)
}

/// A hot key under a hard spend cap is leased like any other: its calls at a steady 100 per
/// second cost at most 0.1 object calls per call while the cap is far (slices shrink to one
/// call as it nears, and a refusal at the cap is asked of the object); each leased call reserves its bound from the slice, so what its
/// isolate reports settled never exceeds what those calls reserved (the bill bounded by the
/// reservation, leased calls included); the key's spend ends at or below its cap, refusals name
/// the cap, and once the last flush is in the key's spend is exactly what its calls were billed.
#[test]
fn a_hot_capped_key_is_leased_within_its_cap_and_each_leased_call_within_its_reservation() {
    const CAP: u64 = 300_000;
    let mut pool = LocalPool::new();
    let (world, limits) = daily_capped(&pool, CAP);
    let calls = 1_200;
    let (mut admitted, mut refused, mut scripted, mut object_calls) = (0, 0, 0, vec![]);
    for i in 0..calls {
        let now_ms = NOW_MS + i * 10;
        if scripted == world.upstream.sent().len() {
            world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
            scripted += 1;
        }
        world.ledgers.set_now_ms(now_ms);
        let answer = world.call(&mut pool, message(), now_ms).expect("an answer");
        match answer.body {
            AnswerBody::Streamed(body) => {
                read_to_end(&mut pool, body);
                admitted += 1;
                if admitted == 100 || admitted == 600 {
                    object_calls.push(world.ledgers.sent().len());
                }
            }
            AnswerBody::Bytes(bytes) => {
                let body = String::from_utf8(bytes).unwrap();
                assert!(answer.status == 429 && body.contains("spend_limit_exceeded"), "call {i}: {body}");
                refused += 1;
            }
        }
        if i % 100 == 99 {
            world.runtime.wake_sleepers(now_ms);
            pool.run_until_stalled();
        }
    }
    let end_ms = NOW_MS + calls * 10 + FLUSH_MS;
    world.runtime.wake_sleepers(end_ms);
    pool.run_until_stalled();
    let sent = world.ledgers.sent();
    let leases: Vec<_> = sent
        .iter()
        .filter_map(|sent| match &sent.command {
            Command::Lease { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert!(!leases.is_empty() && refused > 0, "leased, then refused at the cap ({admitted} admitted)");
    let [hot, far] = object_calls[..] else { panic!("{admitted} admitted") };
    assert!(far - hot <= 50, "{} object calls for 500 calls while the cap is far", far - hot);
    for report in leases.iter().flat_map(|message| &message.leases) {
        assert!(report.actual.cost_micros <= report.settled.charge.cost_micros, "billed over reserved: {report:?}");
    }
    let cap: Limits = serde_json::from_str(&limits).unwrap();
    let Reply::Report { usage, limits: uses, .. } =
        world.ledgers.apply("k1", Command::Report { limits: cap, model_limits: vec![] })
    else {
        panic!("a report")
    };
    let per_call = usage.today.cost_micros / admitted;
    assert!(per_call > 0 && usage.today.cost_micros == per_call * admitted, "every call billed alike, counted once");
    assert_eq!(usage.today.requests, admitted);
    let spend = uses.iter().find(|u| u.scope == "spend_daily").expect("the cap");
    assert_eq!(spend.used, usage.today.cost_micros, "the cap's spend is what the calls were billed");
    assert!(spend.used <= CAP, "spent {} over the cap {CAP}", spend.used);
    world.assert_each_admitted_call_ended_once();
}

/// Keys that are not leasable — a model pattern's or end users' limits — are asked per call
/// however hot, exactly as before edge leases. (A budget above the key does not stop leasing:
/// `hot_keys_under_a_project_cap_and_rpm_are_leased_within_every_level`.)
#[test]
fn keys_that_are_not_leasable_are_admitted_per_call_however_hot() {
    let mut pool = LocalPool::new();
    let kinds = [
        (r#"{"rpm":100000}"#, r#","model_limits":[{"pattern":"claude*","limits":{"rpm":100000}}]"#),
        (r#"{"rpm":100000}"#, r#","end_user_limits":{"rpm":100000}"#),
    ];
    for (limits, extra) in kinds {
        let world = World::new(&pool, limits);
        world.keys.insert(KEY, &record(limits, extra));
        for i in 0..(3 * HOT_CALLS) {
            let call =
                if extra.contains("end_user") { message_for(Some("alice"), "claude-sonnet-4") } else { message() };
            world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
            assert_eq!(answered_at(&world, &mut pool, call, NOW_MS + i * 10), Ok(200), "{extra} call {i}");
        }
        let sent = world.ledgers.sent();
        let admits = sent.iter().filter(|sent| matches!(sent.command, Command::Admit { .. })).count();
        assert_eq!(admits, 3 * HOT_CALLS as usize, "{limits}{extra}: every call asked alone");
        assert!(!sent.iter().any(|sent| matches!(sent.command, Command::Lease { .. })), "{limits}{extra}");
    }
}

/// What a run of calls alternating between [`KEY`] and `other` did.
#[derive(Default)]
struct Phase {
    admitted: u64,
    /// The scope each refusal named (each named the project).
    refused: Vec<String>,
    /// The object calls sent once 100 and once 400 calls were admitted.
    object_calls: Vec<usize>,
}

/// `calls` calls at 100 per second from `start_ms`, alternating between [`KEY`] and `other`,
/// keys of project `budget:org_a/p`: at every call the project's counters are within its limits.
fn alternate(world: &World, pool: &mut LocalPool, other: &str, start_ms: u64, calls: u64) -> Phase {
    let mut phase = Phase::default();
    for i in 0..calls {
        let now_ms = start_ms + i * 10;
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        world.ledgers.set_now_ms(now_ms);
        let key = if i % 2 == 0 { KEY } else { other };
        let answer = world.call(pool, message_with(key), now_ms).expect("an answer");
        match answer.body {
            AnswerBody::Streamed(body) => {
                read_to_end(pool, body);
                phase.admitted += 1;
                if phase.admitted == 100 || phase.admitted == 400 {
                    phase.object_calls.push(world.ledgers.sent().len());
                }
            }
            AnswerBody::Bytes(bytes) => {
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let limit = &body["error"]["limit"];
                assert_eq!((answer.status, limit["level"].as_str()), (429, Some("project")), "call {i}: {body}");
                phase.refused.push(limit["scope"].as_str().unwrap().to_owned());
            }
        }
        if i % 100 == 99 {
            world.runtime.wake_sleepers(now_ms);
            pool.run_until_stalled();
            world.ledgers.flush_budgets();
        }
        for limit in world.ledgers.budget_uses("budget:org_a/p") {
            assert!(limit.used <= limit.limit, "the project's {} at {} of {}", limit.scope, limit.used, limit.limit);
        }
    }
    // Every report in: the isolate's flushes, then the keys' objects' (past every lease's end).
    for at in [FLUSH_MS, 2 * FLUSH_MS, 4 * FLUSH_MS] {
        let end_ms = start_ms + calls * 10 + at;
        world.runtime.wake_sleepers(end_ms);
        pool.run_until_stalled();
        world.ledgers.set_now_ms(end_ms);
        world.ledgers.flush_budgets();
    }
    phase
}

/// Hot keys under a project's hard daily cap and RPM are leased at the edge, their objects
/// covering each slice at the project. A first minute: the RPM binds while the cap is far; at most
/// 0.1 object calls per call, exactly the RPM admitted across both keys, refusals naming
/// `project`/`rpm`. A second minute, the cap lowered near the spend: refusals name
/// `project`/`spend_daily`. Throughout nothing is above the project's limits, and once every
/// report is in the project's spend and requests are exactly its keys' (what their calls were
/// billed), the spend at or below the cap.
#[test]
fn hot_keys_under_a_project_cap_and_rpm_are_leased_within_every_level() {
    const RPM: u64 = 900;
    let mut pool = LocalPool::new();
    let mut world = World::new(&pool, "{}");
    world.routing = RoutingConfig::from_json(&ROUTING.replace(r#""family""#, r#""metered":true,"family""#)).unwrap();
    let limits =
        |cap: u64| format!(r#"{{"rpm":{RPM},"spend":[{{"period":"daily","limit_micros":{cap},"mode":"hard"}}]}}"#);
    let other = two_keys_of_a_project(&world, &limits(1_500_000));
    let first = alternate(&world, &mut pool, other, NOW_MS, 1_200);
    assert_eq!(first.admitted, RPM, "the project's RPM, across its keys");
    assert!(!first.refused.is_empty() && first.refused.iter().all(|scope| scope == "rpm"), "{:?}", first.refused);
    let [hot, far] = first.object_calls[..] else { panic!("{} admitted", first.admitted) };
    assert!(far - hot <= 30, "{} object calls for 300 calls while the cap is far", far - hot);
    // The next minute, under a cap 60,000 µ$ above what the project spent.
    let spent = world.ledgers.budget_uses("budget:org_a/p").iter().find(|u| u.scope == "spend_daily").unwrap().used;
    let cap = spent + 60_000;
    let link = |key| {
        let limits = limits(cap);
        let link = format!(
            r#","v":3,"budgets":[{{"level":"project","object":"budget:org_a/p","version":2,"limits":{limits}}}]"#
        );
        let id = if key == KEY { "k1" } else { "k2" };
        record("{}", &link).replace(r#""id":"k1""#, &format!(r#""id":"{id}""#))
    };
    world.republish(KEY, &link(KEY));
    world.republish(other, &link(other));
    let second = alternate(&world, &mut pool, other, NOW_MS + 70_000, 600);
    assert!(second.refused.iter().any(|scope| scope == "spend_daily"), "the cap reached: {:?}", second.refused);
    let keys: Vec<_> = ["k1", "k2"]
        .into_iter()
        .map(|id| {
            let report = Command::Report { limits: Limits::default(), model_limits: vec![] };
            let Reply::Report { usage, .. } = world.ledgers.apply(id, report) else { panic!("a report") };
            usage.today
        })
        .collect();
    let admitted = first.admitted + second.admitted;
    assert_eq!(keys.iter().map(|k| k.requests).sum::<u64>(), admitted, "every call counted once, at its key");
    let billed: u64 = keys.iter().map(|k| k.cost_micros).sum();
    let project = world.ledgers.budget_uses("budget:org_a/p");
    let used = |scope: &str| project.iter().find(|u| u.scope == scope).map(|u| u.used);
    assert_eq!(used("spend_daily"), Some(billed), "the project's spend is its keys'");
    assert_eq!(used("rpm"), Some(second.admitted), "the project's requests this minute are its keys'");
    assert!(billed <= cap, "spent {billed} over the cap {cap}");
    world.assert_each_admitted_call_ended_once();
}

/// A request body that arrives only once `arrived` fires (a client sending it slowly).
struct SlowBody {
    arrived: Signal,
    bytes: Vec<u8>,
}

impl teamkeys::gateway::ports::RequestBody for SlowBody {
    async fn read(self, _max_bytes: usize) -> Result<Vec<u8>, teamkeys::error::ApiError> {
        self.arrived.wait().await;
        Ok(self.bytes)
    }
}

/// The revocation bound of a leased key holds in real time, not in the time its calls
/// *arrived*: calls that arrive while the slice is live but whose bodies come in after the key
/// was disabled (a client trickling its body) are not admitted from that slice once it has
/// ended — the isolate reads the clock when it admits, not the call's arrival time.
#[test]
fn a_leased_key_is_revoked_within_the_lease_interval_whatever_its_calls_arrival_time() {
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    let now_ms = hot_for_two_seconds(&world, &mut pool);
    let arrived_ms = now_ms - 9;
    let body = Signal::default();
    let gateway = world.gateway();
    let mut calls: Vec<_> = (0..5)
        .map(|_| {
            let ClientRequest { method, path, query, headers, body: bytes } = message();
            let slow = ClientRequest { method, path, query, headers, body: SlowBody { arrived: body.clone(), bytes } };
            Box::pin(gateway.call(slow, world.client_gone.wait(), arrived_ms))
        })
        .collect();
    for call in &mut calls {
        assert!(call.as_mut().now_or_never().is_none(), "waiting for its body");
    }
    world.ledgers.apply("k1", Command::Control { control: Control::Disable });
    let later_ms = arrived_ms + 60_000;
    world.ledgers.set_now_ms(later_ms);
    world.runtime.set_now_ms(later_ms);
    body.fire();
    for call in calls {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        let answer = pool.run_until(call).expect("an answer");
        assert_eq!(answer.status, 401, "admitted 60 s after the disable, from a slice of 1 s");
    }
}

/// A rotated secret is refused within the lease interval even while the key's new secret keeps
/// the key hot in the same isolate: a slice leased by the new secret's calls admits no call of
/// the old secret (whose record an edge may still hold for a while).
#[test]
fn a_rotated_secret_is_not_admitted_from_slices_leased_by_the_new_one() {
    const NEW_KEY: &str = "tk_flow_test_key_rotated";
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    world.keys.insert(NEW_KEY, &record(r#"{"rpm":100000}"#, r#","secret_version":2"#));
    let new_message = || ClientRequest {
        headers: message()
            .headers
            .into_iter()
            .map(|(name, value)| if name == "x-api-key" { (name, NEW_KEY.to_owned()) } else { (name, value) })
            .collect(),
        ..message()
    };
    let mut now_ms = hot_for_two_seconds(&world, &mut pool);
    world.ledgers.apply("k1", Command::Control { control: Control::Rotate { new_version: 2, grace_until_ms: None } });
    let rotated_ms = now_ms;
    let mut old_admitted = vec![];
    for _ in 0..300 {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(&world, &mut pool, new_message(), now_ms), Ok(200), "the new secret");
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        let answer = world.call(&mut pool, message(), now_ms).expect("an answer");
        if let AnswerBody::Streamed(body) = answer.body {
            read_to_end(&mut pool, body);
            old_admitted.push(now_ms - rotated_ms);
        }
        now_ms += 10;
    }
    assert!(
        old_admitted.iter().all(|&after_ms| after_ms < EDGE_LEASE_MS),
        "the old secret admitted up to {:?} ms after the rotation",
        old_admitted.last()
    );
}

/// A burst of a capped key's calls that ends while its isolate's latest slice is still open
/// (the flush of the burst's settles ran before that slice's end) leaves nothing held at the
/// key's object once the slice has ended: the isolate gives it back then, so the cap's spend is
/// what the calls were billed — not the slice's unused micro-dollars reserved for an hour and
/// then charged.
#[test]
fn a_burst_that_ends_mid_slice_gives_the_slice_back_at_its_end() {
    const CAP: u64 = 10_000_000;
    let mut pool = LocalPool::new();
    let (world, limits) = daily_capped(&pool, CAP);
    let mut now_ms = NOW_MS;
    for _ in 0..35 {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(&world, &mut pool, message(), now_ms), Ok(200));
        now_ms += 10;
    }
    // The first flush falls due a second after the first leased call's settle (~ NOW + 100),
    // while the burst's latest slice (asked later) is still open; then time goes on.
    for wake_ms in [NOW_MS + 100 + FLUSH_MS, NOW_MS + 100 + FLUSH_MS + EDGE_LEASE_MS, NOW_MS + 10_000] {
        world.ledgers.set_now_ms(wake_ms);
        world.runtime.set_now_ms(wake_ms);
        world.runtime.wake_sleepers(wake_ms);
        pool.run_until_stalled();
    }
    let cap: Limits = serde_json::from_str(&limits).unwrap();
    for at_ms in [NOW_MS + 10_000, NOW_MS + teamkeys::limits::RESERVATION_TTL_MS + 10_000] {
        world.ledgers.set_now_ms(at_ms);
        let Reply::Report { usage, limits: uses, .. } =
            world.ledgers.apply("k1", Command::Report { limits: cap.clone(), model_limits: vec![] })
        else {
            panic!("a report")
        };
        let spend = uses.iter().find(|u| u.scope == "spend_daily").expect("the cap").used;
        assert_eq!(usage.today.requests, 35);
        assert_eq!(spend, usage.today.cost_micros, "at {}: held or charged beyond the calls' bill", at_ms - NOW_MS);
    }
}

/// A key's object that remembers as many isolates as it may (`MAX_HOLDERS`: isolates that
/// leased within the hour, each a new holder) refuses a new isolate a lease; that isolate's hot
/// calls are then asked per call and admitted, not refused for the object's own bound.
#[test]
fn a_hot_key_whose_object_holds_its_most_isolates_is_admitted_per_call() {
    use teamkeys::budget::{HolderMessage, Want, MAX_HOLDERS};
    let mut pool = LocalPool::new();
    let world = World::new(&pool, r#"{"rpm":100000}"#);
    let limits: Limits = serde_json::from_str(r#"{"rpm":100000}"#).unwrap();
    for i in 0..MAX_HOLDERS {
        let want = Want { ask: Ask { tokens: 1, cost_micros: 0 }, interval_ms: EDGE_LEASE_MS, exact: false };
        let message =
            HolderMessage { holder: format!("edge:other-{i}"), epoch: 0, seq: 1, leases: vec![], want: Some(want) };
        let lease =
            Command::Lease { secret_version: 1, limits: limits.clone(), policy_version: 0, message, budgets: vec![] };
        assert!(matches!(world.ledgers.apply("k1", lease), Reply::Lease { .. }));
    }
    for i in 0..(3 * HOT_CALLS) {
        world.upstream.script([Scripted::Answer(FakeAnswer::sse(&STREAM))]);
        assert_eq!(answered_at(&world, &mut pool, message(), NOW_MS + 100 + i * 10), Ok(200), "call {i}");
    }
}
