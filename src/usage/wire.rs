//! The usage objects as each family writes them.
//!
//! A [`WireUsage`] holds every counter any family may report, under its wire name; only
//! [`WireUsage::normalise`] knows which family means what. Where in an answer a usage object
//! is read is the business of `json` and `sse`; [`Reported::read`] reads one once found.

use super::walk::Found;
use super::{CacheWrites, Usage};
use crate::family::Family;
use serde::Deserialize;

/// A usage object as an upstream wrote it; counters it did not report are `None`.
///
/// - OpenAI chat and completions: `prompt_tokens` (cached ones included),
///   `prompt_tokens_details.cached_tokens`, `completion_tokens` (reasoning tokens included);
///   embeddings report `prompt_tokens` only.
/// - OpenAI responses: `input_tokens` (cached ones included), `input_tokens_details.cached_tokens`,
///   `output_tokens` (`output_tokens_details.reasoning_tokens` included).
/// - Anthropic: `input_tokens` excludes the cache: `cache_read_input_tokens` and
///   `cache_creation_input_tokens` are counted beside it, the writes split by time to live in
///   `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`; `output_tokens`
///   (thinking included).
/// - Gemini (`usageMetadata`): `promptTokenCount` (cached ones included) plus
///   `toolUsePromptTokenCount` (billed as input), `cachedContentTokenCount`,
///   `candidatesTokenCount` plus `thoughtsTokenCount` (billed as output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(super) struct WireUsage {
    prompt_tokens: Option<u64>,
    prompt_tokens_details: Option<CachedDetails>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    input_tokens_details: Option<CachedDetails>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
    #[serde(rename = "promptTokenCount")]
    prompt_token_count: Option<u64>,
    #[serde(rename = "toolUsePromptTokenCount")]
    tool_use_prompt_token_count: Option<u64>,
    #[serde(rename = "cachedContentTokenCount")]
    cached_content_token_count: Option<u64>,
    #[serde(rename = "candidatesTokenCount")]
    candidates_token_count: Option<u64>,
    #[serde(rename = "thoughtsTokenCount")]
    thoughts_token_count: Option<u64>,
}

/// OpenAI's `*_tokens_details` object, of which only the cached count matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
struct CachedDetails {
    cached_tokens: Option<u64>,
}

/// Anthropic's split of the cache writes by time to live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes in a later report of the same answer. Every family reports cumulative counts, so
    /// each counter's latest reported value wins; counters `later` omits keep their value (an
    /// Anthropic `message_delta` reports only `output_tokens`).
    pub(super) fn update(&mut self, later: WireUsage) {
        macro_rules! latest {
            ($($counter:ident),+) => {
                // Destructured without `..`: a counter added to the struct must be listed here.
                let WireUsage { $($counter),+ } = later;
                $(self.$counter = $counter.or(self.$counter);)+
            };
        }
        latest!(
            prompt_tokens,
            prompt_tokens_details,
            completion_tokens,
            input_tokens,
            input_tokens_details,
            output_tokens,
            cache_read_input_tokens,
            cache_creation_input_tokens,
            cache_creation,
            prompt_token_count,
            tool_use_prompt_token_count,
            cached_content_token_count,
            candidates_token_count,
            thoughts_token_count
        );
    }

    /// The counters in the meaning of [`Usage`]; unreported counters count zero.
    pub(super) fn normalise(&self, family: Family) -> Usage {
        let count = |counter: Option<u64>| counter.unwrap_or(0);
        let cached = |details: Option<CachedDetails>| details.and_then(|d| d.cached_tokens);
        match family {
            Family::OpenAi => Usage::new(
                count(self.prompt_tokens.or(self.input_tokens)),
                count(cached(self.prompt_tokens_details).or(cached(self.input_tokens_details))),
                count(self.completion_tokens.or(self.output_tokens)),
            ),
            Family::Anthropic => {
                let writes = self.anthropic_cache_writes();
                Usage::with_cache_writes(
                    count(self.input_tokens)
                        .saturating_add(count(self.cache_read_input_tokens))
                        .saturating_add(writes.total()),
                    count(self.cache_read_input_tokens),
                    writes,
                    count(self.output_tokens),
                )
            }
            Family::Gemini => Usage::new(
                count(self.prompt_token_count).saturating_add(count(self.tool_use_prompt_token_count)),
                count(self.cached_content_token_count),
                count(self.candidates_token_count).saturating_add(count(self.thoughts_token_count)),
            ),
        }
    }

    /// The cache writes by time to live: one-hour writes as split out, and the rest of the
    /// total (never less than the five-minute split) at the default five minutes.
    fn anthropic_cache_writes(&self) -> CacheWrites {
        let split = self.cache_creation.unwrap_or_default();
        let one_hour = split.ephemeral_1h_input_tokens.unwrap_or(0);
        let rest = self.cache_creation_input_tokens.unwrap_or(0).saturating_sub(one_hour);
        CacheWrites { five_minutes: rest.max(split.ephemeral_5m_input_tokens.unwrap_or(0)), one_hour }
    }
}

/// What a usage value at its place says.
// Read and taken in at once, a few per stream: boxing the usage would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reported {
    /// `null`: no usage (yet).
    Nothing,
    Usage(WireUsage),
    /// Not a usage object, or one longer than any usage object: the count is unknown.
    Unreadable,
}

/// The longest usage object read: real ones are a few hundred bytes.
pub(super) const MAX_USAGE_LEN: usize = 16 * 1024;

impl Reported {
    pub(super) fn read(found: Found<'_>) -> Reported {
        let Found::Value(json) = found else { return Reported::Unreadable };
        match serde_json::from_slice::<Option<WireUsage>>(json) {
            Ok(Some(usage)) => Reported::Usage(usage),
            Ok(None) => Reported::Nothing,
            Err(_) => Reported::Unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &str, family: Family) -> Option<Usage> {
        match Reported::read(Found::Value(json.as_bytes())) {
            Reported::Usage(wire) => Some(wire.normalise(family)),
            _ => None,
        }
    }

    #[test]
    fn openai_chat_counts_cached_within_prompt() {
        let json = r#"{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,
            "prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":12}}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(1117, 1024, 46)));
    }

    #[test]
    fn openai_responses_and_embeddings() {
        let responses = r#"{"input_tokens":37,"input_tokens_details":{"cached_tokens":5},
            "output_tokens":11,"output_tokens_details":{"reasoning_tokens":8},"total_tokens":48}"#;
        assert_eq!(usage(responses, Family::OpenAi), Some(Usage::new(37, 5, 11)));
        let embeddings = r#"{"prompt_tokens":8,"total_tokens":8}"#;
        assert_eq!(usage(embeddings, Family::OpenAi), Some(Usage::new(8, 0, 0)));
    }

    #[test]
    fn openai_details_may_be_null() {
        let json = r#"{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":null}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(3, 0, 4)));
    }

    #[test]
    fn anthropic_adds_cache_reads_and_writes_to_input() {
        let json = r#"{"input_tokens":25,"cache_creation_input_tokens":100,
            "cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},
            "output_tokens":503,"service_tier":"standard"}"#;
        let writes = CacheWrites { five_minutes: 100, one_hour: 0 };
        assert_eq!(usage(json, Family::Anthropic), Some(Usage::with_cache_writes(2125, 2000, writes, 503)));
        let nulls = r#"{"input_tokens":25,"cache_creation_input_tokens":null,"cache_creation":null,"output_tokens":1}"#;
        assert_eq!(usage(nulls, Family::Anthropic), Some(Usage::new(25, 0, 1)));
    }

    #[test]
    fn anthropic_splits_cache_writes_by_time_to_live() {
        let split = r#"{"input_tokens":10,"cache_creation_input_tokens":300,
            "cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":1}"#;
        let writes = CacheWrites { five_minutes: 100, one_hour: 200 };
        assert_eq!(usage(split, Family::Anthropic), Some(Usage::with_cache_writes(310, 0, writes, 1)));
        // Without the split, writes are five-minute ones (the default time to live).
        let total_only = r#"{"input_tokens":10,"cache_creation_input_tokens":300,"output_tokens":1}"#;
        let writes = CacheWrites { five_minutes: 300, one_hour: 0 };
        assert_eq!(usage(total_only, Family::Anthropic), Some(Usage::with_cache_writes(310, 0, writes, 1)));
        // A split above the total is believed over the total.
        let over = r#"{"input_tokens":0,"cache_creation_input_tokens":50,
            "cache_creation":{"ephemeral_5m_input_tokens":60,"ephemeral_1h_input_tokens":70}}"#;
        let writes = CacheWrites { five_minutes: 60, one_hour: 70 };
        assert_eq!(usage(over, Family::Anthropic), Some(Usage::with_cache_writes(130, 0, writes, 0)));
    }

    #[test]
    fn gemini_counts_tool_use_prompt_as_input_and_thoughts_as_output() {
        let json = r#"{"promptTokenCount": 120, "candidatesTokenCount": 30, "toolUsePromptTokenCount": 900,
            "cachedContentTokenCount": 100, "thoughtsTokenCount": 70, "totalTokenCount": 1120,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]}"#;
        assert_eq!(usage(json, Family::Gemini), Some(Usage::new(1020, 100, 100)));
    }

    #[test]
    fn later_reports_update_only_what_they_report() {
        let read = |json: &str| match Reported::read(Found::Value(json.as_bytes())) {
            Reported::Usage(wire) => wire,
            other => panic!("{other:?}"),
        };
        let mut seen = read(r#"{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}"#);
        seen.update(read(r#"{"output_tokens":40}"#));
        assert_eq!(seen.normalise(Family::Anthropic), Usage::new(15, 5, 40));
    }

    #[test]
    fn null_is_nothing_and_malformed_is_unreadable() {
        let read = |json: &str| Reported::read(Found::Value(json.as_bytes()));
        assert_eq!(read("null"), Reported::Nothing);
        assert_eq!(read(r#"{"prompt_tokens":-1}"#), Reported::Unreadable);
        assert_eq!(read(r#"{"prompt_tokens":1.5}"#), Reported::Unreadable);
        assert_eq!(read(r#""high""#), Reported::Unreadable);
        assert_eq!(read("7"), Reported::Unreadable);
        assert_eq!(Reported::read(Found::TooLong), Reported::Unreadable);
        assert_eq!(read("{}"), Reported::Usage(WireUsage::default()));
    }
}
