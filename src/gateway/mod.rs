//! The data plane: one proxied call from the client's request to its settled usage, as pure
//! code over small ports. The edge (`src/edge/`) implements the ports with the platform and
//! converts its request and response types; nothing here touches `worker`.
//!
//! A call, step by step ([`call`] runs them, in this order):
//! 1. [`route`]: which call a request names (unknown routes are refused, never passed through);
//! 2. authenticate: the key from the family's header, its record from the [`ports::KeyStore`],
//!    then its [`organisation`]'s record (status, routing, credentials), both parsed records
//!    memoized by the [`isolate`] for a few seconds ([`record_memo`]);
//! 3. [`request`]: what the body says (one parse) and, later, what is sent upstream;
//! 4. authorize ([`crate::policy`]) and reserve ([`metering`]): pure checks, before any ledger;
//! 5. [`held_refusals`]: a refusal the isolate may repeat without asking the ledger;
//! 6. [`admission`]: the key's ledger ([`ports::KeyLedger`], the state machine in
//!    [`crate::ledger`]) admits the call, or, for a hot leasable key, this isolate's lease of it
//!    ([`edge_leases`]);
//! 7. [`settlement`]: opened at admission; exactly one `Settle` or `Release` per admitted call;
//! 8. [`fallback`]: the routing targets in order, each request built with [`forwarding`]'s rules
//!    and its credential from [`upstream_credentials`];
//! 9. the answer ([`exchange`]): [`headers`] for the limits, [`models_list`] filtered, or the
//!    body streamed through the [`metered_body`], which settles when it ends.
//!
//! The gateway's own family-neutral route, `GET /v1/key` ([`key_quota`]), answers a key's own
//! limits, usage and headroom from its ledger.
//!
//! Where each step is tested: `route`, `request`, `forwarding`, `headers`, `metering`,
//! `models_list` and `held_refusals` in their own unit tests; the order of the steps, held
//! refusals at work, and every way a call can end (the fault table) in `tests/gateway_flow.rs`,
//! through the fakes of every port (`fakes`, behind the `test-util` feature); the edge's
//! adapters end to end in `tests/e2e/`.

pub mod admission;
pub mod body_view;
pub mod bounds;
pub mod call;
pub mod edge_leases;
pub mod exchange;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;
pub mod fallback;
pub mod forwarding;
pub mod headers;
pub mod held_refusals;
pub mod isolate;
pub mod key_quota;
pub mod members;
pub mod metered_body;
pub mod metering;
pub mod models_list;
pub mod organisation;
pub mod ports;
pub mod record_memo;
pub mod request;
pub mod route;
pub mod settlement;
pub mod upstream_credentials;
pub mod upstream_errors;
