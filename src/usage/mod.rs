//! Token usage: reading it from upstream answers and pricing it.
//!
//! Flow: the gateway wraps each upstream response body in a [`UsageScanner`] and feeds it every
//! chunk on the way to the client, sending what [`UsageScanner::feed`] answers (the chunk itself,
//! or the chunk without the usage-only event the gateway asked for on the client's behalf); when
//! the body ends it sends what [`UsageScanner::finish`] returns. [`UsageScanner::usage`] then
//! gives the tokens the upstream reported, normalised to one [`Usage`] whatever the family, and
//! [`Pricing`] turns them into micro-dollars.
//!
//! - `wire`: the usage objects as each family writes them; finding one in JSON text.
//! - `tail`: a bounded buffer of a stream's last bytes.
//! - `json`: usage from a JSON body.
//! - `lines`: an event stream cut into lines, whatever the chunk boundaries.
//! - `sse`: usage from an event stream.
//! - `strip`: removing the usage-only chunk from an OpenAI event stream.
//! - `scanner`: the entry point over both kinds of body.
//! - `pricing`: model prices and the cost of a [`Usage`].

mod json;
mod lines;
mod pricing;
mod scanner;
mod sse;
mod strip;
mod tail;
mod wire;

pub use pricing::{Price, Pricing, DEFAULT_PRICING_JSON};
pub use scanner::{BodyKind, Forward, UsageScanner};

use serde::{Deserialize, Serialize};

/// Tokens one call used, in one shape for every family.
///
/// Invariant: `input_tokens` counts all input tokens, cached ones included, and
/// `cached_input_tokens <= input_tokens` is the part of them read from a prompt cache.
/// [`Usage::new`] enforces it; code building a `Usage` field by field must keep it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// A usage from upstream counts; a cached count above the input count is capped to it.
    pub fn new(input_tokens: u64, cached_input_tokens: u64, output_tokens: u64) -> Usage {
        Usage { input_tokens, cached_input_tokens: cached_input_tokens.min(input_tokens), output_tokens }
    }

    /// Input plus output tokens: what token limits count.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The input tokens not read from a cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens.saturating_sub(self.cached_input_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn new_caps_cached_to_input() {
        assert_eq!(Usage::new(10, 25, 3), Usage { input_tokens: 10, cached_input_tokens: 10, output_tokens: 3 });
        assert_eq!(Usage::new(10, 4, 3).uncached_input_tokens(), 6);
    }

    #[test]
    fn total_is_input_plus_output() {
        assert_eq!(Usage::new(10, 4, 3).total_tokens(), 13);
        assert_eq!(Usage::new(u64::MAX, 0, 1).total_tokens(), u64::MAX);
    }
}
