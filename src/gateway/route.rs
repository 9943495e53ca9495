//! Which API call a request path names: path → [`Route`], or a refusal. There are no side doors.
//!
//! Flow: the path must start with a family prefix (`/openai/v1`, `/anthropic/v1`,
//! `/gemini/v1beta`); the rest must be *clean* (non-empty segments of `[A-Za-z0-9._:-]`, no `.` or
//! `..` segments, so no percent-encoding, double slashes, traversal or query string); then it is
//! looked up in the table of offered routes, the table of refused routes, or the model-in-path
//! patterns (`/models/{id}`, Gemini `/models/{model}:{method}`). Anything else is 404.
//!
//! Refused on purpose (403 `route_not_allowed`), whatever the method:
//! - Batch, file, fine-tuning, assistant, vector-store, realtime and stored-object routes
//!   (`/responses/{id}`, `/chat/completions/{id}`, …). They name no model per request, so a key's
//!   model, routing and spend policy cannot be applied to them; and every team key shares the
//!   organisation's upstream account, so stored objects would be readable across keys.
//! - Multipart uploads (`/audio/transcriptions`, `/audio/translations`, `/images/edits`,
//!   `/images/variations`): the model is a form field, and checking it with a parse that may differ
//!   from the upstream's would let a crafted form name one model to the gateway and another upstream.
//!
//! `/admin/…` is routed by the gateway before [`classify`] is called; here it is just unknown.
//! So are the gateway's own family-neutral routes ([`gateway_route`], e.g. `GET /v1/key`), which
//! the pipeline looks up first.

use crate::error::{ApiError, Code};
use crate::family::Family;
use std::borrow::Cow;
use std::ops::Range;

/// Every family, in the order they are listed to people.
pub const FAMILIES: [Family; 3] = [Family::OpenAi, Family::Anthropic, Family::Gemini];

/// The path prefix of a family; routes and upstream base URLs are relative to it.
pub fn family_prefix(family: Family) -> &'static str {
    match family {
        Family::OpenAi => "/openai/v1",
        Family::Anthropic => "/anthropic/v1",
        Family::Gemini => "/gemini/v1beta",
    }
}

/// Longest model id accepted in a path.
pub const MAX_PATH_MODEL_LEN: usize = 128;

/// What kind of call a route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OpenAI `POST /chat/completions`.
    ChatCompletions,
    /// OpenAI legacy `POST /completions`.
    Completions,
    /// OpenAI `POST /responses`.
    Responses,
    /// OpenAI `POST /embeddings`.
    Embeddings,
    /// `GET /models` of any family.
    ModelsList,
    /// `GET /models/{id}` of any family.
    ModelInfo,
    /// Anthropic `POST /messages`.
    Messages,
    /// Anthropic `POST /messages/count_tokens`, Gemini `POST /models/{model}:countTokens`.
    CountTokens,
    /// Gemini `POST /models/{model}:generateContent`.
    GenerateContent,
    /// Gemini `POST /models/{model}:streamGenerateContent`.
    StreamGenerateContent,
    /// OpenAI `POST /moderations`: names a model in its body, free of charge.
    Moderations,
    /// An OpenAI JSON route whose body names a model and which is billed per unit (image,
    /// character), not in tokens: `/images/generations`, `/audio/speech`. Its spend cannot be
    /// metered, so keys with spend caps are refused it.
    BilledPerUnit,
}

impl Endpoint {
    /// The one HTTP method the endpoint accepts.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::ModelsList | Endpoint::ModelInfo => "GET",
            _ => "POST",
        }
    }

    /// Whether the upstream bills the call in tokens (so token limits reserve and settle it).
    /// Model lists, token counting, moderations and [`Endpoint::BilledPerUnit`] count against
    /// request limits only.
    pub fn costs_tokens(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions
                | Endpoint::Completions
                | Endpoint::Responses
                | Endpoint::Embeddings
                | Endpoint::Messages
                | Endpoint::GenerateContent
                | Endpoint::StreamGenerateContent
        )
    }
}

/// Where the model a call uses is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The JSON body's `model` field.
    Body,
    /// This byte range of [`Route::upstream_path`].
    Path(Range<usize>),
    /// The call uses no particular model (model lists).
    None,
}

/// A classified request path, as made by [`classify`] (which guarantees a `Path` range lies on
/// character boundaries of `upstream_path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    pub endpoint: Endpoint,
    pub model_source: ModelSource,
    /// The path after the family prefix, to append to a target's base URL, e.g.
    /// `/chat/completions` or `/models/gemini-2.5-pro:generateContent`. Always clean (see module doc).
    pub upstream_path: String,
}

impl Route {
    /// The model named in the path, if the route has one there.
    pub fn path_model(&self) -> Option<&str> {
        match &self.model_source {
            ModelSource::Path(range) => Some(&self.upstream_path[range.clone()]),
            _ => None,
        }
    }

    /// The upstream path with the path's model replaced by `upstream_model` (a target's
    /// `model_map` may rename it). Borrowed when nothing changes.
    pub fn upstream_path_for(&self, upstream_model: &str) -> Cow<'_, str> {
        match &self.model_source {
            ModelSource::Path(range) if self.upstream_path[range.clone()] != *upstream_model => {
                let path = &self.upstream_path;
                Cow::Owned([&path[..range.start], upstream_model, &path[range.end..]].concat())
            }
            _ => Cow::Borrowed(&self.upstream_path),
        }
    }

    pub fn costs_tokens(&self) -> bool {
        self.endpoint.costs_tokens()
    }
}

/// A family-neutral route the gateway answers itself, never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayEndpoint {
    /// `GET /v1/key`: the key's own limits, usage and headroom.
    KeyQuota,
}

/// Family-neutral routes (method, path, endpoint) and why each is offered. A key of any family's
/// header authenticates them.
const GATEWAY_ROUTES: &[(&str, &str, GatewayEndpoint, &str)] = &[(
    "GET",
    "/v1/key",
    GatewayEndpoint::KeyQuota,
    "a key holder reads its own key's limits, usage and headroom with the key itself, and nothing about other keys",
)];

/// The gateway's own route `path` names, if it names one; 405 for another method.
pub fn gateway_route(method: &str, path: &str) -> Result<Option<GatewayEndpoint>, ApiError> {
    match GATEWAY_ROUTES.iter().find(|(_, p, _, _)| *p == path) {
        None => Ok(None),
        Some(&(allowed, _, endpoint, _)) if method == allowed => Ok(Some(endpoint)),
        Some(&(allowed, ..)) => Err(method_not_allowed(method, path, allowed)),
    }
}

/// Why a path under a known family is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No model per request: batches, files, stored objects, …
    Unpoliced,
    /// The model is a multipart form field.
    Multipart,
}

/// Fixed paths (after the family prefix) that are offered; their model is in the body, or absent
/// for model lists.
const OFFERED: &[(Family, &str, Endpoint)] = &[
    (Family::OpenAi, "/chat/completions", Endpoint::ChatCompletions),
    (Family::OpenAi, "/completions", Endpoint::Completions),
    (Family::OpenAi, "/responses", Endpoint::Responses),
    (Family::OpenAi, "/embeddings", Endpoint::Embeddings),
    (Family::OpenAi, "/models", Endpoint::ModelsList),
    (Family::OpenAi, "/images/generations", Endpoint::BilledPerUnit),
    (Family::OpenAi, "/audio/speech", Endpoint::BilledPerUnit),
    (Family::OpenAi, "/moderations", Endpoint::Moderations),
    (Family::Anthropic, "/messages", Endpoint::Messages),
    (Family::Anthropic, "/messages/count_tokens", Endpoint::CountTokens),
    (Family::Anthropic, "/models", Endpoint::ModelsList),
    (Family::Gemini, "/models", Endpoint::ModelsList),
];

/// Path prefixes (after the family prefix) refused with everything beneath them. Checked after
/// [`OFFERED`], so `/responses` is offered while `/responses/{id}` is refused.
const REFUSED: &[(Family, &str, Refusal)] = &[
    (Family::OpenAi, "/chat/completions", Refusal::Unpoliced),
    (Family::OpenAi, "/responses", Refusal::Unpoliced),
    (Family::OpenAi, "/conversations", Refusal::Unpoliced),
    (Family::OpenAi, "/files", Refusal::Unpoliced),
    (Family::OpenAi, "/uploads", Refusal::Unpoliced),
    (Family::OpenAi, "/batches", Refusal::Unpoliced),
    (Family::OpenAi, "/fine_tuning", Refusal::Unpoliced),
    (Family::OpenAi, "/vector_stores", Refusal::Unpoliced),
    (Family::OpenAi, "/assistants", Refusal::Unpoliced),
    (Family::OpenAi, "/threads", Refusal::Unpoliced),
    (Family::OpenAi, "/realtime", Refusal::Unpoliced),
    (Family::OpenAi, "/containers", Refusal::Unpoliced),
    (Family::OpenAi, "/evals", Refusal::Unpoliced),
    (Family::OpenAi, "/organization", Refusal::Unpoliced),
    (Family::OpenAi, "/audio/transcriptions", Refusal::Multipart),
    (Family::OpenAi, "/audio/translations", Refusal::Multipart),
    (Family::OpenAi, "/images/edits", Refusal::Multipart),
    (Family::OpenAi, "/images/variations", Refusal::Multipart),
    (Family::Anthropic, "/messages/batches", Refusal::Unpoliced),
    (Family::Anthropic, "/files", Refusal::Unpoliced),
    (Family::Anthropic, "/skills", Refusal::Unpoliced),
    (Family::Anthropic, "/organizations", Refusal::Unpoliced),
    (Family::Gemini, "/files", Refusal::Unpoliced),
    (Family::Gemini, "/cachedContents", Refusal::Unpoliced),
    (Family::Gemini, "/batches", Refusal::Unpoliced),
    (Family::Gemini, "/tunedModels", Refusal::Unpoliced),
    (Family::Gemini, "/corpora", Refusal::Unpoliced),
    (Family::Gemini, "/fileSearchStores", Refusal::Unpoliced),
    (Family::Gemini, "/operations", Refusal::Unpoliced),
];

/// Gemini methods on `/models/{model}:{method}` that are offered.
const GEMINI_METHODS: &[(&str, Endpoint)] = &[
    ("generateContent", Endpoint::GenerateContent),
    ("streamGenerateContent", Endpoint::StreamGenerateContent),
    ("countTokens", Endpoint::CountTokens),
];

/// Gemini model methods that are batch side doors.
const GEMINI_REFUSED_METHODS: &[&str] = &["batchGenerateContent", "asyncBatchEmbedContent"];

/// Classifies a request path (without query string) and method.
///
/// Errors: 404 `not_found` for unknown or unclean paths, 403 `route_not_allowed` for refused
/// routes (any method), 405 `method_not_allowed` for a known route with another method, 400
/// `invalid_model` for a malformed model id in the path.
pub fn classify(method: &str, path: &str) -> Result<Route, ApiError> {
    let (family, rest) = split_family(path).ok_or_else(|| unknown_route(path))?;
    if !is_clean(rest) {
        return Err(unknown_route(path));
    }
    let (endpoint, path_model) = match look_up(family, rest) {
        Lookup::Offered { endpoint, path_model } => (endpoint, path_model),
        Lookup::Refused(refusal) => return Err(refused(path, refusal)),
        Lookup::Unknown => return Err(unknown_route(path)),
    };
    if path_model.as_ref().is_some_and(|range| !is_valid_path_model(&rest[range.clone()])) {
        return Err(invalid_path_model(path));
    }
    if method != endpoint.method() {
        return Err(method_not_allowed(method, path, endpoint.method()));
    }
    let model_source = match path_model {
        Some(range) => ModelSource::Path(range),
        None if endpoint == Endpoint::ModelsList => ModelSource::None,
        None => ModelSource::Body,
    };
    Ok(Route { family, endpoint, model_source, upstream_path: rest.to_owned() })
}

/// The family whose prefix `path` starts with, and the rest (which starts with `/`).
fn split_family(path: &str) -> Option<(Family, &str)> {
    FAMILIES.into_iter().find_map(|family| {
        let rest = path.strip_prefix(family_prefix(family))?;
        rest.starts_with('/').then_some((family, rest))
    })
}

/// The bytes allowed in a path segment: `[A-Za-z0-9._:-]`.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// A clean path: `/`-separated segments, each non-empty, not `.` or `..`, of [`is_path_byte`]s.
fn is_clean(rest: &str) -> bool {
    rest.strip_prefix('/').is_some_and(|segments| {
        segments.split('/').all(|segment| {
            !segment.is_empty() && segment != "." && segment != ".." && segment.bytes().all(is_path_byte)
        })
    })
}

/// What a clean path (after the family prefix) names.
enum Lookup {
    /// An offered endpoint, with the byte range of the model if the path names one.
    Offered {
        endpoint: Endpoint,
        path_model: Option<Range<usize>>,
    },
    Refused(Refusal),
    Unknown,
}

fn look_up(family: Family, rest: &str) -> Lookup {
    if let Some(&(_, _, endpoint)) = OFFERED.iter().find(|(f, p, _)| *f == family && *p == rest) {
        return Lookup::Offered { endpoint, path_model: None };
    }
    if let Some(&(_, _, refusal)) = REFUSED.iter().find(|(f, p, _)| *f == family && is_under(rest, p)) {
        return Lookup::Refused(refusal);
    }
    const MODELS: &str = "/models/";
    let Some(item) = rest.strip_prefix(MODELS).filter(|item| !item.contains('/')) else {
        return Lookup::Unknown;
    };
    let start = MODELS.len();
    match (family, item.split_once(':')) {
        (Family::Gemini, Some((model, method))) => {
            let path_model = Some(start..start + model.len());
            match GEMINI_METHODS.iter().find(|(name, _)| *name == method) {
                Some(&(_, endpoint)) => Lookup::Offered { endpoint, path_model },
                None if GEMINI_REFUSED_METHODS.contains(&method) => Lookup::Refused(Refusal::Unpoliced),
                None => Lookup::Unknown,
            }
        }
        _ => Lookup::Offered { endpoint: Endpoint::ModelInfo, path_model: Some(start..rest.len()) },
    }
}

/// Whether `rest` is `prefix` or a path beneath it.
fn is_under(rest: &str, prefix: &str) -> bool {
    rest.strip_prefix(prefix).is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
}

/// A model id in a path: 1..=[`MAX_PATH_MODEL_LEN`] bytes, an ASCII letter or digit first, then
/// [`is_path_byte`]s (colons occur in OpenAI fine-tuned ids; a Gemini model ends at the first
/// colon), and no `..`.
fn is_valid_path_model(model: &str) -> bool {
    model.len() <= MAX_PATH_MODEL_LEN
        && model.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && model.bytes().all(is_path_byte)
        && !model.contains("..")
}

fn unknown_route(path: &str) -> ApiError {
    let known: Vec<&str> = FAMILIES.into_iter().map(family_prefix).collect();
    ApiError::new(Code::NotFound, format!("Unknown route '{path}'. Known route families: {}.", known.join(", ")))
}

fn refused(path: &str, refusal: Refusal) -> ApiError {
    let why = match refusal {
        Refusal::Unpoliced => {
            "batch, file, fine-tuning and stored-object routes do not name a model per request, \
             so a team key's model, routing and spend policy could not be applied to them"
        }
        Refusal::Multipart => "multipart uploads name their model in a form field the gateway does not check",
    };
    ApiError::new(Code::RouteNotAllowed, format!("'{path}' is not offered through team keys: {why}."))
}

fn method_not_allowed(method: &str, path: &str, allowed: &'static str) -> ApiError {
    ApiError::method_not_allowed(&[allowed], format!("Method {method} is not allowed on '{path}'; use {allowed}."))
}

fn invalid_path_model(path: &str) -> ApiError {
    ApiError::new(
        Code::InvalidModel,
        format!(
            "The model id in '{path}' is invalid: it must be 1 to {MAX_PATH_MODEL_LEN} characters of \
             A-Z, a-z, 0-9, '.', '_', ':' or '-', start with a letter or digit, and not contain '..'."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;
    use Endpoint::*;
    use Family::*;

    /// (method, path, family, endpoint, path model, upstream path)
    type Accepted = (&'static str, &'static str, Family, Endpoint, Option<&'static str>, &'static str);

    const ACCEPTED: &[Accepted] = &[
        ("POST", "/openai/v1/chat/completions", OpenAi, ChatCompletions, None, "/chat/completions"),
        ("POST", "/openai/v1/completions", OpenAi, Completions, None, "/completions"),
        ("POST", "/openai/v1/responses", OpenAi, Responses, None, "/responses"),
        ("POST", "/openai/v1/embeddings", OpenAi, Embeddings, None, "/embeddings"),
        ("GET", "/openai/v1/models", OpenAi, ModelsList, None, "/models"),
        ("GET", "/openai/v1/models/gpt-4o", OpenAi, ModelInfo, Some("gpt-4o"), "/models/gpt-4o"),
        (
            "GET",
            "/openai/v1/models/ft:gpt-4o-mini:acme::Ab12",
            OpenAi,
            ModelInfo,
            Some("ft:gpt-4o-mini:acme::Ab12"),
            "/models/ft:gpt-4o-mini:acme::Ab12",
        ),
        ("POST", "/openai/v1/images/generations", OpenAi, BilledPerUnit, None, "/images/generations"),
        ("POST", "/openai/v1/audio/speech", OpenAi, BilledPerUnit, None, "/audio/speech"),
        ("POST", "/openai/v1/moderations", OpenAi, Moderations, None, "/moderations"),
        ("POST", "/anthropic/v1/messages", Anthropic, Messages, None, "/messages"),
        ("POST", "/anthropic/v1/messages/count_tokens", Anthropic, CountTokens, None, "/messages/count_tokens"),
        ("GET", "/anthropic/v1/models", Anthropic, ModelsList, None, "/models"),
        (
            "GET",
            "/anthropic/v1/models/claude-sonnet-4-5",
            Anthropic,
            ModelInfo,
            Some("claude-sonnet-4-5"),
            "/models/claude-sonnet-4-5",
        ),
        ("GET", "/gemini/v1beta/models", Gemini, ModelsList, None, "/models"),
        (
            "GET",
            "/gemini/v1beta/models/gemini-2.5-pro",
            Gemini,
            ModelInfo,
            Some("gemini-2.5-pro"),
            "/models/gemini-2.5-pro",
        ),
        (
            "POST",
            "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
            Gemini,
            GenerateContent,
            Some("gemini-2.5-pro"),
            "/models/gemini-2.5-pro:generateContent",
        ),
        (
            "POST",
            "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            Gemini,
            StreamGenerateContent,
            Some("gemini-2.5-flash"),
            "/models/gemini-2.5-flash:streamGenerateContent",
        ),
        (
            "POST",
            "/gemini/v1beta/models/gemini-2.0-flash-001:countTokens",
            Gemini,
            CountTokens,
            Some("gemini-2.0-flash-001"),
            "/models/gemini-2.0-flash-001:countTokens",
        ),
    ];

    #[test]
    fn accepted_routes() {
        for &(method, path, family, endpoint, model, upstream) in ACCEPTED {
            let route = classify(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
            assert_eq!(route.family, family, "{path}");
            assert_eq!(route.endpoint, endpoint, "{path}");
            assert_eq!(route.path_model(), model, "{path}");
            assert_eq!(route.upstream_path, upstream, "{path}");
            assert_eq!(format!("{}{}", family_prefix(family), route.upstream_path), path);
            let expected_source = match (model, endpoint) {
                (Some(_), _) => matches!(route.model_source, ModelSource::Path(_)),
                (None, ModelsList) => route.model_source == ModelSource::None,
                (None, _) => route.model_source == ModelSource::Body,
            };
            assert!(expected_source, "{path}: {:?}", route.model_source);
        }
    }

    /// (method, path, status, code)
    const REFUSED_CASES: &[(&str, &str, u16, &str)] = &[
        // Side doors: refused whatever the method.
        ("POST", "/openai/v1/files", 403, "route_not_allowed"),
        ("GET", "/openai/v1/files/file-abc/content", 403, "route_not_allowed"),
        ("POST", "/openai/v1/batches", 403, "route_not_allowed"),
        ("POST", "/openai/v1/fine_tuning/jobs", 403, "route_not_allowed"),
        ("POST", "/openai/v1/vector_stores", 403, "route_not_allowed"),
        ("POST", "/openai/v1/assistants", 403, "route_not_allowed"),
        ("POST", "/openai/v1/threads/runs", 403, "route_not_allowed"),
        ("POST", "/openai/v1/uploads", 403, "route_not_allowed"),
        ("GET", "/openai/v1/realtime", 403, "route_not_allowed"),
        ("GET", "/openai/v1/responses/resp_123", 403, "route_not_allowed"),
        ("GET", "/openai/v1/responses/resp_123/input_items", 403, "route_not_allowed"),
        ("GET", "/openai/v1/chat/completions/chatcmpl-1", 403, "route_not_allowed"),
        ("POST", "/openai/v1/audio/transcriptions", 403, "route_not_allowed"),
        ("POST", "/openai/v1/audio/translations", 403, "route_not_allowed"),
        ("POST", "/openai/v1/images/edits", 403, "route_not_allowed"),
        ("POST", "/anthropic/v1/messages/batches", 403, "route_not_allowed"),
        ("GET", "/anthropic/v1/messages/batches/msgbatch_1/results", 403, "route_not_allowed"),
        ("POST", "/anthropic/v1/files", 403, "route_not_allowed"),
        ("POST", "/gemini/v1beta/files", 403, "route_not_allowed"),
        ("POST", "/gemini/v1beta/cachedContents", 403, "route_not_allowed"),
        ("POST", "/gemini/v1beta/tunedModels/my-model:generateContent", 403, "route_not_allowed"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-pro:batchGenerateContent", 403, "route_not_allowed"),
        // Wrong method on a known route.
        ("GET", "/openai/v1/chat/completions", 405, "method_not_allowed"),
        ("POST", "/openai/v1/models", 405, "method_not_allowed"),
        ("DELETE", "/openai/v1/models/gpt-4o", 405, "method_not_allowed"),
        ("post", "/anthropic/v1/messages", 405, "method_not_allowed"),
        ("GET", "/anthropic/v1/messages/count_tokens", 405, "method_not_allowed"),
        ("GET", "/gemini/v1beta/models/gemini-2.5-pro:generateContent", 405, "method_not_allowed"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-pro", 405, "method_not_allowed"),
        ("PUT", "/gemini/v1beta/models", 405, "method_not_allowed"),
        // Unknown routes and families.
        ("GET", "/", 404, "not_found"),
        ("GET", "", 404, "not_found"),
        ("POST", "/openai/v1", 404, "not_found"),
        ("POST", "/openai/v1/", 404, "not_found"),
        ("POST", "/openai/v2/chat/completions", 404, "not_found"),
        ("POST", "/openai/v10/chat/completions", 404, "not_found"),
        ("POST", "/OpenAI/v1/chat/completions", 404, "not_found"),
        ("POST", "/v1/chat/completions", 404, "not_found"),
        ("POST", "/openai/v1/chat", 404, "not_found"),
        ("POST", "/openai/v1/embeddings/x", 404, "not_found"),
        ("POST", "/anthropic/v1/complete", 404, "not_found"),
        ("POST", "/anthropic/v1/messages/other", 404, "not_found"),
        ("GET", "/admin/keys", 404, "not_found"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-pro:embedContent", 404, "not_found"),
        ("POST", "/gemini/v1/models/gemini-2.5-pro:generateContent", 404, "not_found"),
        // Unclean paths: traversal, double slashes, encodings, trailing slash, query strings.
        ("POST", "/openai/v1/../admin", 404, "not_found"),
        ("POST", "/openai/v1/./chat/completions", 404, "not_found"),
        ("POST", "/openai/v1/chat/../chat/completions", 404, "not_found"),
        ("POST", "/openai/v1//chat/completions", 404, "not_found"),
        ("POST", "/openai/v1/chat/completions/", 404, "not_found"),
        ("POST", "/openai/v1/chat%2Fcompletions", 404, "not_found"),
        ("POST", "/openai/v1/chat/completions%00", 404, "not_found"),
        ("POST", "/openai/v1/chat/completions?x=1", 404, "not_found"),
        ("POST", "/openai/v1/chat\\completions", 404, "not_found"),
        ("POST", "/openai/v1/%2e%2e/admin", 404, "not_found"),
        ("POST", "/gemini/v1beta/models/gemini%2F..%2Fx:generateContent", 404, "not_found"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-pro/extra:generateContent", 404, "not_found"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-pro:generateContent/extra", 404, "not_found"),
        ("POST", "/gemini/v1beta/models/gemini 2:generateContent", 404, "not_found"),
        ("GET", "/openai/v1/models/gpt-4o/extra", 404, "not_found"),
        // Malformed model ids in a clean path.
        ("POST", "/gemini/v1beta/models/:generateContent", 400, "invalid_model"),
        ("POST", "/gemini/v1beta/models/gemini..pro:generateContent", 400, "invalid_model"),
        ("POST", "/gemini/v1beta/models/.hidden:generateContent", 400, "invalid_model"),
        ("POST", "/gemini/v1beta/models/-x:countTokens", 400, "invalid_model"),
        ("GET", "/gemini/v1beta/models/...", 400, "invalid_model"),
        ("GET", "/openai/v1/models/..x", 400, "invalid_model"),
    ];

    #[test]
    fn refused_routes() {
        for &(method, path, status, code) in REFUSED_CASES {
            let err = classify(method, path).expect_err(path);
            assert_eq!((err.status(), err.code().as_str()), (status, code), "{method} {path}: {}", err.message);
            let kind = match status {
                403 => ErrorType::PermissionError,
                404 => ErrorType::NotFoundError,
                _ => ErrorType::InvalidRequestError,
            };
            assert_eq!(err.kind(), kind, "{path}");
        }
    }

    #[test]
    fn gateway_routes_are_family_neutral() {
        assert_eq!(gateway_route("GET", "/v1/key").unwrap(), Some(GatewayEndpoint::KeyQuota));
        assert_eq!(gateway_route("POST", "/v1/key").unwrap_err().code(), Code::MethodNotAllowed);
        assert_eq!(gateway_route("GET", "/v1/key/").unwrap(), None);
        assert_eq!(gateway_route("GET", "/openai/v1/models").unwrap(), None);
        assert_eq!(classify("GET", "/v1/key").unwrap_err().code(), Code::NotFound, "not a proxied route");
    }

    #[test]
    fn gemini_model_length_limit() {
        let ok = "a".repeat(MAX_PATH_MODEL_LEN);
        let path = format!("/gemini/v1beta/models/{ok}:generateContent");
        assert_eq!(classify("POST", &path).unwrap().path_model(), Some(ok.as_str()));
        let path = format!("/gemini/v1beta/models/{ok}a:generateContent");
        assert_eq!(classify("POST", &path).unwrap_err().code(), "invalid_model");
    }

    #[test]
    fn messages_explain_themselves() {
        let unknown = classify("GET", "/nope").unwrap_err();
        assert!(unknown.message.contains("/openai/v1, /anthropic/v1, /gemini/v1beta"), "{}", unknown.message);
        let batches = classify("POST", "/openai/v1/batches").unwrap_err();
        assert!(batches.message.contains("not offered through team keys"), "{}", batches.message);
        let multipart = classify("POST", "/openai/v1/audio/transcriptions").unwrap_err();
        assert!(multipart.message.contains("multipart"), "{}", multipart.message);
        let method = classify("GET", "/anthropic/v1/messages").unwrap_err();
        assert!(method.message.contains("use POST"), "{}", method.message);
    }

    #[test]
    fn upstream_path_for_renames_only_the_path_model() {
        let route = classify("POST", "/gemini/v1beta/models/gemini-pro:streamGenerateContent").unwrap();
        assert_eq!(route.upstream_path_for("gemini-pro"), Cow::Borrowed("/models/gemini-pro:streamGenerateContent"));
        assert_eq!(route.upstream_path_for("gemini-2.5-pro"), "/models/gemini-2.5-pro:streamGenerateContent");
        let route = classify("POST", "/openai/v1/chat/completions").unwrap();
        assert_eq!(route.upstream_path_for("other"), "/chat/completions");
    }

    #[test]
    fn token_costing_endpoints() {
        let costs = |m, p| classify(m, p).unwrap().costs_tokens();
        assert!(costs("POST", "/openai/v1/chat/completions"));
        assert!(costs("POST", "/openai/v1/embeddings"));
        assert!(costs("POST", "/anthropic/v1/messages"));
        assert!(costs("POST", "/gemini/v1beta/models/g:streamGenerateContent"));
        assert!(!costs("GET", "/openai/v1/models"));
        assert!(!costs("POST", "/anthropic/v1/messages/count_tokens"));
        assert!(!costs("POST", "/openai/v1/images/generations"));
    }
}
