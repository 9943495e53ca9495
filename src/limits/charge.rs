//! What one request costs: tokens and micro-dollars. The edge estimates it before the call
//! ([`Ask`]) and measures it from the upstream's usage after ([`Actual`]).

use serde::{Deserialize, Serialize};

/// Tokens (input + output) and money (micro-dollars) of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub tokens: u64,
    pub cost_micros: u64,
}

/// The estimate reserved at admission: prompt tokens plus the output tokens the request may
/// produce, priced at the model's rates. The hard spend guarantee holds when it is an upper bound.
pub type Ask = Charge;

/// What the upstream reports the request really used, recorded at settle.
pub type Actual = Charge;

impl Charge {
    /// Nothing used: what a released (failed) request costs.
    pub const ZERO: Charge = Charge { tokens: 0, cost_micros: 0 };
}
