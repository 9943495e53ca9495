//! What a call is charged: the reservation made before it is forwarded, and the settlement
//! after its upstream answered.
//!
//! - Reserve: an upper bound on what the upstream can bill ([`bounds`](crate::gateway::bounds)):
//!   the input bound, plus the output cap sent upstream (the client's, else the key's
//!   `default_max_tokens`, else [`DEFAULT_MAX_OUTPUT_TOKENS`]) times the choices, priced at the
//!   model's rates. Token windows reserve the tighter input estimate. Embeddings produce no
//!   output. Routes not billed in tokens reserve nothing but still count as requests. A key with
//!   spend caps is refused what the gateway cannot bound or price (the body's
//!   [`RequestFacts::capped_refusal`], per-unit routes, unpriced models); in strict mode every
//!   key is refused members the route's table does not know.
//! - Settle: the usage the upstream reported, priced the same way, once it is final (the body
//!   read whole with its usage in place, or the stream's terminal event). An upstream answer of
//!   400 or above releases the reservation (nothing billed). A successful answer whose usage is
//!   not final (a stream cut or abandoned before its terminal event, an upstream that omits
//!   usage) is charged its reservation, or the usage seen so far where that is more: unknown
//!   usage is never counted as less than the bound. So is a call whose client left while the
//!   upstream was working on it: the upstream bills it whether or not anyone reads it.

use crate::error::{ApiError, Code};
use crate::family::Family;
pub use crate::gateway::bounds::DEFAULT_MAX_OUTPUT_TOKENS;
use crate::gateway::members::{unknown_member, UnknownMembers};
use crate::gateway::request::RequestFacts;
use crate::gateway::route::{Endpoint, Route};
use crate::limits::{Actual, Ask};
use crate::policy::KeyRules;
use crate::usage::{CacheWriteBilling, Price, Usage};

/// How a call ended, for its reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The call never reached the upstream, or the upstream failed: nothing to bill.
    Released,
    /// The client left while the upstream was working on the call, before its answer.
    Abandoned,
    /// The upstream answered `status`, having reported `usage` (if any) by the end; `complete`
    /// when that usage is final (see [`UsageScanner::is_final`](crate::usage::UsageScanner::is_final)).
    Answered { status: u16, usage: Option<Usage>, complete: bool },
}

impl Ending {
    /// The usage the upstream reported, if the call got that far.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            Ending::Answered { usage, .. } => *usage,
            _ => None,
        }
    }
}

/// The estimate of a call and the price it is billed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metering {
    pub ask: Ask,
    /// The model's price; `None` when the model has none (its calls then cost nothing).
    pub price: Option<Price>,
}

impl Metering {
    /// The reservation for a call, after which `facts` carry the output cap to send (the key's
    /// default applied). A key with spend caps cannot make a call whose spend could not be
    /// counted: a body part refused to such keys (403, see
    /// [`members`](crate::gateway::members)), a model without a price (403 `model_not_priced`),
    /// or a route billed per image or character (403 `route_not_metered`). With
    /// [`UnknownMembers::Refuse`], a member the route's table does not know is refused (403
    /// `member_not_known`).
    ///
    /// A call is under a spend cap when the key's limits, the limits of the model pattern its
    /// model matches or its end-user limits have one ([`KeyRules::spend_capped`]); its output cap
    /// defaults to its model pattern's `default_max_tokens`, else the key's.
    pub fn reserve(
        route: &Route,
        facts: &mut RequestFacts,
        rules: &KeyRules,
        price: Option<Price>,
        unknown: UnknownMembers,
    ) -> Result<Metering, ApiError> {
        if let (UnknownMembers::Refuse, Some(member)) = (unknown, &facts.unknown_member) {
            return Err(unknown_member(member));
        }
        let capped = rules.spend_capped(facts.model.as_deref());
        if route.endpoint == Endpoint::BilledPerUnit && capped {
            return Err(ApiError::new(
                Code::RouteNotMetered,
                "This route is billed per image or character, which teamkeys cannot meter, and this key has a spend limit. Use a key without a spend limit.",
            ));
        }
        if !route.costs_tokens() {
            return Ok(Metering { ask: Ask::ZERO, price });
        }
        if let (true, Some(refusal)) = (capped, &facts.capped_refusal) {
            return Err(refusal.clone().into_api_error());
        }
        if price.is_none() && capped {
            let model = facts.model.as_deref().unwrap_or_default();
            return Err(ApiError::new(
                Code::ModelNotPriced,
                format!("Model '{model}' has no price configured, and this key has a spend limit. Ask an administrator to add it to the pricing table."),
            ));
        }
        let key_default = rules.default_max_tokens(facts.model.as_deref()).map(|n| n.get());
        facts.output = facts.output.map(|cap| cap.with_key_default(key_default));
        let output = facts.output.map_or(0, |cap| cap.reserved());
        let tokens = facts.input_tokens_estimate.saturating_add(output);
        // The dearest way the input could be billed (cache writes, a long-context tier).
        let cache_writes = match route.family {
            Family::Anthropic => CacheWriteBilling::Billed,
            Family::OpenAi | Family::Gemini => CacheWriteBilling::AtInputRate,
        };
        let cost_micros = price.map_or(0, |p| p.max_cost_micros(facts.input_tokens_bound, output, cache_writes));
        Ok(Metering { ask: Ask { tokens, cost_micros }, price })
    }

    /// What to record for a call that ended so: `None` releases the reservation.
    pub fn settle(&self, ending: Ending) -> Option<Actual> {
        match ending {
            Ending::Released => None,
            Ending::Abandoned => Some(self.ask),
            Ending::Answered { status, .. } if status >= 400 => None,
            Ending::Answered { usage: Some(usage), complete: true, .. } => Some(charge(&usage, self.price.as_ref())),
            Ending::Answered { usage, .. } => {
                let seen = usage.map_or(Actual::default(), |usage| charge(&usage, self.price.as_ref()));
                Some(Actual {
                    tokens: seen.tokens.max(self.ask.tokens),
                    cost_micros: seen.cost_micros.max(self.ask.cost_micros),
                })
            }
        }
    }
}

fn charge(usage: &Usage, price: Option<&Price>) -> Actual {
    Actual { tokens: usage.total_tokens(), cost_micros: price.map_or(0, |p| p.cost_micros(usage)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::route::classify;
    use crate::limits::Limits;
    use crate::usage::Pricing;

    fn facts(route: &Route, body: &str) -> RequestFacts {
        crate::gateway::request::inspect(route, body.as_bytes()).unwrap()
    }

    fn reserve(route: &Route, f: &RequestFacts, limits: &Limits, price: Option<Price>) -> Result<Metering, ApiError> {
        let rules = KeyRules { limits: limits.clone(), ..KeyRules::default() };
        Metering::reserve(route, &mut f.clone(), &rules, price, UnknownMembers::Pass)
    }

    #[test]
    fn a_model_patterns_cap_and_default_apply_to_its_models() {
        let route = classify("POST", "/openai/v1/chat/completions").unwrap();
        let rules: KeyRules = serde_json::from_str(
            r#"{"model_limits":[{"pattern":"o3*","limits":{"default_max_tokens":9,"spend":[{"period":"daily","limit_micros":100}]}}]}"#,
        )
        .unwrap();
        let reserve =
            |body: &str| Metering::reserve(&route, &mut facts(&route, body), &rules, None, UnknownMembers::Pass);
        let err = reserve(r#"{"model":"o3-mini","messages":[]}"#).unwrap_err();
        assert_eq!(err.code().as_str(), "model_not_priced", "the pattern's cap makes its models capped");
        let body = r#"{"model":"gpt-4o","messages":[]}"#;
        let other = reserve(body).unwrap();
        let input = facts(&route, body).input_tokens_estimate;
        assert_eq!(
            other.ask.tokens,
            input + DEFAULT_MAX_OUTPUT_TOKENS,
            "other models are not capped, keep the defaults"
        );
        let uncapped: KeyRules =
            serde_json::from_str(r#"{"model_limits":[{"pattern":"o3*","limits":{"default_max_tokens":9}}]}"#).unwrap();
        let f = &mut facts(&route, r#"{"model":"o3-mini","messages":[]}"#);
        let input = f.input_tokens_estimate;
        assert_eq!(Metering::reserve(&route, f, &uncapped, None, UnknownMembers::Pass).unwrap().ask.tokens, input + 9);
    }

    fn pricing() -> Pricing {
        Pricing::from_json(r#"[{"model":"gpt-4o","input":2000000,"output":8000000}]"#).unwrap()
    }

    #[test]
    fn reserves_input_estimate_plus_max_tokens() {
        let route = classify("POST", "/openai/v1/chat/completions").unwrap();
        let body = r#"{"model":"gpt-4o","max_tokens":100,"messages":[]}"#;
        let f = facts(&route, body);
        let pricing = pricing();
        let m = reserve(&route, &f, &Limits::default(), pricing.price("gpt-4o").copied()).unwrap();
        assert_eq!(m.ask.tokens, f.input_tokens_estimate + 100);
        let expected = (f.input_tokens_bound * 2_000_000 + 100 * 8_000_000).div_ceil(1_000_000);
        assert_eq!(m.ask.cost_micros, expected);
    }

    #[test]
    fn falls_back_to_key_default_then_gateway_default() {
        let route = classify("POST", "/anthropic/v1/messages").unwrap();
        let f = facts(&route, r#"{"model":"claude-x","messages":[]}"#);
        let m = reserve(&route, &f, &Limits::default(), None).unwrap();
        assert_eq!(m.ask.tokens, f.input_tokens_estimate + DEFAULT_MAX_OUTPUT_TOKENS);
        let limits = Limits { default_max_tokens: std::num::NonZeroU64::new(7), ..Limits::default() };
        let m = reserve(&route, &f, &limits, None).unwrap();
        assert_eq!(m.ask.tokens, f.input_tokens_estimate + 7);
    }

    #[test]
    fn unpriced_model_is_refused_only_under_a_spend_cap() {
        let route = classify("POST", "/openai/v1/chat/completions").unwrap();
        let f = facts(&route, r#"{"model":"mystery","messages":[]}"#);
        let capped: Limits = serde_json::from_str(r#"{"spend":[{"period":"daily","limit_micros":100}]}"#).unwrap();
        let err = reserve(&route, &f, &capped, None).unwrap_err();
        assert_eq!((err.status(), err.code().as_str()), (403, "model_not_priced"));
        assert_eq!(reserve(&route, &f, &Limits::default(), None).unwrap().ask.cost_micros, 0);
    }

    #[test]
    fn per_unit_routes_are_refused_only_under_a_spend_cap() {
        let route = classify("POST", "/openai/v1/images/generations").unwrap();
        let f = facts(&route, r#"{"model":"dall-e-3","prompt":"a cat"}"#);
        let capped: Limits = serde_json::from_str(r#"{"spend":[{"period":"total","limit_micros":100}]}"#).unwrap();
        let err = reserve(&route, &f, &capped, None).unwrap_err();
        assert_eq!((err.status(), err.code().as_str()), (403, "route_not_metered"));
        assert_eq!(reserve(&route, &f, &Limits::default(), None).unwrap().ask, Ask::ZERO);
        let moderation = classify("POST", "/openai/v1/moderations").unwrap();
        let f = facts(&moderation, r#"{"model":"omni-moderation-latest","input":"hi"}"#);
        assert_eq!(reserve(&moderation, &f, &capped, None).unwrap().ask, Ask::ZERO);
    }

    #[test]
    fn models_list_reserves_nothing() {
        let route = classify("GET", "/openai/v1/models").unwrap();
        let f = facts(&route, "");
        assert_eq!(reserve(&route, &f, &Limits::default(), None).unwrap().ask, Ask::ZERO);
    }

    #[test]
    fn settlement_rules() {
        let pricing = pricing();
        let m = Metering { ask: Ask { tokens: 500, cost_micros: 900 }, price: pricing.price("gpt-4o").copied() };
        let answered = |status, usage| Ending::Answered { status, usage, complete: true };
        let cut = |usage| Ending::Answered { status: 200, usage, complete: false };
        assert_eq!(m.settle(answered(500, Some(Usage::new(1, 0, 1)))), None);
        assert_eq!(m.settle(answered(429, None)), None);
        assert_eq!(m.settle(answered(200, None)), Some(m.ask));
        assert_eq!(m.settle(answered(200, Some(Usage::new(10, 0, 5)))), Some(Actual { tokens: 15, cost_micros: 60 }));
        // Usage that is not final: the reservation, or what was seen where that is more.
        assert_eq!(m.settle(cut(Some(Usage::new(10, 0, 5)))), Some(m.ask));
        assert_eq!(m.settle(cut(None)), Some(m.ask));
        let beyond = m.settle(cut(Some(Usage::new(100, 0, 1_000)))).unwrap();
        assert_eq!(beyond, Actual { tokens: 1_100, cost_micros: 8_200 });
        assert_eq!(m.settle(Ending::Released), None);
        assert_eq!(m.settle(Ending::Abandoned), Some(m.ask));
    }
}
