//! The bodies of the fuzz targets, one plain function per target over the bytes libFuzzer (or
//! a committed corpus file) hands it. Each panics on a broken invariant and returns otherwise.
//!
//! Shared by the cargo-fuzz crate (`fuzz/fuzz_targets/<target>.rs`, on nightly) and the host
//! test that replays every committed corpus (`tests/fuzz_corpora.rs`, on stable), both through
//! `#[path]`, so a corpus file means the same thing to both.
//!
//! Input layouts (a few control bytes first, then the text, so seeds stay readable):
//! - `gateway_route`, `admin_route`: `[method]` then `path[?query]`.
//! - `request_body`: `[route, mode, rename]` then the body (mode even) or bytes from which a JSON
//!   object is built (mode odd).
//! - `usage_scanner`: `[family, kind, strip, mode, splits…]` then the body (mode even) or bytes
//!   from which a body is built (mode odd): JSON documents or SSE event sequences.
//! - `key_record`, `webhook_url`: the JSON body itself; `admin_input`: `[type]` then the body.
//! - `glob`: pattern `\0` name; `ip_allowlist`: `[16 client bytes]` then entries, one a line.

#![allow(dead_code)] // each fuzz binary uses one target

use arbitrary::{Result as ArbitraryResult, Unstructured};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use teamkeys::admin::boundary::Boundary;
use teamkeys::admin::input::{
    check_boundary, check_rules, parse, KeyPatch, MemberPut, NewKey, NewPrincipal, NewProject, ProjectPatch,
    RotateRequest,
};
use teamkeys::events::parse_endpoint_request;
use teamkeys::family::Family;
use teamkeys::gateway::forwarding::forwarded_query;
use teamkeys::gateway::request::{forward_body, inspect};
use teamkeys::gateway::route::{classify, Endpoint, ModelSource, Route};
use teamkeys::policy::glob::glob_match;
use teamkeys::policy::{IpAllowlist, KeyPolicy, KeyRules};
use teamkeys::usage::{BodyKind, Forward, UsageScanner};

/// A target: the name of its corpus directory and fuzz binary, and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("gateway_route", gateway_route),
    ("admin_route", admin_route),
    ("request_body", request_body),
    ("usage_scanner", usage_scanner),
    ("key_record", key_record),
    ("admin_input", admin_input),
    ("glob", glob),
    ("ip_allowlist", ip_allowlist),
    ("webhook_url", webhook_url),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"];

/// The method chosen by the first byte, and the rest split at the first `?`.
fn method_path_query(data: &[u8]) -> Option<(&'static str, String, Option<String>)> {
    let (&method, rest) = data.split_first()?;
    let text = String::from_utf8_lossy(rest);
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (text.into_owned(), None),
    };
    Some((METHODS[usize::from(method) % METHODS.len()], path, query))
}

/// The gateway's route classifier and query filter: a route is self-consistent (its method,
/// its path model inside its path), a refusal is one of the documented statuses, and no `key`
/// parameter ever crosses.
pub fn gateway_route(data: &[u8]) {
    let Some((method, path, query)) = method_path_query(data) else { return };
    match classify(method, &path) {
        Ok(route) => {
            assert_eq!(route.endpoint.method(), method);
            assert!(path.ends_with(&route.upstream_path), "{path} → {}", route.upstream_path);
            if let ModelSource::Path(_) = route.model_source {
                let model = route.path_model().expect("a path model").to_owned();
                assert!(!model.is_empty());
                assert_eq!(route.upstream_path_for(&model), route.upstream_path);
                assert!(route.upstream_path_for("renamed").contains("renamed"));
            }
        }
        Err(error) => assert!([400, 403, 404, 405].contains(&error.status()), "{path}: {error:?}"),
    }
    if let Some(forwarded) = forwarded_query(query.as_deref()) {
        for parameter in forwarded.split('&') {
            let name = parameter.split('=').next().unwrap_or_default();
            assert!(!name.eq_ignore_ascii_case("key"), "{query:?} → {forwarded}");
        }
    }
}

/// The admin route classifier: never panics, refuses with a documented status.
pub fn admin_route(data: &[u8]) {
    let Some((method, path, _)) = method_path_query(data) else { return };
    if let Err(error) = teamkeys::admin::route::classify(method, &path) {
        assert!([400, 404, 405].contains(&error.status()), "{method} {path}: {error:?}");
    }
}

/// The POST routes whose bodies the gateway reads.
pub const BODY_ROUTES: &[&str] = &[
    "/openai/v1/chat/completions",
    "/openai/v1/completions",
    "/openai/v1/responses",
    "/openai/v1/embeddings",
    "/openai/v1/images/generations",
    "/openai/v1/audio/speech",
    "/openai/v1/moderations",
    "/anthropic/v1/messages",
    "/anthropic/v1/messages/count_tokens",
    "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
    "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    "/gemini/v1beta/models/gemini-2.5-pro:countTokens",
];

/// The request inspector and the body sent upstream: whatever `inspect` accepts, `forward_body`
/// turns into a JSON object that differs from the client's only in [`documented_changes`],
/// naming the model the checks saw (or the target's rename).
pub fn request_body(data: &[u8]) {
    let [route, mode, rename, ..] = *data else { return };
    let path = BODY_ROUTES[usize::from(route) % BODY_ROUTES.len()];
    let route = classify("POST", path).expect("a body route");
    let body = if mode % 2 == 0 {
        data[3..].to_vec()
    } else {
        let Ok(object) = request_object(&mut Unstructured::new(&data[3..])) else { return };
        serde_json::to_vec(&Value::Object(object)).expect("a JSON value serializes")
    };
    let Ok(facts) = inspect(&route, &body) else { return };
    let rename = (rename % 3 == 0).then_some("renamed-model");
    let sent = forward_body(&route, &facts, &body, rename).expect("an inspected body is forwarded");
    assert_forwarded(&route, facts.model.as_deref(), &body, &sent, rename);
}

/// A member the gateway may set on a route, in `outer` or in `outer.inner`.
pub type Change = (&'static str, Option<&'static str>);

/// What the gateway may add or change in a body it forwards (the module doc of
/// `teamkeys::gateway::request`): the output cap, `store`, the stream's usage request, the model.
pub fn documented_changes(route: &Route) -> &'static [Change] {
    const STREAM_USAGE: Change = ("stream_options", Some("include_usage"));
    match route.endpoint {
        Endpoint::ChatCompletions => &[("model", None), ("max_completion_tokens", None), STREAM_USAGE],
        Endpoint::Completions => &[("model", None), ("max_tokens", None), STREAM_USAGE],
        Endpoint::Responses => &[("model", None), ("max_output_tokens", None), ("store", None)],
        Endpoint::Messages => &[("model", None), ("max_tokens", None)],
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
            &[("generationConfig", Some("maxOutputTokens")), ("generation_config", Some("maxOutputTokens"))]
        }
        _ if route.model_source == ModelSource::Body => &[("model", None)],
        _ => &[],
    }
}

/// A JSON object whose members' values are kept as their JSON text.
type RawObject = BTreeMap<String, Box<RawValue>>;

/// Asserts that `sent` is a JSON object equal to the client's `body` but for the route's
/// [`documented_changes`], and that its `model` is the one checked (`model`) or `rename`.
pub fn assert_forwarded(route: &Route, model: Option<&str>, body: &[u8], sent: &[u8], rename: Option<&str>) {
    let show = || format!("{} → {}", String::from_utf8_lossy(body), String::from_utf8_lossy(sent));
    // Members compared as JSON text: unchanged ones must be the client's, digit for digit.
    let client: RawObject = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", show()));
    let sent: RawObject = serde_json::from_slice(sent).unwrap_or_else(|e| panic!("{e}: {}", show()));
    let text = |value: Option<&Box<RawValue>>| value.map(|v| v.get().to_owned());
    let object = |value: Option<&Box<RawValue>>| value.and_then(|v| serde_json::from_str::<RawObject>(v.get()).ok());
    let changes = documented_changes(route);
    let change = |name: &str| changes.iter().find(|(outer, _)| *outer == name).map(|(_, inner)| *inner);
    for name in client.keys().chain(sent.keys()) {
        let (before, after) = (client.get(name), sent.get(name));
        match change(name) {
            None => assert_eq!(text(before), text(after), "member {name} changed: {}", show()),
            Some(None) => {}
            Some(Some(inner)) => {
                if let Some(before) = object(before) {
                    let after = object(after).unwrap_or_else(|| panic!("{name} lost: {}", show()));
                    for key in before.keys().chain(after.keys()).filter(|key| *key != inner) {
                        assert_eq!(text(before.get(key)), text(after.get(key)), "{name}.{key} changed: {}", show());
                    }
                }
            }
        }
    }
    if route.model_source == ModelSource::Body {
        let expected = rename.or(model);
        let model = sent.get("model").and_then(|v| serde_json::from_str::<String>(v.get()).ok());
        assert_eq!(model.as_deref(), expected, "model: {}", show());
    }
}

/// Member names the request bodies of the three families use, so built bodies reach the code
/// that reads them.
const MEMBERS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "stream",
    "stream_options",
    "include_usage",
    "n",
    "best_of",
    "store",
    "tools",
    "input",
    "prompt",
    "instructions",
    "system",
    "contents",
    "parts",
    "generationConfig",
    "generation_config",
    "maxOutputTokens",
    "candidateCount",
    "thinkingConfig",
    "thinkingBudget",
    "thinking",
    "budget_tokens",
    "reasoning",
    "image_url",
    "url",
    "source",
    "data",
    "media_type",
    "inlineData",
    "inline_data",
    "mimeType",
    "file_id",
    "fileData",
    "previous_response_id",
    "background",
    "conversation",
    "function",
    "name",
    "metadata",
    "cachedContent",
    "temperature",
];

/// String values worth trying in those members.
const STRINGS: &[&str] = &[
    "gpt-4o",
    "claude-sonnet-4",
    "gemini-2.5-pro",
    "user",
    "assistant",
    "text",
    "image",
    "image_url",
    "input_image",
    "input_text",
    "input_file",
    "document",
    "file",
    "base64",
    "url",
    "function",
    "web_search",
    "data:image/png;base64,iVBORw0KGgo=",
    "https://example.com/a.png",
    "image/png",
    "語",
    "",
    " gpt-4o",
];

/// A JSON value from `u`, at most `depth` levels deep, drawn towards the members above.
fn json_value(u: &mut Unstructured, depth: u32) -> ArbitraryResult<Value> {
    let choice = if depth == 0 { u.int_in_range(0..=5)? } else { u.int_in_range(0..=7)? };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.int_in_range(0..=2_000u64)?),
        3 => match u.int_in_range(0..=3)? {
            0 => Value::from(u.arbitrary::<i64>()?),
            1 => Value::from(u.arbitrary::<u64>()?),
            2 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
            _ => Value::from(-1),
        },
        4 => Value::from(*u.choose(STRINGS)?),
        5 => Value::from(u.arbitrary::<String>()?),
        6 => Value::Array(json_list(u, depth)?),
        _ => Value::Object(json_object(u, depth)?),
    })
}

fn json_list(u: &mut Unstructured, depth: u32) -> ArbitraryResult<Vec<Value>> {
    let len = u.int_in_range(0..=4)?;
    (0..len).map(|_| json_value(u, depth - 1)).collect()
}

fn json_object(u: &mut Unstructured, depth: u32) -> ArbitraryResult<Map<String, Value>> {
    let len = u.int_in_range(0..=5)?;
    let mut object = Map::new();
    for _ in 0..len {
        let name = if u.ratio(7, 8)? { (*u.choose(MEMBERS)?).to_owned() } else { u.arbitrary()? };
        object.insert(name, json_value(u, depth.saturating_sub(1))?);
    }
    Ok(object)
}

/// A request body: an object that names a model more often than not.
fn request_object(u: &mut Unstructured) -> ArbitraryResult<Map<String, Value>> {
    let mut object = json_object(u, 4)?;
    if u.ratio(3, 4)? {
        object.insert("model".to_owned(), Value::from(*u.choose(&STRINGS[..3])?));
    }
    Ok(object)
}

const FAMILIES: [Family; 3] = [Family::OpenAi, Family::Anthropic, Family::Gemini];

/// The usage readers: a body read in arbitrary splits gives the usage, finality and forwarded
/// bytes it gives read whole; what is forwarded is the body itself unless the OpenAI usage
/// chunk is stripped.
pub fn usage_scanner(data: &[u8]) {
    let [family, kind, strip, mode, splits, ..] = *data else { return };
    let family = FAMILIES[usize::from(family) % 3];
    let kind = if kind % 2 == 0 { BodyKind::Json } else { BodyKind::EventStream };
    let strip = strip % 2 == 1;
    let mut u = Unstructured::new(&data[5..]);
    let Ok(cuts) = (0..splits % 16).map(|_| u.arbitrary::<u16>()).collect::<ArbitraryResult<Vec<u16>>>() else {
        return;
    };
    let body = if mode % 2 == 0 {
        u.take_rest().to_vec()
    } else {
        let built = match kind {
            BodyKind::Json => json_answer(&mut u, family),
            BodyKind::EventStream => event_stream(&mut u, family),
        };
        let Ok(body) = built else { return };
        body
    };
    let whole = scan(family, kind, strip, &body, &[]);
    let split = scan(family, kind, strip, &body, &cuts);
    assert_eq!(whole, split, "splits {cuts:?} of {}", String::from_utf8_lossy(&body));
    if !(strip && family == Family::OpenAi && kind == BodyKind::EventStream) {
        assert_eq!(whole.2, body, "forwarded bytes changed");
    }
}

/// What a scanner saw of `body` fed in pieces cut at `cuts` (taken modulo the length):
/// (usage, final, forwarded bytes).
fn scan(
    family: Family,
    kind: BodyKind,
    strip: bool,
    body: &[u8],
    cuts: &[u16],
) -> (Option<teamkeys::usage::Usage>, bool, Vec<u8>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| usize::from(cut) % (body.len() + 1)).collect();
    cuts.push(body.len());
    cuts.sort_unstable();
    let mut scanner = UsageScanner::new(family, kind, strip);
    let mut forwarded = Vec::new();
    let mut start = 0;
    for end in cuts {
        let chunk = &body[start..end];
        match scanner.feed(chunk) {
            Forward::Unchanged => forwarded.extend_from_slice(chunk),
            Forward::Replaced(bytes) => forwarded.extend(bytes),
        }
        start = end;
    }
    forwarded.extend(scanner.finish());
    (scanner.usage(), scanner.is_final(), forwarded)
}

/// A usage object in the family's spelling, with arbitrary counts (sometimes odd values).
fn usage_value(u: &mut Unstructured, family: Family) -> ArbitraryResult<Value> {
    let names: &[&str] = match family {
        Family::OpenAi => &["prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"],
        Family::Anthropic => {
            &["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
        }
        Family::Gemini => &["promptTokenCount", "candidatesTokenCount", "totalTokenCount", "thoughtsTokenCount"],
    };
    let mut usage = Map::new();
    for name in names {
        if u.ratio(3, 4)? {
            let count = if u.ratio(7, 8)? { Value::from(u.int_in_range(0..=100_000u64)?) } else { json_value(u, 1)? };
            usage.insert((*name).to_owned(), count);
        }
    }
    if family == Family::OpenAi && u.ratio(1, 3)? {
        let details = serde_json::json!({ "cached_tokens": u.int_in_range(0..=1_000u64)? });
        usage.insert("prompt_tokens_details".to_owned(), details);
    }
    Ok(Value::Object(usage))
}

/// One event or answer document of `family`, usage included or not.
fn answer_event(u: &mut Unstructured, family: Family) -> ArbitraryResult<Value> {
    let usage = usage_value(u, family)?;
    let mut event = match (family, u.int_in_range(0..=3)?) {
        (_, 0) => return json_value(u, 3),
        (Family::OpenAi, 1) => serde_json::json!({"choices": [], "usage": usage}),
        (Family::OpenAi, 2) => serde_json::json!({"choices": [{"delta": {"content": "hi"}}], "usage": null}),
        (Family::OpenAi, _) => serde_json::json!({"type": "response.completed", "response": {"usage": usage}}),
        (Family::Anthropic, 1) => serde_json::json!({"type": "message_start", "message": {"usage": usage}}),
        (Family::Anthropic, 2) => serde_json::json!({"type": "message_delta", "usage": usage}),
        (Family::Anthropic, _) => serde_json::json!({"type": *u.choose(&["message_stop", "ping", "error"])?}),
        (Family::Gemini, 1) => serde_json::json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}),
        (Family::Gemini, _) => {
            serde_json::json!({"candidates": [{"finishReason": "STOP"}], "usageMetadata": usage})
        }
    };
    if let Value::Object(members) = &mut event {
        if u.ratio(1, 4)? {
            members.extend(json_object(u, 2)?);
        }
    }
    Ok(event)
}

/// A JSON answer: one document, or (Gemini without `alt=sse`) an array of them.
fn json_answer(u: &mut Unstructured, family: Family) -> ArbitraryResult<Vec<u8>> {
    let answer = if family == Family::Gemini && u.ratio(1, 2)? {
        let len = u.int_in_range(0..=4)?;
        Value::Array((0..len).map(|_| answer_event(u, family)).collect::<ArbitraryResult<_>>()?)
    } else {
        answer_event(u, family)?
    };
    Ok(if u.arbitrary()? { serde_json::to_vec_pretty(&answer) } else { serde_json::to_vec(&answer) }
        .expect("a JSON value serializes"))
}

/// An event stream: events framed with varying spellings, comments, line ends and `[DONE]`.
fn event_stream(u: &mut Unstructured, family: Family) -> ArbitraryResult<Vec<u8>> {
    let mut stream = String::new();
    let events = u.int_in_range(0..=8)?;
    for _ in 0..events {
        let end = *u.choose(&["\n", "\r\n", "\r"])?;
        match u.int_in_range(0..=9)? {
            0 => stream.push_str(&format!(": keep-alive{end}")),
            1 => stream.push_str(&format!("data: [DONE]{end}{end}")),
            2 => stream.push_str(&format!("data: {}{end}{end}", u.arbitrary::<String>()?)),
            _ => {
                if u.ratio(1, 2)? {
                    stream.push_str(&format!("event: {}{end}", u.choose(&["message_start", "message_delta", "x"])?));
                }
                let data = serde_json::to_string(&answer_event(u, family)?).expect("a JSON value serializes");
                let field = *u.choose(&["data: ", "data:", "data:  "])?;
                stream.push_str(&format!("{field}{data}{end}{end}"));
            }
        }
    }
    Ok(stream.into_bytes())
}

/// The key record: a record that validates survives a round trip through its stored form.
pub fn key_record(data: &[u8]) {
    let Ok(policy) = KeyPolicy::from_json(data) else { return };
    let stored = serde_json::to_vec(policy.record()).expect("a record serializes");
    let again = KeyPolicy::from_json(&stored).unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(&stored)));
    assert_eq!(again.record(), policy.record());
}

const NOW_MS: u64 = 1_700_000_000_000;
const GROUPS: &[&str] = &["default", "eu"];

/// The admin inputs: each type parsed from the body, then its checks; nothing panics, and a
/// refusal is a 400.
pub fn admin_input(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    let checked = match kind % 8 {
        0 => parse::<NewKey>(body).and_then(|key| {
            key.check(NOW_MS)?;
            check_rules(&key.rules, GROUPS)
        }),
        1 => parse::<KeyPatch>(body).and_then(|patch| {
            patch.check(NOW_MS)?;
            check_rules(&patch.rules.apply(&KeyRules::default()), GROUPS)
        }),
        2 => parse::<Boundary>(body).and_then(|boundary| check_boundary("boundary", &boundary, GROUPS)),
        3 => parse::<NewProject>(body).and_then(|project| project.check(GROUPS)),
        4 => parse::<ProjectPatch>(body).and_then(|patch| patch.check(GROUPS)),
        5 => parse::<NewPrincipal>(body).and_then(|principal| principal.check(NOW_MS)),
        6 => parse::<RotateRequest>(body).map(drop),
        _ => parse::<MemberPut>(body).map(drop),
    };
    if let Err(error) = checked {
        assert_eq!(error.status(), 400, "{error:?}");
    }
}

/// Glob matching agrees with a naive recursive matcher.
pub fn glob(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (pattern, name) = text.split_once('\0').unwrap_or((&text, ""));
    if pattern.len() > 64 || name.len() > 256 {
        return;
    }
    assert_eq!(glob_match(pattern, name), naive_glob(pattern.as_bytes(), name.as_bytes()), "{pattern:?} {name:?}");
}

/// `*` matches any run of bytes, every other byte itself: straight from the definition (a star
/// matches nothing, or one byte and then the star again), remembering answers by position in a
/// table so many stars stay cheap (at most one answer per pair of positions).
pub fn naive_glob(pattern: &[u8], name: &[u8]) -> bool {
    fn matches(pattern: &[u8], name: &[u8], seen: &mut [Option<bool>], width: usize) -> bool {
        let at = pattern.len() * width + name.len();
        if let Some(known) = seen[at] {
            return known;
        }
        let answer = match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => {
                matches(rest, name, seen, width) || (!name.is_empty() && matches(pattern, &name[1..], seen, width))
            }
            Some((c, rest)) => name.first() == Some(c) && matches(rest, &name[1..], seen, width),
        };
        seen[at] = Some(answer);
        answer
    }
    let width = name.len() + 1;
    matches(pattern, name, &mut vec![None; (pattern.len() + 1) * width], width)
}

/// The IP allowlist: parsing never panics, a list permits every address it names, and an
/// empty list permits everyone.
pub fn ip_allowlist(data: &[u8]) {
    if data.len() < 16 {
        return;
    }
    let (client, entries) = data.split_at(16);
    let client = IpAddr::from(<[u8; 16]>::try_from(client).expect("16 bytes"));
    let text = String::from_utf8_lossy(entries);
    let entries: Vec<&str> = text.lines().collect();
    let Ok(list) = IpAllowlist::parse(entries.iter().copied()) else { return };
    for entry in &entries {
        if let Ok(address) = entry.trim().parse::<IpAddr>() {
            assert!(list.permits(Some(address)), "{entries:?} refuses {address}");
        }
    }
    let _ = list.permits(Some(client));
    assert_eq!(list.permits(None), list.is_empty());
}

/// Webhook URL validation: an accepted URL is https (or http to a loopback host), has a host,
/// no credentials and no fragment.
pub fn webhook_url(data: &[u8]) {
    let Ok(endpoint) = parse_endpoint_request(data) else { return };
    let url = url::Url::parse(&endpoint.url).expect("an accepted URL parses");
    assert!(url.host().is_some() && url.username().is_empty() && url.password().is_none() && url.fragment().is_none());
    assert!(url.scheme() == "https" || url.scheme() == "http", "{url}");
}
