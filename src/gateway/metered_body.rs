//! The upstream response body on its way to the client, observed for usage.
//!
//! Every chunk passes through the family's scanner (in the shared [`Meter`](crate::gateway::settlement::Meter)) unchanged, or with
//! the usage chunk the gateway requested on the client's behalf removed. When the body ends,
//! fails, or is dropped because the client went away, the [`Settlement`] receives the usage seen
//! so far: settling never delays the response. Chunks are moved, never copied, unless the
//! scanner replaces them.

use crate::gateway::settlement::{Settlement, SharedMeter};
use crate::usage::Forward;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct MeteredBody<B> {
    inner: B,
    meter: SharedMeter,
    settlement: Settlement,
    /// Set once the upstream body ended; the bytes the scanner still held were sent last.
    ended: bool,
}

impl<B> MeteredBody<B> {
    /// `meter` must hold the answer's [`Meter`](crate::gateway::settlement::Meter).
    pub fn new(inner: B, meter: SharedMeter, settlement: Settlement) -> Self {
        MeteredBody { inner, meter, settlement, ended: false }
    }

    fn finish(&mut self) {
        if let Some(meter) = self.meter.borrow().as_ref() {
            self.settlement.end(meter.ending());
        }
    }
}

impl<B, E> Stream for MeteredBody<B>
where
    B: Stream<Item = Result<Vec<u8>, E>> + Unpin,
{
    type Item = Result<Vec<u8>, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let forward = match this.meter.borrow_mut().as_mut() {
                    Some(meter) => meter.scanner.feed(&chunk),
                    None => Forward::Unchanged,
                };
                Poll::Ready(Some(Ok(match forward {
                    Forward::Unchanged => chunk,
                    Forward::Replaced(bytes) => bytes,
                })))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                let held_back = this.meter.borrow_mut().as_mut().map(|m| m.scanner.finish()).unwrap_or_default();
                this.finish();
                Poll::Ready((!held_back.is_empty()).then_some(Ok(held_back)))
            }
        }
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        self.finish();
    }
}
