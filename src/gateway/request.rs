//! What the gateway needs from a request body, read in one parse: [`inspect`] → [`RequestFacts`];
//! and the body to forward, [`forward_body`], which is the client's bytes untouched unless the
//! gateway must change them.
//!
//! Flow: the edge refuses bodies over [`MAX_BODY_BYTES`] with [`body_too_large`]; [`inspect`]
//! parses POST bodies into a small struct of the fields that matter (unknown fields are skipped,
//! never built into a JSON tree); after routing, [`forward_body`] renames the model (a target's
//! `model_map`) and asks OpenAI streams for their usage.
//!
//! Fields the gateway reads must appear at most once: a duplicated `model` or `stream_options`
//! is refused (400 `invalid_json`), so the gateway and the upstream cannot read different values.
//!
//! Routes whose model comes from the body must name one (400 `missing_model`), even where the
//! upstream has a default (`/images/generations`, `/moderations`): an unnamed default model would
//! slip past the key's model policy.

use crate::error::{ApiError, ErrorType};
use crate::family::Family;
use crate::gateway::route::{Endpoint, ModelSource, Route};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// Largest request body the gateway accepts (10 MiB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Longest model name accepted in a body.
pub const MAX_BODY_MODEL_LEN: usize = 256;

/// 413 for a body over [`MAX_BODY_BYTES`].
pub fn body_too_large() -> ApiError {
    ApiError::new(
        413,
        ErrorType::InvalidRequestError,
        "body_too_large",
        format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
    )
}

/// The facts about one request the checks, the ledger and the forwarder need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The model the client asked for (from the body or the path); `None` only on routes
    /// without a model ([`ModelSource::None`]).
    pub model: Option<String>,
    /// Whether the answer is a stream: body `stream: true`, or Gemini `streamGenerateContent`.
    pub stream: bool,
    /// Upper bound on output tokens, across all requested choices, if the body sets one:
    /// OpenAI chat `max_completion_tokens` (else `max_tokens`), legacy completions and Anthropic
    /// `max_tokens`, Responses `max_output_tokens`, Gemini `generationConfig.maxOutputTokens`;
    /// multiplied by `n` / `best_of` (OpenAI) or `candidateCount` (Gemini).
    pub max_output_tokens: Option<u64>,
    /// Whether an OpenAI client asked for usage in its stream (`stream_options.include_usage`).
    pub include_usage_requested: bool,
    /// Whether the body has a `stream_options` member at all (even `null`).
    pub has_stream_options: bool,
    /// `ceil(body bytes / 4)`: a reservation, not a count. Tokenizers average about four bytes
    /// of English or code per token and the JSON framing is counted too, so for text this
    /// over-estimates; it can under-estimate CJK-heavy text and grossly over-estimates inline
    /// base64 media. The ledger settles on the usage the upstream reports.
    pub input_tokens_estimate: u64,
}

/// The body fields any family's checks or limits use. Unknown fields are skipped.
#[derive(Deserialize)]
struct BodyFields {
    model: Option<String>,
    stream: Option<bool>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    n: Option<u64>,
    best_of: Option<u64>,
    /// `Some(None)` for an explicit `null`, `None` when absent.
    #[serde(default, deserialize_with = "present")]
    stream_options: Option<Option<StreamOptions>>,
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

/// Marks a member as present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(rename = "candidateCount", alias = "candidate_count")]
    candidate_count: Option<u64>,
}

/// Reads the facts of a request on `route` from its `body`.
///
/// GET routes ignore the body. POST routes need a non-empty JSON object body (400
/// `missing_body`, `invalid_json`); routes with the model in the body need a valid one (400
/// `missing_model`, `invalid_model`).
pub fn inspect(route: &Route, body: &[u8]) -> Result<RequestFacts, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(body_too_large());
    }
    let input_tokens_estimate = (body.len() as u64).div_ceil(4);
    let path_model = route.path_model().map(str::to_owned);
    if route.endpoint.method() == "GET" {
        return Ok(RequestFacts { model: path_model, input_tokens_estimate, ..RequestFacts::default() });
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("missing_body", "This route needs a JSON request body."));
    }
    let mut fields: BodyFields = serde_json::from_slice(body).map_err(invalid_json)?;
    let model = match route.model_source {
        ModelSource::Body => Some(body_model(fields.model.take())?),
        _ => path_model,
    };
    let is_openai = route.family == Family::OpenAi;
    Ok(RequestFacts {
        model,
        stream: fields.stream == Some(true) || route.endpoint == Endpoint::StreamGenerateContent,
        max_output_tokens: max_output_tokens(route.endpoint, &fields),
        include_usage_requested: is_openai
            && fields.stream_options.as_ref().and_then(|o| o.as_ref()).and_then(|o| o.include_usage) == Some(true),
        has_stream_options: fields.stream_options.is_some(),
        input_tokens_estimate,
    })
}

/// The body to send upstream: `body` itself unless the model must be renamed to `upstream_model`
/// (a body-model route whose target maps the name) or an OpenAI chat/completions stream must
/// be asked for usage (`stream_options.include_usage: true`, keeping other stream options) so
/// the call can be settled. In the common case — usage to ask for, no `stream_options` member,
/// no rename — the member is spliced in after the opening `{` and the body is otherwise sent
/// byte for byte; otherwise the body is rebuilt as a JSON object whose members are unchanged
/// but for those two (their order may change).
///
/// `upstream_model: None` keeps the client's model.
pub fn forward_body<'b>(
    route: &Route,
    facts: &RequestFacts,
    body: &'b [u8],
    upstream_model: Option<&str>,
) -> Result<Cow<'b, [u8]>, ApiError> {
    let rename = upstream_model
        .filter(|upstream| route.model_source == ModelSource::Body && facts.model.as_deref() != Some(*upstream));
    let request_usage = needs_usage_requested(route, facts);
    if rename.is_none() && !request_usage {
        return Ok(Cow::Borrowed(body));
    }
    if rename.is_none() && !facts.has_stream_options {
        return Ok(Cow::Owned(with_usage_requested(body)));
    }
    let mut object: Map<String, Value> = serde_json::from_slice(body).map_err(invalid_json)?;
    if let Some(upstream) = rename {
        object.insert("model".to_owned(), Value::from(upstream));
    }
    if request_usage {
        match object.entry("stream_options").or_insert(Value::Null) {
            Value::Object(options) => {
                options.insert("include_usage".to_owned(), Value::Bool(true));
            }
            absent_or_null => *absent_or_null = json!({ "include_usage": true }),
        }
    }
    Ok(Cow::Owned(serde_json::to_vec(&object).expect("a JSON object of JSON values serializes")))
}

/// `body`, a JSON object without a `stream_options` member, with `"stream_options":
/// {"include_usage":true}` as its first member.
fn with_usage_requested(body: &[u8]) -> Vec<u8> {
    const MEMBER: &[u8] = br#""stream_options":{"include_usage":true}"#;
    let open = body.iter().position(|&b| b == b'{').expect("an inspected body is a JSON object");
    let (head, rest) = body.split_at(open + 1);
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(body.len() + MEMBER.len() + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(MEMBER);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// Whether an OpenAI stream that reports usage only on request did not request it.
fn needs_usage_requested(route: &Route, facts: &RequestFacts) -> bool {
    route.family == Family::OpenAi
        && matches!(route.endpoint, Endpoint::ChatCompletions | Endpoint::Completions)
        && facts.stream
        && !facts.include_usage_requested
}

fn max_output_tokens(endpoint: Endpoint, fields: &BodyFields) -> Option<u64> {
    let (per_choice, choices) = match endpoint {
        Endpoint::ChatCompletions => (fields.max_completion_tokens.or(fields.max_tokens), fields.n),
        Endpoint::Completions => (fields.max_tokens, fields.n.max(fields.best_of)),
        Endpoint::Responses => (fields.max_output_tokens, None),
        Endpoint::Messages => (fields.max_tokens, None),
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
            let config = fields.generation_config.as_ref();
            (config.and_then(|c| c.max_output_tokens), config.and_then(|c| c.candidate_count))
        }
        _ => (None, None),
    };
    per_choice.map(|tokens| tokens.saturating_mul(choices.unwrap_or(1).max(1)))
}

/// The body's model name: present, 1..=[`MAX_BODY_MODEL_LEN`] bytes, no whitespace or control
/// characters (so `"gpt-4o "` cannot slip past a block list for `gpt-4o`).
fn body_model(model: Option<String>) -> Result<String, ApiError> {
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing_model", "This route needs a 'model' field in the JSON body."))?;
    if model.len() > MAX_BODY_MODEL_LEN || model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request(
            "invalid_model",
            format!(
                "The 'model' field must be 1 to {MAX_BODY_MODEL_LEN} bytes without whitespace or control characters."
            ),
        ));
    }
    Ok(model)
}

fn invalid_json(error: serde_json::Error) -> ApiError {
    ApiError::bad_request("invalid_json", format!("The request body is not valid JSON for this route: {error}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::route::classify;

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
            assert_eq!(f.max_output_tokens, max_out, "{body}");
            assert_eq!(f.include_usage_requested, usage, "{body}");
            assert_eq!(f.input_tokens_estimate, (body.len() as u64).div_ceil(4), "{body}");
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
    ];

    #[test]
    fn body_refusals() {
        for &(path, body, status, code) in REFUSED {
            let err = facts("POST", path, body).expect_err(body);
            assert_eq!((err.status, err.code), (status, code), "{path} {body}: {}", err.message);
            assert_eq!(err.kind, ErrorType::InvalidRequestError);
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
        assert_eq!(facts("POST", CHAT, &body).unwrap_err().code, "invalid_model");
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
        assert_eq!((err.status, err.code, err.kind), (413, "body_too_large", ErrorType::InvalidRequestError));
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
            (CHAT, r#"{"model":"gpt-4o"}"#, Some("gpt-4o")),
            (CHAT, r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#, None),
            ("/openai/v1/responses", r#"{"model":"o3","stream":true}"#, Some("o3")),
            ("/anthropic/v1/messages", r#"{"model":"claude","stream":true}"#, None),
            ("/gemini/v1beta/models/g:streamGenerateContent", r#"{"contents":[]}"#, Some("other")),
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
            " {\"stream_options\":{\"include_usage\":true},\n \"model\": \"gpt-4o\", \"stream\": true, \"z\": [1, 2]}"
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
