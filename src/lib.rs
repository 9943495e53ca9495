//! teamkeys: team keys for LLM APIs, enforced at the edge. A Cloudflare Worker puts keys of its own
//! in front of OpenAI-, Anthropic- and Gemini-style APIs and checks every call before a byte
//! reaches the model.
//!
//! ```text
//! client ─► edge (wasm, any location)                          where (module)         tested in
//!   1 route      method + path → API family and endpoint       gateway::route         unit, gateway_flow
//!   2 key        family header → SHA-256 → KV record           gateway::call, policy  unit, gateway_flow
//!   3 body       one parse: model, caps, members, bounds       gateway::request       unit, bill_bounded
//!   4 authorize  status, expiry, IP, models, routing, org,     policy::authorize      unit, admin_flow
//!                the end user (x-teamkeys-end-user)
//!   5 reserve    an upper bound on the bill                    gateway::metering      unit, bill_bounded
//!   6 admit      the key's ledger object, one atomic step      gateway::admission,    unit, simulations
//!                (the key, its model pattern, its end user),   ledger, limits         gateway_flow
//!                or a hot leasable key's edge lease
//!   7 forward    routing targets in order, credential set      gateway::fallback      gateway_flow
//!   8 answer     streamed through the usage scanner            gateway::metered_body  usage, gateway_flow
//!   9 settle     exactly once, however the call ends           gateway::settlement    FAULT_TABLE
//! own quota:     GET /v1/key → the key's ledger                gateway::key_quota     gateway_flow, e2e
//! control plane: /admin/v1 → the organisation's registry       admin::api             admin_flow, e2e
//! ```
//!
//! Module map: [`gateway`] (the data plane behind ports), [`ledger`] and [`limits`] (the key
//! ledger and its counters), [`policy`] (key records, rules, checks), [`usage`] (usage and
//! pricing), [`admin`] (the control plane), [`events`] (webhooks), [`credentials`] (sealed
//! upstream credentials), [`naming`], [`versioned`], [`sql`], [`error`] (the one table of codes).
//! Only `edge` (compiled for wasm32) touches the platform; everything else builds and tests on the
//! host.
// No unsafe code in the core (what the host tests and the fuzzers run): a memory error could
// only come from a dependency's unsafe code, which is why `make fuzz` runs without a sanitizer.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]
pub mod admin;
pub mod budget;
pub mod console;
pub mod credentials;
pub mod error;
pub mod events;
pub mod family;
pub mod gateway;
pub mod ledger;
pub mod limits;
pub mod naming;
pub mod platform;
pub mod policy;
pub mod sql;
pub mod usage;
pub mod versioned;

#[cfg(target_arch = "wasm32")]
mod edge;
