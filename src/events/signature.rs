//! Signing a delivery, so a receiver can tell it came from this gateway and is recent.
//!
//! Scheme: `teamkeys-signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC keyed with the
//! endpoint's signing secret (the whole `whsec_…` string, as UTF-8) over `"<t>.<body>"`, where
//! `<body>` is the raw request body. `t` is the time of each attempt, so a receiver can refuse
//! stale or replayed requests (five minutes of tolerance is usual) and still accept retries.
//! The id header carries the event id, the same on every retry, for deduplication.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header holding the event id.
pub const ID_HEADER: &str = "teamkeys-webhook-id";
/// The header holding the signature.
pub const SIGNATURE_HEADER: &str = "teamkeys-signature";

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp_s` with `secret`.
pub fn signature(secret: &str, timestamp_s: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={timestamp_s},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // python3: hmac.new(b'whsec_test', b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"id":"evt_1"}"#),
            "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }

    #[test]
    fn depends_on_secret_time_and_body() {
        let mac =
            |secret: &str, t: u64, body: &str| signature(secret, t, body).split_once(",v1=").unwrap().1.to_owned();
        let base = mac("whsec_a", 1, "{}");
        assert_ne!(base, mac("whsec_b", 1, "{}"));
        assert_ne!(base, mac("whsec_a", 2, "{}"));
        assert_ne!(base, mac("whsec_a", 1, "{ }"));
    }
}
