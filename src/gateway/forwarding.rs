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

/// Request headers never forwarded besides hop-by-hop ones: credentials, what describes the
/// client's connection to the edge, what would pick another account or project of the
/// organisation's upstream, and what would reshape the answer the usage is read from (a Gemini
/// field mask could drop `usageMetadata`) or the method.
const CLIENT_ONLY: [&str; 15] = [
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "host",
    "cookie",
    "x-real-ip",
    "forwarded",
    "openai-organization",
    "openai-project",
    "x-goog-user-project",
    "x-goog-fieldmask",
    "x-goog-request-params",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Query parameters forwarded: Gemini's stream framing and model-list paging. Any other (`key`,
/// `fields`, `$fields`, …) stays behind: keys are never read from or passed through URLs, and a
/// field selector could strip the usage an answer is billed by.
const FORWARDED_QUERY: [&str; 8] =
    ["alt", "pageSize", "pageToken", "limit", "after", "before", "after_id", "before_id"];

/// Upstream response headers that describe the organisation's upstream account (its own rate
/// limits, organisation, project) rather than the caller's key; the gateway sets its own.
const UPSTREAM_ACCOUNT_PREFIXES: [&str; 5] =
    ["x-ratelimit-", "anthropic-ratelimit-", "openai-organization", "openai-project", "anthropic-organization-"];

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
    !HOP_BY_HOP.contains(&name)
        && name != "set-cookie"
        && !UPSTREAM_ACCOUNT_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// The header carrying the upstream credential in `family`'s style, and its value.
pub fn credential_header(family: Family, secret: &str) -> (&'static str, String) {
    match family {
        Family::OpenAi => ("authorization", format!("Bearer {secret}")),
        Family::Anthropic => ("x-api-key", secret.to_owned()),
        Family::Gemini => ("x-goog-api-key", secret.to_owned()),
    }
}

/// The query string to forward (without `?`): only the [`FORWARDED_QUERY`] parameters, in
/// their order. `None` when nothing is left.
pub fn forwarded_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|pair| pair.split('=').next().is_some_and(|name| FORWARDED_QUERY.contains(&name)))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_edge_headers_stay_behind() {
        for name in [
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "host",
            "cf-connecting-ip",
            "x-forwarded-for",
            "connection",
            "content-length",
            "openai-organization",
            "x-goog-fieldmask",
        ] {
            assert!(!forwards_request_header(name), "{name}");
        }
        for name in ["content-type", "anthropic-version", "anthropic-beta", "openai-beta", "x-mock-status", "accept"] {
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
        assert!(!forwards_response_header("x-ratelimit-remaining-tokens"));
        assert!(!forwards_response_header("anthropic-ratelimit-requests-limit"));
        assert!(!forwards_response_header("openai-organization"));
    }

    #[test]
    fn credential_styles() {
        assert_eq!(credential_header(Family::OpenAi, "s"), ("authorization", "Bearer s".to_owned()));
        assert_eq!(credential_header(Family::Anthropic, "s"), ("x-api-key", "s".to_owned()));
        assert_eq!(credential_header(Family::Gemini, "s"), ("x-goog-api-key", "s".to_owned()));
    }

    #[test]
    fn only_known_query_parameters_cross() {
        assert_eq!(forwarded_query(None), None);
        assert_eq!(forwarded_query(Some("alt=sse")), Some("alt=sse".to_owned()));
        assert_eq!(forwarded_query(Some("key=secret")), None);
        assert_eq!(forwarded_query(Some("alt=sse&key=secret&x=1")), Some("alt=sse".to_owned()));
        assert_eq!(forwarded_query(Some("fields=usageMetadata.promptTokenCount&alt=sse")), Some("alt=sse".to_owned()));
        assert_eq!(forwarded_query(Some("$fields=x")), None);
        assert_eq!(forwarded_query(Some("pageSize=5&pageToken=abc")), Some("pageSize=5&pageToken=abc".to_owned()));
    }
}
