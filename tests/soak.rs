//! A seeded chaos soak over the host fakes of the whole pipeline: `Gateway::call` with the key
//! store, the key ledgers (the real `KeyState`), the upstream and the client, all failing at
//! random, while the control plane tightens, disables, enables, rotates and deletes keys and
//! a fake clock moves on.
//!
//! Flow: a seed makes a list of [`Step`]s (a tiny xorshift, no dependency); [`run`] plays them
//! against one [`World`] and an [`Oracle`] that reads every command the ledgers were sent and
//! checks, after every step:
//! - no limit exceeded: each admission fits the key's RPM window (the aligned 60 one-second
//!   buckets) and its total spend cap (committed + open estimates + the new estimate);
//! - every admitted call ends in exactly one `Settle` or `Release` (an admission whose reply was
//!   lost in none: its reservation expires at its estimate);
//! - no call admitted for a revoked secret later than [`REVOCATION_BOUND_MS`] after the step
//!   that revoked it;
//! - every refusal the gateway writes carries a documented code ([`documented`]);
//! - nothing panics.
//!
//! A failure prints the seed and the shortest step list found by removing steps while it still
//! fails. `cargo test --test soak` runs a short soak; `make soak SEED=… STEPS=…` a long one
//! (`SOAK_SEED`, `SOAK_STEPS`), printing what it checked.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{FutureExt, StreamExt};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use teamkeys::gateway::call::Gateway;
use teamkeys::gateway::exchange::{AnswerBody, ClientRequest};
use teamkeys::gateway::fakes::{
    FakeAnswer, FakeKeyLedgers, FakeKeyStore, FakeRuntime, FakeUpstream, LedgerFault, LedgerStage, Outcome, Scripted,
    Signal,
};
use teamkeys::gateway::held_refusals::HeldRefusals;
use teamkeys::gateway::members::UnknownMembers;
use teamkeys::ledger::revocation::Control;
use teamkeys::ledger::{Command, Reply};
use teamkeys::limits::{Ask, Limits};
use teamkeys::policy::RoutingConfig;
use teamkeys::usage::{Pricing, DEFAULT_PRICING_JSON};

/// How long after the step that revoked a secret a call may still be admitted with it: 0 while
/// every admission asks the key's ledger; a lease interval once edge leases exist.
const REVOCATION_BOUND_MS: u64 = 0;

/// Whether `code` is one the gateway documents: a code of the one table (`teamkeys::error::Code`),
/// which the README's table of codes is checked against.
fn documented(code: &str) -> bool {
    teamkeys::error::Code::ALL.iter().any(|known| known.as_str() == code)
}

const START_MS: u64 = 1_700_000_000_000;
const KEY_SLOTS: u64 = 3;

const ROUTING: &str = r#"{"groups":[{"name":"default","models":["*"],"targets":[
    {"base_url":"https://first.example/anthropic/v1","family":"anthropic","credential_secret":"FIRST","metered":true},
    {"base_url":"https://second.example/anthropic/v1","family":"anthropic","credential_secret":"SECOND","metered":true},
    {"base_url":"https://first.example/openai/v1","family":"openai","credential_secret":"FIRST","metered":true},
    {"base_url":"https://second.example/openai/v1","family":"openai","credential_secret":"SECOND","metered":true},
    {"base_url":"https://first.example/gemini/v1beta","family":"gemini","credential_secret":"FIRST","metered":true},
    {"base_url":"https://second.example/gemini/v1beta","family":"gemini","credential_secret":"SECOND","metered":true}]}]}"#;

/// A tiny xorshift64*: the soak's only source of randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the upstream does with a call's first request (the second target always answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    Answers,
    ConnectError,
    Timeout,
    Status(u16),
    /// Connect errors on both targets.
    Unreachable,
    /// 5xx on both targets.
    Failing,
    /// The body is cut after this many bytes.
    Cut(usize),
    /// Never answers: the client gives up.
    Hangs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    ReadsAll,
    GoneBefore,
    DropsMidStream,
    LeavesMidStream,
    LeavesAfterTheEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Call {
        slot: u64,
        /// Some(n): use the n-th secret ever issued (modulo), revoked or not.
        old_secret: Option<u64>,
        shape: u64,
        body: u64,
        up: Up,
        client: Client,
        kv_down: bool,
        ledger: Option<(LedgerStage, LedgerFault)>,
    },
    Tighten {
        slot: u64,
        rpm: u64,
        cap_micros: u64,
    },
    Disable {
        slot: u64,
    },
    Enable {
        slot: u64,
    },
    Rotate {
        slot: u64,
        grace_ms: Option<u64>,
    },
    /// Deletes the slot's key and gives the slot a new one.
    Delete {
        slot: u64,
    },
    Advance {
        ms: u64,
    },
}

fn step(rng: &mut Rng) -> Step {
    let slot = rng.below(KEY_SLOTS);
    match rng.below(100) {
        0..=74 => Step::Call {
            slot,
            old_secret: rng.chance(10).then(|| rng.below(1 << 16)),
            shape: rng.below(SHAPES.len() as u64),
            body: if rng.chance(70) { 0 } else { rng.below(BODIES) },
            up: match rng.below(20) {
                0..=10 => Up::Answers,
                11 => Up::ConnectError,
                12 => Up::Timeout,
                13 => Up::Status([500, 502, 503, 429, 401, 400][rng.below(6) as usize]),
                14 => Up::Unreachable,
                15 => Up::Failing,
                16..=18 => Up::Cut(rng.below(400) as usize),
                _ => Up::Hangs,
            },
            client: match rng.below(12) {
                0 => Client::GoneBefore,
                1 => Client::DropsMidStream,
                2 => Client::LeavesMidStream,
                3 => Client::LeavesAfterTheEnd,
                _ => Client::ReadsAll,
            },
            kv_down: rng.chance(3),
            ledger: rng.chance(8).then(|| {
                let stage = if rng.chance(50) { LedgerStage::Admission } else { LedgerStage::Settlement };
                (stage, if rng.chance(50) { LedgerFault::Unreachable } else { LedgerFault::ReplyLost })
            }),
        },
        75..=78 => Step::Tighten { slot, rpm: 1 + rng.below(40), cap_micros: 1 + rng.below(200_000) },
        79..=80 => Step::Disable { slot },
        81..=83 => Step::Enable { slot },
        84..=86 => Step::Rotate { slot, grace_ms: rng.chance(50).then(|| rng.below(5_000)) },
        87 => Step::Delete { slot },
        _ => Step::Advance {
            ms: match rng.below(20) {
                0 => 61_000,
                1 => 11 * 60_000,
                _ => rng.below(2_000),
            },
        },
    }
}

/// (path, model, stream)
type Shape = (&'static str, &'static str, bool);

const SHAPES: &[Shape] = &[
    ("/openai/v1/chat/completions", "gpt-4o", false),
    ("/openai/v1/chat/completions", "gpt-4o", true),
    ("/anthropic/v1/messages", "claude-sonnet-4", false),
    ("/anthropic/v1/messages", "claude-sonnet-4", true),
    ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash", false),
    ("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini-2.5-flash", true),
];

/// Body variants: 0 honest, then adversarial ones.
const BODIES: u64 = 7;

fn request_body(shape: &Shape, variant: u64) -> String {
    let (path, model, stream) = *shape;
    let gemini = path.starts_with("/gemini");
    let input = if variant == 6 { "語".repeat(20_000) } else { "hi".to_owned() };
    let honest = if gemini {
        format!(r#"{{"contents":[{{"parts":[{{"text":"{input}"}}]}}],"generationConfig":{{"maxOutputTokens":100}}}}"#)
    } else {
        format!(
            r#"{{"model":"{model}","max_tokens":100,"stream":{stream},"messages":[{{"role":"user","content":"{input}"}}]}}"#
        )
    };
    match variant {
        1 => honest.replace(":100", ":1000000000"),
        2 => honest[..honest.len() / 2].to_owned(),
        3 => honest.replacen('{', r#"{"store":true,"cachedContent":"c/1","#, 1),
        4 if !gemini => honest.replace(&format!(r#""model":"{model}","#), ""),
        5 => honest.replacen('{', r#"{"x_unknown":[1,{"y":null}],"#, 1),
        _ => honest,
    }
}

/// The upstream's honest answer for a shape: (content type, chunks).
fn answer(shape: &Shape) -> FakeAnswer {
    let (path, _, stream) = *shape;
    match (path.split('/').nth(1).unwrap(), stream) {
        ("openai", false) => FakeAnswer::json(
            200,
            r#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
        ),
        ("openai", true) => FakeAnswer::sse(&[
            r#"{"choices":[{"delta":{"content":"hi"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
            "[DONE]",
        ]),
        ("anthropic", false) => {
            FakeAnswer::json(200, r#"{"type":"message","usage":{"input_tokens":10,"output_tokens":20}}"#)
        }
        ("anthropic", true) => FakeAnswer::sse(&[
            r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20}}"#,
            r#"{"type":"message_stop"}"#,
        ]),
        (_, stream) => {
            let event = r#"{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,"totalTokenCount":10}}"#;
            if stream {
                FakeAnswer::sse(&[r#"{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}"#, event])
            } else {
                FakeAnswer::json(200, event)
            }
        }
    }
}

fn script(shape: &Shape, up: Up, never: &Signal) -> Vec<Scripted> {
    let ok = Scripted::Answer(answer(shape));
    let status = |code| Scripted::Answer(FakeAnswer::json(code, r#"{"error":{"message":"upstream"}}"#));
    match up {
        Up::Answers => vec![ok],
        Up::ConnectError => vec![Scripted::ConnectError, ok],
        Up::Timeout => vec![Scripted::Timeout, ok],
        Up::Status(code) => vec![status(code), ok],
        Up::Unreachable => vec![Scripted::ConnectError, Scripted::ConnectError],
        Up::Failing => vec![status(500), status(503)],
        Up::Cut(bytes) => vec![Scripted::Answer(answer(shape).cut_after(bytes))],
        Up::Hangs => vec![Scripted::Answer(answer(shape).wait_for(never)), ok],
    }
}

/// What the soak counted.
#[derive(Debug, Default)]
struct Tally {
    steps: u64,
    calls: u64,
    admitted: u64,
    settled: u64,
    released: u64,
    orphaned: u64,
    faults: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
    controls: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn count<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
        *map.entry(key).or_default() += 1;
    }
}

/// One key slot: its current key id and secrets.
struct Slot {
    key_id: String,
    version: u32,
}

/// The pipeline's ports, shared by every step.
struct World {
    keys: FakeKeyStore,
    ledgers: FakeKeyLedgers,
    runtime: FakeRuntime,
    routing: RoutingConfig,
    pricing: Pricing,
    held_refusals: RefCell<HeldRefusals>,
    slots: Vec<Slot>,
    /// Every secret ever issued: (plaintext, key id, version).
    secrets: Vec<(String, String, u32)>,
    generation: u64,
    /// The last policy version pushed to any key's ledger (pushes only ever raise it).
    policy_version: u64,
}

fn secret(key_id: &str, version: u32) -> String {
    format!("tk_soak_{key_id}_v{version}")
}

fn record(key_id: &str, version: u32) -> String {
    format!(
        r#"{{"id":"{key_id}","name":"n","creator":"c","project":"p","created_at":0,"status":"active","secret_version":{version},"limits":{{"rpm":1000,"spend":[{{"period":"total","limit_micros":100000000}}]}}}}"#
    )
}

/// The limits the control plane pushes to a new key.
fn first_limits() -> Limits {
    serde_json::from_str(r#"{"rpm":30,"spend":[{"period":"total","limit_micros":400000}]}"#).unwrap()
}

/// What the oracle knows of one key id.
#[derive(Default)]
struct KeyFacts {
    limits: Limits,
    /// Since when (ms) the key is refused: deleted, disabled.
    deleted_at: Option<u64>,
    disabled_at: Option<u64>,
    /// Per secret version, since when it is refused.
    revoked_at: HashMap<u32, u64>,
    admissions_ms: VecDeque<u64>,
    committed_micros: u64,
}

#[derive(Default)]
struct Oracle {
    keys: HashMap<String, KeyFacts>,
    /// Open reservations: (key id, reservation id) → (estimate, reply lost).
    open: HashMap<(String, u64), (Ask, bool)>,
    endings: HashMap<(String, u64), u32>,
    read: usize,
}

impl World {
    fn new(pool: &LocalPool, oracle: &mut Oracle, now_ms: u64) -> World {
        let spawner = pool.spawner();
        let mut world = World {
            keys: FakeKeyStore::default(),
            ledgers: FakeKeyLedgers::default(),
            runtime: FakeRuntime::new(move |task| spawner.spawn_local(task).expect("the pool runs")),
            routing: RoutingConfig::from_json(ROUTING).unwrap(),
            pricing: Pricing::from_json(DEFAULT_PRICING_JSON).unwrap(),
            held_refusals: RefCell::default(),
            slots: Vec::new(),
            secrets: Vec::new(),
            generation: 0,
            policy_version: 0,
        };
        world.ledgers.set_now_ms(now_ms);
        for _ in 0..KEY_SLOTS {
            let slot = world.new_key(oracle);
            world.slots.push(slot);
        }
        world
    }

    fn new_key(&mut self, oracle: &mut Oracle) -> Slot {
        self.generation += 1;
        let key_id = format!("k{}", self.generation);
        self.issue(&key_id, 1);
        self.policy_version += 1;
        let policy_version = self.policy_version;
        self.ledgers
            .apply(&key_id, Command::PushLimits { limits: first_limits(), policy_version, scopes: Default::default() });
        oracle.keys.insert(key_id.clone(), KeyFacts { limits: first_limits(), ..KeyFacts::default() });
        Slot { key_id, version: 1 }
    }

    /// Stores the secret's record in KV. Records are never removed or updated: KV may be stale
    /// for as long as it likes, the ledger alone decides revocation.
    fn issue(&mut self, key_id: &str, version: u32) {
        self.keys.insert(&secret(key_id, version), &record(key_id, version));
        self.secrets.push((secret(key_id, version), key_id.to_owned(), version));
    }

    fn control(&self, key_id: &str, control: Control) {
        self.ledgers.apply(key_id, Command::Control { control });
    }
}

/// A broken invariant: the step it was found at and what broke.
#[derive(Debug)]
struct Failure {
    step: usize,
    message: String,
}

/// Plays `steps`; the first broken invariant (or panic) is the error.
fn run(steps: &[Step]) -> Result<Tally, Failure> {
    let mut pool = LocalPool::new();
    let mut oracle = Oracle::default();
    let mut now_ms = START_MS;
    let mut tally = Tally::default();
    let mut world = World::new(&pool, &mut oracle, now_ms);
    for (index, step) in steps.iter().enumerate() {
        let played =
            catch_unwind(AssertUnwindSafe(|| play(&mut world, &mut oracle, &mut pool, &mut tally, &mut now_ms, step)));
        let checked = match played {
            Ok(checked) => checked,
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .map_or("a panic".to_owned(), |message| format!("panic: {message}"))),
        };
        checked.map_err(|message| Failure { step: index, message })?;
        tally.steps += 1;
    }
    Ok(tally)
}

fn play(
    world: &mut World,
    oracle: &mut Oracle,
    pool: &mut LocalPool,
    tally: &mut Tally,
    now_ms: &mut u64,
    step: &Step,
) -> Result<(), String> {
    let now = *now_ms;
    match *step {
        Step::Advance { ms } => {
            *now_ms += ms;
            world.ledgers.set_now_ms(*now_ms);
        }
        Step::Tighten { slot, rpm, cap_micros } => {
            let key_id = world.slots[slot as usize].key_id.clone();
            let facts = oracle.keys.get_mut(&key_id).unwrap();
            let limits: Limits = serde_json::from_str(&format!(
                r#"{{"rpm":{},"spend":[{{"period":"total","limit_micros":{}}}]}}"#,
                rpm.min(facts.limits.rpm.unwrap().get()),
                cap_micros.min(facts.limits.spend[0].limit_micros.get())
            ))
            .unwrap();
            facts.limits = limits.clone();
            world.policy_version += 1;
            let policy_version = world.policy_version;
            world.ledgers.apply(&key_id, Command::PushLimits { limits, policy_version, scopes: Default::default() });
            Tally::count(&mut tally.controls, "tighten");
        }
        Step::Disable { slot } => {
            let key_id = world.slots[slot as usize].key_id.clone();
            world.control(&key_id, Control::Disable);
            oracle.keys.get_mut(&key_id).unwrap().disabled_at.get_or_insert(now);
            Tally::count(&mut tally.controls, "disable");
        }
        Step::Enable { slot } => {
            let key_id = world.slots[slot as usize].key_id.clone();
            world.control(&key_id, Control::Enable);
            oracle.keys.get_mut(&key_id).unwrap().disabled_at = None;
            Tally::count(&mut tally.controls, "enable");
        }
        Step::Rotate { slot, grace_ms } => {
            let Slot { key_id, version } = &mut world.slots[slot as usize];
            let (key_id, old) = (key_id.clone(), *version);
            *version += 1;
            let grace_until_ms = grace_ms.map(|grace| now + grace);
            world.issue(&key_id, old + 1);
            world.control(&key_id, Control::Rotate { new_version: old + 1, grace_until_ms });
            let revoked = &mut oracle.keys.get_mut(&key_id).unwrap().revoked_at;
            for version in 1..old {
                let at = revoked.entry(version).or_insert(now);
                *at = (*at).min(now);
            }
            revoked.insert(old, grace_until_ms.unwrap_or(now));
            Tally::count(&mut tally.controls, if grace_ms.is_some() { "rotate with grace" } else { "rotate" });
        }
        Step::Delete { slot } => {
            let key_id = world.slots[slot as usize].key_id.clone();
            world.control(&key_id, Control::Delete);
            oracle.keys.get_mut(&key_id).unwrap().deleted_at = Some(now);
            world.slots[slot as usize] = world.new_key(oracle);
            Tally::count(&mut tally.controls, "delete");
        }
        Step::Call { slot, old_secret, shape, body, up, client, kv_down, ledger } => {
            tally.calls += 1;
            let plaintext = match old_secret {
                Some(n) => world.secrets[n as usize % world.secrets.len()].0.clone(),
                None => {
                    let Slot { key_id, version } = &world.slots[slot as usize];
                    secret(key_id, *version)
                }
            };
            for (fault, on) in [
                (format!("upstream {up:?}"), up != Up::Answers),
                (format!("client {client:?}"), client != Client::ReadsAll),
                ("key store unreachable".to_owned(), kv_down),
                (format!("ledger {ledger:?}"), ledger.is_some()),
                (format!("adversarial body {body}"), body != 0),
            ] {
                if on {
                    Tally::count(&mut tally.faults, fault);
                }
            }
            world.keys.unreachable.set(kv_down);
            match ledger {
                Some((stage, fault)) => world.ledgers.fail(stage, fault),
                None => world.ledgers.heal(),
            }
            let code = call(world, pool, &SHAPES[shape as usize], body, up, client, &plaintext, now);
            if let Some(code) = code {
                if !documented(&code) {
                    return Err(format!("refusal with an undocumented code {code:?}"));
                }
                Tally::count(&mut tally.refusals, code);
            }
        }
    }
    oracle.check(world, tally, now)
}

/// Runs one call to its end; the code of the gateway's own refusal, if it refused.
#[allow(clippy::too_many_arguments)]
fn call(
    world: &World,
    pool: &mut LocalPool,
    shape: &Shape,
    body: u64,
    up: Up,
    client: Client,
    plaintext: &str,
    now_ms: u64,
) -> Option<String> {
    let (path, _, stream) = *shape;
    let header = match path.split('/').nth(1).unwrap() {
        "openai" => ("authorization".to_owned(), format!("Bearer {plaintext}")),
        "anthropic" => ("x-api-key".to_owned(), plaintext.to_owned()),
        _ => ("x-goog-api-key".to_owned(), plaintext.to_owned()),
    };
    let request = ClientRequest {
        method: "POST".to_owned(),
        path: path.to_owned(),
        query: (stream && path.starts_with("/gemini")).then(|| "alt=sse".to_owned()),
        headers: vec![header, ("content-type".to_owned(), "application/json".to_owned())],
        body: request_body(shape, body).into_bytes(),
    };
    let upstream = FakeUpstream::default();
    let never = Signal::default();
    upstream.script(script(shape, up, &never));
    let gateway = Gateway {
        keys: &world.keys,
        ledgers: &world.ledgers,
        upstream: &upstream,
        runtime: &world.runtime,
        routing: &world.routing,
        keyring: None,
        pricing: &world.pricing,
        upstream_timeout_ms: 1_000,
        unknown_members: UnknownMembers::Pass,
        held_refusals: &world.held_refusals,
    };
    let client_gone = Signal::default();
    if client == Client::GoneBefore {
        client_gone.fire();
    }
    let mut handler = Box::pin(gateway.call(request, client_gone.wait(), now_ms));
    let answered = match up {
        // The upstream never answers (unless the call is refused before it): the client leaves.
        Up::Hangs => handler.as_mut().now_or_never(),
        _ => Some(pool.run_until(handler.as_mut())),
    };
    let Some(answered) = answered else {
        pool.run_until_stalled();
        client_gone.fire();
        pool.run_until_stalled();
        drop(handler);
        pool.run_until_stalled();
        return None;
    };
    drop(handler);
    let answer = match answered {
        Ok(answer) => answer,
        Err(error) => {
            pool.run_until_stalled();
            return Some(error.code().as_str().to_owned());
        }
    };
    let mut body = match answer.body {
        AnswerBody::Bytes(bytes) => {
            pool.run_until_stalled();
            let envelope: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            return envelope["error"]["code"].as_str().map(str::to_owned);
        }
        AnswerBody::Streamed(body) => body,
    };
    match client {
        Client::DropsMidStream | Client::LeavesMidStream => {
            let _ = pool.run_until(body.next());
            if client == Client::LeavesMidStream {
                client_gone.fire();
                pool.run_until_stalled();
            }
            drop(body);
        }
        _ => {
            let _: Vec<_> = pool.run_until(body.collect());
        }
    }
    pool.run_until_stalled();
    client_gone.fire();
    pool.run_until_stalled();
    None
}

impl Oracle {
    /// Reads the commands the ledgers were sent since the last step and checks every invariant.
    fn check(&mut self, world: &World, tally: &mut Tally, now_ms: u64) -> Result<(), String> {
        let sent = world.ledgers.sent_since(self.read);
        let mut admitted_now = Vec::new();
        for sent in &sent {
            let applied = match &sent.outcome {
                Outcome::Replied(reply) => Some((reply, false)),
                Outcome::ReplyLost(reply) => Some((reply, true)),
                Outcome::Unreachable => None,
            };
            match (&sent.command, applied) {
                (Command::Admit { secret_version, ask, .. }, Some((Reply::Admitted { reservation_id, .. }, lost))) => {
                    self.admit(&sent.object, *secret_version, *ask, now_ms)?;
                    let id = (sent.object.clone(), *reservation_id);
                    self.open.insert(id.clone(), (*ask, lost));
                    admitted_now.push(id);
                    tally.admitted += 1;
                    tally.orphaned += u64::from(lost);
                }
                (Command::Settle { reservation_id, .. } | Command::Release { reservation_id }, applied) => {
                    let id = (sent.object.clone(), *reservation_id);
                    let count = self.endings.entry(id.clone()).or_default();
                    *count += 1;
                    if *count > 1 {
                        return Err(format!("reservation {id:?} ended {count} times"));
                    }
                    let settled = matches!(sent.command, Command::Settle { .. });
                    if settled {
                        tally.settled += 1;
                    } else {
                        tally.released += 1;
                    }
                    if applied.is_some() {
                        if self.open.remove(&id).is_none() {
                            return Err(format!("{:?} of a reservation not open", sent.command));
                        }
                        if let Command::Settle { actual, .. } = &sent.command {
                            self.keys.get_mut(&sent.object).unwrap().committed_micros += actual.cost_micros;
                        }
                    }
                }
                _ => {}
            }
        }
        self.read += sent.len();
        for id in admitted_now {
            let lost = self.open.get(&id).is_some_and(|(_, lost)| *lost);
            let endings = self.endings.get(&id).copied().unwrap_or(0);
            let expected = u32::from(!lost);
            if endings != expected {
                return Err(format!("reservation {id:?} ended {endings} times (reply lost: {lost})"));
            }
        }
        Ok(())
    }

    /// Checks one admission against revocation and the limits in force.
    fn admit(&mut self, key_id: &str, version: u32, ask: Ask, now_ms: u64) -> Result<(), String> {
        let open_micros: u64 =
            self.open.iter().filter(|((key, _), _)| key == key_id).map(|(_, (ask, _))| ask.cost_micros).sum();
        let facts = self.keys.get_mut(key_id).ok_or_else(|| format!("an admission for unknown key {key_id}"))?;
        let revoked = [facts.deleted_at, facts.disabled_at, facts.revoked_at.get(&version).copied()];
        if let Some(since) = revoked.into_iter().flatten().filter(|since| since + REVOCATION_BOUND_MS <= now_ms).min() {
            return Err(format!("{key_id} v{version} admitted at {now_ms}, revoked since {since}"));
        }
        let bucket = now_ms / 1_000;
        facts.admissions_ms.retain(|at| at / 1_000 + 60 > bucket);
        facts.admissions_ms.push_back(now_ms);
        let rpm = facts.limits.rpm.unwrap().get();
        if facts.admissions_ms.len() as u64 > rpm {
            return Err(format!("{key_id}: {} admissions in a minute, rpm {rpm}", facts.admissions_ms.len()));
        }
        let cap = facts.limits.spend[0].limit_micros.get();
        let spent = facts.committed_micros + open_micros + ask.cost_micros;
        if spent > cap {
            return Err(format!("{key_id}: spend {spent} (with {} open) over the cap {cap}", open_micros));
        }
        Ok(())
    }
}

fn steps(seed: u64, count: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| step(&mut rng)).collect()
}

/// The shortest failing list found by removing ever smaller runs of steps (delta debugging).
fn shrink(mut steps: Vec<Step>) -> Vec<Step> {
    let mut chunk = steps.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < steps.len() {
            let mut fewer = steps.clone();
            fewer.drain(start..(start + chunk).min(steps.len()));
            if run(&fewer).is_err() {
                steps = fewer;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    steps
}

fn soak(seed: u64, count: u64) -> Tally {
    let all = steps(seed, count);
    match run(&all) {
        Ok(tally) => tally,
        Err(failure) => {
            std::panic::set_hook(Box::new(|_| {}));
            let shortest = shrink(all[..=failure.step].to_vec());
            let _ = std::panic::take_hook();
            let last = run(&shortest).err().map_or(String::new(), |f| f.message);
            panic!(
                "soak seed {seed}: step {}: {}\nshortest reproduction ({} steps, last fails with: {last}):\n{shortest:#?}",
                failure.step,
                failure.message,
                shortest.len()
            );
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |value| value.parse().unwrap_or_else(|_| panic!("{name}={value}")))
}

#[test]
fn chaos_soak_holds_every_invariant() {
    let seed = env("SOAK_SEED", 1);
    let count = env("SOAK_STEPS", 3_000);
    let tally = soak(seed, count);
    println!("soak seed {seed}: {tally:#?}");
    assert!(tally.admitted > 0 && tally.refusals.len() > 5, "the soak exercised little: {tally:#?}");
}

#[test]
fn the_oracle_catches_a_broken_invariant() {
    // An admission the oracle did not allow for: a secret revoked before the ledger heard of it.
    let mut oracle = Oracle::default();
    oracle.keys.insert("k".to_owned(), KeyFacts { limits: first_limits(), ..KeyFacts::default() });
    oracle.keys.get_mut("k").unwrap().revoked_at.insert(1, 5);
    let ask = Ask { tokens: 1, cost_micros: 1 };
    assert!(oracle.admit("k", 1, ask, 5).is_err());
    assert!(oracle.admit("k", 2, ask, 5).is_ok());
    assert!(oracle.admit("k", 2, Ask { tokens: 1, cost_micros: 400_001 }, 6).unwrap_err().contains("over the cap"));
}
