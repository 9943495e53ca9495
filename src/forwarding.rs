//! What crosses the gateway and what does not: the headers and query of the client's request
//! that reach the upstream, the upstream's headers that reach the client, and where each
//! family's upstream credential goes.
//!
//! Invariant: no client credential (any of the three key headers, `?key=`) and no hop-by-hop or
//! edge-internal header is ever forwarded to an upstream.

use crate::family::Family;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the framing headers the runtime sets itself.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Request headers never forwarded besides hop-by-hop ones: credentials and what describes the
/// client's connection to the edge.
const CLIENT_ONLY: [&str; 7] = ["authorization", "x-api-key", "x-goog-api-key", "host", "cookie", "x-real-ip", "forwarded"];

/// Whether a client request header (lower-case name) is passed to the upstream.
pub fn forwards_request_header(name: &str) -> bool {
    !(HOP_BY_HOP.contains(&name)
        || CLIENT_ONLY.contains(&name)
        || name.starts_with("cf-")
        || name.starts_with("x-forwarded-"))
}

/// Whether an upstream response header (lower-case name) is passed to the client. The length
/// is dropped because the gateway may remove the usage chunk it asked for.
pub fn forwards_response_header(name: &str) -> bool {
    !HOP_BY_HOP.contains(&name) && name != "set-cookie"
}

/// The header carrying the upstream credential in `family`'s style, and its value.
pub fn credential_header(family: Family, secret: &str) -> (&'static str, String) {
    match family {
        Family::OpenAi => ("authorization", format!("Bearer {secret}")),
        Family::Anthropic => ("x-api-key", secret.to_owned()),
        Family::Gemini => ("x-goog-api-key", secret.to_owned()),
    }
}

/// The query string to forward (without `?`), with any `key` parameter removed: keys are
/// never read from or passed through URLs. `None` when nothing is left.
pub fn forwarded_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("key"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_edge_headers_stay_behind() {
        for name in ["authorization", "x-api-key", "x-goog-api-key", "host", "cf-connecting-ip", "x-forwarded-for", "connection", "content-length"] {
            assert!(!forwards_request_header(name), "{name}");
        }
        for name in ["content-type", "anthropic-version", "anthropic-beta", "openai-organization", "x-mock-status", "accept"] {
            assert!(forwards_request_header(name), "{name}");
        }
    }

    #[test]
    fn response_headers() {
        assert!(forwards_response_header("content-type"));
        assert!(forwards_response_header("x-request-id"));
        assert!(!forwards_response_header("content-length"));
        assert!(!forwards_response_header("transfer-encoding"));
        assert!(!forwards_response_header("set-cookie"));
    }

    #[test]
    fn credential_styles() {
        assert_eq!(credential_header(Family::OpenAi, "s"), ("authorization", "Bearer s".to_owned()));
        assert_eq!(credential_header(Family::Anthropic, "s"), ("x-api-key", "s".to_owned()));
        assert_eq!(credential_header(Family::Gemini, "s"), ("x-goog-api-key", "s".to_owned()));
    }

    #[test]
    fn key_query_parameter_is_dropped() {
        assert_eq!(forwarded_query(None), None);
        assert_eq!(forwarded_query(Some("alt=sse")), Some("alt=sse".to_owned()));
        assert_eq!(forwarded_query(Some("key=secret")), None);
        assert_eq!(forwarded_query(Some("alt=sse&key=secret&x=1")), Some("alt=sse&x=1".to_owned()));
        assert_eq!(forwarded_query(Some("keys=1")), Some("keys=1".to_owned()));
    }
}
