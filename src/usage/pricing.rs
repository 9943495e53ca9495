//! Model prices, from configuration, and the cost of a [`Usage`].
//!
//! A pricing table is a JSON list of `{"model", "input", "output", "cached_input"?}` entries.
//! `model` is an exact name or a glob ([`crate::policy::glob`]); a model's price is that of the first
//! entry matching it, so specific patterns go before general ones. Prices are integer
//! micro-dollars per million tokens; costs are integer micro-dollars, rounded up so metering
//! never undercharges. No floating point anywhere.

use super::Usage;
use crate::policy::glob::glob_match;
use serde::Deserialize;

/// List prices (USD, standard tier, short prompts) of common models, as a starting
/// configuration; deployments configure their own. More specific patterns come first.
pub const DEFAULT_PRICING_JSON: &str = r#"[
  {"model": "gpt-4o-mini*", "input": 150000, "output": 600000, "cached_input": 75000},
  {"model": "gpt-4o*", "input": 2500000, "output": 10000000, "cached_input": 1250000},
  {"model": "o3", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "o3-20*", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "text-embedding-3-large", "input": 130000, "output": 0},
  {"model": "text-embedding-3-*", "input": 20000, "output": 0},
  {"model": "claude-sonnet-4*", "input": 3000000, "output": 15000000, "cached_input": 300000},
  {"model": "claude-haiku-4*", "input": 1000000, "output": 5000000, "cached_input": 100000},
  {"model": "claude-opus-4-5*", "input": 5000000, "output": 25000000, "cached_input": 500000},
  {"model": "claude-opus-4*", "input": 15000000, "output": 75000000, "cached_input": 1500000},
  {"model": "gemini-2.5-pro*", "input": 1250000, "output": 10000000, "cached_input": 310000},
  {"model": "gemini-2.5-flash-lite*", "input": 100000, "output": 400000, "cached_input": 25000},
  {"model": "gemini-2.5-flash*", "input": 300000, "output": 2500000, "cached_input": 75000}
]"#;

/// One model's prices, in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Per million input tokens not read from a cache.
    pub input: u64,
    /// Per million input tokens read from a cache.
    pub cached_input: u64,
    /// Per million output tokens.
    pub output: u64,
}

impl Price {
    /// What `usage` costs, in micro-dollars, rounded up; saturates at `u64::MAX`.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let priced = [
            (usage.uncached_input_tokens(), self.input),
            (usage.cached_input_tokens, self.cached_input),
            (usage.output_tokens, self.output),
        ];
        // Each product fits in u128 (< 2^128); only their sum can overflow.
        let micros_per_million = priced
            .into_iter()
            .fold(0u128, |sum, (tokens, price)| sum.saturating_add(u128::from(tokens) * u128::from(price)));
        u64::try_from(micros_per_million.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// A validated pricing table. Deserializes from the same JSON as [`Pricing::from_json`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<EntryConfig>")]
pub struct Pricing {
    entries: Vec<Entry>,
}

/// One configured entry; `cached_input` defaults to `input`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryConfig {
    model: String,
    input: u64,
    output: u64,
    #[serde(default)]
    cached_input: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Never empty.
    pattern: String,
    price: Price,
}

impl TryFrom<Vec<EntryConfig>> for Pricing {
    type Error = String;

    fn try_from(configs: Vec<EntryConfig>) -> Result<Self, String> {
        let entries = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| {
                if config.model.is_empty() {
                    return Err(format!("pricing entry {i}: empty model pattern"));
                }
                let price = Price {
                    input: config.input,
                    cached_input: config.cached_input.unwrap_or(config.input),
                    output: config.output,
                };
                Ok(Entry { pattern: config.model, price })
            })
            .collect::<Result<_, _>>()?;
        Ok(Pricing { entries })
    }
}

impl Pricing {
    /// Reads and validates a pricing table.
    pub fn from_json(json: &str) -> Result<Pricing, String> {
        serde_json::from_str(json).map_err(|e| format!("invalid pricing: {e}"))
    }

    /// The price of `model`: the first entry whose pattern matches it; `None` if none does.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.entries.iter().find(|entry| glob_match(&entry.pattern, model)).map(|entry| &entry.price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: u64, cached_input: u64, output: u64) -> Price {
        Price { input, cached_input, output }
    }

    #[test]
    fn cost_prices_uncached_cached_and_output_tokens() {
        // gpt-4o: 1000 input of which 400 cached, 200 output.
        // 600 × 2.5 + 400 × 1.25 + 200 × 10 = 1500 + 500 + 2000 = 4000 micro-dollars.
        let gpt_4o = price(2_500_000, 1_250_000, 10_000_000);
        assert_eq!(gpt_4o.cost_micros(&Usage::new(1000, 400, 200)), 4000);
        assert_eq!(gpt_4o.cost_micros(&Usage::default()), 0);
    }

    #[test]
    fn cost_rounds_up() {
        let cheap = price(20_000, 20_000, 0);
        // 1 token × 0.02 micro-dollars: a fraction, charged as one.
        assert_eq!(cheap.cost_micros(&Usage::new(1, 0, 0)), 1);
        // 50 tokens × 0.02 = exactly 1.
        assert_eq!(cheap.cost_micros(&Usage::new(50, 0, 0)), 1);
        assert_eq!(cheap.cost_micros(&Usage::new(51, 0, 0)), 2);
        // Fractions are summed before rounding, not rounded per kind.
        let split = price(500_000, 500_000, 500_000);
        assert_eq!(split.cost_micros(&Usage::new(1, 0, 1)), 1);
    }

    #[test]
    fn big_numbers_do_not_overflow() {
        let opus = price(15_000_000, 1_500_000, 75_000_000);
        let huge = Usage::new(u64::MAX, 0, u64::MAX);
        assert_eq!(opus.cost_micros(&huge), u64::MAX);
        // 10^12 tokens at $15/M is $15M: 15 × 10^12 micro-dollars, exactly.
        assert_eq!(opus.cost_micros(&Usage::new(1_000_000_000_000, 0, 0)), 15_000_000_000_000);
        let max = price(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(max.cost_micros(&Usage::new(u64::MAX, u64::MAX / 2, u64::MAX)), u64::MAX);
    }

    #[test]
    fn first_matching_entry_wins() {
        let pricing = Pricing::from_json(
            r#"[{"model":"gpt-4o-mini","input":1,"output":2},
                {"model":"gpt-4o*","input":3,"output":4,"cached_input":1},
                {"model":"*","input":9,"output":9}]"#,
        )
        .unwrap();
        assert_eq!(pricing.price("gpt-4o-mini"), Some(&price(1, 1, 2)));
        assert_eq!(pricing.price("gpt-4o-2024-08-06"), Some(&price(3, 1, 4)));
        assert_eq!(pricing.price("anything"), Some(&price(9, 9, 9)));
        assert_eq!(Pricing::from_json("[]").unwrap().price("gpt-4o"), None);
    }

    #[test]
    fn invalid_tables_are_refused() {
        let empty = Pricing::from_json(r#"[{"model":"","input":1,"output":1}]"#).unwrap_err();
        assert!(empty.contains("entry 0: empty model pattern"), "{empty}");
        assert!(Pricing::from_json(r#"[{"model":"x","input":1,"ouput":1}]"#).is_err());
        assert!(Pricing::from_json(r#"[{"model":"x","input":1.5,"output":1}]"#).is_err());
        assert!(Pricing::from_json(r#"[{"model":"x","input":-1,"output":1}]"#).is_err());
        assert!(Pricing::from_json(r#"{"model":"x"}"#).is_err());
    }

    #[test]
    fn default_table_prices_common_models() {
        let pricing = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let cases = [
            ("gpt-4o", price(2_500_000, 1_250_000, 10_000_000)),
            ("gpt-4o-2024-08-06", price(2_500_000, 1_250_000, 10_000_000)),
            ("gpt-4o-mini", price(150_000, 75_000, 600_000)),
            ("gpt-4o-mini-2024-07-18", price(150_000, 75_000, 600_000)),
            ("o3", price(2_000_000, 500_000, 8_000_000)),
            ("o3-2025-04-16", price(2_000_000, 500_000, 8_000_000)),
            ("text-embedding-3-small", price(20_000, 20_000, 0)),
            ("text-embedding-3-large", price(130_000, 130_000, 0)),
            ("claude-sonnet-4-5-20250929", price(3_000_000, 300_000, 15_000_000)),
            ("claude-haiku-4-5", price(1_000_000, 100_000, 5_000_000)),
            ("claude-opus-4-1-20250805", price(15_000_000, 1_500_000, 75_000_000)),
            ("claude-opus-4-5-20251101", price(5_000_000, 500_000, 25_000_000)),
            ("gemini-2.5-pro", price(1_250_000, 310_000, 10_000_000)),
            ("gemini-2.5-flash", price(300_000, 75_000, 2_500_000)),
            ("gemini-2.5-flash-lite", price(100_000, 25_000, 400_000)),
        ];
        for (model, expected) in cases {
            assert_eq!(pricing.price(model), Some(&expected), "{model}");
        }
        for unpriced in ["o3-mini", "o3-pro", "gpt-4", "claude-3-5-sonnet-latest", "gemini-1.5-pro"] {
            assert_eq!(pricing.price(unpriced), None, "{unpriced}");
        }
    }

    #[test]
    fn deserializes_inside_other_configuration() {
        #[derive(Deserialize)]
        struct Config {
            pricing: Pricing,
        }
        let config: Config = serde_json::from_str(r#"{"pricing":[{"model":"m","input":1,"output":2}]}"#).unwrap();
        assert_eq!(config.pricing.price("m"), Some(&price(1, 1, 2)));
        assert!(serde_json::from_str::<Config>(r#"{"pricing":[{"model":"","input":1,"output":2}]}"#).is_err());
    }
}
