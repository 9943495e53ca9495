//! The retry schedule from the worker's vars: `WEBHOOK_BACKOFF_BASE_MS` and `WEBHOOK_EXPIRY_MS`
//! (milliseconds). A value that does not parse is logged and the default used, so a typo never
//! stops deliveries.

use crate::events::{RetryPolicy, DEFAULT_BASE_MS, DEFAULT_EXPIRE_AFTER_MS};
use worker::Env;

pub fn retry_policy(env: &Env) -> RetryPolicy {
    let var = |name: &str, default: u64| match env.var(name) {
        Ok(value) => value.to_string().trim().parse().unwrap_or_else(|_| {
            worker::console_error!("{name} '{value}' is not a number of milliseconds; using {default}");
            default
        }),
        Err(_) => default,
    };
    RetryPolicy::new(var("WEBHOOK_BACKOFF_BASE_MS", DEFAULT_BASE_MS), var("WEBHOOK_EXPIRY_MS", DEFAULT_EXPIRE_AFTER_MS))
}
