//! Reading a request body with a running cap: refused by its declared length before reading
//! when it has one, and otherwise as soon as the bytes read pass the cap, chunk by chunk from
//! the body stream ([`JsBody`]). The stream is then dropped, which cancels it: nothing more is
//! read.
//!
//! Every body read is also charged to the isolate's [`ISOLATE_BODY_BUDGET`] through the call's
//! [`BodyLease`], held until the call's answer is built: a read that would take the isolate's
//! buffered request bodies past the budget is refused (503 `gateway_busy`, retry after 1 s)
//! instead of growing memory.
//!
//! Bounds (one isolate has 128 MB on Workers):
//! - one read: at most its cap, plus the one chunk the runtime handed over last (a network
//!   read, tens of KiB, never the whole body); the buffer's capacity is at most twice the
//!   bytes read while it grows without a declared length (all of it charged to the budget);
//! - gateway calls: the body ≤ [`MAX_BODY_BYTES`] (10 MiB), read only once the key is known;
//!   while the call is forwarded the core also holds the body it sends upstream (the same bytes
//!   plus the few members it sets, or none when nothing changes) and the platform a copy of it
//!   for `fetch`: at most about 3 × the body per call. A body rebuilt because a member must be
//!   replaced or the model renamed is parsed into a JSON tree for that moment
//!   (`crate::gateway::request::forward_body`);
//! - admin calls: the body ≤ [`MAX_ADMIN_BODY_BYTES`] (64 KiB), read only once the registry has
//!   accepted the caller's token (`super::admin`), webhook routes included; the registry and
//!   outbox objects read only what the worker forwarded, already within that cap;
//! - all calls of an isolate together: their buffered request bodies ≤ [`ISOLATE_BODY_BUDGET`]
//!   (24 MiB), so with the copies above ≤ about 72 MiB;
//! - upstream answers are not buffered: a body passes to the client chunk by chunk; the usage
//!   readers keep at most 16 KiB of a usage member and the usage-chunk filter at most 16 KiB of
//!   an undecided event (`crate::usage`). Only a models list is read whole, to filter it.
//!
//! [`MAX_BODY_BYTES`]: crate::gateway::request::MAX_BODY_BYTES
//! [`MAX_ADMIN_BODY_BYTES`]: crate::admin::input::MAX_ADMIN_BODY_BYTES

use super::js_body::JsBody;
use crate::error::{ApiError, Code};
use futures_util::StreamExt;
use std::cell::Cell;
use worker::Request;

/// The most request-body bytes all calls of one isolate buffer at once.
pub const ISOLATE_BODY_BUDGET: usize = 24 * 1024 * 1024;

thread_local! {
    /// Request-body bytes buffered by this isolate's calls in flight (the sum of their leases).
    static BUFFERED: Cell<usize> = const { Cell::new(0) };
}

/// One call's share of [`ISOLATE_BODY_BUDGET`]; given back when dropped.
#[derive(Default)]
pub struct BodyLease(Cell<usize>);

impl BodyLease {
    /// Takes `bytes` more from the isolate's budget, or 503 when it has not that much left.
    fn take(&self, bytes: usize) -> Result<(), ApiError> {
        BUFFERED.with(|buffered| {
            let total = buffered.get() + bytes;
            if total > ISOLATE_BODY_BUDGET {
                return Err(busy());
            }
            buffered.set(total);
            self.0.set(self.0.get() + bytes);
            Ok(())
        })
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        BUFFERED.with(|buffered| buffered.set(buffered.get() - self.0.get()));
    }
}

/// The body of `req`, or `too_large()` as soon as more than `max` bytes arrive (or are
/// declared); an absent body is empty. The buffer's capacity is charged to `lease` as it grows
/// (a declared length before it is allocated).
pub async fn read_capped(
    req: &mut Request,
    max: usize,
    too_large: fn() -> ApiError,
    lease: &BodyLease,
) -> Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let Some(body_stream) = req.inner().body() else { return Ok(Vec::new()) };
    let mut stream = JsBody::new(&body_stream).map_err(|_| unreadable())?;
    let mut body = Vec::new();
    if let Some(len) = declared {
        lease.take(len)?;
        body.reserve_exact(len);
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        let capacity = body.capacity();
        body.extend_from_slice(&chunk);
        lease.take(body.capacity() - capacity)?;
    }
    Ok(body)
}

fn unreadable() -> ApiError {
    ApiError::new(Code::InvalidBody, "The request body could not be read.")
}

fn busy() -> ApiError {
    ApiError::new(Code::GatewayBusy, "The gateway is reading too many large request bodies at once; retry shortly.")
        .with_retry_after(1)
}
