//! The one error envelope every refusal and failure is answered with:
//! `{"error":{"message":…,"type":…,"code":…}}`, plus `limit` details on 429s.
//!
//! Every answer names a [`Code`]; the code alone decides the HTTP status and the `type` (one
//! table, `codes!`), so the two can never disagree. Modules of the core return their own
//! denial values; each converts into an [`ApiError`] naming its code. The README's table of
//! codes is checked against this one (`readme_lists_every_code`).
//!
//! An [`ApiError`] also travels between isolates (the key ledger's refusals): it serializes as
//! the envelope's inner object and deserializes back from it through the table, refusing a
//! code this build does not know (a reader then fails closed).

use crate::limits::Level;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// The `type` field of the envelope. Each type has exactly one default HTTP status family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 401: the caller is not who it claims (missing, unknown, expired or disabled key).
    AuthenticationError,
    /// 403: the caller is known but may not do this (model, IP, routing group, role).
    PermissionError,
    /// 400 / 405 / 409 / 413: the request itself is malformed, too large, or conflicts with
    /// the state of what it names.
    InvalidRequestError,
    /// 404: no such route or resource.
    NotFoundError,
    /// 429: a rate, token or spend limit is reached.
    RateLimitError,
    /// 502 / 504: the upstream failed, refused or timed out.
    UpstreamError,
    /// 503: a dependency of the gateway (ledger, store) cannot be reached; nothing was admitted.
    ServiceUnavailable,
    /// 500: the gateway's own fault or bad configuration (for example an invalid key record).
    InternalError,
}

impl ErrorType {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::AuthenticationError => "authentication_error",
            ErrorType::PermissionError => "permission_error",
            ErrorType::InvalidRequestError => "invalid_request_error",
            ErrorType::NotFoundError => "not_found_error",
            ErrorType::RateLimitError => "rate_limit_error",
            ErrorType::UpstreamError => "upstream_error",
            ErrorType::ServiceUnavailable => "service_unavailable",
            ErrorType::InternalError => "internal_error",
        }
    }
}

/// Declares [`Code`] from one table: per code its doc (when it is answered), wire string, HTTP
/// status and [`ErrorType`].
macro_rules! codes {
    ($( $(#[doc = $doc:literal])+ $code:ident = $wire:literal, $status:literal, $kind:ident; )+) => {
        /// What an error answer says went wrong: its `code` on the wire, its HTTP status and
        /// its `type`. Two codes may share a wire string when one condition is answered two
        /// ways (see [`Code::TokenLimitExceeded`]); the pair of wire string and type is unique.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])+ $code, )+
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$code),+];

            /// The `code` on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$code => $wire,)+ }
            }

            /// The HTTP status of every answer with this code.
            pub const fn status(self) -> u16 {
                match self { $(Code::$code => $status,)+ }
            }

            /// The envelope's `type` of every answer with this code.
            pub const fn kind(self) -> ErrorType {
                match self { $(Code::$code => ErrorType::$kind,)+ }
            }

            /// The code's doc: when it is answered (the README's table shows it).
            #[cfg(test)]
            fn doc(self) -> String {
                let lines: &[&str] = match self { $(Code::$code => &[$($doc),+],)+ };
                lines.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ")
            }
        }
    };
}

codes! {
    /// No API key in the family's header, a key the store does not know, or a secret its key
    /// ledger no longer honours (rotated or deleted).
    InvalidApiKey = "invalid_api_key", 401, AuthenticationError;
    /// The key is disabled.
    KeyDisabled = "key_disabled", 401, AuthenticationError;
    /// The key is past its expiry.
    KeyExpired = "key_expired", 401, AuthenticationError;
    /// An admin call without a bearer token.
    MissingAdminToken = "missing_admin_token", 401, AuthenticationError;
    /// An admin call with a token no principal holds.
    InvalidAdminToken = "invalid_admin_token", 401, AuthenticationError;
    /// An admin call with a principal's token past its `token_expires_at`.
    TokenExpired = "token_expired", 401, AuthenticationError;
    /// A console session that is unknown, revoked, or past its idle or absolute expiry.
    SessionExpired = "session_expired", 401, AuthenticationError;
    /// A Cloudflare Access assertion that does not verify (signature, issuer, audience, time), an
    /// organisation without Access sign-in, or an email no principal of it has.
    AccessDenied = "access_denied", 401, AuthenticationError;
    /// A state-changing admin call made with the session cookie without the CSRF token header,
    /// or from another origin.
    CsrfFailed = "csrf_failed", 403, PermissionError;
    /// Too many failed sign-ins from one client address in a minute (with `Retry-After`).
    TooManySignIns = "too_many_sign_ins", 429, RateLimitError;
    /// A known route the gateway refuses on purpose (batch, files, stored objects, uploads…).
    RouteNotAllowed = "route_not_allowed", 403, PermissionError;
    /// The client address is not on the key's IP allowlist, or is unknown.
    IpNotAllowed = "ip_not_allowed", 403, PermissionError;
    /// The key's model allow/block list refuses the model.
    ModelNotAllowed = "model_not_allowed", 403, PermissionError;
    /// Only routing groups the key may not use serve the model.
    RoutingGroupNotAllowed = "routing_group_not_allowed", 403, PermissionError;
    /// A key with a spend cap calls a model without a price.
    ModelNotPriced = "model_not_priced", 403, PermissionError;
    /// A key with a spend cap calls a route not metered in tokens.
    RouteNotMetered = "route_not_metered", 403, PermissionError;
    /// A key with a spend cap is routed to a target whose billing the gateway does not model.
    TargetNotMetered = "target_not_metered", 403, PermissionError;
    /// A body member or tool that keeps state in the shared upstream account.
    MemberNotAllowed = "member_not_allowed", 403, PermissionError;
    /// A body member or tool billed outside tokens, sent with a key that has a spend cap.
    MemberNotMetered = "member_not_metered", 403, PermissionError;
    /// An input by reference, whose size cannot be bounded, sent with a key that has a cap.
    InputNotBounded = "input_not_bounded", 403, PermissionError;
    /// A body member or tool the gateway does not know, in strict mode.
    MemberNotKnown = "member_not_known", 403, PermissionError;
    /// An admin principal without the permission the call needs.
    PermissionDenied = "permission_denied", 403, PermissionError;
    /// A new end user of a key that tracks as many as one key may (1,000, `MAX_END_USERS`); those
    /// it tracks are never evicted.
    TooManyEndUsers = "too_many_end_users", 403, PermissionError;
    /// The key's organisation has no routing of its own and may not use the platform's.
    NoRouting = "no_routing", 403, PermissionError;
    /// The organisation is suspended by the platform operator: its keys are refused, and its
    /// admins may read but not change anything.
    OrganisationSuspended = "organisation_suspended", 403, PermissionError;
    /// The request URL cannot be parsed.
    InvalidUrl = "invalid_url", 400, InvalidRequestError;
    /// A model name in the path is not a clean segment, or the body's model is not a string.
    InvalidModel = "invalid_model", 400, InvalidRequestError;
    /// A route that needs a JSON body got none.
    MissingBody = "missing_body", 400, InvalidRequestError;
    /// A route that needs a `model` in its body got none.
    MissingModel = "missing_model", 400, InvalidRequestError;
    /// The body is not valid JSON for the route.
    InvalidJson = "invalid_json", 400, InvalidRequestError;
    /// The request alone asks for more tokens than a token window allows: no wait helps.
    TokenRequestTooLarge = "token_limit_exceeded", 400, InvalidRequestError;
    /// A key with end-user limits called without the `x-teamkeys-end-user` header.
    MissingEndUser = "missing_end_user", 400, InvalidRequestError;
    /// An `x-teamkeys-end-user` header that is not 1 to 128 printable ASCII characters without spaces.
    InvalidEndUser = "invalid_end_user", 400, InvalidRequestError;
    /// An admin or webhook body that cannot be read or parsed.
    InvalidBody = "invalid_body", 400, InvalidRequestError;
    /// An admin input field with an invalid value.
    InvalidField = "invalid_field", 400, InvalidRequestError;
    /// An admin input above a boundary of its project or organisation.
    BoundaryExceeded = "boundary_exceeded", 400, InvalidRequestError;
    /// An admin query parameter the endpoint does not take.
    UnknownParameter = "unknown_parameter", 400, InvalidRequestError;
    /// An admin query parameter given twice.
    RepeatedParameter = "repeated_parameter", 400, InvalidRequestError;
    /// An admin query string that is not valid percent-encoded UTF-8.
    InvalidQuery = "invalid_query", 400, InvalidRequestError;
    /// An admin list `limit` out of range.
    InvalidLimit = "invalid_limit", 400, InvalidRequestError;
    /// An admin list `cursor` the API did not answer.
    InvalidCursor = "invalid_cursor", 400, InvalidRequestError;
    /// An `Idempotency-Key` header that is not 1 to 255 printable ASCII characters.
    InvalidIdempotencyKey = "invalid_idempotency_key", 400, InvalidRequestError;
    /// A rotation's grace period out of range.
    InvalidGraceSeconds = "invalid_grace_seconds", 400, InvalidRequestError;
    /// A webhook event type that does not exist.
    InvalidEventType = "invalid_event_type", 400, InvalidRequestError;
    /// A webhook URL that is not an allowed HTTPS URL.
    InvalidWebhookUrl = "invalid_webhook_url", 400, InvalidRequestError;
    /// An organisation's jurisdiction that Cloudflare does not offer (`eu`, `fedramp`).
    InvalidJurisdiction = "invalid_jurisdiction", 400, InvalidRequestError;
    /// An organisation's location hint that is not one of Cloudflare's (`wnam`, `enam`, …).
    InvalidLocationHint = "invalid_location_hint", 400, InvalidRequestError;
    /// An organisation's routing that names a credential it does not hold, or a worker secret.
    InvalidRouting = "invalid_routing", 400, InvalidRequestError;
    /// An upstream credential input (provider, secret, base URL or name) that is not valid.
    InvalidCredential = "invalid_credential", 400, InvalidRequestError;
    /// The webhook endpoint limit is reached.
    TooManyWebhooks = "too_many_webhooks", 400, InvalidRequestError;
    /// A batch of events handed to the webhook outbox that cannot be read.
    InvalidBatch = "invalid_batch", 400, InvalidRequestError;
    /// A method the route does not accept (with an `Allow` header).
    MethodNotAllowed = "method_not_allowed", 405, InvalidRequestError;
    /// An admin change to a key that is deleted.
    KeyDeleted = "key_deleted", 409, InvalidRequestError;
    /// A principal's email that another principal of the organisation already has.
    EmailTaken = "email_taken", 409, InvalidRequestError;
    /// Deleting a project that still has keys.
    ProjectNotEmpty = "project_not_empty", 409, InvalidRequestError;
    /// An `Idempotency-Key` sent again with another request than the one it first came with.
    IdempotencyKeyReused = "idempotency_key_reused", 422, InvalidRequestError;
    /// A request body over the size limit.
    BodyTooLarge = "body_too_large", 413, InvalidRequestError;
    /// No such route or resource.
    NotFound = "not_found", 404, NotFoundError;
    /// No routing group serves the model.
    ModelNotFound = "model_not_found", 404, NotFoundError;
    /// A request window (RPM, RPH, RPD) or the key's in-flight cap is full.
    RateLimitExceeded = "rate_limit_exceeded", 429, RateLimitError;
    /// A token window (TPM, TPD) cannot take the request's reservation now.
    TokenLimitExceeded = "token_limit_exceeded", 429, RateLimitError;
    /// A hard spend cap would be passed.
    SpendLimitExceeded = "spend_limit_exceeded", 429, RateLimitError;
    /// The key ledger's own bound on unsettled calls is reached.
    TooManyInFlight = "too_many_in_flight", 429, RateLimitError;
    /// The upstream answered 5xx, or 401/403 about the gateway's own credential.
    UpstreamError = "upstream_error", 502, UpstreamError;
    /// The upstream could not be reached.
    UpstreamUnreachable = "upstream_unreachable", 502, UpstreamError;
    /// The upstream did not answer in time.
    UpstreamTimeout = "upstream_timeout", 504, UpstreamError;
    /// The key store (KV) cannot be reached; nothing was forwarded.
    KeyStoreUnavailable = "key_store_unavailable", 503, ServiceUnavailable;
    /// The key's ledger cannot be reached or gave no usable answer; nothing was forwarded.
    LedgerUnavailable = "ledger_unavailable", 503, ServiceUnavailable;
    /// The isolate is buffering as many request bodies as it may (their total is bounded); nothing
    /// was forwarded.
    GatewayBusy = "gateway_busy", 503, ServiceUnavailable;
    /// The admin registry cannot be reached.
    RegistryUnavailable = "registry_unavailable", 503, ServiceUnavailable;
    /// A failure of the gateway's own; the detail is logged, never answered.
    InternalError = "internal_error", 500, InternalError;
    /// The key's stored record cannot be read.
    InvalidKeyRecord = "invalid_key_record", 500, InternalError;
    /// The stored record of the key's organisation cannot be read.
    InvalidOrgRecord = "invalid_org_record", 500, InternalError;
    /// The `ROUTING` configuration is invalid.
    InvalidRoutingConfig = "invalid_routing_config", 500, InternalError;
    /// The `PRICING` configuration is invalid.
    InvalidPricingConfig = "invalid_pricing_config", 500, InternalError;
    /// Another setting is missing or invalid.
    InvalidConfig = "invalid_config", 500, InternalError;
    /// The routing group has no target for the API family.
    NoTarget = "no_target", 500, InternalError;
    /// The credential of a target is not set, or a stored one cannot be opened.
    UpstreamCredentialMissing = "upstream_credential_missing", 500, InternalError;
    /// Stored upstream credentials are not available: the `CREDENTIALS_KEYS` secret is not set
    /// or cannot be read.
    CredentialsKeysMissing = "credentials_keys_missing", 500, InternalError;
    /// The admin registry failed on its own side (its storage, its events).
    RegistryError = "registry_error", 500, InternalError;
}

impl Code {
    /// The code answered with `wire` as `code` and `kind` as `type`, if there is one.
    pub fn from_wire(wire: &str, kind: ErrorType) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str() == wire && code.kind() == kind)
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, wire: &&str) -> bool {
        self.as_str() == *wire
    }
}

/// Which limit tripped, carried on 429 answers so a caller can tell what to wait for: its level
/// (whose limit), the pattern or end user it belongs to, and which of its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LimitDetails {
    /// Whose limit: `key`, `model` (a model pattern inside the key), `end_user` (one end user of
    /// the key), `project`, `organisation`. Refusals from builds before levels read as `key`.
    #[serde(default = "key_level")]
    pub level: Level,
    /// The model pattern, for level `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The end user, for level `end_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// The limit's name, e.g. `rpm`, `tpd`, `spend_daily`.
    pub scope: Cow<'static, str>,
    /// The configured limit (requests, tokens, or micro-dollars for spend).
    pub limit: u64,
    /// What is already used in the current window or period.
    pub used: u64,
    /// When the limit frees enough room (Unix milliseconds); absent when no wait is known
    /// (total spend never resets; in-flight requests free whenever one finishes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at_ms: Option<u64>,
}

fn key_level() -> Level {
    Level::Key
}

impl LimitDetails {
    /// The details of a key's own limit `scope`.
    pub fn of_key(scope: impl Into<Cow<'static, str>>, limit: u64, used: u64, reset_at_ms: Option<u64>) -> Self {
        LimitDetails { level: Level::Key, pattern: None, end_user: None, scope: scope.into(), limit, used, reset_at_ms }
    }
}

/// A finished answer to a request that is not forwarded (or whose upstream failed). Its
/// status and `type` are its [`Code`]'s; `limit` is present only on 429s made by
/// [`ApiError::limited`]. Serialized, it is the envelope's inner object (see the module doc);
/// `Retry-After` and `Allow` are headers, not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: Code,
    pub message: String,
    limit: Option<Box<LimitDetails>>,
    retry_after_s: Option<u64>,
    allow: Option<Box<str>>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), limit: None, retry_after_s: None, allow: None }
    }

    /// 500 `internal_error` with a message that says nothing of the cause: the answer to a
    /// failure of the gateway's own. The caller logs the detail (the edge through
    /// `edge::respond::internal`).
    pub fn internal() -> Self {
        Self::new(Code::InternalError, "The gateway failed while answering.")
    }

    /// A 405 for a route that accepts only `allowed` (sent as the `Allow` header).
    pub fn method_not_allowed(allowed: &[&str], message: impl Into<String>) -> Self {
        let mut error = Self::new(Code::MethodNotAllowed, message);
        error.allow = Some(allowed.join(", ").into());
        error
    }

    /// The same error with a `Retry-After` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// A 429 naming the limit; `Retry-After` is the whole seconds until `reset_at_ms`, at least 1,
    /// and absent without a `reset_at_ms`. `message` is given that `Retry-After`.
    pub fn limited(
        code: Code,
        details: LimitDetails,
        now_ms: u64,
        message: impl FnOnce(Option<u64>) -> String,
    ) -> Self {
        debug_assert_eq!(code.kind(), ErrorType::RateLimitError, "{code:?} is not a limit's code");
        let retry = details.reset_at_ms.map(|reset| reset.saturating_sub(now_ms).div_ceil(1000).max(1));
        ApiError { code, message: message(retry), limit: Some(Box::new(details)), retry_after_s: retry, allow: None }
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn kind(&self) -> ErrorType {
        self.code.kind()
    }

    pub fn limit(&self) -> Option<&LimitDetails> {
        self.limit.as_deref()
    }

    /// Seconds for a `Retry-After` header (429 and some 503s).
    pub fn retry_after_s(&self) -> Option<u64> {
        self.retry_after_s
    }

    /// The methods for an `Allow` header (405).
    pub fn allow(&self) -> Option<&str> {
        self.allow.as_deref()
    }

    /// The JSON body: `{"error":{…}}`.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: &'a ApiError,
        }
        serde_json::to_string(&Envelope { error: self }).expect("error envelope serializes")
    }

    /// The error a JSON body made by [`ApiError::body`] says, with no `Retry-After` or `Allow`.
    pub fn from_body(body: &str) -> Result<ApiError, serde_json::Error> {
        #[derive(Deserialize)]
        struct Envelope {
            error: ApiError,
        }
        serde_json::from_str::<Envelope>(body).map(|envelope| envelope.error)
    }
}

/// The envelope's inner object, in the order of its members on the wire.
#[derive(Serialize, Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: ErrorType,
    #[serde(borrow)]
    code: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<LimitDetails>,
}

impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Fields {
            message: Cow::Borrowed(&self.message),
            kind: self.kind(),
            code: Cow::Borrowed(self.code.as_str()),
            limit: self.limit.as_deref().cloned(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ApiError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Fields::deserialize(deserializer)?;
        let code = Code::from_wire(&fields.code, fields.kind).ok_or_else(|| {
            D::Error::custom(format!("unknown error code `{}` of type `{}`", fields.code, fields.kind.as_str()))
        })?;
        Ok(ApiError {
            code,
            message: fields.message.into_owned(),
            limit: fields.limit.map(Box::new),
            retry_after_s: None,
            allow: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_message_type_code() {
        let e = ApiError::new(Code::InvalidApiKey, "no key");
        assert_eq!(
            e.body(),
            r#"{"error":{"message":"no key","type":"authentication_error","code":"invalid_api_key"}}"#
        );
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn limited_rounds_retry_after_up() {
        let d = LimitDetails::of_key("rpm", 5, 5, Some(10_001));
        let e = ApiError::limited(Code::RateLimitExceeded, d, 9_000, |retry| format!("wait {retry:?}"));
        assert_eq!((e.status(), e.retry_after_s(), e.message.as_str()), (429, Some(2), "wait Some(2)"));
        assert_eq!(
            e.body(),
            r#"{"error":{"message":"wait Some(2)","type":"rate_limit_error","code":"rate_limit_exceeded","limit":{"level":"key","scope":"rpm","limit":5,"used":5,"reset_at_ms":10001}}}"#
        );
    }

    #[test]
    fn every_code_reads_back_from_its_envelope() {
        for &code in Code::ALL {
            let e = ApiError::new(code, "m");
            assert_eq!(ApiError::from_body(&e.body()).unwrap(), e, "{code:?}");
        }
        let d = LimitDetails::of_key("tpd", 5, 4, None);
        let limited = ApiError::limited(Code::TokenLimitExceeded, d, 0, |_| "m".into());
        let read = ApiError::from_body(&limited.body()).unwrap();
        assert_eq!((read.code(), read.limit()), (Code::TokenLimitExceeded, limited.limit()));
    }

    #[test]
    fn an_unknown_code_or_a_code_of_another_type_is_refused() {
        let envelope =
            |kind: &str, code: &str| format!(r#"{{"error":{{"message":"m","type":"{kind}","code":"{code}"}}}}"#);
        assert!(ApiError::from_body(&envelope("rate_limit_error", "rate_limit_exceeded")).is_ok());
        assert!(ApiError::from_body(&envelope("rate_limit_error", "rate_limit_exceded")).is_err());
        assert!(ApiError::from_body(&envelope("permission_error", "rate_limit_exceeded")).is_err());
        assert_eq!(
            ApiError::from_body(&envelope("invalid_request_error", "token_limit_exceeded")).unwrap().code(),
            Code::TokenRequestTooLarge
        );
    }

    #[test]
    fn a_wire_string_and_type_name_one_code() {
        for (i, a) in Code::ALL.iter().enumerate() {
            for b in &Code::ALL[i + 1..] {
                assert!((a.as_str(), a.kind()) != (b.as_str(), b.kind()), "{a:?} and {b:?}");
            }
        }
    }

    /// The README's table of codes, between its markers, is the one rendered from [`Code`]
    /// (`UPDATE_README=1` rewrites it).
    #[test]
    fn readme_lists_every_code() {
        const BEGIN: &str = "<!-- codes: begin (generated from src/error.rs; checked by a test) -->\n";
        const END: &str = "<!-- codes: end -->";
        let table: String = std::iter::once("| status | type | code | when |\n|---|---|---|---|\n".to_owned())
            .chain(Code::ALL.iter().map(|code| {
                format!("| {} | `{}` | `{}` | {} |\n", code.status(), code.kind().as_str(), code.as_str(), code.doc())
            }))
            .collect();
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let start = readme.find(BEGIN).expect("the README has the codes' begin marker") + BEGIN.len();
        let end = start + readme[start..].find(END).expect("the README has the codes' end marker");
        if std::env::var_os("UPDATE_README").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
            std::fs::write(path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
            return;
        }
        assert!(
            readme[start..end] == table,
            "the README's table of codes differs (UPDATE_README=1 cargo test --lib readme rewrites it); it should \
             read:\n{table}"
        );
    }
}
