//! The usage objects as each family writes them, and finding one in JSON text.
//!
//! A [`WireUsage`] holds every counter any family may report, under its wire name; only
//! [`WireUsage::normalise`] knows which family means what. Finding one never parses the
//! surrounding document: [`find_last`] looks for the family's usage key from the end of the text
//! and deserializes only the value after it.

use super::Usage;
use crate::family::Family;
use serde::Deserialize;

/// A usage object as an upstream wrote it; counters it did not report are `None`.
///
/// - OpenAI chat: `prompt_tokens` (cached ones included), `prompt_tokens_details.cached_tokens`,
///   `completion_tokens`; embeddings report `prompt_tokens` only.
/// - OpenAI responses: `input_tokens` (cached ones included), `input_tokens_details.cached_tokens`,
///   `output_tokens`.
/// - Anthropic: `input_tokens` excludes the cache: `cache_read_input_tokens` and
///   `cache_creation_input_tokens` are counted beside it; `output_tokens`.
/// - Gemini (`usageMetadata`): `promptTokenCount` (cached ones included), `cachedContentTokenCount`,
///   `candidatesTokenCount` plus `thoughtsTokenCount` for the output.
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
    #[serde(rename = "promptTokenCount")]
    prompt_token_count: Option<u64>,
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

impl WireUsage {
    /// Takes in a later report of the same stream. Every family reports cumulative counts, so
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
            prompt_token_count,
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
            Family::Anthropic => Usage::new(
                count(self.input_tokens)
                    .saturating_add(count(self.cache_read_input_tokens))
                    .saturating_add(count(self.cache_creation_input_tokens)),
                count(self.cache_read_input_tokens),
                count(self.output_tokens),
            ),
            Family::Gemini => Usage::new(
                count(self.prompt_token_count),
                count(self.cached_content_token_count),
                count(self.candidates_token_count).saturating_add(count(self.thoughts_token_count)),
            ),
        }
    }
}

/// The key under which `family` writes its usage object, quotes included.
fn usage_key(family: Family) -> &'static [u8] {
    match family {
        Family::OpenAi | Family::Anthropic => b"\"usage\"",
        Family::Gemini => b"\"usageMetadata\"",
    }
}

/// The last usage object in `json`: the value of the last occurrence of the family's usage key
/// that is an object (`null` and other values are passed over).
///
/// `json` may be any slice of a JSON text, even one starting mid-document: the quoted key cannot
/// match inside a string, where every `"` is escaped, and requiring a `:` after it rules out a
/// string value that merely equals the key. Only the value after the key is deserialized.
pub(super) fn find_last(json: &[u8], family: Family) -> Option<WireUsage> {
    let key = usage_key(family);
    let mut end = json.len();
    while let Some(at) = rfind(&json[..end], key) {
        if let Some(usage) = object_after_key(&json[at + key.len()..]) {
            return Some(usage);
        }
        end = at;
    }
    None
}

/// The usage object that `rest` (what follows a key) opens with, if it opens with `: {…}`.
fn object_after_key(rest: &[u8]) -> Option<WireUsage> {
    let value = rest.trim_ascii_start().strip_prefix(b":")?;
    let mut deserializer = serde_json::Deserializer::from_slice(value);
    Option::<WireUsage>::deserialize(&mut deserializer).ok().flatten()
}

/// Where the last occurrence of `needle` starts in `haystack`.
fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|window| window[0] == needle[0] && window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &str, family: Family) -> Option<Usage> {
        find_last(json.as_bytes(), family).map(|w| w.normalise(family))
    }

    #[test]
    fn openai_chat_counts_cached_within_prompt() {
        let json = r#"{"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,
            "prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":12}}}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(1117, 1024, 46)));
    }

    #[test]
    fn openai_responses_and_embeddings() {
        let responses = r#"{"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":5},
            "output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}"#;
        assert_eq!(usage(responses, Family::OpenAi), Some(Usage::new(37, 5, 11)));
        let embeddings = r#"{"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(usage(embeddings, Family::OpenAi), Some(Usage::new(8, 0, 0)));
    }

    #[test]
    fn openai_details_may_be_null() {
        let json = r#"{"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":null}}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(3, 0, 4)));
    }

    #[test]
    fn anthropic_adds_cache_reads_and_writes_to_input() {
        let json = r#"{"usage":{"input_tokens":25,"cache_creation_input_tokens":100,
            "cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":100},
            "output_tokens":503,"service_tier":"standard"}}"#;
        assert_eq!(usage(json, Family::Anthropic), Some(Usage::new(2125, 2000, 503)));
        let nulls = r#"{"usage":{"input_tokens":25,"cache_creation_input_tokens":null,"output_tokens":1}}"#;
        assert_eq!(usage(nulls, Family::Anthropic), Some(Usage::new(25, 0, 1)));
    }

    #[test]
    fn gemini_adds_thoughts_to_output() {
        let json = r#"{"usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30,
            "cachedContentTokenCount": 100, "thoughtsTokenCount": 70, "totalTokenCount": 220,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]}}"#;
        assert_eq!(usage(json, Family::Gemini), Some(Usage::new(120, 100, 100)));
        // Gemini's key is `usageMetadata`; a `usage` key means nothing for it.
        assert_eq!(usage(r#"{"usage":{"promptTokenCount":1}}"#, Family::Gemini), None);
    }

    #[test]
    fn later_reports_update_only_what_they_report() {
        let mut seen = find_last(
            br#"{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}"#,
            Family::Anthropic,
        )
        .unwrap();
        seen.update(find_last(br#"{"usage":{"output_tokens":40}}"#, Family::Anthropic).unwrap());
        assert_eq!(seen.normalise(Family::Anthropic), Usage::new(15, 5, 40));
    }

    #[test]
    fn key_inside_a_string_is_not_a_key() {
        let json = r#"{"usage":{"prompt_tokens":1,"completion_tokens":2},
            "note":"{\"usage\":{\"prompt_tokens\":99}}","tag":"usage"}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(1, 0, 2)));
    }

    #[test]
    fn the_last_usage_object_wins_and_non_objects_are_passed_over() {
        let json = r#"{"a":{"usage":{"prompt_tokens":1}},"usage":{"prompt_tokens":2},"metadata":{"usage":"high"},"b":{"usage":null}}"#;
        assert_eq!(usage(json, Family::OpenAi), Some(Usage::new(2, 0, 0)));
        assert_eq!(usage(r#"{"usage":null}"#, Family::OpenAi), None);
        assert_eq!(usage(r#"{"id":"x"}"#, Family::OpenAi), None);
    }

    #[test]
    fn slice_may_start_mid_document() {
        assert_eq!(
            usage(r#"tokens\":3}"}],"usage" : {"prompt_tokens":7}}"#, Family::OpenAi),
            Some(Usage::new(7, 0, 0))
        );
        assert_eq!(usage(r#"age":{"prompt_tokens":7}}"#, Family::OpenAi), None);
    }

    #[test]
    fn malformed_counters_are_not_usage() {
        assert_eq!(usage(r#"{"usage":{"prompt_tokens":-1}}"#, Family::OpenAi), None);
        assert_eq!(usage(r#"{"usage":{"prompt_tokens":7"#, Family::OpenAi), None);
    }
}
