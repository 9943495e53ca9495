//! The limit headers on every proxied response: the `x-ratelimit-*` names the OpenAI SDKs
//! read, for the tightest request window and the tightest token window, plus spend headers.
//!
//! - `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; reset is a duration in the
//!   OpenAI style (`850ms`, `12s`, `6m0s`, `1h2m3s`) until the window is back to its limit.
//! - `x-teamkeys-spend-remaining-micros`: micro-dollars left under the tightest spend cap.
//! - `x-teamkeys-spend-warning`: the highest warning threshold (percent) reached this period.

use crate::limits::{Headroom, Remaining};

/// The headers for `headroom`, observed at `now_ms`.
pub fn limit_headers(headroom: &Headroom, now_ms: u64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(8);
    let mut window = |names: [&'static str; 3], remaining: &Remaining| {
        headers.push((names[0], remaining.limit.to_string()));
        headers.push((names[1], remaining.remaining.to_string()));
        headers.push((names[2], duration(remaining.reset_ms.saturating_sub(now_ms))));
    };
    if let Some(requests) = &headroom.requests {
        window(
            ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
            requests,
        );
    }
    if let Some(tokens) = &headroom.tokens {
        window(["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"], tokens);
    }
    if let Some(spend) = &headroom.spend {
        headers.push(("x-teamkeys-spend-remaining-micros", spend.remaining_micros.to_string()));
        if let Some(percent) = spend.warning {
            headers.push(("x-teamkeys-spend-warning", percent.to_string()));
        }
    }
    headers
}

/// A duration in the OpenAI header style.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let seconds = ms.div_ceil(1000);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::SpendHeadroom;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0ms");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(11_200), "12s");
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(3_723_000), "1h2m3s");
    }

    #[test]
    fn headers_for_each_part() {
        let headroom = Headroom {
            requests: Some(Remaining { limit: 50, remaining: 49, reset_ms: 61_000 }),
            tokens: None,
            spend: Some(SpendHeadroom { remaining_micros: 1234, warning: Some(80) }),
        };
        let headers = limit_headers(&headroom, 1_000);
        assert_eq!(
            headers,
            vec![
                ("x-ratelimit-limit-requests", "50".to_owned()),
                ("x-ratelimit-remaining-requests", "49".to_owned()),
                ("x-ratelimit-reset-requests", "1m0s".to_owned()),
                ("x-teamkeys-spend-remaining-micros", "1234".to_owned()),
                ("x-teamkeys-spend-warning", "80".to_owned()),
            ]
        );
    }
}
