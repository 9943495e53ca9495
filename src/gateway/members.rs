//! The body members and tool types the gateway knows, per route, and what it does with each.
//!
//! A member is *set* when its value is neither absent, `null` nor `false` (`store: false`,
//! `background: false` and `previous_response_id: null` are harmless). A set member is handled by
//! its [`Rule`]:
//!
//! | rule          | who is refused         | code (403)           | why |
//! |---------------|------------------------|----------------------|-----|
//! | `Pass`        | nobody                 |                      | read by the gateway or harmless |
//! | `Rewritten`   | nobody                 |                      | the gateway sets it (output cap, `stream_options`, `store`, `model`) |
//! | `Shared`      | every key              | `member_not_allowed` | reads or writes state every key of the upstream account shares, or runs after the answer |
//! | `Unmetered`   | keys with spend caps   | `member_not_metered` | billed per call or unit, or at rates the pricing table does not carry |
//! | `Unbounded`   | keys with spend caps   | `input_not_bounded`  | brings input whose size the gateway cannot bound |
//!
//! Members not in a route's table pass, so new provider parameters do not break clients; with
//! [`UnknownMembers::Refuse`] (the operator's strict mode) they are refused (403
//! `member_not_known`). Tool types not in their family's table are treated as `Unmetered` (a new
//! server tool may be billed per call) and refused in strict mode too. Gemini's JSON parser accepts
//! both `camelCase` and `snake_case`, so Gemini names are compared without underscores or case.

use crate::error::{ApiError, Code};
use crate::family::Family;
use crate::gateway::route::Endpoint;

/// What the gateway does with a set member (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Pass,
    Rewritten,
    Shared(&'static str),
    Unmetered(&'static str),
    Unbounded(&'static str),
}

/// Whether members not in a route's table pass (the default) or are refused (strict mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownMembers {
    #[default]
    Pass,
    Refuse,
}

const SHARED_STORE: &str = "it would keep the call in the upstream account, readable with every key";
const PER_CALL: &str = "it is billed per call, outside the token counts";
const OTHER_RATES: &str = "it is billed at rates the pricing table does not carry";
const REMOTE_TOOLS: &str = "a remote MCP server adds tool lists and results of unbounded size";

/// OpenAI `POST /chat/completions`.
pub const CHAT_COMPLETIONS: &[(&str, Rule)] = &[
    ("model", Rule::Rewritten),
    ("messages", Rule::Pass),
    ("stream", Rule::Pass),
    ("stream_options", Rule::Rewritten),
    ("max_completion_tokens", Rule::Rewritten),
    ("max_tokens", Rule::Rewritten),
    ("n", Rule::Pass),
    ("tools", Rule::Pass),
    ("tool_choice", Rule::Pass),
    ("parallel_tool_calls", Rule::Pass),
    ("functions", Rule::Pass),
    ("function_call", Rule::Pass),
    ("response_format", Rule::Pass),
    ("reasoning_effort", Rule::Pass),
    ("verbosity", Rule::Pass),
    ("temperature", Rule::Pass),
    ("top_p", Rule::Pass),
    ("stop", Rule::Pass),
    ("seed", Rule::Pass),
    ("presence_penalty", Rule::Pass),
    ("frequency_penalty", Rule::Pass),
    ("logit_bias", Rule::Pass),
    ("logprobs", Rule::Pass),
    ("top_logprobs", Rule::Pass),
    ("modalities", Rule::Pass),
    ("audio", Rule::Pass),
    ("metadata", Rule::Pass),
    ("user", Rule::Pass),
    ("safety_identifier", Rule::Pass),
    ("prompt_cache_key", Rule::Pass),
    ("prompt_cache_retention", Rule::Pass),
    ("store", Rule::Shared(SHARED_STORE)),
    ("web_search_options", Rule::Unmetered(PER_CALL)),
    ("prediction", Rule::Unmetered("rejected prediction tokens are billed as output beyond the cap")),
    ("service_tier", Rule::Unmetered(OTHER_RATES)),
];

/// OpenAI legacy `POST /completions`.
pub const COMPLETIONS: &[(&str, Rule)] = &[
    ("model", Rule::Rewritten),
    ("prompt", Rule::Pass),
    ("suffix", Rule::Pass),
    ("stream", Rule::Pass),
    ("stream_options", Rule::Rewritten),
    ("max_tokens", Rule::Rewritten),
    ("n", Rule::Pass),
    ("best_of", Rule::Pass),
    ("echo", Rule::Pass),
    ("logprobs", Rule::Pass),
    ("temperature", Rule::Pass),
    ("top_p", Rule::Pass),
    ("stop", Rule::Pass),
    ("seed", Rule::Pass),
    ("presence_penalty", Rule::Pass),
    ("frequency_penalty", Rule::Pass),
    ("logit_bias", Rule::Pass),
    ("user", Rule::Pass),
];

/// OpenAI `POST /responses`. `store` is sent `false` when absent; `store: true` is refused.
pub const RESPONSES: &[(&str, Rule)] = &[
    ("model", Rule::Rewritten),
    ("input", Rule::Pass),
    ("instructions", Rule::Pass),
    ("stream", Rule::Pass),
    ("stream_options", Rule::Pass),
    ("max_output_tokens", Rule::Rewritten),
    ("max_tool_calls", Rule::Pass),
    ("tools", Rule::Pass),
    ("tool_choice", Rule::Pass),
    ("parallel_tool_calls", Rule::Pass),
    ("text", Rule::Pass),
    ("reasoning", Rule::Pass),
    ("include", Rule::Pass),
    ("truncation", Rule::Pass),
    ("temperature", Rule::Pass),
    ("top_p", Rule::Pass),
    ("top_logprobs", Rule::Pass),
    ("metadata", Rule::Pass),
    ("user", Rule::Pass),
    ("safety_identifier", Rule::Pass),
    ("prompt_cache_key", Rule::Pass),
    ("prompt_cache_retention", Rule::Pass),
    ("context_management", Rule::Pass),
    ("store", Rule::Shared(SHARED_STORE)),
    ("background", Rule::Shared("a background response runs and bills after the gateway has settled the call")),
    ("previous_response_id", Rule::Shared("stored responses are shared by every key of the upstream account")),
    ("conversation", Rule::Shared("conversations are shared by every key of the upstream account")),
    ("prompt", Rule::Shared("stored prompts are shared by every key of the upstream account")),
    ("service_tier", Rule::Unmetered(OTHER_RATES)),
];

/// OpenAI `POST /embeddings`.
pub const EMBEDDINGS: &[(&str, Rule)] = &[
    ("model", Rule::Rewritten),
    ("input", Rule::Pass),
    ("dimensions", Rule::Pass),
    ("encoding_format", Rule::Pass),
    ("user", Rule::Pass),
];

/// OpenAI `POST /moderations`.
pub const MODERATIONS: &[(&str, Rule)] = &[("model", Rule::Rewritten), ("input", Rule::Pass)];

/// Anthropic `POST /messages` and `/messages/count_tokens`.
pub const MESSAGES: &[(&str, Rule)] = &[
    ("model", Rule::Rewritten),
    ("messages", Rule::Pass),
    ("system", Rule::Pass),
    ("max_tokens", Rule::Rewritten),
    ("stream", Rule::Pass),
    ("tools", Rule::Pass),
    ("tool_choice", Rule::Pass),
    ("thinking", Rule::Pass),
    ("stop_sequences", Rule::Pass),
    ("temperature", Rule::Pass),
    ("top_k", Rule::Pass),
    ("top_p", Rule::Pass),
    ("metadata", Rule::Pass),
    ("context_management", Rule::Pass),
    ("output_config", Rule::Pass),
    ("output_format", Rule::Pass),
    ("container", Rule::Shared("code-execution containers are shared by every key of the upstream account")),
    ("mcp_servers", Rule::Unbounded(REMOTE_TOOLS)),
    ("service_tier", Rule::Unmetered(OTHER_RATES)),
    ("speed", Rule::Unmetered(OTHER_RATES)),
    ("inference_geo", Rule::Unmetered(OTHER_RATES)),
];

/// Gemini `:generateContent`, `:streamGenerateContent` and `:countTokens`.
pub const GENERATE_CONTENT: &[(&str, Rule)] = &[
    ("contents", Rule::Pass),
    ("systemInstruction", Rule::Pass),
    ("generationConfig", Rule::Rewritten),
    ("tools", Rule::Pass),
    ("toolConfig", Rule::Pass),
    ("safetySettings", Rule::Pass),
    ("generateContentRequest", Rule::Pass),
    ("cachedContent", Rule::Shared("cached contents are shared by every key of the upstream account")),
];

/// OpenAI tool `type`s (chat and Responses). A `*` ends a prefix.
pub const OPENAI_TOOLS: &[(&str, Rule)] = &[
    ("function", Rule::Pass),
    ("custom", Rule::Pass),
    ("local_shell", Rule::Pass),
    ("shell", Rule::Pass),
    ("apply_patch", Rule::Pass),
    ("file_search", Rule::Shared("it searches vector stores shared by every key of the upstream account")),
    ("code_interpreter", Rule::Shared("it runs in containers shared by every key of the upstream account")),
    ("web_search*", Rule::Unmetered(PER_CALL)),
    ("image_generation", Rule::Unmetered("it is billed per image")),
    ("computer_use*", Rule::Unmetered(OTHER_RATES)),
    ("mcp", Rule::Unbounded(REMOTE_TOOLS)),
];

/// Anthropic tool `type`s (a tool without `type` is a client tool). A `*` ends a prefix.
pub const ANTHROPIC_TOOLS: &[(&str, Rule)] = &[
    ("custom", Rule::Pass),
    ("bash_*", Rule::Pass),
    ("text_editor_*", Rule::Pass),
    ("computer_*", Rule::Pass),
    ("memory_*", Rule::Pass),
    ("web_search_*", Rule::Unmetered(PER_CALL)),
    ("code_execution_*", Rule::Unmetered("it is billed per container hour")),
    ("web_fetch_*", Rule::Unbounded("fetched pages are input of unbounded size")),
    ("mcp_toolset", Rule::Unbounded(REMOTE_TOOLS)),
];

/// Gemini tool kinds (the members of a `tools[]` object).
pub const GEMINI_TOOLS: &[(&str, Rule)] = &[
    ("functionDeclarations", Rule::Pass),
    ("fileSearch", Rule::Shared("it searches stores shared by every key of the upstream account")),
    ("retrieval", Rule::Shared("it reads data stores of the upstream account")),
    ("googleSearch", Rule::Unmetered(PER_CALL)),
    ("googleSearchRetrieval", Rule::Unmetered(PER_CALL)),
    ("enterpriseWebSearch", Rule::Unmetered(PER_CALL)),
    ("googleMaps", Rule::Unmetered(PER_CALL)),
    ("codeExecution", Rule::Unmetered("its runs add billed tokens the reservation does not hold")),
    ("computerUse", Rule::Unmetered(OTHER_RATES)),
    ("urlContext", Rule::Unbounded("fetched pages are input of unbounded size")),
];

/// The member table of a route, if the gateway reads its body.
pub fn members(family: Family, endpoint: Endpoint) -> Option<&'static [(&'static str, Rule)]> {
    Some(match (family, endpoint) {
        (_, Endpoint::ChatCompletions) => CHAT_COMPLETIONS,
        (_, Endpoint::Completions) => COMPLETIONS,
        (_, Endpoint::Responses) => RESPONSES,
        (_, Endpoint::Embeddings) => EMBEDDINGS,
        (_, Endpoint::Moderations) => MODERATIONS,
        (Family::Anthropic, Endpoint::Messages | Endpoint::CountTokens) => MESSAGES,
        (Family::Gemini, Endpoint::GenerateContent | Endpoint::StreamGenerateContent | Endpoint::CountTokens) => {
            GENERATE_CONTENT
        }
        _ => return None,
    })
}

/// The tool table of a family.
pub fn tools(family: Family) -> &'static [(&'static str, Rule)] {
    match family {
        Family::OpenAi => OPENAI_TOOLS,
        Family::Anthropic => ANTHROPIC_TOOLS,
        Family::Gemini => GEMINI_TOOLS,
    }
}

/// The rule for `name` in `table`, `None` when the table does not know it.
pub fn rule(family: Family, table: &[(&str, Rule)], name: &str) -> Option<Rule> {
    table.iter().find(|(known, _)| same_name(family, known, name)).map(|&(_, rule)| rule)
}

/// The rule for a tool kind; an unknown kind may be a server tool billed per call.
pub fn tool_rule(family: Family, kind: &str) -> Rule {
    rule(family, tools(family), kind).unwrap_or(Rule::Unmetered("the gateway does not know how this tool is billed"))
}

/// Whether `name`, as a client wrote it, is the table's `known` name (a `*` ends a prefix).
#[inline]
pub fn same_name(family: Family, known: &str, name: &str) -> bool {
    if let Some(prefix) = known.strip_suffix('*') {
        return name.starts_with(prefix);
    }
    match family {
        Family::Gemini => {
            let lower = |b: u8| b.to_ascii_lowercase();
            known.bytes().map(lower).eq(name.bytes().filter(|&b| b != b'_').map(lower))
        }
        _ => known == name,
    }
}

/// A set member (or tool, or input part) the gateway refuses to some keys, with what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was refused, as the client wrote it: `background`, `tools: web_search`, ….
    pub what: String,
    pub rule: Rule,
}

impl Refusal {
    pub fn new(what: impl Into<String>, rule: Rule) -> Refusal {
        Refusal { what: what.into(), rule }
    }

    /// Whether it is refused to every key (else only to keys with spend caps).
    pub fn for_every_key(&self) -> bool {
        matches!(self.rule, Rule::Shared(_))
    }

    /// The 403 answer (see the module doc for the codes).
    pub fn into_api_error(self) -> ApiError {
        let what = self.what;
        match self.rule {
            Rule::Shared(why) => ApiError::new(Code::MemberNotAllowed, format!("'{what}' is not allowed: {why}.")),
            Rule::Unmetered(why) => ApiError::new(
                Code::MemberNotMetered,
                format!("'{what}' is not allowed for a key with a spend limit: {why}."),
            ),
            Rule::Unbounded(why) => ApiError::new(
                Code::InputNotBounded,
                format!("'{what}' is not allowed for a key with a spend limit: {why}."),
            ),
            Rule::Pass | Rule::Rewritten => unreachable!("only refusing rules make a refusal"),
        }
    }
}

/// 403 for a member or tool not in the route's table, under strict mode.
pub fn unknown_member(what: &str) -> ApiError {
    ApiError::new(
        Code::MemberNotKnown,
        format!("'{what}' is not a member this gateway knows, and the gateway refuses unknown members."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_names_ignore_case_and_underscores() {
        assert_eq!(
            rule(Family::Gemini, GENERATE_CONTENT, "cached_content"),
            rule(Family::Gemini, GENERATE_CONTENT, "cachedContent")
        );
        assert!(matches!(rule(Family::Gemini, GENERATE_CONTENT, "cached_content"), Some(Rule::Shared(_))));
        assert_eq!(rule(Family::Gemini, GENERATE_CONTENT, "cachedContents"), None);
        assert_eq!(rule(Family::OpenAi, RESPONSES, "Background"), None);
    }

    #[test]
    fn tool_prefixes_and_unknown_tools() {
        assert!(matches!(tool_rule(Family::Anthropic, "web_search_20250305"), Rule::Unmetered(_)));
        assert_eq!(tool_rule(Family::Anthropic, "bash_20250124"), Rule::Pass);
        assert!(matches!(tool_rule(Family::OpenAi, "web_search_preview_2025_03_11"), Rule::Unmetered(_)));
        assert!(matches!(tool_rule(Family::OpenAi, "brand_new_server_tool"), Rule::Unmetered(_)));
        assert!(matches!(tool_rule(Family::Gemini, "google_search"), Rule::Unmetered(_)));
    }

    #[test]
    fn every_refusing_rule_has_a_reason_and_tables_have_no_duplicates() {
        let tables = [CHAT_COMPLETIONS, COMPLETIONS, RESPONSES, EMBEDDINGS, MODERATIONS, MESSAGES, GENERATE_CONTENT];
        for table in tables.iter().chain([OPENAI_TOOLS, ANTHROPIC_TOOLS, GEMINI_TOOLS].iter()) {
            for (i, (name, rule)) in table.iter().enumerate() {
                assert!(table[i + 1..].iter().all(|(other, _)| other != name), "{name} twice");
                if let Rule::Shared(why) | Rule::Unmetered(why) | Rule::Unbounded(why) = rule {
                    assert!(!why.is_empty(), "{name}");
                }
            }
        }
    }
}
