//! The organisation's configuration, read from the worker's vars once per isolate.
//!
//! - `UPSTREAM_URL`: base of the default upstream (used when `ROUTING` is not set).
//! - `ROUTING`: routing groups as JSON (see the README); optional.
//! - `PRICING`: the pricing table as JSON; optional, defaults to the bundled list prices.
//! - `UPSTREAM_TIMEOUT_MS`: how long to wait for an upstream's response headers (default 300000).
//! - `UPSTREAM_IDLE_TIMEOUT_MS`: how long an upstream's answer body may send nothing before it
//!   is ended and the call settled as cut short (default 60000).
//! - `STRICT_BODY_MEMBERS`: `true` refuses body members the gateway's tables do not know.
//! - `CREDENTIALS_KEYS` (a secret): the master keys of organisations' stored credentials
//!   ([`crate::credentials::Keyring`]). Optional: without it (or when it cannot be parsed, the
//!   reason logged once per isolate) calls of an organisation with its own routing fail with
//!   500 `upstream_credential_missing`, and every other call is served.
//!
//! Vars cannot change while an isolate lives (a change is a new deployment), so the parsed
//! configuration is kept; a configuration that fails to parse is reported on every request
//! (500 with the reason) until it is fixed, and never cached.

use crate::credentials::Keyring;
use crate::edge::respond::logged;
use crate::error::{ApiError, Code};
use crate::gateway::members::UnknownMembers;
use crate::policy::RoutingConfig;
use crate::usage::{Pricing, DEFAULT_PRICING_JSON};
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

/// The secret holding the default upstream's credential.
pub const DEFAULT_CREDENTIAL_SECRET: &str = "UPSTREAM_API_KEY";
const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 300_000;
const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS: u64 = 60_000;

pub struct Config {
    pub routing: RoutingConfig,
    pub pricing: Pricing,
    /// The pricing table as configured (for the admin API).
    #[cfg(feature = "control-plane")]
    pub pricing_json: String,
    pub upstream_timeout_ms: u64,
    pub upstream_idle_timeout_ms: u64,
    pub unknown_members: UnknownMembers,
    pub keyring: Option<Keyring>,
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

impl Config {
    pub fn get(env: &Env) -> Result<Rc<Config>, ApiError> {
        if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
            return Ok(config);
        }
        let config = Rc::new(Config::load(env)?);
        CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
        Ok(config)
    }

    fn load(env: &Env) -> Result<Config, ApiError> {
        let var = |name: &str| env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let invalid = |code: Code, what: String| {
            logged(ApiError::new(code, format!("The gateway is misconfigured: {what}")), "configuration", what)
        };
        let routing = match var("ROUTING") {
            Some(json) => RoutingConfig::from_json(&json)?,
            None => {
                let upstream = var("UPSTREAM_URL").ok_or_else(|| {
                    invalid(Code::InvalidConfig, "neither ROUTING nor UPSTREAM_URL is set".to_owned())
                })?;
                RoutingConfig::default_for(&upstream, DEFAULT_CREDENTIAL_SECRET)
            }
        };
        let pricing_json = var("PRICING").unwrap_or_else(|| DEFAULT_PRICING_JSON.to_owned());
        let pricing = Pricing::from_json(&pricing_json)
            .map_err(|e| invalid(Code::InvalidPricingConfig, format!("PRICING: {e}")))?;
        let milliseconds = |name: &str, default: u64| match var(name) {
            Some(ms) => ms
                .trim()
                .parse()
                .map_err(|_| invalid(Code::InvalidConfig, format!("{name} '{ms}' is not a number of milliseconds"))),
            None => Ok(default),
        };
        let upstream_timeout_ms = milliseconds("UPSTREAM_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS)?;
        let upstream_idle_timeout_ms = milliseconds("UPSTREAM_IDLE_TIMEOUT_MS", DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS)?;
        let unknown_members = match var("STRICT_BODY_MEMBERS").as_deref() {
            Some("true") => UnknownMembers::Refuse,
            _ => UnknownMembers::Pass,
        };
        Ok(Config {
            routing,
            pricing,
            #[cfg(feature = "control-plane")]
            pricing_json,
            upstream_timeout_ms,
            upstream_idle_timeout_ms,
            unknown_members,
            keyring: keyring(env),
        })
    }
}

/// The keyring of `CREDENTIALS_KEYS`, if it is set and parses (the parse error names no key).
fn keyring(env: &Env) -> Option<Keyring> {
    let text = env.secret("CREDENTIALS_KEYS").ok()?.to_string();
    Keyring::parse(&text).map_err(|e| worker::console_error!("configuration: {e}")).ok()
}
