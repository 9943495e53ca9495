//! One event's delivery to one endpoint, as a state machine:
//!
//! ```text
//! pending(n, at) ──2xx───────────────────────────────────────────► delivered
//!       │  └─────other answer or none, next attempt before expiry ──► pending(n+1, later)
//!       └────────other answer or none, no time left ─────────────────► expired
//! ```
//! Delivered and expired are final. Every attempt sends the same body with the same event id,
//! so a receiver that answered 2xx too late sees the event again and can drop it by id.

use super::schedule::RetryPolicy;
use super::text_enum::text_enum;

text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        Expired => "expired",
    }
}

/// Longest error text kept with a delivery, in bytes.
pub const MAX_ERROR_LEN: usize = 200;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered with this HTTP status.
    Answered(u16),
    /// No answer: connection refused, TLS failure, timeout.
    Failed(String),
}

/// Invariant: `next_at_ms` is `Some` exactly while the status is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (Unix ms).
    pub next_at_ms: Option<u64>,
    /// The HTTP status of the last answer, if the last attempt got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

impl Delivery {
    /// A pending delivery after `attempts` attempts, due at `next_at_ms`.
    pub fn pending(attempts: u32, next_at_ms: u64) -> Delivery {
        Delivery {
            status: DeliveryStatus::Pending,
            attempts,
            next_at_ms: Some(next_at_ms),
            last_status: None,
            last_error: None,
        }
    }

    /// The delivery after `attempt` ended at `now_ms`, for an event enqueued at `enqueued_ms`.
    /// A final delivery stays as it is.
    pub fn after(self, attempt: Attempt, enqueued_ms: u64, now_ms: u64, policy: &RetryPolicy, jitter: u32) -> Delivery {
        if self.status != DeliveryStatus::Pending {
            return self;
        }
        let attempts = self.attempts.saturating_add(1);
        let (last_status, last_error) = match attempt {
            Attempt::Answered(status) if (200..300).contains(&status) => {
                return Delivery {
                    status: DeliveryStatus::Delivered,
                    attempts,
                    next_at_ms: None,
                    last_status: Some(status),
                    last_error: None,
                };
            }
            Attempt::Answered(status) => (Some(status), format!("the endpoint answered {status}")),
            Attempt::Failed(error) => (None, error),
        };
        let next_at_ms = policy.next_attempt(attempts, enqueued_ms, now_ms, jitter);
        Delivery {
            status: if next_at_ms.is_some() { DeliveryStatus::Pending } else { DeliveryStatus::Expired },
            attempts,
            next_at_ms,
            last_status,
            last_error: Some(truncate(last_error)),
        }
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy::new(1_000, 10_000);

    #[test]
    fn a_2xx_delivers() {
        let d = Delivery::pending(0, 0).after(Attempt::Answered(204), 0, 5, &POLICY, 0);
        assert_eq!(
            d,
            Delivery {
                status: DeliveryStatus::Delivered,
                attempts: 1,
                next_at_ms: None,
                last_status: Some(204),
                last_error: None
            }
        );
    }

    #[test]
    fn failures_back_off_then_expire() {
        let d = Delivery::pending(0, 0).after(Attempt::Answered(500), 0, 0, &POLICY, 0);
        assert_eq!(
            (d.status, d.attempts, d.next_at_ms, d.last_status),
            (DeliveryStatus::Pending, 1, Some(1_000), Some(500))
        );
        assert_eq!(d.last_error.as_deref(), Some("the endpoint answered 500"));
        let d = d.after(Attempt::Failed("connection refused".into()), 0, 1_000, &POLICY, 0);
        assert_eq!(
            (d.status, d.attempts, d.next_at_ms, d.last_status),
            (DeliveryStatus::Pending, 2, Some(3_000), None)
        );
        let d = d.after(Attempt::Answered(302), 0, 9_000, &POLICY, 0);
        assert_eq!((d.status, d.attempts, d.next_at_ms), (DeliveryStatus::Expired, 3, None));
        assert_eq!(d.clone().after(Attempt::Answered(200), 0, 9_500, &POLICY, 0), d, "expired is final");
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let d = Delivery::pending(0, 0).after(Attempt::Failed("é".repeat(150)), 0, 0, &POLICY, 0);
        let error = d.last_error.unwrap();
        assert!(error.len() <= MAX_ERROR_LEN && error.chars().all(|c| c == 'é'));
    }

    #[test]
    fn status_names() {
        assert_eq!(DeliveryStatus::parse("expired"), Some(DeliveryStatus::Expired));
        assert_eq!(DeliveryStatus::Delivered.as_str(), "delivered");
    }
}
