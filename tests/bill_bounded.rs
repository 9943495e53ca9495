//! Host tests of the bill bounded by the reservation: body members refused per family and key,
//! the output cap always sent, the input bound, and a leased call reserving the same bound from
//! its slice.

use serde_json::{json, Value};
use teamkeys::gateway::bounds::{image_tokens_max, DEFAULT_MAX_OUTPUT_TOKENS, GEMINI_MAX_THINKING_TOKENS};
use teamkeys::gateway::members::UnknownMembers;
use teamkeys::gateway::metering::Metering;
use teamkeys::gateway::request::{forward_body, inspect, RequestFacts};
use teamkeys::gateway::route::{classify, Route};
use teamkeys::limits::Limits;
use teamkeys::policy::KeyRules;
use teamkeys::usage::Pricing;

const CHAT: &str = "/openai/v1/chat/completions";
const LEGACY: &str = "/openai/v1/completions";
const RESPONSES: &str = "/openai/v1/responses";
const MESSAGES: &str = "/anthropic/v1/messages";
const GEMINI: &str = "/gemini/v1beta/models/gemini-2.5-pro:generateContent";

fn route(path: &str) -> Route {
    classify("POST", path).unwrap()
}

fn capped() -> Limits {
    serde_json::from_str(r#"{"spend":[{"period":"daily","limit_micros":1000000}],"default_max_tokens":300}"#).unwrap()
}

fn uncapped() -> Limits {
    serde_json::from_str(r#"{"default_max_tokens":300}"#).unwrap()
}

fn price(model: &str) -> Option<teamkeys::usage::Price> {
    let pricing = Pricing::from_json(&format!(r#"[{{"model":"{model}","input":1000000,"output":2000000}}]"#)).unwrap();
    pricing.price(model).copied()
}

/// The facts after reserving for `limits`, or the refusal's (status, code).
fn admit(
    path: &str,
    body: &str,
    limits: &Limits,
    unknown: UnknownMembers,
) -> Result<(RequestFacts, Metering), (u16, &'static str)> {
    let route = route(path);
    let mut facts = inspect(&route, body.as_bytes()).map_err(|e| (e.status(), e.code().as_str()))?;
    let model = facts.model.clone().unwrap();
    let rules = KeyRules { limits: limits.clone(), ..KeyRules::default() };
    let metering = Metering::reserve(&route, &mut facts, &rules, !limits.spend.is_empty(), price(&model), unknown)
        .map_err(|e| (e.status(), e.code().as_str()))?;
    Ok((facts, metering))
}

/// (path, body) refused to every key with 403 `member_not_allowed`.
const SHARED: &[(&str, &str)] = &[
    (CHAT, r#"{"model":"m","store":true}"#),
    (CHAT, r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#),
    (CHAT, r#"{"model":"m","messages":[{"role":"assistant","audio":{"id":"audio_1"}}]}"#),
    (CHAT, r#"{"model":"m","tools":[{"type":"file_search","vector_store_ids":["vs_1"]}]}"#),
    (RESPONSES, r#"{"model":"m","previous_response_id":"resp_1"}"#),
    (RESPONSES, r#"{"model":"m","conversation":"conv_1"}"#),
    (RESPONSES, r#"{"model":"m","prompt":{"id":"pmpt_1"}}"#),
    (RESPONSES, r#"{"model":"m","background":true}"#),
    (RESPONSES, r#"{"model":"m","store":true}"#),
    (RESPONSES, r#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#),
    (RESPONSES, r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#),
    (RESPONSES, r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"code_interpreter","container":{"type":"auto"}}]}"#),
    (MESSAGES, r#"{"model":"m","container":"container_1"}"#),
    (
        MESSAGES,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
    ),
    (
        MESSAGES,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}"#,
    ),
    (MESSAGES, r#"{"model":"m","messages":[{"role":"user","content":[{"type":"container_upload","file_id":"f"}]}]}"#),
    (
        MESSAGES,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}]}"#,
    ),
    (GEMINI, r#"{"cachedContent":"cachedContents/1"}"#),
    (GEMINI, r#"{"cached_content":"cachedContents/1"}"#),
    (GEMINI, r#"{"contents":[{"parts":[{"fileData":{"fileUri":"files/abc"}}]}]}"#),
    (
        GEMINI,
        r#"{"contents":[{"parts":[{"file_data":{"file_uri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}"#,
    ),
    (GEMINI, r#"{"tools":[{"fileSearch":{"fileSearchStoreNames":["s"]}}]}"#),
];

#[test]
fn shared_state_is_refused_to_every_key() {
    for &(path, body) in SHARED {
        for limits in [uncapped(), capped()] {
            let refused = admit(path, body, &limits, UnknownMembers::Pass).map(|_| ()).unwrap_err();
            assert_eq!(refused, (403, "member_not_allowed"), "{path} {body}");
        }
    }
}

#[test]
fn unset_members_are_harmless() {
    for (path, body) in [
        (
            RESPONSES,
            r#"{"model":"m","background":false,"previous_response_id":null,"store":false,"conversation":null}"#,
        ),
        (CHAT, r#"{"model":"m","store":false,"service_tier":null}"#),
        (GEMINI, r#"{"cachedContent":null}"#),
    ] {
        admit(path, body, &capped(), UnknownMembers::Pass).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    }
}

/// (path, body, code) refused to keys with spend caps only.
const CAPPED: &[(&str, &str, &str)] = &[
    (CHAT, r#"{"model":"m","web_search_options":{}}"#, "member_not_metered"),
    (CHAT, r#"{"model":"m","prediction":{"type":"content","content":"x"}}"#, "member_not_metered"),
    (CHAT, r#"{"model":"m","service_tier":"priority"}"#, "member_not_metered"),
    (
        CHAT,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]}"#,
        "input_not_bounded",
    ),
    (
        CHAT,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,AA"}}]}]}"#,
        "input_not_bounded",
    ),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"web_search"}]}"#, "member_not_metered"),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"web_search_preview_2025_03_11"}]}"#, "member_not_metered"),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"image_generation"}]}"#, "member_not_metered"),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"computer_use_preview"}]}"#, "member_not_metered"),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"mcp","server_url":"https://x"}]}"#, "input_not_bounded"),
    (RESPONSES, r#"{"model":"m","tools":[{"type":"a_new_server_tool"}]}"#, "member_not_metered"),
    (
        RESPONSES,
        r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_url":"https://x/a.pdf"}]}]}"#,
        "input_not_bounded",
    ),
    (MESSAGES, r#"{"model":"m","tools":[{"type":"web_search_20250305","name":"web_search"}]}"#, "member_not_metered"),
    (MESSAGES, r#"{"model":"m","tools":[{"type":"code_execution_20250825","name":"c"}]}"#, "member_not_metered"),
    (MESSAGES, r#"{"model":"m","tools":[{"type":"web_fetch_20250910","name":"f"}]}"#, "input_not_bounded"),
    (MESSAGES, r#"{"model":"m","mcp_servers":[{"type":"url","url":"https://x"}]}"#, "input_not_bounded"),
    (MESSAGES, r#"{"model":"m","speed":"fast"}"#, "member_not_metered"),
    (
        MESSAGES,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AA"}}]}]}"#,
        "input_not_bounded",
    ),
    (
        MESSAGES,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}"#,
        "input_not_bounded",
    ),
    (GEMINI, r#"{"tools":[{"googleSearch":{}}]}"#, "member_not_metered"),
    (GEMINI, r#"{"tools":[{"google_search_retrieval":{}}]}"#, "member_not_metered"),
    (GEMINI, r#"{"tools":[{"codeExecution":{}}]}"#, "member_not_metered"),
    (GEMINI, r#"{"tools":[{"urlContext":{}}]}"#, "input_not_bounded"),
    (GEMINI, r#"{"contents":[{"parts":[{"inlineData":{"mimeType":"audio/mp3","data":"AA"}}]}]}"#, "input_not_bounded"),
    (
        GEMINI,
        r#"{"contents":[{"parts":[{"inline_data":{"mime_type":"application/pdf","data":"AA"}}]}]}"#,
        "input_not_bounded",
    ),
    (
        GEMINI,
        r#"{"contents":[{"parts":[{"fileData":{"fileUri":"https://www.youtube.com/watch?v=x"}}]}]}"#,
        "input_not_bounded",
    ),
];

#[test]
fn unbounded_and_unmetered_work_is_refused_to_capped_keys_only() {
    for &(path, body, code) in CAPPED {
        let refused = admit(path, body, &capped(), UnknownMembers::Pass).map(|_| ()).unwrap_err();
        assert_eq!(refused, (403, code), "{path} {body}");
        admit(path, body, &uncapped(), UnknownMembers::Pass).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    }
}

#[test]
fn client_tools_pass_for_capped_keys() {
    for (path, body) in [
        (CHAT, r#"{"model":"m","tools":[{"type":"function","function":{"name":"f"}}]}"#),
        (MESSAGES, r#"{"model":"m","tools":[{"name":"f","input_schema":{}},{"type":"bash_20250124","name":"bash"}]}"#),
        (GEMINI, r#"{"tools":[{"functionDeclarations":[{"name":"f"}]}]}"#),
    ] {
        admit(path, body, &capped(), UnknownMembers::Pass).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    }
}

#[test]
fn strict_mode_refuses_unknown_members_and_tools() {
    for (path, body) in [
        (CHAT, r#"{"model":"m","brand_new":1}"#),
        (MESSAGES, r#"{"model":"m","max_tokens":5,"n":2}"#),
        (GEMINI, r#"{"contents":[],"somethingNew":{}}"#),
        (RESPONSES, r#"{"model":"m","tools":[{"type":"a_new_server_tool"}]}"#),
    ] {
        admit(path, body, &uncapped(), UnknownMembers::Pass).unwrap();
        let refused = admit(path, body, &uncapped(), UnknownMembers::Refuse).map(|_| ()).unwrap_err();
        assert_eq!(refused, (403, "member_not_known"), "{body}");
    }
    admit(GEMINI, r#"{"contents":[],"system_instruction":{"parts":[]}}"#, &uncapped(), UnknownMembers::Refuse).unwrap();
}

/// The JSON forwarded for `body` after reserving for `limits`.
fn forwarded(path: &str, body: &str, limits: &Limits) -> (Value, u64) {
    let (facts, metering) = admit(path, body, limits, UnknownMembers::Pass).unwrap();
    let out = forward_body(&route(path), &facts, body.as_bytes(), None).unwrap();
    (serde_json::from_slice(&out).unwrap(), metering.ask.tokens - facts.input_tokens_estimate)
}

#[test]
fn the_reserved_cap_is_always_sent_in_the_family_field() {
    let thinking = GEMINI_MAX_THINKING_TOKENS;
    // (path, body, pointer to the cap, cap sent, output reserved)
    let cases: &[(&str, &str, &str, u64, u64)] = &[
        (CHAT, r#"{"model":"m"}"#, "/max_completion_tokens", 300, 300),
        (CHAT, r#"{"model":"m","n":3}"#, "/max_completion_tokens", 300, 900),
        (CHAT, r#"{"model":"m","max_tokens":20,"n":2}"#, "/max_tokens", 20, 40),
        (CHAT, r#"{"model":"m","max_completion_tokens":null}"#, "/max_completion_tokens", 300, 300),
        (LEGACY, r#"{"model":"m","n":2,"best_of":4}"#, "/max_tokens", 300, 1200),
        (RESPONSES, r#"{"model":"m"}"#, "/max_output_tokens", 300, 300),
        (RESPONSES, r#"{"model":"m","max_output_tokens":70}"#, "/max_output_tokens", 70, 70),
        (MESSAGES, r#"{"model":"m"}"#, "/max_tokens", 300, 300),
        (
            MESSAGES,
            r#"{"model":"m","max_tokens":50,"thinking":{"type":"enabled","budget_tokens":40}}"#,
            "/max_tokens",
            50,
            50,
        ),
        (GEMINI, r#"{"contents":[]}"#, "/generationConfig/maxOutputTokens", 300, 300 + thinking),
        (
            GEMINI,
            r#"{"generationConfig":{"temperature":1,"candidateCount":2}}"#,
            "/generationConfig/maxOutputTokens",
            300,
            2 * (300 + thinking),
        ),
        (
            GEMINI,
            r#"{"generation_config":{"temperature":1}}"#,
            "/generation_config/maxOutputTokens",
            300,
            300 + thinking,
        ),
        (GEMINI, r#"{"generationConfig":null}"#, "/generationConfig/maxOutputTokens", 300, 300 + thinking),
        (
            GEMINI,
            r#"{"generationConfig":{"maxOutputTokens":100,"thinkingConfig":{"thinkingBudget":50}}}"#,
            "/generationConfig/maxOutputTokens",
            100,
            150,
        ),
        (
            GEMINI,
            r#"{"generationConfig":{"maxOutputTokens":100,"thinkingConfig":{"thinkingBudget":-1}}}"#,
            "/generationConfig/maxOutputTokens",
            100,
            100 + thinking,
        ),
    ];
    for &(path, body, pointer, sent, reserved) in cases {
        let (json, output) = forwarded(path, body, &uncapped());
        assert_eq!(json.pointer(pointer), Some(&json!(sent)), "{body} → {json}");
        assert_eq!(output, reserved, "{body}");
    }
    let (json, output) = forwarded(CHAT, r#"{"model":"m"}"#, &Limits::default());
    assert_eq!(
        (json["max_completion_tokens"].as_u64(), output),
        (Some(DEFAULT_MAX_OUTPUT_TOKENS), DEFAULT_MAX_OUTPUT_TOKENS)
    );
    let tiny: Limits = serde_json::from_str(r#"{"default_max_tokens":1}"#).unwrap();
    assert_eq!(forwarded(MESSAGES, r#"{"model":"m"}"#, &tiny).0["max_tokens"], 1);
}

#[test]
fn responses_are_sent_with_store_false() {
    for body in [r#"{"model":"m","max_output_tokens":5}"#, r#"{"model":"m","store":null,"max_output_tokens":5}"#] {
        assert_eq!(forwarded(RESPONSES, body, &uncapped()).0["store"], false, "{body}");
    }
}

#[test]
fn cjk_input_is_bounded_by_its_bytes() {
    let text = "語".repeat(1000);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]}).to_string();
    let facts = inspect(&route(CHAT), body.as_bytes()).unwrap();
    assert!(facts.input_tokens_bound >= text.len() as u64);
    assert!(facts.input_tokens_bound >= text.chars().count() as u64);
}

#[test]
fn inline_images_count_at_their_maximum_not_their_bytes() {
    let data = "A".repeat(200_000);
    let cases = [
        (
            CHAT,
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}]}]}),
            image_tokens_max(teamkeys::family::Family::OpenAi, Some("gpt-4o")),
        ),
        (
            RESPONSES,
            json!({"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": format!("data:image/png;base64,{data}")}]}]}),
            48_169,
        ),
        (
            MESSAGES,
            json!({"model": "c", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]}]}),
            4_800,
        ),
        (GEMINI, json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]}]}), 16 * 258),
    ];
    for (path, body, image_max) in cases {
        let body = body.to_string();
        let facts = inspect(&route(path), body.as_bytes()).unwrap();
        let text_bytes = (body.len() - data.len()) as u64;
        assert!(facts.input_tokens_bound >= text_bytes + image_max, "{path}");
        assert!(facts.input_tokens_bound < text_bytes + image_max + 1024, "{path}: {}", facts.input_tokens_bound);
    }
    // An image by URL counts at the same maximum.
    let body = r#"{"model":"c","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/a.png"}}]}]}"#;
    assert!(inspect(&route(MESSAGES), body.as_bytes()).unwrap().input_tokens_bound >= 4_800);
}

#[test]
fn tools_add_their_overhead() {
    let without = inspect(&route(MESSAGES), br#"{"model":"m","tools":[]}"#).unwrap().input_tokens_bound;
    let with = inspect(&route(MESSAGES), br#"{"model":"m","tools":[{"name":"f"}]}"#).unwrap().input_tokens_bound;
    assert!(with >= without + 1_000);
}

/// A tiny deterministic generator, so the property test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below
    }
}

/// Members (name, JSON value) a generated body draws from, per route.
fn pool(path: &str) -> Vec<(&'static str, &'static str)> {
    let common = [
        ("temperature", "0.5"),
        ("stream", "true"),
        ("stream", "false"),
        ("metadata", r#"{"a":"語"}"#),
        ("x_unknown", r#"[1,{"y":null}]"#),
    ];
    let own: &[(&str, &str)] = match path {
        CHAT => &[
            ("messages", r#"[{"role":"user","content":"hi"}]"#),
            ("max_tokens", "12"),
            ("max_completion_tokens", "null"),
            ("n", "2"),
            ("stream_options", r#"{"include_usage":false,"z":1}"#),
            ("stream_options", "null"),
        ],
        LEGACY => &[("prompt", r#""hi""#), ("max_tokens", "null"), ("best_of", "3")],
        RESPONSES => &[("input", r#""hi""#), ("store", "false"), ("store", "null"), ("max_output_tokens", "9")],
        MESSAGES => &[("messages", r#"[{"role":"user","content":"hi"}]"#), ("max_tokens", "8"), ("max_tokens", "null")],
        _ => &[
            ("contents", r#"[{"parts":[{"text":"hi"}]}]"#),
            ("generationConfig", r#"{"temperature":1}"#),
            ("generationConfig", r#"{"maxOutputTokens":5}"#),
            ("generationConfig", "null"),
        ],
    };
    common.iter().chain(own).copied().collect()
}

/// Members the gateway may add or change, per route.
fn documented(path: &str) -> &'static [&'static str] {
    match path {
        CHAT => &["max_completion_tokens", "stream_options", "model"],
        LEGACY => &["max_tokens", "stream_options", "model"],
        RESPONSES => &["max_output_tokens", "store", "model"],
        MESSAGES => &["max_tokens", "model"],
        _ => &["generationConfig"],
    }
}

#[test]
fn forwarded_bodies_are_json_and_differ_only_in_documented_members() {
    let mut random = Lcg(7);
    for round in 0..2_000 {
        let path = [CHAT, LEGACY, RESPONSES, MESSAGES, GEMINI][random.next(5)];
        let pool = pool(path);
        let mut members: Vec<(&str, &str)> = Vec::new();
        for _ in 0..random.next(6) {
            let member = pool[random.next(pool.len())];
            if members.iter().all(|(name, _)| *name != member.0) {
                members.push(member);
            }
        }
        if path != GEMINI {
            members.insert(random.next(members.len() + 1), ("model", r#""m""#));
        }
        let space = [" ", "", "\n"][random.next(3)];
        let inner: Vec<String> = members.iter().map(|(name, value)| format!("\"{name}\":{space}{value}")).collect();
        let body = format!("{space}{{{space}{}{space}}}", inner.join(&format!(",{space}")));
        let limits = if random.next(2) == 0 { uncapped() } else { Limits::default() };
        let (facts, _) = admit(path, &body, &limits, UnknownMembers::Pass).unwrap_or_else(|e| panic!("{body}: {e:?}"));
        let rename = (random.next(3) == 0 && path != GEMINI).then_some("renamed");
        let out = forward_body(&route(path), &facts, body.as_bytes(), rename).unwrap();
        let sent: serde_json::Map<String, Value> = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("round {round}: {body} → {}: {e}", String::from_utf8_lossy(&out)));
        let client: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
        let allowed = documented(path);
        for (name, value) in &client {
            if !allowed.contains(&name.as_str()) {
                assert_eq!(sent.get(name), Some(value), "{body} lost or changed {name}");
            }
        }
        for name in sent.keys() {
            assert!(client.contains_key(name) || allowed.contains(&name.as_str()), "{body} gained {name}");
        }
        let cap = facts.output.unwrap().per_choice();
        let field = allowed[0];
        let sent_cap = match path {
            GEMINI => sent[field]["maxOutputTokens"].as_u64(),
            CHAT => sent.get(field).and_then(Value::as_u64).or(sent.get("max_tokens").and_then(Value::as_u64)),
            _ => sent[field].as_u64(),
        };
        assert_eq!(sent_cap, Some(cap), "round {round}: {body} → {}", String::from_utf8_lossy(&out));
    }
}

/// A leased call (a hot key's, admitted from its isolate's slice of the key's headroom) reserves
/// its bound exactly as a per-call one does: the ticket holds the reservation's estimate, the
/// slice's micro-dollars cover it, and the key's counters hold the slice against the cap; as the
/// cap nears a slice is exactly one call, and a call the cap cannot cover is refused.
#[test]
fn a_leased_call_reserves_its_bound_from_the_slice() {
    use teamkeys::budget::{Budget, Holder, HolderAdmission, LeaseOutcome, Received, EDGE_LEASE_MS};
    use teamkeys::limits::Level;
    let body = r#"{"model":"m","max_tokens":20,"n":2,"messages":[{"role":"user","content":"hello"}]}"#;
    let (_, metering) = admit(CHAT, body, &capped(), UnknownMembers::Pass).unwrap();
    let ask = metering.ask;
    assert!(ask.cost_micros > 0);
    // Room for one and a half calls' bounds.
    let cap = ask.cost_micros * 3 / 2;
    let limits: Limits =
        serde_json::from_value(json!({"spend": [{"period": "daily", "limit_micros": cap, "mode": "hard"}]})).unwrap();
    let (mut key, mut isolate) = (Budget::new(), Holder::new("edge:i".into(), 0, EDGE_LEASE_MS, false));
    // Committed + reserved + outstanding slices against the cap.
    let held = |key: &Budget, now_ms| key.limit_uses(&limits, now_ms)[0].used;
    assert_eq!(isolate.admit(ask, 0), HolderAdmission::NeedLease);
    let handled = key.handle(&limits, Level::Key, isolate.request(ask, 0).unwrap(), true, 0);
    let LeaseOutcome::Granted(grant) = &handled.reply.outcome else { panic!("{:?}", handled.reply) };
    assert_eq!(grant.slice.cost_micros, Some(ask.cost_micros), "one call's bound, no more, near the cap");
    assert_eq!(isolate.receive(handled.reply, 0), Received::Granted);
    let HolderAdmission::Admitted(ticket) = isolate.admit(ask, 1) else { panic!("admitted from the slice") };
    assert_eq!(ticket.estimate, ask, "the reservation of a per-call admission");
    assert_eq!(held(&key, 1), ask.cost_micros);
    assert_eq!(isolate.admit(ask, 2), HolderAdmission::NeedLease, "the slice holds one call");
    let handled = key.handle(&limits, Level::Key, isolate.request(ask, 2).unwrap(), true, 2);
    assert!(matches!(handled.reply.outcome, LeaseOutcome::Refused { .. }), "{:?}", handled.reply);
    assert!(held(&key, 2) <= cap);
}
