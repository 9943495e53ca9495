//! The ports the pipeline ([`super::call`]) runs over: small traits the edge implements with the
//! platform (`src/edge/`) and the host tests with in-memory fakes (`fakes`, behind the
//! `test-util` feature).
//!
//! Every port fails closed: a store or a key ledger that cannot answer is an [`Unreachable`] the
//! pipeline turns into a 503, never an admission. The adapters log why they failed.

#![allow(async_fn_in_trait)]

use crate::error::ApiError;
use crate::ledger::{Command, Reply};
use crate::naming;
use crate::policy::{Jurisdiction, KeyRecord};
use futures_util::Stream;
use std::borrow::Cow;
use std::future::Future;

/// A port that could not answer (its adapter has logged why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// The records the control plane publishes for the request path (KV) by name: key records
/// ([`record_name`](crate::policy::key_hash::record_name)) and organisation records
/// ([`naming::org_record`]).
pub trait KeyStore {
    /// The record stored under `name`, or `None` when there is none.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Unreachable>;
}

/// The key ledgers: one per key (the per-key Durable Object), each the only writer of its key's
/// counters.
pub trait KeyLedgers {
    type Ledger: KeyLedger + 'static;

    /// The ledger at `address`.
    fn ledger(&self, address: &LedgerAddress) -> Result<Self::Ledger, Unreachable>;
}

/// Where a key's ledger lives: its object's name, which carries the key's organisation
/// ([`naming::ledger_object`]; stable across rotations, so counters carry over), and the
/// jurisdiction its organisation's objects are kept in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAddress {
    pub object: String,
    pub jurisdiction: Option<Jurisdiction>,
}

impl LedgerAddress {
    /// The address of the ledger of the key `record` describes.
    pub fn of(record: &KeyRecord) -> LedgerAddress {
        LedgerAddress {
            object: naming::ledger_object(record.org.as_deref(), &record.id),
            jurisdiction: record.jurisdiction,
        }
    }
}

/// One key's ledger.
pub trait KeyLedger {
    /// Sends `command` and returns the ledger's reply. `Err` when the reply did not arrive,
    /// whether or not the ledger applied the command.
    async fn send(&self, command: &Command) -> Result<Reply, Unreachable>;
}

/// One request to one upstream target, built by the core ([`super::fallback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub url: String,
    /// The client's forwardable headers, then the target's credential header.
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    /// Sent only when not empty.
    pub body: &'a [u8],
    /// How long to wait for the answer's status and headers.
    pub timeout_ms: u64,
}

/// An upstream's answer: its status and headers, and its body still to be read.
pub struct UpstreamAnswer<B> {
    pub status: u16,
    /// Lower-case names, one entry per name.
    pub headers: Vec<(String, String)>,
    pub body: B,
}

impl<B> UpstreamAnswer<B> {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Why an upstream gave no answer; the pipeline maps it to its status
/// ([`super::fallback`]): unbuildable → 500, unreachable → 502, timed out → 504.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The platform refused to build the request (an invalid URL or header value).
    Unbuildable,
    /// The connection failed; the platform's reason.
    Unreachable(String),
    /// No answer within the request's `timeout_ms` (the request was aborted).
    TimedOut,
}

/// The upstreams the routing targets name.
pub trait Upstream {
    type Body: Stream<Item = Result<Vec<u8>, Self::BodyError>> + Unpin + 'static;
    type BodyError;

    /// The credential kept in the secret named `secret_name`, if it is set.
    fn credential(&self, secret_name: &str) -> Option<String>;

    async fn send(&self, request: &UpstreamRequest<'_>) -> Result<UpstreamAnswer<Self::Body>, UpstreamFailure>;
}

/// The client's request body, read only once the key is known.
pub trait RequestBody {
    /// The body, or 413 (`body_too_large`) past `max_bytes`, or 400 when it cannot be read.
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, ApiError>;
}

/// What the platform does around a call besides the ports above.
pub trait Runtime {
    /// Keeps `task` running after the answer is sent (`ctx.wait_until`).
    fn wait_until(&self, task: impl Future<Output = ()> + 'static);
    /// Resolves after `ms` milliseconds with the time then (Unix ms).
    fn sleep(&self, ms: u64) -> impl Future<Output = u64> + 'static;
    /// The time now (Unix ms): read where a bound runs in real time (an edge lease's end), since a
    /// call's own time is when it arrived, before its body was read.
    fn now_ms(&self) -> u64;
    fn warn(&self, line: &str);
    fn error(&self, line: &str);
}

/// The value of header `name` (lower case) in a list of lower-case names.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
}
