//! Why the ledger refused a request, and the HTTP answer that says so.
//!
//! Flow: admission collects a [`LimitDenial`] for every limit the request would break, keeps the
//! one that frees last ([`LimitDenial::outlasts`]), and the edge turns it into an [`ApiError`] with
//! [`LimitDenial::into_api_error`]: a 429 whose `Retry-After`, when a reset is known, is no earlier
//! than every refusing window and cap allows; or a 400 for a request too large for a token window,
//! which no wait can help.

use super::config::SpendPeriod;
use super::level::Level;
use super::reservations::MAX_OPEN_RESERVATIONS;
use super::scope::WindowScope;
use super::scopes::KeyScope;
use crate::error::{ApiError, Code, LimitDetails};
use serde::{Deserialize, Serialize};

/// A refused admission. Denials are values: the ledger is unchanged by the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LimitDenial {
    /// A request or token window is full. `reset_at_ms` is the earliest time at which enough
    /// old buckets have left for `asked` to fit, if nothing else is admitted meanwhile.
    Window { scope: WindowScope, limit: u64, used: u64, asked: u64, reset_at_ms: u64 },
    /// The request alone asks for more tokens than the window allows; it can never be admitted.
    /// Answered with 400 ([`Code::TokenRequestTooLarge`], on the wire `token_limit_exceeded`
    /// like a full token window), not 429, so clients do not retry: only a smaller `max_tokens` or input helps.
    TooLarge { scope: WindowScope, limit: u64, asked: u64 },
    /// `max_in_flight` requests are admitted and not yet settled.
    InFlight { limit: u64, open: u64 },
    /// The ledger's own bound, [`MAX_OPEN_RESERVATIONS`], is reached.
    TooManyInFlight { open: u64 },
    /// A hard spend cap: committed + reserved + this estimate would pass `limit_micros`.
    /// `reset_at_ms` is when the period rolls; `None` for total spend, which never resets.
    Spend {
        period: SpendPeriod,
        limit_micros: u64,
        committed_micros: u64,
        reserved_micros: u64,
        asked_micros: u64,
        reset_at_ms: Option<u64>,
    },
}

impl LimitDenial {
    /// Whether this denial outlasts `other`: never-ending denials (a request too large, a total
    /// spend cap) outlast timed ones, a later reset outlasts an earlier one, and in-flight limits,
    /// which free whenever a request finishes, outlast nothing. Reporting the denial no other
    /// outlasts makes `Retry-After` the earliest time every refusing limit could let the request in.
    pub fn outlasts(&self, other: &LimitDenial) -> bool {
        self.persistence() > other.persistence()
    }

    fn persistence(&self) -> (u8, u64) {
        match self {
            LimitDenial::TooLarge { .. } => (3, 0),
            LimitDenial::Spend { reset_at_ms: None, .. } => (2, 0),
            LimitDenial::Window { reset_at_ms, .. } | LimitDenial::Spend { reset_at_ms: Some(reset_at_ms), .. } => {
                (1, *reset_at_ms)
            }
            LimitDenial::InFlight { .. } | LimitDenial::TooManyInFlight { .. } => (0, 0),
        }
    }

    /// Until when no request of the key can be admitted whatever else happens, if this denial
    /// says so: a full request window stays full until its reset, since requests, once
    /// counted, are never uncounted (token windows, spend and in-flight can free earlier, when
    /// calls settle below their estimates or finish). Only a change of the limits ends it sooner.
    pub fn refuses_every_request_until(&self) -> Option<u64> {
        match self {
            LimitDenial::Window { scope, reset_at_ms, .. } if !scope.counts_tokens() => Some(*reset_at_ms),
            _ => None,
        }
    }

    /// The answer to a denial of the key's own limits: see [`LimitDenial::into_api_error_in`].
    pub fn into_api_error(self, now_ms: u64) -> ApiError {
        self.into_api_error_in(&KeyScope::Key, now_ms)
    }

    /// The answer to send for a denial of the limits of `scope`: 429 with [`LimitDetails`]
    /// naming the level (and pattern or end user) and `Retry-After`, or 400 for
    /// [`LimitDenial::TooLarge`]. The message names the limit, whose it is, the use, and when
    /// to retry.
    pub fn into_api_error_in(self, scope: &KeyScope, now_ms: u64) -> ApiError {
        let (pattern, end_user) = match scope {
            KeyScope::Key => (None, None),
            KeyScope::Model(pattern) => (Some(pattern.clone()), None),
            KeyScope::EndUser(id) => (None, Some(id.clone())),
        };
        self.answer(Owner { level: scope.level(), pattern, end_user, whose: scope.describe() }, now_ms)
    }

    /// The answer to send for a denial of the limits of a level above the key (a project's or
    /// an organisation's budget; [`Level::Key`] for a key's own, leased to an edge): as
    /// [`LimitDenial::into_api_error_in`], with the message saying whose limit it is.
    pub fn into_api_error_at(self, level: Level, now_ms: u64) -> ApiError {
        let whose = match level {
            Level::Project => " for this key's project".to_owned(),
            Level::Organisation => " for this key's organisation".to_owned(),
            Level::Key | Level::Model | Level::EndUser => String::new(),
        };
        self.answer(Owner { level, pattern: None, end_user: None, whose }, now_ms)
    }

    fn answer(self, mut owner: Owner, now_ms: u64) -> ApiError {
        let code = self.code();
        let whose = std::mem::take(&mut owner.whose);
        match self.details(owner) {
            None => ApiError::new(code, self.message(&whose, None)),
            Some(details) => {
                ApiError::limited(code, details, now_ms, |retry_after_s| self.message(&whose, retry_after_s))
            }
        }
    }

    fn code(&self) -> Code {
        match self {
            LimitDenial::Window { scope, .. } if !scope.counts_tokens() => Code::RateLimitExceeded,
            LimitDenial::Window { .. } => Code::TokenLimitExceeded,
            LimitDenial::TooLarge { .. } => Code::TokenRequestTooLarge,
            LimitDenial::InFlight { .. } => Code::RateLimitExceeded,
            LimitDenial::TooManyInFlight { .. } => Code::TooManyInFlight,
            LimitDenial::Spend { .. } => Code::SpendLimitExceeded,
        }
    }

    fn details(&self, owner: Owner) -> Option<LimitDetails> {
        let (scope, limit, used, reset_at_ms) = match *self {
            LimitDenial::Window { scope, limit, used, reset_at_ms, .. } => {
                (scope.name(), limit, used, Some(reset_at_ms))
            }
            LimitDenial::TooLarge { .. } => return None,
            LimitDenial::InFlight { limit, open } => ("in_flight", limit, open, None),
            LimitDenial::TooManyInFlight { open } => ("in_flight", MAX_OPEN_RESERVATIONS as u64, open, None),
            LimitDenial::Spend { period, limit_micros, committed_micros, reserved_micros, reset_at_ms, .. } => {
                (spend_scope(period), limit_micros, committed_micros.saturating_add(reserved_micros), reset_at_ms)
            }
        };
        Some(LimitDetails {
            level: owner.level,
            pattern: owner.pattern,
            end_user: owner.end_user,
            scope: scope.into(),
            limit,
            used,
            reset_at_ms,
        })
    }

    /// The message; `whose` follows the limit's name (see [`KeyScope::describe`]).
    fn message(&self, whose: &str, retry_after_s: Option<u64>) -> String {
        let retry = match retry_after_s {
            Some(s) => format!("Retry after {}.", wait(s)),
            None => String::new(),
        };
        match self {
            LimitDenial::Window { scope, limit, used, asked, .. } if scope.counts_tokens() => format!(
                "Token limit reached{whose}: {limit} tokens per {} ({used} used; this request reserves {asked}). {retry}",
                scope.per()
            ),
            LimitDenial::Window { scope, limit, used, .. } => {
                format!("Rate limit reached{whose}: {limit} requests per {} ({used} used). {retry}", scope.per())
            }
            LimitDenial::TooLarge { scope, limit, asked } => format!(
                "This request reserves {asked} tokens, more than the limit of {limit} tokens per {}{}, \
                 so it can never be admitted. Lower max_tokens or shorten the input.",
                scope.per(),
                if whose.is_empty() { " of this key" } else { whose },
            ),
            LimitDenial::InFlight { limit, open } => {
                format!("Too many requests in flight{whose}: {limit} allowed at once ({open} open). Retry when one finishes.")
            }
            LimitDenial::TooManyInFlight { open } => format!(
                "Too many requests in flight{whose}: {open} open requests, the most the gateway tracks. \
                 Retry when some finish."
            ),
            LimitDenial::Spend { period, limit_micros, committed_micros, reserved_micros, asked_micros, .. } => {
                let then = if retry.is_empty() {
                    "Total spend never resets; ask an admin to raise the limit."
                } else {
                    &retry
                };
                format!(
                    "{} spend limit reached{whose}: {} ({} spent, {} reserved by requests in flight; this request may cost up to {}). {then}",
                    period_name(*period),
                    dollars(*limit_micros),
                    dollars(*committed_micros),
                    dollars(*reserved_micros),
                    dollars(*asked_micros),
                )
            }
        }
    }
}

/// Whose limit a denial is, for its answer: the level, the pattern or end user inside a key,
/// and the words that follow the limit's name in the message.
struct Owner {
    level: Level,
    pattern: Option<String>,
    end_user: Option<String>,
    whose: String,
}

pub(super) fn spend_scope(period: SpendPeriod) -> &'static str {
    match period {
        SpendPeriod::Total => "spend_total",
        SpendPeriod::Daily => "spend_daily",
        SpendPeriod::Monthly => "spend_monthly",
    }
}

fn period_name(period: SpendPeriod) -> &'static str {
    match period {
        SpendPeriod::Total => "Total",
        SpendPeriod::Daily => "Daily",
        SpendPeriod::Monthly => "Monthly",
    }
}

/// Micro-dollars as dollars: cents when exact (`$12.50`), else up to six decimals (`$0.00035`).
fn dollars(micros: u64) -> String {
    let (whole, fraction) = (micros / 1_000_000, micros % 1_000_000);
    if fraction % 10_000 == 0 {
        format!("${whole}.{:02}", fraction / 10_000)
    } else {
        format!("${whole}.{}", format!("{fraction:06}").trim_end_matches('0'))
    }
}

/// A wait in whole seconds, rounded up to the units shown: `12 s`, `7 min`, `5 h 12 min`, `3 d 4 h`.
fn wait(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    if seconds < 2 * MINUTE {
        format!("{seconds} s")
    } else if seconds < 2 * HOUR {
        format!("{} min", seconds.div_ceil(MINUTE))
    } else if seconds < 2 * DAY {
        let minutes = seconds.div_ceil(MINUTE);
        two_units(minutes / 60, "h", minutes % 60, "min")
    } else {
        let hours = seconds.div_ceil(HOUR);
        two_units(hours / 24, "d", hours % 24, "h")
    }
}

/// `5 h 12 min`, or `5 h` when the smaller unit is zero.
fn two_units(big: u64, big_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big} {big_unit}")
    } else {
        format!("{big} {big_unit} {small} {small_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;

    fn body(error: &ApiError) -> serde_json::Value {
        serde_json::from_str(&error.body()).unwrap()
    }

    #[test]
    fn request_window_is_a_rate_limit() {
        let d = LimitDenial::Window { scope: WindowScope::Rpm, limit: 50, used: 50, asked: 1, reset_at_ms: 12_000 };
        let e = d.into_api_error(500);
        assert_eq!((e.status(), e.kind(), e.code()), (429, ErrorType::RateLimitError, Code::RateLimitExceeded));
        assert_eq!(e.message, "Rate limit reached: 50 requests per minute (50 used). Retry after 12 s.");
        assert_eq!(e.retry_after_s(), Some(12));
        let v = body(&e);
        assert_eq!(v["error"]["limit"]["scope"], "rpm");
        assert_eq!(v["error"]["limit"]["reset_at_ms"], 12_000);
    }

    #[test]
    fn token_window_is_a_token_limit() {
        let d = LimitDenial::Window {
            scope: WindowScope::Tpd,
            limit: 100_000,
            used: 99_000,
            asked: 2_000,
            reset_at_ms: 3 * 3_600_000,
        };
        let e = d.into_api_error(0);
        assert_eq!((e.status(), e.code().as_str()), (429, "token_limit_exceeded"));
        assert_eq!(
            e.message,
            "Token limit reached: 100000 tokens per day (99000 used; this request reserves 2000). Retry after 3 h."
        );
        assert_eq!(body(&e)["error"]["limit"]["scope"], "tpd");
    }

    #[test]
    fn too_large_is_a_bad_request_without_retry() {
        let e = LimitDenial::TooLarge { scope: WindowScope::Tpm, limit: 10_000, asked: 12_000 }.into_api_error(0);
        assert_eq!((e.status(), e.kind(), e.code()), (400, ErrorType::InvalidRequestError, Code::TokenRequestTooLarge));
        assert_eq!(body(&e)["error"]["code"], "token_limit_exceeded");
        assert_eq!(e.retry_after_s(), None);
        assert!(e.message.contains("12000 tokens") && e.message.contains("10000 tokens per minute"), "{}", e.message);
    }

    #[test]
    fn in_flight_has_no_retry_after() {
        let e = LimitDenial::InFlight { limit: 8, open: 8 }.into_api_error(0);
        assert_eq!((e.status(), e.code().as_str(), e.retry_after_s()), (429, "rate_limit_exceeded", None));
        assert_eq!(body(&e)["error"]["limit"]["scope"], "in_flight");
        assert!(body(&e)["error"]["limit"].get("reset_at_ms").is_none());
        let e = LimitDenial::TooManyInFlight { open: 4096 }.into_api_error(0);
        assert_eq!((e.status(), e.code().as_str()), (429, "too_many_in_flight"));
        assert_eq!(body(&e)["error"]["limit"]["limit"], 4096);
    }

    #[test]
    fn spend_caps_name_their_period() {
        let daily = LimitDenial::Spend {
            period: SpendPeriod::Daily,
            limit_micros: 10_000_000,
            committed_micros: 9_800_000,
            reserved_micros: 150_000,
            asked_micros: 300_000,
            reset_at_ms: Some(5 * 3_600_000 + 12 * 60_000),
        };
        let e = daily.into_api_error(0);
        assert_eq!((e.status(), e.code().as_str()), (429, "spend_limit_exceeded"));
        assert_eq!(
            e.message,
            "Daily spend limit reached: $10.00 ($9.80 spent, $0.15 reserved by requests in flight; \
             this request may cost up to $0.30). Retry after 5 h 12 min."
        );
        let v = body(&e);
        assert_eq!(
            (v["error"]["limit"]["scope"].as_str(), v["error"]["limit"]["used"].as_u64()),
            (Some("spend_daily"), Some(9_950_000))
        );

        let total = LimitDenial::Spend {
            period: SpendPeriod::Total,
            limit_micros: 1_000,
            committed_micros: 350,
            reserved_micros: 0,
            asked_micros: 700,
            reset_at_ms: None,
        };
        let e = total.into_api_error(0);
        assert_eq!(e.retry_after_s(), None);
        assert_eq!(body(&e)["error"]["limit"]["scope"], "spend_total");
        assert!(e.message.ends_with("($0.00035 spent, $0.00 reserved by requests in flight; this request may cost up to $0.0007). Total spend never resets; ask an admin to raise the limit."), "{}", e.message);
    }

    #[test]
    fn a_scopes_refusal_names_its_level_and_scope() {
        let d = LimitDenial::Window { scope: WindowScope::Rpm, limit: 10, used: 10, asked: 1, reset_at_ms: 30_000 };
        let e = d.clone().into_api_error_in(&KeyScope::Model("o3*".into()), 0);
        assert_eq!(
            e.message,
            "Rate limit reached for models matching 'o3*': 10 requests per minute (10 used). Retry after 30 s."
        );
        let v = body(&e);
        assert_eq!(v["error"]["limit"]["level"], "model");
        assert_eq!(v["error"]["limit"]["pattern"], "o3*");
        assert_eq!(v["error"]["limit"]["scope"], "rpm");
        assert!(v["error"]["limit"].get("end_user").is_none());
        let e = d.clone().into_api_error_in(&KeyScope::EndUser("u-1".into()), 0);
        assert_eq!(
            (body(&e)["error"]["limit"]["level"].clone(), body(&e)["error"]["limit"]["end_user"].clone()),
            ("end_user".into(), "u-1".into())
        );
        assert_eq!(body(&d.into_api_error(0))["error"]["limit"]["level"], "key");
        let too_large = LimitDenial::TooLarge { scope: WindowScope::Tpm, limit: 5, asked: 9 };
        let e = too_large.into_api_error_in(&KeyScope::EndUser("u-1".into()), 0);
        assert!(e.message.contains("5 tokens per minute for end user 'u-1'"), "{}", e.message);
    }

    #[test]
    fn the_longest_lasting_denial_wins() {
        let window =
            |reset_at_ms| LimitDenial::Window { scope: WindowScope::Rpm, limit: 1, used: 1, asked: 1, reset_at_ms };
        let in_flight = LimitDenial::InFlight { limit: 1, open: 1 };
        let too_large = LimitDenial::TooLarge { scope: WindowScope::Tpm, limit: 1, asked: 2 };
        assert!(window(2).outlasts(&window(1)));
        assert!(!window(1).outlasts(&window(1)));
        assert!(window(1).outlasts(&in_flight));
        assert!(too_large.outlasts(&window(u64::MAX)));
    }

    #[test]
    fn a_level_above_the_key_is_named() {
        let d = LimitDenial::Window { scope: WindowScope::Rpm, limit: 300, used: 300, asked: 1, reset_at_ms: 2_000 };
        let e = d.clone().into_api_error_at(Level::Project, 1_000);
        assert_eq!(
            e.message,
            "Rate limit reached for this key's project: 300 requests per minute (300 used). Retry after 1 s."
        );
        let v = body(&e);
        assert_eq!(
            (v["error"]["limit"]["level"].as_str(), v["error"]["limit"]["scope"].as_str()),
            (Some("project"), Some("rpm"))
        );
        assert_eq!(body(&d.into_api_error(1_000))["error"]["limit"]["level"], "key");
        let e = LimitDenial::TooManyInFlight { open: 4096 }.into_api_error_at(Level::Organisation, 0);
        assert!(
            e.message.starts_with("Too many requests in flight for this key's organisation: 4096 open"),
            "{}",
            e.message
        );
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait(1), "1 s");
        assert_eq!(wait(119), "119 s");
        assert_eq!(wait(121), "3 min");
        assert_eq!(wait(2 * 3600 + 1), "2 h 1 min");
        assert_eq!(wait(3 * 86_400 - 1), "3 d");
        assert_eq!(wait(3 * 86_400 + 1), "3 d 1 h");
        assert_eq!(dollars(1_234_567), "$1.234567");
        assert_eq!(dollars(0), "$0.00");
    }
}
