//! The wasm edge: the only code that touches `worker` types. It holds adapters only; every
//! decision of a call is made by the core ([`crate::gateway`]).
//!
//! A call at the edge:
//! 1. the fetch entry hands every request to [`gateway::handle`], which sends `/console/…` to
//!    the console's assets ([`console`]), `/admin/…` to the admin API ([`admin`], the `Registry` Durable Object) and everything else to the core;
//! 2. [`gateway`] converts the `worker::Request` (method, path, query, headers; the body read
//!    with its cap only when the core asks, [`body`]) and runs the core's `Gateway::call` over
//!    the adapters: [`key_store`] (KV), [`objects::key_ledger_stub`] (the key ledgers), [`upstream`]
//!    (fetch with a timeout), the request's abort signal and `ctx.wait_until`;
//! 3. the core's answer becomes a `worker::Response` (a streamed body is the core's metered
//!    body, read by the runtime as the client reads it); errors are rendered by [`respond`].
//!
//! Durable Object classes: in [`objects`], the data plane's [`objects::key_ledger::KeyLedger`]
//! (one key's key ledger, leasing from the budgets above the key) and
//! [`objects::budget_ledger::BudgetLedger`] (one project's or organisation's budget); with their
//! adapters, `outbox::Outbox`
//! (webhook delivery, one per organisation), `admin`'s `Registry` (one organisation's control
//! plane store) and `admin`'s `Platform` (the directory of organisations). The adapters are
//! exercised end to end in `tests/e2e/`; the flow they serve is tested on the host in
//! `tests/gateway_flow.rs`.
//!
//! Builds (Cargo features, README "Bundle: what serves calls"): `control-plane` compiles in
//! `admin`, `console` and the outbox's class; `ledger-objects` the ledgers' classes, the outbox's
//! producers and `sql`. Without both, the worker is the gateway alone (`wrangler.gateway.toml`),
//! its `LEDGER` binding served by another worker's class.

#[cfg(feature = "control-plane")]
mod admin;
mod body;
mod config;
#[cfg(feature = "control-plane")]
mod console;
mod gateway;
mod js_body;
mod key_store;
mod microtasks;
mod objects;
#[cfg(feature = "ledger-objects")]
mod outbox;
mod respond;
#[cfg(feature = "ledger-objects")]
mod sql;
mod upstream;

use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    microtasks::wake_by_promise_jobs();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    gateway::answer(gateway::handle(req, &env, &ctx).await)
}
