//! Webhook endpoints: where events go, which types each receives, and the secret it is signed
//! with.
//!
//! Flow: an Admin posts `{"url", "events"?}` → [`parse_endpoint_request`] validates it → the
//! outbox stores it with a fresh id ([`endpoint_id`]) and signing secret ([`signing_secret`]),
//! shown once in the answer. The URL must be `https://`, or `http://` to a loopback host for
//! local development; it may not carry credentials or a fragment.

use super::ids::{format_id, is_id};
use super::kind::EventType;
use crate::error::{ApiError, Code};
use serde::{Deserialize, Serialize};

/// At most this many endpoints per organisation.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

const ENDPOINT_ID_PREFIX: &str = "wh_";
const ENDPOINT_ID_RANDOM_BYTES: usize = 8;
const SECRET_PREFIX: &str = "whsec_";
/// The name that subscribes to every type, including types added later.
const ALL_TYPES: &str = "*";

/// A new endpoint's id: `wh_` and 16 hex digits.
pub fn endpoint_id(random: [u8; ENDPOINT_ID_RANDOM_BYTES]) -> String {
    format_id(ENDPOINT_ID_PREFIX, &random)
}

/// Whether `text` has the form of an endpoint id (so it can be looked up or refused as 404).
pub fn is_endpoint_id(text: &str) -> bool {
    is_id(ENDPOINT_ID_PREFIX, ENDPOINT_ID_RANDOM_BYTES, text)
}

/// A new signing secret: `whsec_` and 64 hex digits (256 random bits).
pub fn signing_secret(random: [u8; 32]) -> String {
    format_id(SECRET_PREFIX, &random)
}

/// Which event types an endpoint receives; written as `["*"]` or a list of type names.
/// Invariant: `Only` holds at least one type, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    test,
    derive(schemars::JsonSchema),
    schemars(description = "`[\"*\"]` (every type, including types added later) or event type names.")
)]
#[serde(into = "Vec<&'static str>", try_from = "Vec<String>")]
pub enum EventFilter {
    All,
    Only(Vec<EventType>),
}

impl EventFilter {
    pub fn matches(&self, kind: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(kinds) => kinds.contains(&kind),
        }
    }
}

impl TryFrom<Vec<String>> for EventFilter {
    type Error = String;

    fn try_from(names: Vec<String>) -> Result<EventFilter, String> {
        if names.is_empty() {
            return Err("events must name at least one event type, or be left out to receive all".to_owned());
        }
        if names.iter().any(|name| name == ALL_TYPES) {
            return Ok(EventFilter::All);
        }
        let mut kinds = Vec::with_capacity(names.len());
        for name in &names {
            let kind = EventType::parse(name).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown event type '{name}'; known types: {}, or '*'", known.join(", "))
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(EventFilter::Only(kinds))
    }
}

impl From<EventFilter> for Vec<&'static str> {
    fn from(filter: EventFilter) -> Vec<&'static str> {
        match filter {
            EventFilter::All => vec![ALL_TYPES],
            EventFilter::Only(kinds) => kinds.into_iter().map(EventType::as_str).collect(),
        }
    }
}

/// A validated request for a new endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub events: EventFilter,
}

/// An endpoint as listed; `secret` only in the answer that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "WebhookEndpoint"))]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: EventFilter,
    /// Unix ms.
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The body of `POST /admin/v1/webhooks`, before validation.
#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "NewWebhookEndpoint"))]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// `https://`, or `http://` to a loopback host; no credentials or fragment; at most 2048 bytes.
    url: String,
    /// Event types to receive, or `["*"]` for every type, including types added later; absent:
    /// every type.
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// Parses and validates the body of `POST /admin/v1/webhooks`.
pub fn parse_endpoint_request(body: &[u8]) -> Result<NewEndpoint, ApiError> {
    let request: EndpointRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::InvalidBody, format!("The body must be {{\"url\", \"events\"?}}: {e}")))?;
    check_url(&request.url)?;
    let events = match request.events {
        None => EventFilter::All,
        Some(names) => EventFilter::try_from(names).map_err(|e| ApiError::new(Code::InvalidEventType, e))?,
    };
    Ok(NewEndpoint { url: request.url, events })
}

fn check_url(text: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| ApiError::new(Code::InvalidWebhookUrl, format!("The webhook URL {why}."));
    if text.len() > MAX_URL_LEN {
        return Err(invalid(&format!("is longer than {MAX_URL_LEN} bytes")));
    }
    let url = url::Url::parse(text).map_err(|e| invalid(&format!("cannot be parsed ({e})")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid("has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(invalid("must use https:// (http:// only to a loopback host, for local development)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("may not carry credentials; authenticate deliveries by their signature"));
    }
    if url.fragment().is_some() {
        return Err(invalid("may not have a fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewEndpoint, ApiError> {
        parse_endpoint_request(body.as_bytes())
    }

    #[test]
    fn accepts_https_and_loopback_http() {
        let ok = parse(r#"{"url":"https://hooks.example.com/teamkeys?x=1"}"#).unwrap();
        assert_eq!(ok.events, EventFilter::All);
        for url in ["http://127.0.0.1:9000/h", "http://localhost/h", "http://[::1]:80/"] {
            assert!(parse(&format!(r#"{{"url":"{url}"}}"#)).is_ok(), "{url}");
        }
    }

    #[test]
    fn refuses_unsafe_urls() {
        for url in [
            "http://hooks.example.com/",
            "ftp://example.com/",
            "https://u:p@example.com/",
            "https://example.com/#f",
            "nope",
        ] {
            let error = parse(&format!(r#"{{"url":"{url}"}}"#)).unwrap_err();
            assert_eq!((error.status(), error.code().as_str()), (400, "invalid_webhook_url"), "{url}");
        }
        let long = format!(r#"{{"url":"https://example.com/{}"}}"#, "a".repeat(MAX_URL_LEN));
        assert_eq!(parse(&long).unwrap_err().code(), "invalid_webhook_url");
    }

    #[test]
    fn filters_by_type() {
        let only = parse(r#"{"url":"https://e.com/","events":["usage.alert","usage.alert","key.deleted"]}"#).unwrap();
        assert_eq!(only.events, EventFilter::Only(vec![EventType::UsageAlert, EventType::KeyDeleted]));
        assert!(only.events.matches(EventType::KeyDeleted) && !only.events.matches(EventType::KeyCreated));
        assert_eq!(parse(r#"{"url":"https://e.com/","events":["*"]}"#).unwrap().events, EventFilter::All);
        assert_eq!(
            parse(r#"{"url":"https://e.com/","events":["key.exploded"]}"#).unwrap_err().code().as_str(),
            "invalid_event_type"
        );
        assert_eq!(parse(r#"{"url":"https://e.com/","events":[]}"#).unwrap_err().code(), "invalid_event_type");
        assert_eq!(parse(r#"{"url":"https://e.com/","secret":"x"}"#).unwrap_err().code(), "invalid_body");
    }

    #[test]
    fn filters_round_trip_as_stored() {
        for filter in [EventFilter::All, EventFilter::Only(vec![EventType::UsageLimitReached])] {
            let json = serde_json::to_string(&filter).unwrap();
            assert_eq!(serde_json::from_str::<EventFilter>(&json).unwrap(), filter);
        }
        assert_eq!(serde_json::to_string(&EventFilter::All).unwrap(), r#"["*"]"#);
    }

    #[test]
    fn ids_and_secrets() {
        let id = endpoint_id([0xab; 8]);
        assert_eq!(id, "wh_abababababababab");
        assert!(is_endpoint_id(&id) && !is_endpoint_id("wh_1"));
        assert_eq!(signing_secret([0; 32]).len(), "whsec_".len() + 64);
    }
}
