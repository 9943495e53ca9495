//! Token usage: reading it from upstream answers and pricing it.
//!
//! Flow: the gateway wraps each upstream response body in a [`UsageScanner`] and feeds it every
//! chunk on the way to the client, sending what [`UsageScanner::feed`] answers (the chunk itself,
//! or the chunk without the usage-only event the gateway asked for on the client's behalf); when
//! the body ends it sends what [`UsageScanner::finish`] returns. [`UsageScanner::usage`] then
//! gives the tokens the upstream reported, normalised to one [`Usage`] whatever the family, and
//! [`UsageScanner::is_final`] whether they are its final count; [`Pricing`] turns them into
//! micro-dollars.
//!
//! Usage is read only where each provider writes it (the answer's top-level `usage` or
//! `usageMetadata`, the Responses `response.usage`, Anthropic's `message.usage` and
//! `message_delta` `usage`): a document is walked along its paths, never searched for a key, so
//! a client's schema echoed in the answer cannot pass for usage.
//!
//! - `wire`: the usage objects as each family writes them.
//! - `walk`: a JSON text walked in pieces, reporting the values at chosen paths.
//! - `seen`: the usage an answer reported so far, and whether it is final.
//! - `json`: usage from a JSON body.
//! - `lines`: an event stream cut into lines, whatever the chunk boundaries.
//! - `sse`: usage from an event stream, event by event.
//! - `strip`: removing the usage-only chunk from an OpenAI event stream.
//! - `scanner`: the entry point over both kinds of body.
//! - `pricing`: model prices and the cost of a [`Usage`].

mod json;
mod lines;
mod pricing;
mod scanner;
mod seen;
mod sse;
mod strip;
mod walk;
mod wire;

pub use pricing::{CacheWriteBilling, LongContextEntry, Price, PriceEntry, Pricing, DEFAULT_PRICING_JSON};
pub use scanner::{BodyKind, Forward, UsageScanner};

use serde::{Deserialize, Serialize};

/// Tokens one call used, in one shape for every family.
///
/// Invariants: `input_tokens` counts all input tokens, those read from and written to a prompt
/// cache included, so `cached_input_tokens + cache_writes.total() <= input_tokens`;
/// `output_tokens` counts all output tokens, reasoning (thinking) tokens included. The
/// constructors enforce it; code building a `Usage` field by field must keep it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cached_input_tokens: u64,
    /// Input tokens written to a prompt cache (billed above the base input rate).
    #[serde(default)]
    pub cache_writes: CacheWrites,
    pub output_tokens: u64,
}

/// Input tokens written to a prompt cache, by how long the cache keeps them (Anthropic prices
/// a one-hour write above a five-minute one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheWrites {
    pub five_minutes: u64,
    pub one_hour: u64,
}

impl CacheWrites {
    pub fn total(&self) -> u64 {
        self.five_minutes.saturating_add(self.one_hour)
    }
}

impl Usage {
    /// A usage without cache writes; a cached count above the input count is capped to it.
    pub fn new(input_tokens: u64, cached_input_tokens: u64, output_tokens: u64) -> Usage {
        Usage::with_cache_writes(input_tokens, cached_input_tokens, CacheWrites::default(), output_tokens)
    }

    /// A usage from upstream counts. Counts that break the invariant are reconciled towards the
    /// higher cost: the input count is raised to the cache writes (the dearest input), and the
    /// cached count (the cheapest) is capped to what input remains.
    pub fn with_cache_writes(
        input_tokens: u64,
        cached_input_tokens: u64,
        cache_writes: CacheWrites,
        output_tokens: u64,
    ) -> Usage {
        let input_tokens = input_tokens.max(cache_writes.total());
        let cached_input_tokens = cached_input_tokens.min(input_tokens - cache_writes.total());
        Usage { input_tokens, cached_input_tokens, cache_writes, output_tokens }
    }

    /// Input plus output tokens: what token limits count.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The input tokens neither read from nor written to a cache: those billed at the base rate.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens - self.cached_input_tokens - self.cache_writes.total()
    }
}

#[cfg(test)]
mod tests {
    use super::{CacheWrites, Usage};

    #[test]
    fn new_caps_cached_to_input() {
        let capped = Usage::new(10, 25, 3);
        assert_eq!((capped.input_tokens, capped.cached_input_tokens, capped.output_tokens), (10, 10, 3));
        assert_eq!(Usage::new(10, 4, 3).uncached_input_tokens(), 6);
    }

    #[test]
    fn cache_writes_are_input_and_keep_the_dearer_reading() {
        let writes = CacheWrites { five_minutes: 30, one_hour: 20 };
        let usage = Usage::with_cache_writes(100, 40, writes, 5);
        assert_eq!((usage.input_tokens, usage.cached_input_tokens, usage.uncached_input_tokens()), (100, 40, 10));
        // Reads beyond what the writes leave are capped; writes beyond the input raise it.
        assert_eq!(Usage::with_cache_writes(100, 90, writes, 5).cached_input_tokens, 50);
        let raised = Usage::with_cache_writes(10, 5, writes, 5);
        assert_eq!((raised.input_tokens, raised.cached_input_tokens, raised.uncached_input_tokens()), (50, 0, 0));
        let huge = CacheWrites { five_minutes: u64::MAX, one_hour: 1 };
        assert_eq!(Usage::with_cache_writes(0, 7, huge, 0).input_tokens, u64::MAX);
    }

    #[test]
    fn deserializes_without_cache_writes() {
        let usage: Usage =
            serde_json::from_str(r#"{"input_tokens":3,"cached_input_tokens":1,"output_tokens":2}"#).unwrap();
        assert_eq!(usage, Usage::new(3, 1, 2));
    }

    #[test]
    fn total_is_input_plus_output() {
        assert_eq!(Usage::new(10, 4, 3).total_tokens(), 13);
        assert_eq!(Usage::new(u64::MAX, 0, 1).total_tokens(), u64::MAX);
    }
}
