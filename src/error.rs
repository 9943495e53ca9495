//! The one error envelope every refusal and failure is answered with:
//! `{"error":{"message":…,"type":…,"code":…}}`, plus `limit` details on 429s.
//!
//! Modules of the core return their own denial values; each converts into an [`ApiError`]
//! here, so the status, `type` and `code` of every answer are decided in one place.

use serde::Serialize;

/// The `type` field of the envelope. Each type has exactly one default HTTP status family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 401: the caller is not who it claims (missing, unknown, expired or disabled key).
    AuthenticationError,
    /// 403: the caller is known but may not do this (model, IP, routing group, role).
    PermissionError,
    /// 400 / 413 / 405: the request itself is malformed or too large.
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

/// Which limit tripped, carried on 429 answers so a caller can tell what to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LimitDetails {
    /// The limit's name, e.g. `rpm`, `tpd`, `spend_daily`.
    pub scope: &'static str,
    /// The configured limit (requests, tokens, or micro-dollars for spend).
    pub limit: u64,
    /// What is already used in the current window or period.
    pub used: u64,
    /// When the limit frees enough room (Unix milliseconds); absent when no wait is known
    /// (total spend never resets; in-flight requests free whenever one finishes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_at_ms: Option<u64>,
}

/// A finished answer to a request that is not forwarded (or whose upstream failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    #[cfg_attr(test, schemars(with = "String"))]
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Box<LimitDetails>>,
    /// Seconds for a `Retry-After` header (429 and some 503s).
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
    /// The methods for an `Allow` header (405).
    #[serde(skip)]
    pub allow: Option<Box<str>>,
}

impl ApiError {
    pub fn new(status: u16, kind: ErrorType, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, code, limit: None, retry_after_s: None, allow: None }
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(401, ErrorType::AuthenticationError, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, ErrorType::PermissionError, code, message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, ErrorType::InvalidRequestError, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, ErrorType::NotFoundError, "not_found", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, ErrorType::ServiceUnavailable, code, message)
    }

    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(500, ErrorType::InternalError, code, message)
    }

    /// A 405 for a route that accepts only `allowed` (sent as the `Allow` header).
    pub fn method_not_allowed(allowed: &[&str], message: impl Into<String>) -> Self {
        let mut error = Self::new(405, ErrorType::InvalidRequestError, "method_not_allowed", message);
        error.allow = Some(allowed.join(", ").into());
        error
    }

    /// The same error with a `Retry-After` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// A 429 naming the limit; `Retry-After` is the whole seconds until `reset_at_ms`, at least 1,
    /// and absent without a `reset_at_ms`.
    pub fn limited(code: &'static str, message: impl Into<String>, details: LimitDetails, now_ms: u64) -> Self {
        let retry = details.reset_at_ms.map(|reset| reset.saturating_sub(now_ms).div_ceil(1000).max(1));
        ApiError {
            status: 429,
            message: message.into(),
            kind: ErrorType::RateLimitError,
            code,
            limit: Some(Box::new(details)),
            retry_after_s: retry,
            allow: None,
        }
    }

    /// The JSON body: `{"error":{…}}`.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: &'a ApiError,
        }
        serde_json::to_string(&Envelope { error: self }).expect("error envelope serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_message_type_code() {
        let e = ApiError::unauthenticated("invalid_api_key", "no key");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["message"], "no key");
        assert!(v["error"].get("limit").is_none());
    }

    #[test]
    fn limited_rounds_retry_after_up() {
        let d = LimitDetails { scope: "rpm", limit: 5, used: 5, reset_at_ms: Some(10_001) };
        let e = ApiError::limited("rate_limit_exceeded", "slow down", d, 9_000);
        assert_eq!(e.status, 429);
        assert_eq!(e.retry_after_s, Some(2));
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["limit"]["scope"], "rpm");
    }
}
