//! Model prices, from configuration, and the cost of a [`Usage`].
//!
//! A pricing table is a JSON list of entries, the first matching a model giving its price:
//!
//! ```json
//! {"model": "claude-sonnet-4*", "input": 3000000, "output": 15000000,
//!  "cached_input": 300000, "cache_write": 3750000, "cache_write_1h": 6000000,
//!  "long_context": {"above_input_tokens": 200000, "input": 6000000, "output": 22500000,
//!                   "cached_input": 600000}}
//! ```
//!
//! - `model`: an exact name or a glob ([`crate::policy::glob`]); specific entries go before
//!   general ones. A model no entry matches has no price (a key with a spend cap is refused it),
//!   so patterns should be narrow: `gpt-4o*` would price `gpt-4o-audio-preview` at text rates.
//! - `input`, `output`: per million input tokens not read from or written to a cache, and per
//!   million output tokens (reasoning included).
//! - `cached_input` (optional, default `input`): per million input tokens read from a cache.
//! - `cache_write`, `cache_write_1h` (optional, default 1.25 × and 2 × `input`, rounded up,
//!   Anthropic's multipliers): per million input tokens written to a cache kept five minutes,
//!   or one hour.
//! - `long_context` (optional): a call whose input (cached tokens included) is above
//!   `above_input_tokens` pays these rates for all its tokens instead; its `cached_input`,
//!   `cache_write` and `cache_write_1h` default from its own `input` as above.
//!
//! Prices are integer micro-dollars per million tokens; costs are integer micro-dollars,
//! rounded up once per call, so metering never undercharges. No floating point anywhere.
//! Tables written before the optional fields existed read as before, but for cache writes,
//! which are now priced at their multipliers.
//!
//! A table serializes as the same list with every optional rate written out, so it reads back
//! equal (the platform keeps an organisation's price overrides this way: [`crate::policy::OrgRecord`]).

use super::Usage;
use crate::policy::glob::glob_match;
use serde::{Deserialize, Serialize, Serializer};

/// List prices (USD, standard tier) of common models, as a starting configuration;
/// deployments configure their own. Exact names, or patterns that match only text models.
pub const DEFAULT_PRICING_JSON: &str = r#"[
  {"model": "gpt-4o", "input": 2500000, "output": 10000000, "cached_input": 1250000},
  {"model": "gpt-4o-2024-11-20", "input": 2500000, "output": 10000000, "cached_input": 1250000},
  {"model": "gpt-4o-2024-08-06", "input": 2500000, "output": 10000000, "cached_input": 1250000},
  {"model": "gpt-4o-2024-05-13", "input": 5000000, "output": 15000000},
  {"model": "gpt-4o-mini", "input": 150000, "output": 600000, "cached_input": 75000},
  {"model": "gpt-4o-mini-2024-07-18", "input": 150000, "output": 600000, "cached_input": 75000},
  {"model": "gpt-4.1", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "gpt-4.1-2025-04-14", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "gpt-4.1-mini", "input": 400000, "output": 1600000, "cached_input": 100000},
  {"model": "gpt-4.1-mini-2025-04-14", "input": 400000, "output": 1600000, "cached_input": 100000},
  {"model": "gpt-4.1-nano", "input": 100000, "output": 400000, "cached_input": 25000},
  {"model": "gpt-4.1-nano-2025-04-14", "input": 100000, "output": 400000, "cached_input": 25000},
  {"model": "gpt-5", "input": 1250000, "output": 10000000, "cached_input": 125000},
  {"model": "gpt-5-2025-08-07", "input": 1250000, "output": 10000000, "cached_input": 125000},
  {"model": "gpt-5-mini", "input": 250000, "output": 2000000, "cached_input": 25000},
  {"model": "gpt-5-mini-2025-08-07", "input": 250000, "output": 2000000, "cached_input": 25000},
  {"model": "gpt-5-nano", "input": 50000, "output": 400000, "cached_input": 5000},
  {"model": "gpt-5-nano-2025-08-07", "input": 50000, "output": 400000, "cached_input": 5000},
  {"model": "o3", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "o3-2025-04-16", "input": 2000000, "output": 8000000, "cached_input": 500000},
  {"model": "o4-mini", "input": 1100000, "output": 4400000, "cached_input": 275000},
  {"model": "o4-mini-2025-04-16", "input": 1100000, "output": 4400000, "cached_input": 275000},
  {"model": "text-embedding-3-large", "input": 130000, "output": 0},
  {"model": "text-embedding-3-small", "input": 20000, "output": 0},
  {"model": "claude-sonnet-4*", "input": 3000000, "output": 15000000, "cached_input": 300000,
   "long_context": {"above_input_tokens": 200000, "input": 6000000, "output": 22500000, "cached_input": 600000}},
  {"model": "claude-haiku-4*", "input": 1000000, "output": 5000000, "cached_input": 100000},
  {"model": "claude-opus-4-5*", "input": 5000000, "output": 25000000, "cached_input": 500000},
  {"model": "claude-opus-4*", "input": 15000000, "output": 75000000, "cached_input": 1500000},
  {"model": "gemini-2.5-pro", "input": 1250000, "output": 10000000, "cached_input": 310000,
   "long_context": {"above_input_tokens": 200000, "input": 2500000, "output": 15000000, "cached_input": 625000}},
  {"model": "gemini-2.5-flash", "input": 300000, "output": 2500000, "cached_input": 75000},
  {"model": "gemini-2.5-flash-preview-09-2025", "input": 300000, "output": 2500000, "cached_input": 75000},
  {"model": "gemini-2.5-flash-lite", "input": 100000, "output": 400000, "cached_input": 25000},
  {"model": "gemini-2.5-flash-lite-preview-09-2025", "input": 100000, "output": 400000, "cached_input": 25000}
]"#;

/// A model's prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// The rates of calls with at most `long_context.above_input_tokens` input tokens (of all
    /// calls, without a long-context tier).
    pub standard: Rates,
    pub long_context: Option<LongContext>,
}

/// Prices per million tokens, in micro-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Input tokens neither read from nor written to a cache.
    pub input: u64,
    /// Input tokens read from a cache.
    pub cached_input: u64,
    /// Input tokens written to a cache kept five minutes.
    pub cache_write: u64,
    /// Input tokens written to a cache kept one hour.
    pub cache_write_1h: u64,
    /// Output tokens.
    pub output: u64,
}

/// The rates of calls with more input tokens than `above_input_tokens`, for all their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContext {
    pub above_input_tokens: u64,
    pub rates: Rates,
}

impl Price {
    /// The rates a call with `input_tokens` input tokens pays.
    pub fn rates(&self, input_tokens: u64) -> &Rates {
        match &self.long_context {
            Some(long) if input_tokens > long.above_input_tokens => &long.rates,
            _ => &self.standard,
        }
    }

    /// What `usage` costs, in micro-dollars, rounded up; saturates at `u64::MAX`.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let rates = self.rates(usage.input_tokens);
        let priced = [
            (usage.uncached_input_tokens(), rates.input),
            (usage.cached_input_tokens, rates.cached_input),
            (usage.cache_writes.five_minutes, rates.cache_write),
            (usage.cache_writes.one_hour, rates.cache_write_1h),
            (usage.output_tokens, rates.output),
        ];
        // Each product fits in u128 (< 2^128); only their sum can overflow.
        let micros_per_million = priced
            .into_iter()
            .fold(0u128, |sum, (tokens, price)| sum.saturating_add(u128::from(tokens) * u128::from(price)));
        u64::try_from(micros_per_million.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// The most a call of at most `input_tokens` input and `output_tokens` output tokens can
    /// cost, however its input is cached or written to a cache: every input token at the
    /// dearest input rate of every tier it may fall in. `cache_writes`: whether the upstream
    /// can bill input as cache writes (only Anthropic's reports them; elsewhere writing a
    /// cache costs the input rate).
    pub fn max_cost_micros(&self, input_tokens: u64, output_tokens: u64, cache_writes: CacheWriteBilling) -> u64 {
        let tiers = [Some(&self.standard), Some(self.rates(input_tokens))];
        tiers
            .into_iter()
            .flatten()
            .map(|rates| {
                let dearest_input = match cache_writes {
                    CacheWriteBilling::Billed => {
                        rates.input.max(rates.cached_input).max(rates.cache_write).max(rates.cache_write_1h)
                    }
                    CacheWriteBilling::AtInputRate => rates.input.max(rates.cached_input),
                };
                let worst = Rates { input: dearest_input, ..*rates };
                Price { standard: worst, long_context: None }.cost_micros(&Usage::new(input_tokens, 0, output_tokens))
            })
            .max()
            .unwrap_or(0)
    }
}

/// Whether an upstream bills input written to a prompt cache at its own (higher) rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheWriteBilling {
    /// Anthropic: cache writes are reported and billed at `cache_write` / `cache_write_1h`.
    Billed,
    /// OpenAI, Gemini: caching is automatic or by reference; input is billed at input rates.
    AtInputRate,
}

/// A validated pricing table. Deserializes from the same JSON as [`Pricing::from_json`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<PriceEntry>")]
pub struct Pricing {
    entries: Vec<Entry>,
}

/// One configured entry, as the module documentation describes it (prices in micro-dollars
/// per million tokens).
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    /// An exact model name or a glob; the first entry matching a model prices it.
    model: String,
    input: u64,
    output: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached_input: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_1h: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    long_context: Option<LongContextEntry>,
}

/// The rates of calls above `above_input_tokens` input tokens.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LongContextEntry {
    above_input_tokens: u64,
    input: u64,
    output: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached_input: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_1h: Option<u64>,
}

impl Entry {
    /// The entry as configuration, every optional rate written out.
    fn config(&self) -> PriceEntry {
        let Rates { input, cached_input, cache_write, cache_write_1h, output } = self.price.standard;
        PriceEntry {
            model: self.pattern.clone(),
            input,
            output,
            cached_input: Some(cached_input),
            cache_write: Some(cache_write),
            cache_write_1h: Some(cache_write_1h),
            long_context: self.price.long_context.map(|long| LongContextEntry {
                above_input_tokens: long.above_input_tokens,
                input: long.rates.input,
                output: long.rates.output,
                cached_input: Some(long.rates.cached_input),
                cache_write: Some(long.rates.cache_write),
                cache_write_1h: Some(long.rates.cache_write_1h),
            }),
        }
    }
}

impl Serialize for Pricing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.iter().map(Entry::config))
    }
}

impl Rates {
    /// Configured rates, the optional ones defaulting from `input`.
    fn configured(
        input: u64,
        output: u64,
        cached_input: Option<u64>,
        cache_write: Option<u64>,
        cache_write_1h: Option<u64>,
    ) -> Rates {
        Rates {
            input,
            cached_input: cached_input.unwrap_or(input),
            cache_write: cache_write.unwrap_or_else(|| multiply(input, 5, 4)),
            cache_write_1h: cache_write_1h.unwrap_or_else(|| multiply(input, 2, 1)),
            output,
        }
    }
}

/// `price × numerator / denominator`, rounded up; saturates.
fn multiply(price: u64, numerator: u64, denominator: u64) -> u64 {
    let product = (u128::from(price) * u128::from(numerator)).div_ceil(u128::from(denominator));
    u64::try_from(product).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Never empty.
    pattern: String,
    price: Price,
}

impl TryFrom<Vec<PriceEntry>> for Pricing {
    type Error = String;

    fn try_from(configs: Vec<PriceEntry>) -> Result<Self, String> {
        let entries = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| {
                if config.model.is_empty() {
                    return Err(format!("pricing entry {i}: empty model pattern"));
                }
                let long_context = config.long_context.map(|long| LongContext {
                    above_input_tokens: long.above_input_tokens,
                    rates: Rates::configured(
                        long.input,
                        long.output,
                        long.cached_input,
                        long.cache_write,
                        long.cache_write_1h,
                    ),
                });
                let standard = Rates::configured(
                    config.input,
                    config.output,
                    config.cached_input,
                    config.cache_write,
                    config.cache_write_1h,
                );
                let price = Price { standard, long_context };
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

    /// How many entries the table has.
    pub fn price_count(&self) -> usize {
        self.entries.len()
    }

    /// The price of `model` in `overrides` if it has one, else in this table.
    pub fn price_with<'a>(&'a self, overrides: Option<&'a Pricing>, model: &str) -> Option<&'a Price> {
        overrides.and_then(|overrides| overrides.price(model)).or_else(|| self.price(model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::CacheWrites;

    /// A price without a long-context tier, cache writes at their default multipliers.
    fn price(input: u64, cached_input: u64, output: u64) -> Price {
        Price { standard: Rates::configured(input, output, Some(cached_input), None, None), long_context: None }
    }

    #[test]
    fn a_table_serializes_to_what_reads_back_equal() {
        let table = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let written = serde_json::to_string(&table).unwrap();
        assert_eq!(Pricing::from_json(&written).unwrap(), table);
        assert!(written.contains(r#""cache_write_1h":6000000"#), "optional rates are written out");
    }

    #[test]
    fn overrides_price_what_they_match_and_the_table_the_rest() {
        let table = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let overrides = Pricing::from_json(r#"[{"model": "gpt-4o*", "input": 1, "output": 2}]"#).unwrap();
        assert_eq!(table.price_with(Some(&overrides), "gpt-4o-mini").unwrap().standard.output, 2);
        assert_eq!(table.price_with(Some(&overrides), "o3"), table.price("o3"));
        assert_eq!(table.price_with(None, "gpt-4o"), table.price("gpt-4o"));
        assert_eq!(table.price_with(Some(&overrides), "unknown-model"), None);
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
    fn cache_writes_cost_their_multipliers() {
        // Sonnet: 10 000 input: 1000 uncached, 2000 read, 3000 written for 5 min, 4000 for 1 h.
        // 1000 × 3 + 2000 × 0.3 + 3000 × 3.75 + 4000 × 6 = 3000 + 600 + 11250 + 24000 = 38850.
        let sonnet = price(3_000_000, 300_000, 15_000_000);
        assert_eq!((sonnet.standard.cache_write, sonnet.standard.cache_write_1h), (3_750_000, 6_000_000));
        let writes = CacheWrites { five_minutes: 3000, one_hour: 4000 };
        assert_eq!(sonnet.cost_micros(&Usage::with_cache_writes(10_000, 2000, writes, 0)), 38_850);
        // Configured write prices win over the multipliers; the multipliers round up.
        let table = r#"[{"model":"m","input":3,"output":1,"cache_write":7,"cache_write_1h":9},{"model":"n","input":3,"output":1}]"#;
        let pricing = Pricing::from_json(table).unwrap();
        let m = pricing.price("m").unwrap().standard;
        assert_eq!((m.cached_input, m.cache_write, m.cache_write_1h), (3, 7, 9));
        let n = pricing.price("n").unwrap().standard;
        assert_eq!((n.cache_write, n.cache_write_1h), (4, 6));
    }

    #[test]
    fn long_context_tier_prices_the_whole_call_above_its_threshold() {
        let pricing = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let sonnet = pricing.price("claude-sonnet-4-5-20250929").unwrap();
        // At the threshold: standard rates. 200 000 × 3 + 1000 × 15 = 615 000.
        assert_eq!(sonnet.cost_micros(&Usage::new(200_000, 0, 1000)), 615_000);
        // One token above, cache reads included: all tokens at long-context rates.
        // 150 001 × 6 + 50 000 × 0.6 + 1000 × 22.5 = 900 006 + 30 000 + 22 500.
        assert_eq!(sonnet.cost_micros(&Usage::new(200_001, 50_000, 1000)), 952_506);
        // Long-context cache writes default from the long-context input rate: 7.5 and 12.
        let writes = CacheWrites { five_minutes: 100_000, one_hour: 100_001 };
        assert_eq!(sonnet.cost_micros(&Usage::with_cache_writes(200_001, 0, writes, 0)), 750_000 + 1_200_012);
        let gemini = pricing.price("gemini-2.5-pro").unwrap();
        assert_eq!(gemini.cost_micros(&Usage::new(300_000, 0, 2000)), 750_000 + 30_000);
        assert_eq!(gemini.cost_micros(&Usage::new(100_000, 0, 2000)), 125_000 + 20_000);
    }

    #[test]
    fn max_cost_takes_the_dearest_input_rate_and_tier() {
        let pricing = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let sonnet = pricing.price("claude-sonnet-4-5").unwrap();
        // 1000 tokens as one-hour writes (6) + 10 output × 15.
        assert_eq!(sonnet.max_cost_micros(1000, 10, CacheWriteBilling::Billed), 6000 + 150);
        // Above the threshold: long-context rates, one-hour writes at 12.
        assert_eq!(sonnet.max_cost_micros(300_000, 0, CacheWriteBilling::Billed), 3_600_000);
        // Nothing the usage may be costs more.
        for usage in [
            Usage::new(300_000, 300_000, 0),
            Usage::with_cache_writes(300_000, 0, CacheWrites { five_minutes: 0, one_hour: 300_000 }, 0),
            Usage::new(150_000, 0, 0),
        ] {
            assert!(
                sonnet.cost_micros(&usage) <= sonnet.max_cost_micros(300_000, 0, CacheWriteBilling::Billed),
                "{usage:?}"
            );
        }
        // A tier configured below the standard rates cannot lower the bound.
        let odd = Pricing::from_json(
            r#"[{"model":"m","input":10,"output":0,"long_context":{"above_input_tokens":5,"input":1,"output":0}}]"#,
        )
        .unwrap();
        assert_eq!(odd.price("m").unwrap().max_cost_micros(1_000_000, 0, CacheWriteBilling::Billed), 20);
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
        let writes = CacheWrites { five_minutes: 1, one_hour: 1 };
        // 1 × 0.5 + 1 × 0.625 + 1 × 1.0 = 2.125 → 3.
        assert_eq!(split.cost_micros(&Usage::with_cache_writes(3, 0, writes, 0)), 3);
    }

    #[test]
    fn big_numbers_do_not_overflow() {
        let opus = price(15_000_000, 1_500_000, 75_000_000);
        let huge = Usage::new(u64::MAX, 0, u64::MAX);
        assert_eq!(opus.cost_micros(&huge), u64::MAX);
        // 10^12 tokens at $15/M is $15M: 15 × 10^12 micro-dollars, exactly.
        assert_eq!(opus.cost_micros(&Usage::new(1_000_000_000_000, 0, 0)), 15_000_000_000_000);
        let max = price(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(max.standard.cache_write_1h, u64::MAX);
        assert_eq!(max.cost_micros(&Usage::new(u64::MAX, u64::MAX / 2, u64::MAX)), u64::MAX);
        assert_eq!(max.max_cost_micros(u64::MAX, u64::MAX, CacheWriteBilling::Billed), u64::MAX);
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
        assert!(Pricing::from_json(r#"[{"model":"x","input":1,"output":1,"cache_writes":1}]"#).is_err());
        assert!(Pricing::from_json(r#"[{"model":"x","input":1.5,"output":1}]"#).is_err());
        assert!(Pricing::from_json(r#"[{"model":"x","input":-1,"output":1}]"#).is_err());
        assert!(Pricing::from_json(r#"{"model":"x"}"#).is_err());
        let long = |tier: &str| {
            Pricing::from_json(&format!(r#"[{{"model":"x","input":1,"output":1,"long_context":{tier}}}]"#))
        };
        assert!(long(r#"{"input":2,"output":2}"#).is_err(), "threshold required");
        assert!(long(r#"{"above_input_tokens":5,"input":2,"output":2,"model":"y"}"#).is_err());
        assert!(long(r#"{"above_input_tokens":5,"input":2,"output":2}"#).is_ok());
    }

    #[test]
    fn tables_without_the_new_fields_still_read() {
        let pricing = Pricing::from_json(r#"[{"model":"m","input":4,"output":8,"cached_input":1}]"#).unwrap();
        let expected = Rates { input: 4, cached_input: 1, cache_write: 5, cache_write_1h: 8, output: 8 };
        assert_eq!(pricing.price("m"), Some(&Price { standard: expected, long_context: None }));
    }

    #[test]
    fn default_table_prices_common_models() {
        let pricing = Pricing::from_json(DEFAULT_PRICING_JSON).unwrap();
        let cases = [
            ("gpt-4o", price(2_500_000, 1_250_000, 10_000_000)),
            ("gpt-4o-2024-08-06", price(2_500_000, 1_250_000, 10_000_000)),
            ("gpt-4o-2024-05-13", price(5_000_000, 5_000_000, 15_000_000)),
            ("gpt-4o-mini", price(150_000, 75_000, 600_000)),
            ("gpt-4o-mini-2024-07-18", price(150_000, 75_000, 600_000)),
            ("gpt-4.1-mini", price(400_000, 100_000, 1_600_000)),
            ("gpt-5-2025-08-07", price(1_250_000, 125_000, 10_000_000)),
            ("o3", price(2_000_000, 500_000, 8_000_000)),
            ("o3-2025-04-16", price(2_000_000, 500_000, 8_000_000)),
            ("o4-mini", price(1_100_000, 275_000, 4_400_000)),
            ("text-embedding-3-small", price(20_000, 20_000, 0)),
            ("text-embedding-3-large", price(130_000, 130_000, 0)),
            ("claude-haiku-4-5", price(1_000_000, 100_000, 5_000_000)),
            ("claude-opus-4-1-20250805", price(15_000_000, 1_500_000, 75_000_000)),
            ("claude-opus-4-5-20251101", price(5_000_000, 500_000, 25_000_000)),
            ("gemini-2.5-flash", price(300_000, 75_000, 2_500_000)),
            ("gemini-2.5-flash-lite", price(100_000, 25_000, 400_000)),
        ];
        for (model, expected) in cases {
            assert_eq!(pricing.price(model), Some(&expected), "{model}");
        }
        let sonnet = pricing.price("claude-sonnet-4-5-20250929").unwrap();
        assert_eq!(sonnet.standard, price(3_000_000, 300_000, 15_000_000).standard);
        assert_eq!(sonnet.long_context.unwrap().above_input_tokens, 200_000);
        assert_eq!(sonnet.long_context.unwrap().rates, price(6_000_000, 600_000, 22_500_000).standard);
        let gemini_pro = pricing.price("gemini-2.5-pro").unwrap();
        assert_eq!(gemini_pro.standard, price(1_250_000, 310_000, 10_000_000).standard);
        assert_eq!(gemini_pro.long_context.unwrap().rates, price(2_500_000, 625_000, 15_000_000).standard);
        // Audio, search, realtime, speech, transcription and image models are billed at other
        // rates or per unit: no text price for them.
        for unpriced in [
            "gpt-4o-audio-preview",
            "gpt-4o-audio-preview-2024-12-17",
            "gpt-4o-mini-audio-preview",
            "gpt-4o-search-preview",
            "gpt-4o-mini-search-preview",
            "gpt-4o-realtime-preview",
            "gpt-4o-mini-realtime-preview",
            "gpt-4o-transcribe",
            "gpt-4o-mini-tts",
            "gpt-image-1",
            "gpt-5-pro",
            "gemini-2.5-flash-image",
            "gemini-2.5-flash-image-preview",
            "gemini-2.5-flash-preview-tts",
            "gemini-2.5-pro-preview-tts",
            "gemini-2.5-flash-native-audio-preview-09-2025",
            "gemini-2.5-flash-live-preview",
            "o3-mini",
            "o3-pro",
            "gpt-4",
            "claude-3-5-sonnet-latest",
            "gemini-1.5-pro",
        ] {
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
