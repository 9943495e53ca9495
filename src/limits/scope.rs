//! The five sliding windows a key is limited by (requests per minute, hour and day; tokens per
//! minute and day): each scope names its [`Limits`] field, its length and bucket width, and
//! owns one [`Window`] in [`Windows`].
//!
//! Every window records every admitted request whether or not its limit is set, so a limit
//! added or tightened later applies at once to what already happened.

use super::calendar::DAY_MS;
use super::charge::Charge;
use super::config::Limits;
use super::window::{Window, BUCKETS};
use serde::{Deserialize, Serialize};

/// One sliding window limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowScope {
    Rpm,
    Rph,
    Rpd,
    Tpm,
    Tpd,
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

impl WindowScope {
    /// Request windows, shortest first.
    pub const REQUESTS: [WindowScope; 3] = [WindowScope::Rpm, WindowScope::Rph, WindowScope::Rpd];
    /// Token windows, shortest first.
    pub const TOKENS: [WindowScope; 2] = [WindowScope::Tpm, WindowScope::Tpd];
    pub const ALL: [WindowScope; 5] =
        [WindowScope::Rpm, WindowScope::Rph, WindowScope::Rpd, WindowScope::Tpm, WindowScope::Tpd];

    /// The name used in `LimitDetails.scope` and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            WindowScope::Rpm => "rpm",
            WindowScope::Rph => "rph",
            WindowScope::Rpd => "rpd",
            WindowScope::Tpm => "tpm",
            WindowScope::Tpd => "tpd",
        }
    }

    /// The configured limit, if any.
    pub fn limit(self, limits: &Limits) -> Option<u64> {
        let limit = match self {
            WindowScope::Rpm => limits.rpm,
            WindowScope::Rph => limits.rph,
            WindowScope::Rpd => limits.rpd,
            WindowScope::Tpm => limits.tpm,
            WindowScope::Tpd => limits.tpd,
        };
        limit.map(|l| l.get())
    }

    /// Whether the window counts tokens (else requests).
    pub fn counts_tokens(self) -> bool {
        matches!(self, WindowScope::Tpm | WindowScope::Tpd)
    }

    /// What one request adds to this window: 1, or the tokens it reserves.
    pub fn amount(self, ask: &Charge) -> u64 {
        if self.counts_tokens() {
            ask.tokens
        } else {
            1
        }
    }

    /// "requests" or "tokens".
    pub fn unit(self) -> &'static str {
        if self.counts_tokens() {
            "tokens"
        } else {
            "requests"
        }
    }

    /// "minute", "hour" or "day".
    pub fn per(self) -> &'static str {
        match self {
            WindowScope::Rpm | WindowScope::Tpm => "minute",
            WindowScope::Rph => "hour",
            WindowScope::Rpd | WindowScope::Tpd => "day",
        }
    }

    /// The window length in milliseconds.
    pub fn span_ms(self) -> u64 {
        match self {
            WindowScope::Rpm | WindowScope::Tpm => MINUTE_MS,
            WindowScope::Rph => HOUR_MS,
            WindowScope::Rpd | WindowScope::Tpd => DAY_MS,
        }
    }

    /// The bucket width: 1 s, 60 s or 1440 s.
    pub fn bucket_ms(self) -> u64 {
        self.span_ms() / BUCKETS
    }

    /// The bucket containing `ms`.
    pub fn bucket_of(self, ms: u64) -> u64 {
        ms / self.bucket_ms()
    }

    /// The instant `bucket` begins.
    pub fn start_of(self, bucket: u64) -> u64 {
        bucket.saturating_mul(self.bucket_ms())
    }
}

/// One window per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    rpm: Window,
    rph: Window,
    rpd: Window,
    tpm: Window,
    tpd: Window,
}

impl Windows {
    pub fn get(&self, scope: WindowScope) -> &Window {
        match scope {
            WindowScope::Rpm => &self.rpm,
            WindowScope::Rph => &self.rph,
            WindowScope::Rpd => &self.rpd,
            WindowScope::Tpm => &self.tpm,
            WindowScope::Tpd => &self.tpd,
        }
    }

    pub fn get_mut(&mut self, scope: WindowScope) -> &mut Window {
        match scope {
            WindowScope::Rpm => &mut self.rpm,
            WindowScope::Rph => &mut self.rph,
            WindowScope::Rpd => &mut self.rpd,
            WindowScope::Tpm => &mut self.tpm,
            WindowScope::Tpd => &mut self.tpd,
        }
    }
}
