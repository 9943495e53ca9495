//! Why a call is refused by a key's policy: a value, turned into the error envelope in one place.
//!
//! | denial                     | status | type                   | code                        |
//! |----------------------------|--------|------------------------|-----------------------------|
//! | `KeyDisabled`              | 401    | `authentication_error` | `key_disabled`              |
//! | `KeyExpired`               | 401    | `authentication_error` | `key_expired`               |
//! | `KeyLifetimeEnded`         | 401    | `authentication_error` | `key_expired`               |
//! | `IpNotAllowed`             | 403    | `permission_error`     | `ip_not_allowed`            |
//! | `IpOutsideBoundary`        | 403    | `permission_error`     | `ip_not_allowed`            |
//! | `ModelNotAllowed`          | 403    | `permission_error`     | `model_not_allowed`         |
//! | `RoutingGroupNotAllowed`   | 403    | `permission_error`     | `routing_group_not_allowed` |
//! | `ModelNotServed`           | 404    | `not_found_error`      | `model_not_found`           |
//!
//! A disabled or expired key answers 401 like an unknown key: a disabled key is as good as no
//! key, and clients treat 401 as "fix your key". Messages name the key id (never the key) and
//! what would make the call pass.

use super::model_access::ModelAccess;
use crate::error::{ApiError, Code};
use crate::family::Family;
use crate::gateway::route::family_prefix;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    KeyDisabled {
        key_id: String,
    },
    KeyExpired {
        key_id: String,
        expired_at_ms: u64,
    },
    /// The key has lived as long as a boundary above it allows (`max_key_lifetime_days`).
    KeyLifetimeEnded {
        key_id: String,
        ended_at_ms: u64,
    },
    /// The key has an IP allowlist and the client address (if known) is outside it.
    IpNotAllowed {
        client_ip: Option<IpAddr>,
    },
    /// A boundary above the key has an IP allowlist and the client address (if known) is
    /// outside it.
    IpOutsideBoundary {
        client_ip: Option<IpAddr>,
    },
    /// The key's model allow/block list refuses the model.
    ModelNotAllowed {
        model: String,
        access: ModelAccess,
    },
    /// Some routing groups serve the call, but the key may use none of them.
    RoutingGroupNotAllowed {
        model: Option<String>,
        serving_groups: Vec<String>,
    },
    /// No routing group serves the call at all.
    ModelNotServed {
        family: Family,
        model: Option<String>,
    },
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> ApiError {
        match denial {
            Denial::KeyDisabled { key_id } => ApiError::new(
                Code::KeyDisabled,
                format!("Key '{key_id}' is disabled. Ask an admin to re-enable it, or use another key."),
            ),
            Denial::KeyExpired { key_id, expired_at_ms } => ApiError::new(
                Code::KeyExpired,
                format!(
                    "Key '{key_id}' expired at {expired_at_ms} (Unix ms). Ask an admin to extend it, or use another key."
                ),
            ),
            Denial::KeyLifetimeEnded { key_id, ended_at_ms } => ApiError::new(
                Code::KeyExpired,
                format!(
                    "Key '{key_id}' expired at {ended_at_ms} (Unix ms): its project or organisation allows keys at most \
                     that long a life. Use a new key."
                ),
            ),
            Denial::IpOutsideBoundary { client_ip: Some(ip) } => ApiError::new(
                Code::IpNotAllowed,
                format!("Requests from {ip} are not allowed for this key: its project or organisation allows other addresses only."),
            ),
            Denial::IpOutsideBoundary { client_ip: None } => ApiError::new(
                Code::IpNotAllowed,
                "This key's project or organisation has an IP allowlist and the client address could not be determined.",
            ),
            Denial::IpNotAllowed { client_ip: Some(ip) } => ApiError::new(
                Code::IpNotAllowed,
                format!("Requests from {ip} are not allowed for this key: the address is not on its IP allowlist."),
            ),
            Denial::IpNotAllowed { client_ip: None } => ApiError::new(
                Code::IpNotAllowed,
                "This key has an IP allowlist and the client address could not be determined.",
            ),
            Denial::ModelNotAllowed { model, access } => ApiError::new(
                Code::ModelNotAllowed,
                format!("Model '{model}' is not allowed for this key ({access})."),
            ),
            Denial::RoutingGroupNotAllowed { model, serving_groups } => ApiError::new(
                Code::RoutingGroupNotAllowed,
                format!(
                    "{} is served only by routing group(s) {}, which this key may not use.",
                    subject(model.as_deref()),
                    serving_groups.join(", ")
                ),
            ),
            Denial::ModelNotServed { family, model } => ApiError::new(
                Code::ModelNotFound,
                format!("{} is not served by any routing group under {}.", subject(model.as_deref()), family_prefix(family)),
            ),
        }
    }
}

fn subject(model: Option<&str>) -> String {
    match model {
        Some(model) => format!("Model '{model}'"),
        None => "This route".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;

    #[test]
    fn statuses_types_codes_and_messages() {
        let cases: Vec<(Denial, u16, ErrorType, &str, &str)> = vec![
            (
                Denial::KeyDisabled { key_id: "k1".into() },
                401,
                ErrorType::AuthenticationError,
                "key_disabled",
                "Key 'k1' is disabled",
            ),
            (
                Denial::KeyExpired { key_id: "k1".into(), expired_at_ms: 5 },
                401,
                ErrorType::AuthenticationError,
                "key_expired",
                "expired at 5",
            ),
            (
                Denial::IpNotAllowed { client_ip: Some("192.0.2.1".parse().unwrap()) },
                403,
                ErrorType::PermissionError,
                "ip_not_allowed",
                "192.0.2.1",
            ),
            (
                Denial::KeyLifetimeEnded { key_id: "k1".into(), ended_at_ms: 7 },
                401,
                ErrorType::AuthenticationError,
                "key_expired",
                "Key 'k1' expired at 7 (Unix ms): its project or organisation allows",
            ),
            (
                Denial::IpOutsideBoundary { client_ip: Some("192.0.2.1".parse().unwrap()) },
                403,
                ErrorType::PermissionError,
                "ip_not_allowed",
                "192.0.2.1 are not allowed for this key: its project or organisation",
            ),
            (
                Denial::IpOutsideBoundary { client_ip: None },
                403,
                ErrorType::PermissionError,
                "ip_not_allowed",
                "project or organisation has an IP allowlist",
            ),
            (
                Denial::IpNotAllowed { client_ip: None },
                403,
                ErrorType::PermissionError,
                "ip_not_allowed",
                "could not be determined",
            ),
            (
                Denial::ModelNotAllowed { model: "gpt-4o".into(), access: ModelAccess::Allow(vec!["claude-*".into()]) },
                403,
                ErrorType::PermissionError,
                "model_not_allowed",
                "Model 'gpt-4o' is not allowed for this key (allowed: claude-*)",
            ),
            (
                Denial::RoutingGroupNotAllowed {
                    model: Some("o3".into()),
                    serving_groups: vec!["research".into(), "eu".into()],
                },
                403,
                ErrorType::PermissionError,
                "routing_group_not_allowed",
                "Model 'o3' is served only by routing group(s) research, eu",
            ),
            (
                Denial::ModelNotServed { family: Family::Gemini, model: Some("gemini-9".into()) },
                404,
                ErrorType::NotFoundError,
                "model_not_found",
                "Model 'gemini-9' is not served by any routing group under /gemini/v1beta",
            ),
            (
                Denial::ModelNotServed { family: Family::Anthropic, model: None },
                404,
                ErrorType::NotFoundError,
                "model_not_found",
                "This route is not served",
            ),
        ];
        for (denial, status, kind, code, message) in cases {
            let e = ApiError::from(denial);
            assert_eq!((e.status(), e.kind(), e.code().as_str()), (status, kind, code));
            assert!(e.message.contains(message), "{}", e.message);
        }
    }
}
