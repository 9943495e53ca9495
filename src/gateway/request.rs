//! What the gateway needs from a request body, read in one parse: [`inspect`] → [`RequestFacts`];
//! and the body to forward, [`forward_body`], which is the client's bytes with only the members
//! the gateway must set added or changed.
//!
//! Flow: the edge refuses bodies over [`MAX_BODY_BYTES`] with [`body_too_large`]; [`inspect`]
//! parses POST bodies once ([`body_view`]): the fields that matter,
//! the members, tools and content parts judged against the route's table
//! ([`members`](crate::gateway::members)), and the bounds of the call's input and output
//! ([`bounds`](crate::gateway::bounds)). What every key is refused (state shared across the
//! upstream account, work after the answer) is refused here (403 `member_not_allowed`); what only
//! keys with spend caps are refused is carried in the facts for the metering to decide.
//!
//! [`forward_body`] sends upstream, besides the client's members:
//! - the output cap reserved, when the client sent none, in the family's field
//!   (`max_completion_tokens` for chat, `max_tokens` for legacy completions and Anthropic,
//!   `max_output_tokens` for Responses, `generationConfig.maxOutputTokens` for Gemini);
//! - `store: false` on Responses calls without it (`store: true` is refused);
//! - `stream_options.include_usage: true` on OpenAI chat/completions streams without it;
//! - the target's model name when its `model_map` renames it.
//!
//! Added members are spliced in after the opening `{` and the body is otherwise sent byte for
//! byte; when one of them is already present (as `null`, or a Gemini `generationConfig` without
//! a cap) or the model is renamed, the body is rebuilt as a JSON object whose members are
//! unchanged but for those (their order may change).
//!
//! Routes whose model comes from the body must name one (400 `missing_model`), even where the
//! upstream has a default (`/images/generations`, `/moderations`): an unnamed default model would
//! slip past the key's model policy.

use crate::error::{ApiError, Code};
use crate::family::Family;
use crate::gateway::body_view::{self, BodyView};
use crate::gateway::bounds::{image_tokens_max, InputParts, OutputCap, GEMINI_MAX_THINKING_TOKENS};
use crate::gateway::members::Refusal;
use crate::gateway::route::{Endpoint, ModelSource, Route};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Largest request body the gateway accepts (10 MiB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Longest model name accepted in a body.
pub const MAX_BODY_MODEL_LEN: usize = 256;

/// 413 for a body over [`MAX_BODY_BYTES`].
pub fn body_too_large() -> ApiError {
    ApiError::new(Code::BodyTooLarge, format!("The request body is larger than {MAX_BODY_BYTES} bytes."))
}

/// The facts about one request the checks, the ledger and the forwarder need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The model the client asked for (from the body or the path); `None` only on routes
    /// without a model ([`ModelSource::None`]).
    pub model: Option<String>,
    /// Whether the answer is a stream: body `stream: true`, or Gemini `streamGenerateContent`.
    pub stream: bool,
    /// The output cap sent upstream and reserved; `None` on routes without billed output.
    pub output: Option<OutputCap>,
    /// Whether an OpenAI client asked for usage in its stream (`stream_options.include_usage`).
    pub include_usage_requested: bool,
    /// An upper bound on the input tokens (see [`bounds`](crate::gateway::bounds)); spend
    /// caps reserve it.
    pub input_tokens_bound: u64,
    /// A tighter estimate of the input tokens, which token windows reserve.
    pub input_tokens_estimate: u64,
    /// The first member, tool or input part refused to keys with spend caps.
    pub capped_refusal: Option<Refusal>,
    /// The first member or tool kind not in the route's tables (refused in strict mode).
    pub unknown_member: Option<String>,
    /// What [`forward_body`] adds.
    pub rewrite: Rewrite,
}

/// The members [`forward_body`] sets, decided by [`inspect`] (the cap's value is the
/// [`RequestFacts::output`]'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// The field the output cap is written to, when the client sent no cap.
    pub cap_field: Option<&'static str>,
    /// Send `store: false`.
    pub store_false: bool,
    /// Ask an OpenAI stream for its usage.
    pub request_usage: bool,
    /// A member to set is already in the body, so it is rebuilt rather than spliced.
    pub rebuild: bool,
}

impl Rewrite {
    fn is_empty(&self) -> bool {
        self.cap_field.is_none() && !self.store_false && !self.request_usage
    }
}

/// Reads the facts of a request on `route` from its `body`.
///
/// GET routes ignore the body. POST routes need a non-empty JSON object body (400
/// `missing_body`, `invalid_json`); routes with the model in the body need a valid one (400
/// `missing_model`, `invalid_model`). A member, tool or input part that touches state shared
/// across keys is refused (403 `member_not_allowed`).
pub fn inspect(route: &Route, body: &[u8]) -> Result<RequestFacts, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(body_too_large());
    }
    let path_model = route.path_model().map(str::to_owned);
    if route.endpoint.method() == "GET" {
        return Ok(RequestFacts { model: path_model, ..RequestFacts::default() });
    }
    if body.is_empty() {
        return Err(ApiError::new(Code::MissingBody, "This route needs a JSON request body."));
    }
    // JSON is UTF-8; checked once here, for the whole body (members the view skips included, which
    // must not reach the upstream either), so the parse need not check its strings again.
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(ApiError::new(Code::InvalidJson, "The request body is not valid UTF-8."));
    };
    let mut view = body_view::parse(route, body).map_err(invalid_json)?;
    let model = match route.model_source {
        ModelSource::Body => Some(body_model(view.model.take().flatten())?),
        _ => path_model,
    };
    let findings = &mut view.findings;
    if let Some(refusal) = findings.shared.take() {
        return Err(refusal.into_api_error());
    }
    let input = InputParts {
        text_bytes: (body.len() as u64).saturating_sub(findings.image_bytes),
        images: findings.images,
        tools: findings.tools,
    };
    let image_max = image_tokens_max(route.family, model.as_deref());
    let output = output_cap(route.endpoint, &view);
    let stream_options = view.stream_options.as_ref();
    let include_usage_requested = route.family == Family::OpenAi
        && stream_options.and_then(Option::as_ref).and_then(|o| o.include_usage) == Some(true);
    let stream = view.stream.flatten() == Some(true) || route.endpoint == Endpoint::StreamGenerateContent;
    let rewrite = rewrite(route, &view, output, stream && !include_usage_requested);
    Ok(RequestFacts {
        model,
        stream,
        output,
        include_usage_requested,
        input_tokens_bound: input.bound(image_max),
        input_tokens_estimate: input.estimate(image_max),
        capped_refusal: view.findings.capped.take(),
        unknown_member: view.findings.unknown.take(),
        rewrite,
    })
}

/// The output cap of a call on `endpoint`: the client's per choice, if it sent one (the larger
/// of chat's two fields), the choices billed and, for Gemini, the thinking the cap may not cover.
fn output_cap(endpoint: Endpoint, view: &BodyView) -> Option<OutputCap> {
    let get = |field: &Option<Option<u64>>| field.flatten();
    let (client, choices, thinking) = match endpoint {
        Endpoint::ChatCompletions => (get(&view.max_completion_tokens).max(get(&view.max_tokens)), get(&view.n), 0),
        Endpoint::Completions => (get(&view.max_tokens), get(&view.n).max(get(&view.best_of)), 0),
        Endpoint::Responses => (get(&view.max_output_tokens), None, 0),
        Endpoint::Messages => (get(&view.max_tokens), None, 0),
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
            let config = view.generation_config.as_ref().and_then(Option::as_ref);
            let budget = config.and_then(|c| c.thinking_config.as_ref()).and_then(|t| t.thinking_budget);
            let thinking = budget.and_then(|b| u64::try_from(b).ok()).unwrap_or(GEMINI_MAX_THINKING_TOKENS);
            (config.and_then(|c| c.max_output_tokens), config.and_then(|c| c.candidate_count), thinking)
        }
        _ => return None,
    };
    Some(OutputCap::new(client, choices, thinking))
}

/// What [`forward_body`] must set on this call (see the module doc).
fn rewrite(route: &Route, view: &BodyView, output: Option<OutputCap>, stream_without_usage: bool) -> Rewrite {
    let cap_field = output.filter(|o| o.client.is_none()).and_then(|_| match route.endpoint {
        Endpoint::ChatCompletions => Some(("max_completion_tokens", view.max_completion_tokens.is_some())),
        Endpoint::Completions | Endpoint::Messages => Some(("max_tokens", view.max_tokens.is_some())),
        Endpoint::Responses => Some(("max_output_tokens", view.max_output_tokens.is_some())),
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
            Some((GEMINI_CAP_FIELD, view.generation_config.is_some()))
        }
        _ => None,
    });
    let store_false = route.endpoint == Endpoint::Responses && view.store != Some(Some(false));
    let request_usage = route.family == Family::OpenAi
        && matches!(route.endpoint, Endpoint::ChatCompletions | Endpoint::Completions)
        && stream_without_usage;
    let rebuild = cap_field.is_some_and(|(_, present)| present)
        || (store_false && view.store.is_some())
        || (request_usage && view.stream_options.is_some());
    Rewrite { cap_field: cap_field.map(|(field, _)| field), store_false, request_usage, rebuild }
}

/// Gemini's output cap, inside `generationConfig`.
const GEMINI_CAP_FIELD: &str = "generationConfig.maxOutputTokens";

/// The body to send upstream: `body` with the members of [`RequestFacts::rewrite`] set and, on
/// a body-model route whose target maps the name, the model renamed to `upstream_model`
/// (`None` keeps the client's model). See the module doc for splicing and rebuilding.
pub fn forward_body<'b>(
    route: &Route,
    facts: &RequestFacts,
    body: &'b [u8],
    upstream_model: Option<&str>,
) -> Result<Cow<'b, [u8]>, ApiError> {
    let rename = upstream_model
        .filter(|upstream| route.model_source == ModelSource::Body && facts.model.as_deref() != Some(*upstream));
    let rewrite = facts.rewrite;
    if rename.is_none() && rewrite.is_empty() {
        return Ok(Cow::Borrowed(body));
    }
    let cap = facts.output.map(|o| o.per_choice());
    let cap = rewrite.cap_field.zip(cap);
    if rename.is_none() && !rewrite.rebuild {
        let mut members = Vec::with_capacity(3);
        if let Some((field, tokens)) = cap {
            members.push(match field.split_once('.') {
                Some((outer, inner)) => format!(r#""{outer}":{{"{inner}":{tokens}}}"#),
                None => format!(r#""{field}":{tokens}"#),
            });
        }
        if rewrite.store_false {
            members.push(r#""store":false"#.to_owned());
        }
        if rewrite.request_usage {
            members.push(r#""stream_options":{"include_usage":true}"#.to_owned());
        }
        return Ok(Cow::Owned(with_members(body, &members.join(","))));
    }
    // Members are kept as the client wrote them (raw JSON text): only the ones set here change,
    // and no number is parsed, so none can fail to parse or change its digits.
    let mut object: RawObject = serde_json::from_slice(body).map_err(invalid_json)?;
    if let Some(upstream) = rename {
        object.insert("model".to_owned(), raw(&serde_json::to_string(upstream).expect("a string serializes")));
    }
    if let Some((field, tokens)) = cap {
        match field.split_once('.') {
            Some((outer, inner)) => set_in_object(&mut object, outer, inner, raw(&tokens.to_string()))?,
            None => {
                object.insert(field.to_owned(), raw(&tokens.to_string()));
            }
        }
    }
    if rewrite.store_false {
        object.insert("store".to_owned(), raw("false"));
    }
    if rewrite.request_usage {
        set_in_object(&mut object, "stream_options", "include_usage", raw("true"))?;
    }
    Ok(Cow::Owned(serde_json::to_vec(&object).expect("a JSON object of JSON texts serializes")))
}

/// A JSON object whose members' values are kept as their JSON text.
type RawObject = BTreeMap<String, Box<RawValue>>;

/// `json` (valid JSON text) as a raw value.
fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("the gateway writes valid JSON")
}

/// Sets `object[outer][inner]`, making `object[outer]` an object if it is absent or `null`.
/// Gemini's snake_case spelling of `outer` is used if that is the one present.
fn set_in_object(object: &mut RawObject, outer: &str, inner: &str, value: Box<RawValue>) -> Result<(), ApiError> {
    let snake = "generation_config";
    let outer = if outer == "generationConfig" && object.contains_key(snake) { snake } else { outer };
    let mut members: RawObject = match object.get(outer).map(|current| current.get().trim()) {
        None | Some("null") => RawObject::new(),
        Some(current) => serde_json::from_str(current).map_err(invalid_json)?,
    };
    members.insert(inner.to_owned(), value);
    let text = serde_json::to_string(&members).expect("a JSON object of JSON texts serializes");
    object.insert(outer.to_owned(), raw(&text));
    Ok(())
}

/// `body`, a JSON object without the given `members` (comma-separated JSON members), with them
/// first.
fn with_members(body: &[u8], members: &str) -> Vec<u8> {
    let open = body.iter().position(|&b| b == b'{').expect("an inspected body is a JSON object");
    let (head, rest) = body.split_at(open + 1);
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(body.len() + members.len() + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(members.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// The body's model name: present, 1..=[`MAX_BODY_MODEL_LEN`] bytes, no whitespace or control
/// characters (so `"gpt-4o "` cannot slip past a block list for `gpt-4o`).
fn body_model(model: Option<String>) -> Result<String, ApiError> {
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::new(Code::MissingModel, "This route needs a 'model' field in the JSON body."))?;
    if model.len() > MAX_BODY_MODEL_LEN || model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::new(
            Code::InvalidModel,
            format!(
                "The 'model' field must be 1 to {MAX_BODY_MODEL_LEN} bytes without whitespace or control characters."
            ),
        ));
    }
    Ok(model)
}

fn invalid_json(error: serde_json::Error) -> ApiError {
    ApiError::new(Code::InvalidJson, format!("The request body is not valid JSON for this route: {error}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;
    use crate::gateway::bounds::REQUEST_OVERHEAD_TOKENS;
    use crate::gateway::route::classify;
    use serde_json::Value;

    fn facts(method: &str, path: &str, body: &str) -> Result<RequestFacts, ApiError> {
        inspect(&classify(method, path).unwrap(), body.as_bytes())
    }

    const CHAT: &str = "/openai/v1/chat/completions";

    /// (path, body, model, stream, max_output_tokens, include_usage_requested)
    type Accepted = (&'static str, &'static str, Option<&'static str>, bool, Option<u64>, bool);

    const ACCEPTED: &[Accepted] = &[
        (CHAT, r#"{"model":"gpt-4o","messages":[]}"#, Some("gpt-4o"), false, None, false),
        (CHAT, r#"{"model":"gpt\u002d4o"}"#, Some("gpt-4o"), false, None, false),
        (CHAT, r#"{"model":"gpt-4o","stream":true}"#, Some("gpt-4o"), true, None, false),
        (CHAT, r#"{"model":"gpt-4o","stream":false,"max_tokens":50}"#, Some("gpt-4o"), false, Some(50), false),
        (
            CHAT,
            r#"{"model":"gpt-4o","max_tokens":50,"max_completion_tokens":70}"#,
            Some("gpt-4o"),
            false,
            Some(70),
            false,
        ),
        (CHAT, r#"{"model":"gpt-4o","max_completion_tokens":70,"n":3}"#, Some("gpt-4o"), false, Some(210), false),
        (CHAT, r#"{"model":"gpt-4o","max_tokens":null,"stream":null}"#, Some("gpt-4o"), false, None, false),
        (
            CHAT,
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#,
            Some("gpt-4o"),
            true,
            None,
            true,
        ),
        (
            CHAT,
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false}}"#,
            Some("gpt-4o"),
            true,
            None,
            false,
        ),
        (
            CHAT,
            r#"{"model":"gpt-4o","unknown":{"deep":[1,2,{"x":null}]},"max_tokens":9}"#,
            Some("gpt-4o"),
            false,
            Some(9),
            false,
        ),
        (
            "/openai/v1/completions",
            r#"{"model":"gpt-3.5-turbo-instruct","max_tokens":10,"n":2,"best_of":5}"#,
            Some("gpt-3.5-turbo-instruct"),
            false,
            Some(50),
            false,
        ),
        (
            "/openai/v1/responses",
            r#"{"model":"o3","stream":true,"max_output_tokens":500,"max_tokens":1}"#,
            Some("o3"),
            true,
            Some(500),
            false,
        ),
        (
            "/openai/v1/embeddings",
            r#"{"model":"text-embedding-3-small","input":"hi","max_tokens":5}"#,
            Some("text-embedding-3-small"),
            false,
            None,
            false,
        ),
        (
            "/openai/v1/images/generations",
            r#"{"model":"gpt-image-1","prompt":"a cat"}"#,
            Some("gpt-image-1"),
            false,
            None,
            false,
        ),
        (
            "/anthropic/v1/messages",
            r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"n":4}"#,
            Some("claude-sonnet-4-5"),
            true,
            Some(1024),
            false,
        ),
        (
            "/anthropic/v1/messages",
            r#"{"model":"claude-sonnet-4-5","max_tokens":1,"stream_options":{"include_usage":true}}"#,
            Some("claude-sonnet-4-5"),
            false,
            Some(1),
            false,
        ),
        (
            "/anthropic/v1/messages/count_tokens",
            r#"{"model":"claude-haiku-4-5","messages":[]}"#,
            Some("claude-haiku-4-5"),
            false,
            None,
            false,
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"contents":[]}"#,
            Some("gemini-2.5-pro"),
            false,
            None,
            false,
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"contents":[],"generationConfig":{"maxOutputTokens":256,"candidateCount":2}}"#,
            Some("gemini-2.5-pro"),
            false,
            Some(512),
            false,
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"generation_config":{"max_output_tokens":64}}"#,
            Some("gemini-2.5-pro"),
            false,
            Some(64),
            false,
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            r#"{"contents":[]}"#,
            Some("gemini-2.5-flash"),
            true,
            None,
            false,
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-flash:countTokens",
            r#"{"contents":[]}"#,
            Some("gemini-2.5-flash"),
            false,
            None,
            false,
        ),
    ];

    #[test]
    fn body_inspection() {
        for &(path, body, model, stream, max_out, usage) in ACCEPTED {
            let f = facts("POST", path, body).unwrap_or_else(|e| panic!("{path} {body}: {e:?}"));
            assert_eq!(f.model.as_deref(), model, "{body}");
            assert_eq!(f.stream, stream, "{body}");
            assert_eq!(f.output.and_then(|o| o.client.map(|cap| cap * o.choices)), max_out, "{body}");
            assert_eq!(f.include_usage_requested, usage, "{body}");
            assert_eq!(f.input_tokens_bound, body.len() as u64 + REQUEST_OVERHEAD_TOKENS, "{body}");
            assert_eq!(f.input_tokens_estimate, (body.len() as u64).div_ceil(4) + REQUEST_OVERHEAD_TOKENS, "{body}");
        }
    }

    /// (path, body, status, code)
    const REFUSED: &[(&str, &str, u16, &str)] = &[
        (CHAT, "", 400, "missing_body"),
        (CHAT, " ", 400, "invalid_json"),
        (CHAT, "{", 400, "invalid_json"),
        (CHAT, "[]", 400, "invalid_json"),
        (CHAT, r#""gpt-4o""#, 400, "invalid_json"),
        (CHAT, r#"{"model":"gpt-4o"} trailing"#, 400, "invalid_json"),
        (CHAT, r#"{"model":42}"#, 400, "invalid_json"),
        (CHAT, r#"{"model":"gpt-4o","stream":"yes"}"#, 400, "invalid_json"),
        (CHAT, r#"{"model":"gpt-4o","max_tokens":-1}"#, 400, "invalid_json"),
        (CHAT, r#"{"model":"gpt-4o","model":"o3"}"#, 400, "invalid_json"),
        (CHAT, r#"{"model":"gpt-4o","stream_options":{},"stream_options":{}}"#, 400, "invalid_json"),
        (CHAT, r#"{"messages":[]}"#, 400, "missing_model"),
        (CHAT, r#"{"model":null}"#, 400, "missing_model"),
        (CHAT, r#"{"model":""}"#, 400, "missing_model"),
        (CHAT, r#"{"model":"gpt-4o "}"#, 400, "invalid_model"),
        (CHAT, r#"{"model":"gpt-4o\n"}"#, 400, "invalid_model"),
        (CHAT, r#"{"model":"gpt\u00004o"}"#, 400, "invalid_model"),
        ("/openai/v1/moderations", r#"{"input":"hi"}"#, 400, "missing_model"),
        ("/anthropic/v1/messages", r#"{"max_tokens":5}"#, 400, "missing_model"),
        ("/gemini/v1beta/models/g:generateContent", "", 400, "missing_body"),
        ("/gemini/v1beta/models/g:generateContent", "not json", 400, "invalid_json"),
        (
            "/gemini/v1beta/models/g:generateContent",
            r#"{"generationConfig":{"maxOutputTokens":1},"generation_config":{}}"#,
            400,
            "invalid_json",
        ),
        // Objects the gateway reads (and may edit) given as arrays of their members in order
        // (found by fuzzing: accepted, then not forwardable).
        ("/gemini/v1beta/models/g:generateContent", r#"{"generationConfig":[null,null,null]}"#, 400, "invalid_json"),
        (
            "/gemini/v1beta/models/g:generateContent",
            r#"{"generationConfig":{"thinkingConfig":[5]}}"#,
            400,
            "invalid_json",
        ),
        (CHAT, r#"{"model":"gpt-4o","stream":true,"stream_options":[true]}"#, 400, "invalid_json"),
    ];

    #[test]
    fn body_refusals() {
        for &(path, body, status, code) in REFUSED {
            let err = facts("POST", path, body).expect_err(body);
            assert_eq!((err.status(), err.code().as_str()), (status, code), "{path} {body}: {}", err.message);
            assert_eq!(err.kind(), ErrorType::InvalidRequestError);
        }
    }

    #[test]
    fn invalid_json_carries_serde_message() {
        let err = facts("POST", CHAT, "{").unwrap_err();
        assert!(err.message.contains("EOF while parsing"), "{}", err.message);
    }

    #[test]
    fn long_body_model_refused() {
        let body = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_BODY_MODEL_LEN + 1));
        assert_eq!(facts("POST", CHAT, &body).unwrap_err().code(), "invalid_model");
    }

    #[test]
    fn get_routes_ignore_the_body() {
        let f = facts("GET", "/openai/v1/models", "").unwrap();
        assert_eq!(f, RequestFacts::default());
        let f = facts("GET", "/gemini/v1beta/models/gemini-2.5-pro", "not json").unwrap();
        assert_eq!(f.model.as_deref(), Some("gemini-2.5-pro"));
    }

    #[test]
    fn oversized_body() {
        let route = classify("POST", CHAT).unwrap();
        let err = inspect(&route, &vec![b' '; MAX_BODY_BYTES + 1]).unwrap_err();
        assert_eq!(
            (err.status(), err.code().as_str(), err.kind()),
            (413, "body_too_large", ErrorType::InvalidRequestError)
        );
    }

    fn forward(path: &str, body: &str, upstream_model: Option<&str>) -> (Cow<'static, [u8]>, Option<Value>) {
        let route = classify("POST", path).unwrap();
        let body: &'static [u8] = Box::leak(body.as_bytes().to_vec().into_boxed_slice());
        let f = inspect(&route, body).unwrap();
        let out = forward_body(&route, &f, body, upstream_model).unwrap();
        let parsed = matches!(out, Cow::Owned(_)).then(|| serde_json::from_slice(&out).unwrap());
        (out, parsed)
    }

    #[test]
    fn forward_body_is_untouched_when_nothing_changes() {
        let cases = [
            (CHAT, r#"{"model":"gpt-4o","max_tokens":9}"#, Some("gpt-4o")),
            (
                CHAT,
                r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":9}"#,
                None,
            ),
            ("/openai/v1/responses", r#"{"model":"o3","stream":true,"store":false,"max_output_tokens":9}"#, Some("o3")),
            ("/anthropic/v1/messages", r#"{"model":"claude","stream":true,"max_tokens":9}"#, None),
            (
                "/gemini/v1beta/models/g:streamGenerateContent",
                r#"{"contents":[],"generationConfig":{"maxOutputTokens":9}}"#,
                Some("other"),
            ),
            ("/openai/v1/embeddings", r#"{"model":"e","input":"hi"}"#, None),
        ];
        for (path, body, upstream) in cases {
            let (out, _) = forward(path, body, upstream);
            assert_eq!(out, Cow::Borrowed(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn forward_body_requests_usage_keeping_other_fields() {
        let (_, v) = forward(
            CHAT,
            r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#,
            None,
        );
        let v = v.unwrap();
        assert_eq!(v["stream_options"], serde_json::json!({"include_usage": true}));
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["model"], "gpt-4o");

        let (_, v) =
            forward(CHAT, r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false,"x":1}}"#, None);
        assert_eq!(v.unwrap()["stream_options"], serde_json::json!({"include_usage": true, "x": 1}));

        let (_, v) = forward(CHAT, r#"{"model":"gpt-4o","stream":true,"stream_options":null}"#, None);
        assert_eq!(v.unwrap()["stream_options"], serde_json::json!({"include_usage": true}));

        let (_, v) = forward("/openai/v1/completions", r#"{"model":"i","stream":true}"#, None);
        assert_eq!(v.unwrap()["stream_options"]["include_usage"], true);
    }

    #[test]
    fn forward_body_splices_usage_in_without_rebuilding() {
        let (out, _) = forward(CHAT, " {\n \"model\": \"gpt-4o\", \"stream\": true, \"z\": [1, 2]}", None);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            " {\"max_completion_tokens\":4096,\"stream_options\":{\"include_usage\":true},\n \"model\": \"gpt-4o\", \"stream\": true, \"z\": [1, 2]}"
        );
        // An explicit null is a member too: rebuilt, never duplicated.
        let (out, _) = forward(CHAT, r#"{"model":"gpt-4o","stream":true,"stream_options":null}"#, None);
        assert_eq!(std::str::from_utf8(&out).unwrap().matches("stream_options").count(), 1);
    }

    #[test]
    fn forward_body_renames_mapped_models() {
        let (_, v) = forward(CHAT, r#"{"model":"gpt-4o","stream":true}"#, Some("gpt-4o-2024-08-06"));
        let v = v.unwrap();
        assert_eq!(v["model"], "gpt-4o-2024-08-06");
        assert_eq!(v["stream_options"]["include_usage"], true);
        let (_, v) = forward("/anthropic/v1/messages", r#"{"model":"claude","max_tokens":5}"#, Some("claude-x"));
        let v = v.unwrap();
        assert_eq!(v["model"], "claude-x");
        assert_eq!(v["max_tokens"], 5);
    }
}
