//! The checks every call passes before it is forwarded, in this order; the first failure wins:
//!
//! 1. the key is active (else 401 `key_disabled`);
//! 2. the key has not expired, `now_ms < expires_at`, nor outlived its boundaries,
//!    `now_ms < boundary_expires_at` (else 401 `key_expired`);
//! 3. the client address is on the key's IP allowlist, if it has one, and on each of its
//!    boundaries' (else 403 `ip_not_allowed`);
//! 4. the model passes the key's allow/block globs and those of the boundaries above it (else 403
//!    `model_not_allowed`, naming the rule that refused);
//! 5. a routing group the key may use (on its own list and on each of its boundaries') serves the
//!    model for the request's family (else 403 `routing_group_not_allowed`, or 404
//!    `model_not_found` when no group serves it at all).
//!
//! The boundaries' constraints are those the record carries (`boundary_*`): the control plane
//! projects them into every record, so a record whose own rules were written wider (by hand, or
//! before a boundary was tightened) is still held to them.
//!
//! Calls without a model (model lists) skip step 4 and, in step 5, go to the first usable group
//! with a target of their family. Limits are not checked here: the ledger admits the call after.

use super::denial::Denial;
use super::model_access::ModelAccess;
use super::record::{KeyPolicy, KeyRecord, KeyStatus};
use super::routing::{GroupAccess, ResolvedRoute, RoutingConfig};
use crate::family::Family;
use crate::gateway::request::RequestFacts;
use crate::gateway::route::Route;
use std::net::IpAddr;

/// What the checks need to know about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFacts<'a> {
    pub family: Family,
    pub model: Option<&'a str>,
    /// The client address, only ever from `CF-Connecting-IP` (set by Cloudflare's edge; headers
    /// like `X-Forwarded-For` are the client's to forge). `None` if absent or unparsable.
    pub client_ip: Option<IpAddr>,
}

impl<'a> CallFacts<'a> {
    pub fn new(route: &Route, request: &'a RequestFacts, cf_connecting_ip: Option<&str>) -> CallFacts<'a> {
        CallFacts { family: route.family, model: request.model.as_deref(), client_ip: client_ip(cf_connecting_ip) }
    }
}

/// The client address a `CF-Connecting-IP` value names, if it parses.
pub fn client_ip(cf_connecting_ip: Option<&str>) -> Option<IpAddr> {
    cf_connecting_ip.and_then(|value| value.trim().parse().ok())
}

/// Runs the checks (see the module doc) and, if all pass, returns where the call goes.
pub fn authorize<'r>(
    policy: &KeyPolicy,
    call: &CallFacts,
    routing: &'r RoutingConfig,
    now_ms: u64,
) -> Result<ResolvedRoute<'r>, Denial> {
    let record = policy.record();
    authorize_key(policy, call.client_ip, now_ms)?;
    if let Some(model) = call.model {
        if let Some(rule) = model_rules(record).find(|rule| !rule.permits(model)) {
            return Err(Denial::ModelNotAllowed { model: model.to_owned(), access: rule.clone() });
        }
    }
    routing.resolve(call.family, call.model, group_access(record))
}

/// Steps 1 to 3 (see the module doc): whether the key may be used at all, at `now_ms`, from
/// `client_ip` (what a call that names no model and reaches no upstream, like `GET /v1/key`,
/// passes).
pub fn authorize_key(policy: &KeyPolicy, client_ip: Option<IpAddr>, now_ms: u64) -> Result<(), Denial> {
    let record = policy.record();
    if record.status == KeyStatus::Disabled {
        return Err(Denial::KeyDisabled { key_id: record.id.clone() });
    }
    if let Some(expired_at_ms) = record.expires_at.filter(|&expires_at| now_ms >= expires_at) {
        return Err(Denial::KeyExpired { key_id: record.id.clone(), expired_at_ms });
    }
    if let Some(ended_at_ms) = record.boundary_expires_at.filter(|&end| now_ms >= end) {
        return Err(Denial::KeyLifetimeEnded { key_id: record.id.clone(), ended_at_ms });
    }
    if !policy.ip_allowlist().permits(client_ip) {
        return Err(Denial::IpNotAllowed { client_ip });
    }
    if !policy.boundary_ip_allowlists().iter().all(|allowlist| allowlist.permits(client_ip)) {
        return Err(Denial::IpOutsideBoundary { client_ip });
    }
    Ok(())
}

/// Filters an upstream model list down to the models the key may call: allowed by its globs and
/// served by a routing group it may use. Gemini lists name models `models/{id}`; the prefix is
/// ignored for the checks and kept in the output. Names are checked as the upstream reports
/// them (a target's `model_map` is not reversed).
pub fn visible_models<'a, 'n: 'a>(
    policy: &'a KeyPolicy,
    routing: &'a RoutingConfig,
    family: Family,
    names: impl IntoIterator<Item = &'n str> + 'a,
) -> impl Iterator<Item = &'n str> + 'a {
    let record = policy.record();
    names.into_iter().filter(move |name| {
        let model = match family {
            Family::Gemini => name.strip_prefix("models/").unwrap_or(name),
            _ => name,
        };
        model_rules(record).all(|rule| rule.permits(model)) && routing.serves(family, Some(model), group_access(record))
    })
}

/// The key's own model rule, then its boundaries'.
fn model_rules(record: &KeyRecord) -> impl Iterator<Item = &ModelAccess> {
    std::iter::once(&record.rules.models).chain(&record.boundary_models)
}

/// The key's own routing groups, narrowed by its boundaries'.
fn group_access(record: &KeyRecord) -> GroupAccess<'_> {
    GroupAccess { own: &record.rules.routing_groups, boundaries: &record.boundary_routing_groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, ErrorType};
    use Family::*;

    const NOW: u64 = 1_000_000;

    /// An active key with every policy field at its default, overridden by `extra` fields.
    fn policy(extra: &str) -> KeyPolicy {
        let status = if extra.contains(r#""status""#) { "" } else { r#","status":"active""# };
        let json = format!(r#"{{"id":"k1","name":"n","creator":"c","project":"p","created_at":0{status}{extra}}}"#);
        KeyPolicy::from_json(json.as_bytes()).unwrap()
    }

    fn routing() -> RoutingConfig {
        let family = |f: Family| serde_json::to_string(&f).unwrap();
        let target =
            |f: Family| format!(r#"{{"base_url":"https://u.example","family":{},"credential_secret":"S"}}"#, family(f));
        RoutingConfig::from_json(&format!(
            r#"{{"groups":[
                {{"name":"claude","models":["claude-*"],"targets":[{}]}},
                {{"name":"openai","models":["gpt-*","o*"],"targets":[{}]}},
                {{"name":"premium","models":["gpt-5*"],"targets":[{}]}}
            ]}}"#,
            target(Anthropic),
            target(OpenAi),
            target(OpenAi)
        ))
        .unwrap()
    }

    fn call(family: Family, model: Option<&str>, ip: Option<&str>) -> CallFacts<'static> {
        let model = model.map(|m| &*Box::leak(m.to_owned().into_boxed_str()));
        CallFacts { family, model, client_ip: ip.map(|ip| ip.parse().unwrap()) }
    }

    /// (policy fields, family, model, client IP, expected group or (status, code))
    type Case =
        (&'static str, Family, Option<&'static str>, Option<&'static str>, Result<&'static str, (u16, &'static str)>);

    const CASES: &[Case] = &[
        ("", Anthropic, Some("claude-sonnet-4-5"), None, Ok("claude")),
        ("", OpenAi, Some("gpt-4o"), None, Ok("openai")),
        ("", OpenAi, None, None, Ok("openai")),
        // 1. status
        (r#","status":"disabled""#, OpenAi, Some("gpt-4o"), None, Err((401, "key_disabled"))),
        // 2. expiry: the instant of expiry is already expired
        (r#","expires_at":1000001"#, OpenAi, Some("gpt-4o"), None, Ok("openai")),
        (r#","expires_at":1000000"#, OpenAi, Some("gpt-4o"), None, Err((401, "key_expired"))),
        (r#","expires_at":5"#, OpenAi, None, None, Err((401, "key_expired"))),
        // 3. IP allowlist
        (r#","ip_allowlist":["192.0.2.0/24"]"#, OpenAi, Some("gpt-4o"), Some("192.0.2.8"), Ok("openai")),
        (
            r#","ip_allowlist":["192.0.2.0/24"]"#,
            OpenAi,
            Some("gpt-4o"),
            Some("198.51.100.1"),
            Err((403, "ip_not_allowed")),
        ),
        (r#","ip_allowlist":["192.0.2.0/24"]"#, OpenAi, Some("gpt-4o"), None, Err((403, "ip_not_allowed"))),
        (r#","ip_allowlist":["2001:db8::/48"]"#, OpenAi, None, Some("2001:db8:0:1::5"), Ok("openai")),
        (r#","ip_allowlist":["2001:db8::/48"]"#, OpenAi, None, Some("2001:db8:1::5"), Err((403, "ip_not_allowed"))),
        // 4. model globs
        (r#","models":{"allow":["claude-*"]}"#, Anthropic, Some("claude-haiku-4-5"), None, Ok("claude")),
        (r#","models":{"allow":["claude-*"]}"#, OpenAi, Some("gpt-4o"), None, Err((403, "model_not_allowed"))),
        (r#","models":{"allow":["claude-*"]}"#, OpenAi, None, None, Ok("openai")),
        (r#","models":{"block":["gpt-5*"]}"#, OpenAi, Some("gpt-5-mini"), None, Err((403, "model_not_allowed"))),
        (r#","models":{"block":["gpt-5*"]}"#, OpenAi, Some("gpt-4o"), None, Ok("openai")),
        // 5. routing groups
        (r#","routing_groups":["premium"]"#, OpenAi, Some("gpt-5"), None, Ok("premium")),
        (r#","routing_groups":["premium"]"#, OpenAi, Some("gpt-4o"), None, Err((403, "routing_group_not_allowed"))),
        (r#","routing_groups":["claude"]"#, OpenAi, None, None, Err((403, "routing_group_not_allowed"))),
        (
            r#","routing_groups":["nonexistent"]"#,
            Anthropic,
            Some("claude-x"),
            None,
            Err((403, "routing_group_not_allowed")),
        ),
        ("", OpenAi, Some("llama-3"), None, Err((404, "model_not_found"))),
        ("", Gemini, Some("gemini-2.5-pro"), None, Err((404, "model_not_found"))),
        ("", Gemini, None, None, Err((404, "model_not_found"))),
        // Order: each request fails two checks and gets the earlier one.
        (r#","status":"disabled","expires_at":1"#, OpenAi, Some("gpt-4o"), None, Err((401, "key_disabled"))),
        (r#","expires_at":1,"ip_allowlist":["192.0.2.1"]"#, OpenAi, Some("gpt-4o"), None, Err((401, "key_expired"))),
        (
            r#","ip_allowlist":["192.0.2.1"],"models":{"allow":["x"]}"#,
            OpenAi,
            Some("gpt-4o"),
            None,
            Err((403, "ip_not_allowed")),
        ),
        (
            r#","models":{"allow":["llama-*"]},"routing_groups":["claude"]"#,
            OpenAi,
            Some("gpt-4o"),
            None,
            Err((403, "model_not_allowed")),
        ),
        (r#","models":{"allow":["llama-*"]}"#, OpenAi, Some("gpt-4o"), None, Err((403, "model_not_allowed"))),
        // 4. boundary model rules apply on top of the key's own
        (r#","boundary_models":[{"allow":["gpt-*"]}]"#, OpenAi, Some("gpt-4o"), None, Ok("openai")),
        (
            r#","boundary_models":[{"allow":["gpt-*"]},{"block":["gpt-4*"]}]"#,
            OpenAi,
            Some("gpt-4o"),
            None,
            Err((403, "model_not_allowed")),
        ),
        (
            r#","models":{"allow":["gpt-4o"]},"boundary_models":[{"allow":["claude-*"]}]"#,
            OpenAi,
            Some("gpt-4o"),
            None,
            Err((403, "model_not_allowed")),
        ),
        // 2, 3, 5: the boundaries' lifetime, IP allowlists and routing groups hold whatever the
        // key's own rules say (a record written wider by hand, or before a boundary tightened).
        (r#","boundary_expires_at":1000001"#, OpenAi, Some("gpt-4o"), None, Ok("openai")),
        (r#","boundary_expires_at":1000000"#, OpenAi, Some("gpt-4o"), None, Err((401, "key_expired"))),
        (r#","expires_at":9999999,"boundary_expires_at":5"#, OpenAi, None, None, Err((401, "key_expired"))),
        (r#","boundary_ip_allowlists":[["192.0.2.0/24"]]"#, OpenAi, None, Some("192.0.2.8"), Ok("openai")),
        (
            r#","boundary_ip_allowlists":[["192.0.2.0/24"]]"#,
            OpenAi,
            None,
            Some("198.51.100.1"),
            Err((403, "ip_not_allowed")),
        ),
        (r#","boundary_ip_allowlists":[["192.0.2.0/24"]]"#, OpenAi, None, None, Err((403, "ip_not_allowed"))),
        (
            r#","ip_allowlist":["0.0.0.0/0"],"boundary_ip_allowlists":[["0.0.0.0/0"],["192.0.2.0/24"]]"#,
            OpenAi,
            None,
            Some("198.51.100.1"),
            Err((403, "ip_not_allowed")),
        ),
        (r#","boundary_routing_groups":[["premium"]]"#, OpenAi, Some("gpt-5"), None, Ok("premium")),
        (
            r#","boundary_routing_groups":[["premium"]]"#,
            OpenAi,
            Some("gpt-4o"),
            None,
            Err((403, "routing_group_not_allowed")),
        ),
        (
            r#","routing_groups":["openai","premium"],"boundary_routing_groups":[["openai","premium"],["premium"]]"#,
            OpenAi,
            Some("gpt-5"),
            None,
            Ok("premium"),
        ),
        (
            r#","routing_groups":["openai"],"boundary_routing_groups":[["premium"]]"#,
            OpenAi,
            Some("gpt-5"),
            None,
            Err((403, "routing_group_not_allowed")),
        ),
        (
            r#","boundary_routing_groups":[["claude"],["openai"]]"#,
            Anthropic,
            Some("claude-x"),
            None,
            Err((403, "routing_group_not_allowed")),
        ),
    ];

    #[test]
    fn checks_and_their_order() {
        let routing = routing();
        for &(fields, family, model, ip, expected) in CASES {
            let outcome = authorize(&policy(fields), &call(family, model, ip), &routing, NOW);
            let got = outcome.map(|r| r.group).map_err(|denial| {
                let e = ApiError::from(denial);
                (e.status(), e.code().as_str())
            });
            assert_eq!(got, expected, "{fields} {family:?} {model:?} {ip:?}");
        }
    }

    #[test]
    fn denial_types() {
        let routing = routing();
        let deny = |fields: &str, model: Option<&str>| {
            ApiError::from(authorize(&policy(fields), &call(OpenAi, model, None), &routing, NOW).unwrap_err())
        };
        assert_eq!(deny(r#","status":"disabled""#, None).kind(), ErrorType::AuthenticationError);
        assert_eq!(deny(r#","ip_allowlist":["::1"]"#, None).kind(), ErrorType::PermissionError);
        let e = deny(r#","boundary_expires_at":5"#, None);
        assert!(e.message.contains("its project or organisation allows keys at most"), "{}", e.message);
        let e = deny(r#","boundary_ip_allowlists":[["::1"]]"#, None);
        assert!(e.message.contains("project or organisation has an IP allowlist"), "{}", e.message);
        let e = deny(r#","models":{"allow":["claude-*"]}"#, Some("gpt-4o"));
        assert_eq!(e.message, "Model 'gpt-4o' is not allowed for this key (allowed: claude-*).");
    }

    #[test]
    fn call_facts_from_a_request() {
        let route = crate::gateway::route::classify("POST", "/openai/v1/chat/completions").unwrap();
        let request = RequestFacts { model: Some("gpt-4o".into()), ..RequestFacts::default() };
        let facts = CallFacts::new(&route, &request, Some(" 2001:db8::1 "));
        assert_eq!((facts.family, facts.model), (OpenAi, Some("gpt-4o")));
        assert_eq!(facts.client_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(CallFacts::new(&route, &request, Some("unknown")).client_ip, None);
        assert_eq!(CallFacts::new(&route, &request, None).client_ip, None);
    }

    #[test]
    fn visible_models_filter() {
        let routing = routing();
        let listed = ["gpt-4o", "gpt-5", "o3", "llama-3", "claude-x", "dall-e-3"];
        let visible = |fields: &str| visible_models(&policy(fields), &routing, OpenAi, listed).collect::<Vec<_>>();
        assert_eq!(visible(""), ["gpt-4o", "gpt-5", "o3"]);
        assert_eq!(visible(r#","models":{"block":["o*"]}"#), ["gpt-4o", "gpt-5"]);
        assert_eq!(visible(r#","routing_groups":["premium"]"#), ["gpt-5"]);
        assert_eq!(visible(r#","boundary_models":[{"block":["gpt-5*"]}]"#), ["gpt-4o", "o3"]);
        assert!(visible(r#","routing_groups":["claude"]"#).is_empty());
        assert_eq!(visible(r#","boundary_routing_groups":[["premium","claude"]]"#), ["gpt-5"]);

        let gemini = RoutingConfig::default_for("https://u.example", "S");
        let names = ["models/gemini-2.5-pro", "models/gemini-2.5-flash", "models/embedding-001"];
        let policy = policy(r#","models":{"allow":["gemini-*"]}"#);
        let got: Vec<&str> = visible_models(&policy, &gemini, Gemini, names).collect();
        assert_eq!(got, ["models/gemini-2.5-pro", "models/gemini-2.5-flash"]);
    }
}
