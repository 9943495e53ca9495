//! The wasm edge: the only code that touches `worker` types. The fetch entry hands every request
//! to [`gateway::handle`]; `key_ledger::KeyLedger` is the per-key Durable Object class,
//! `outbox::Outbox` the webhook outbox and `admin`'s `Registry` the control plane's store.

mod admin;
mod body;
mod config;
mod gateway;
mod held_refusals;
mod key_ledger;
mod ledger_client;
mod metered_body;
mod outbox;
mod respond;
mod settlement;
mod sql;
mod upstream;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    gateway::answer(gateway::handle(req, &env, &ctx).await)
}
