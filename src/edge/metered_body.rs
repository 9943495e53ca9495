//! The upstream response body on its way to the client, observed for usage.
//!
//! Every chunk passes through the family's [`UsageScanner`] unchanged (or with the usage chunk
//! the gateway requested on the client's behalf removed). When the body ends, fails, or is
//! dropped because the client went away, the usage seen so far is sent once on a channel that
//! the settlement task (in `ctx.wait_until`) awaits: settling never delays the response.

use crate::usage::{Forward, Usage, UsageScanner};
use futures_channel::oneshot;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use worker::{ByteStream, Result};

/// How the body ended, for settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyEnd {
    /// The usage the upstream reported, if it reported any before the end.
    pub usage: Option<Usage>,
    /// Whether the body reached its natural end (not cut off, not abandoned by the client).
    pub complete: bool,
}

pub struct MeteredBody {
    inner: ByteStream,
    scanner: UsageScanner,
    done: Option<oneshot::Sender<BodyEnd>>,
    /// Set once the upstream body ended; the bytes the scanner still held were sent last.
    ended: bool,
}

impl MeteredBody {
    pub fn new(inner: ByteStream, scanner: UsageScanner) -> (Self, oneshot::Receiver<BodyEnd>) {
        let (tx, rx) = oneshot::channel();
        (MeteredBody { inner, scanner, done: Some(tx), ended: false }, rx)
    }

    fn finish(&mut self, complete: bool) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(BodyEnd { usage: self.scanner.usage(), complete });
        }
    }
}

impl Stream for MeteredBody {
    type Item = Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(match this.scanner.feed(&chunk) {
                Forward::Unchanged => chunk,
                Forward::Replaced(bytes) => bytes,
            }))),
            Poll::Ready(Some(Err(e))) => {
                this.finish(false);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                let held_back = this.scanner.finish();
                this.finish(true);
                Poll::Ready((!held_back.is_empty()).then_some(Ok(held_back)))
            }
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.finish(false);
    }
}
