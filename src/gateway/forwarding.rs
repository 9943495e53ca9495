//! What crosses the gateway and what does not: the headers and query of the client's request
//! that reach the upstream, the upstream's headers that reach the client, and where each
//! family's upstream credential goes.
//!
//! Invariant: no client credential (any of the three key headers, `?key=`) and no hop-by-hop or
//! edge-internal header (`cf-…`, `x-forwarded-…`, the gateway's own `x-teamkeys-…`, such as the
//! end user a call names) is ever forwarded to an upstream.

use crate::family::Family;
use std::borrow::Cow;

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

/// The `alt` values forwarded: the framings whose usage the gateway reads (`alt=media` or
/// `alt=proto` would hide it).
const FORWARDED_ALT: [&str; 2] = ["sse", "json"];

/// `anthropic-beta` values forwarded; others are dropped from the header. Left out on purpose:
/// betas that reach the Files API or skills (state shared across keys), the MCP connector, web
/// fetch and code execution (work the gateway cannot bound), and the 1M-token context tier
/// (priced above the pricing table's rates).
const FORWARDED_ANTHROPIC_BETAS: [&str; 9] = [
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "token-efficient-tools-2025-02-19",
    "output-128k-2025-02-19",
    "context-management-2025-06-27",
    "structured-outputs-2025-11-13",
    "effort-2025-11-24",
    "computer-use-2025-01-24",
    "prompt-caching-2024-07-31",
];

/// Upstream response headers that describe the organisation's upstream account (its own rate
/// limits, organisation, project) rather than the caller's key; the gateway sets its own.
const UPSTREAM_ACCOUNT_PREFIXES: [&str; 5] =
    ["x-ratelimit-", "anthropic-ratelimit-", "openai-organization", "openai-project", "anthropic-organization-"];

/// The value a client request header (lower-case name) is passed to the upstream with, if it is:
/// `anthropic-beta` keeps only its `FORWARDED_ANTHROPIC_BETAS` values.
pub fn forwarded_request_header<'v>(name: &str, value: &'v str) -> Option<Cow<'v, str>> {
    if !forwards_request_header(name) {
        return None;
    }
    if name != "anthropic-beta" {
        return Some(Cow::Borrowed(value));
    }
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|beta| FORWARDED_ANTHROPIC_BETAS.contains(beta)).collect();
    (!kept.is_empty()).then(|| Cow::Owned(kept.join(",")))
}

/// Request header name prefixes never forwarded: Cloudflare's, proxies', and the gateway's own
/// (`x-teamkeys-`, e.g. the end user a call names, which is the tenant's to keep).
const CLIENT_ONLY_PREFIXES: [&str; 3] = ["cf-", "x-forwarded-", "x-teamkeys-"];

/// Whether a client request header (lower-case name) is passed to the upstream at all.
fn forwards_request_header(name: &str) -> bool {
    !(HOP_BY_HOP.contains(&name)
        || CLIENT_ONLY.contains(&name)
        || CLIENT_ONLY_PREFIXES.iter().any(|prefix| name.starts_with(prefix)))
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

/// The query string to forward (without `?`): only the `FORWARDED_QUERY` parameters, in
/// their order, and `alt` only with a `FORWARDED_ALT` value. `None` when nothing is left.
pub fn forwarded_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            FORWARDED_QUERY.contains(&name) && (name != "alt" || FORWARDED_ALT.contains(&value))
        })
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
            "x-teamkeys-end-user",
            "x-teamkeys-anything",
        ] {
            assert!(!forwards_request_header(name), "{name}");
        }
        for name in ["content-type", "anthropic-version", "anthropic-beta", "openai-beta", "x-mock-status", "accept"] {
            assert!(forwards_request_header(name), "{name}");
        }
    }

    #[test]
    fn anthropic_betas_pass_only_from_the_allowlist() {
        let beta = |value| forwarded_request_header("anthropic-beta", value);
        assert_eq!(beta("interleaved-thinking-2025-05-14"), Some(Cow::Borrowed("interleaved-thinking-2025-05-14")));
        assert_eq!(
            beta("files-api-2025-04-14, effort-2025-11-24,context-1m-2025-08-07").as_deref(),
            Some("effort-2025-11-24")
        );
        assert_eq!(beta("files-api-2025-04-14,mcp-client-2025-04-04,skills-2025-10-02"), None);
        assert_eq!(forwarded_request_header("accept", "text/event-stream").as_deref(), Some("text/event-stream"));
        assert_eq!(forwarded_request_header("authorization", "Bearer k"), None);
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
        assert_eq!(forwarded_query(Some("alt=media&alt=json")), Some("alt=json".to_owned()));
        assert_eq!(forwarded_query(Some("alt=proto")), None);
        assert_eq!(forwarded_query(Some("alt")), None);
        assert_eq!(forwarded_query(Some("pageSize=5&pageToken=abc")), Some("pageSize=5&pageToken=abc".to_owned()));
    }
}
