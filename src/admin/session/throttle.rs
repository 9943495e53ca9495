//! Failed sign-ins per client address: at most [`MAX_FAILED_SIGN_INS`] in a fixed UTC minute,
//! counted by the address's `SignInGuard` object (the only writer of its counter;
//! [`guard_name`]: one per IPv4 address, one per IPv6 /64).
//!
//! Flow: a sign-in first [`SignInWindow::reserve`]s one failure (refused with 429
//! `too_many_sign_ins` and `Retry-After` when the minute's allowance is spent, before any token
//! is looked at), and a successful one [`SignInWindow::release`]s it. So concurrent sign-ins
//! never exceed the allowance: failures + sign-ins in progress ≤ [`MAX_FAILED_SIGN_INS`].

use crate::error::{ApiError, Code};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const MAX_FAILED_SIGN_INS: u32 = 10;
pub const WINDOW_MS: u64 = 60_000;

/// The counter of one client address's current minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInWindow {
    start_ms: u64,
    counted: u32,
}

impl SignInWindow {
    /// Counts one possible failure at `now_ms`, or 429 once the minute has had its allowance.
    pub fn reserve(&mut self, now_ms: u64) -> Result<(), ApiError> {
        let start_ms = now_ms - now_ms % WINDOW_MS;
        if start_ms > self.start_ms {
            *self = SignInWindow { start_ms, counted: 0 };
        }
        if self.counted >= MAX_FAILED_SIGN_INS {
            let retry_after_s = (self.start_ms + WINDOW_MS).saturating_sub(now_ms).div_ceil(1000).max(1);
            return Err(ApiError::new(
                Code::TooManySignIns,
                format!("Too many failed sign-ins from this address; retry in {retry_after_s} s."),
            )
            .with_retry_after(retry_after_s));
        }
        self.counted += 1;
        Ok(())
    }

    /// Gives back a reservation of the current minute (the sign-in succeeded).
    pub fn release(&mut self, now_ms: u64) {
        if now_ms - now_ms % WINDOW_MS == self.start_ms {
            self.counted = self.counted.saturating_sub(1);
        }
    }
}

/// The guard object of a client address (`signin:<address>`; IPv6 by its /64); an address that
/// does not parse shares `signin:unknown`.
pub fn guard_name(client_ip: Option<&str>) -> String {
    match client_ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => format!("signin:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("signin:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "signin:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_780_000_020_000;

    #[test]
    fn a_minute_allows_the_stated_failures_then_refuses_with_retry_after() {
        let mut window = SignInWindow::default();
        for _ in 0..MAX_FAILED_SIGN_INS {
            window.reserve(T).unwrap();
        }
        let refused = window.reserve(T + 1_500).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (429, Code::TooManySignIns));
        let start = T - T % WINDOW_MS;
        assert_eq!(refused.retry_after_s(), Some((start + WINDOW_MS - T - 1_500).div_ceil(1000)));
        window.reserve(start + WINDOW_MS).expect("the next minute starts afresh");
    }

    #[test]
    fn successes_give_their_reservation_back() {
        let mut window = SignInWindow::default();
        for _ in 0..100 {
            window.reserve(T).unwrap();
            window.release(T);
        }
        window.reserve(T).unwrap();
        window.release(T + WINDOW_MS);
        assert_eq!(window.counted, 1, "a release in a later minute gives nothing back to it");
    }

    #[test]
    fn addresses_name_their_guard() {
        assert_eq!(guard_name(Some("203.0.113.7")), "signin:203.0.113.7");
        assert_eq!(guard_name(Some("2001:db8:1:2:3:4:5:6")), "signin:2001:db8:1:2::/64");
        assert_eq!(guard_name(Some("2001:db8:1:2:ffff::1")), guard_name(Some("2001:db8:1:2::9")));
        assert_eq!(guard_name(None), "signin:unknown");
        assert_eq!(guard_name(Some("not an address")), "signin:unknown");
    }
}
