//! A key ledger's refusal, as it travels from the object to the edge inside
//! [`Reply::Refused`](super::Reply): the error itself (code, message, limit details,
//! `Retry-After`), which the edge renders, and how long the edge may repeat it.
//!
//! Versions of the members (an old and a new isolate talk to one object during a deployment;
//! a version only adds members, as in [`crate::versioned`]):
//! 1. `status`, `retry_after_s`, `body` (the rendered envelope), `hold_until_ms`;
//! 2. adds `error`, the envelope's inner object ([`ApiError`]'s serialized form).
//!
//! Writers write version 2 with the version 1 members, so isolates of the previous build read
//! it; readers take `error` when present and otherwise read the error back from `body`. A
//! code this build does not know fails the read, which the edge answers as an unavailable
//! ledger (fail closed).

use crate::error::ApiError;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A refusal of the key ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The answer, with its `Retry-After`.
    pub error: ApiError,
    /// Until then the same refusal answers every request of the key, so the edge may answer it
    /// without asking (see [`REFUSAL_HOLD_MAX_MS`](super::REFUSAL_HOLD_MAX_MS)).
    pub hold_until_ms: Option<u64>,
}

/// The members as written.
#[derive(Serialize)]
struct Written<'a> {
    error: &'a ApiError,
    status: u16,
    retry_after_s: Option<u64>,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_until_ms: Option<u64>,
}

/// The members as read, of either version.
#[derive(Deserialize)]
struct Read {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    retry_after_s: Option<u64>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    hold_until_ms: Option<u64>,
}

impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Written {
            error: &self.error,
            status: self.error.status(),
            retry_after_s: self.error.retry_after_s(),
            body: self.error.body(),
            hold_until_ms: self.hold_until_ms,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Refusal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let read = Read::deserialize(deserializer)?;
        let error = match (read.error, read.body) {
            (Some(error), _) => error,
            (None, Some(body)) => ApiError::from_body(&body).map_err(D::Error::custom)?,
            (None, None) => return Err(D::Error::missing_field("error")),
        };
        let error = match read.retry_after_s {
            Some(seconds) => error.with_retry_after(seconds),
            None => error,
        };
        Ok(Refusal { error, hold_until_ms: read.hold_until_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Code, LimitDetails};
    use crate::ledger::Reply;

    fn limited() -> ApiError {
        let details = LimitDetails::of_key("rpm", 5, 5, Some(3_000));
        ApiError::limited(Code::RateLimitExceeded, details, 1_000, |_| "Rate limit reached.".into())
    }

    #[test]
    fn a_refusal_reads_back_as_written() {
        let refused = Reply::Refused(Refusal { error: limited(), hold_until_ms: Some(2_000) });
        let json = serde_json::to_string(&refused).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), refused);
    }

    /// What the previous build writes (version 1) reads as the same refusal.
    #[test]
    fn a_version_1_refusal_reads_from_its_body() {
        let error = limited();
        let old = serde_json::json!({
            "outcome": "refused", "status": 429, "retry_after_s": 2, "body": error.body(), "hold_until_ms": 2_000,
        });
        let read: Reply = serde_json::from_value(old).unwrap();
        assert_eq!(read, Reply::Refused(Refusal { error, hold_until_ms: Some(2_000) }));
        let no_retry = serde_json::json!({
            "outcome": "refused", "status": 401, "retry_after_s": null,
            "body": ApiError::new(Code::KeyDisabled, "disabled").body(),
        });
        let Reply::Refused(read) = serde_json::from_value(no_retry).unwrap() else { panic!("a refusal") };
        assert_eq!(
            (read.error.code(), read.error.retry_after_s(), read.hold_until_ms),
            (Code::KeyDisabled, None, None)
        );
    }

    /// What this build writes is read by the previous build, which knows only version 1.
    #[test]
    fn a_refusal_carries_its_version_1_members() {
        #[derive(Deserialize)]
        #[serde(tag = "outcome", rename_all = "snake_case")]
        enum Version1 {
            Refused { status: u16, retry_after_s: Option<u64>, body: String, hold_until_ms: Option<u64> },
        }
        let error = limited();
        let json =
            serde_json::to_string(&Reply::Refused(Refusal { error: error.clone(), hold_until_ms: None })).unwrap();
        let Version1::Refused { status, retry_after_s, body, hold_until_ms } = serde_json::from_str(&json).unwrap();
        assert_eq!((status, retry_after_s, body, hold_until_ms), (429, Some(2), error.body(), None));
    }

    #[test]
    fn an_unknown_code_fails_the_read() {
        let unknown = r#"{"outcome":"refused","error":{"message":"m","type":"rate_limit_error","code":"new_limit"}}"#;
        assert!(serde_json::from_str::<Reply>(unknown).is_err());
        let old_unknown = serde_json::json!({
            "outcome": "refused", "status": 429,
            "body": r#"{"error":{"message":"m","type":"rate_limit_error","code":"new_limit"}}"#,
        });
        assert!(serde_json::from_value::<Reply>(old_unknown).is_err());
        assert!(serde_json::from_str::<Reply>(r#"{"outcome":"refused","status":429}"#).is_err());
    }
}
