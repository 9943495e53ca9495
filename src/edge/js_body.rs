//! A body read from a JS `ReadableStream` (a request's, an upstream answer's, an object's
//! reply) as a stream of byte chunks, without ever releasing its reader's lock; [`read_reply`]
//! reads a whole reply that way.
//!
//! Why not `worker::ByteStream`: it releases its reader's lock when the reader is dropped, also
//! once the stream has ended, and workerd answers every release by building a `TypeError` (to
//! reject the reader's `closed` promise) whose stack trace it captures through the wasm frames:
//! about 80,000 instructions, on each of a call's bodies. A lock only keeps other readers out,
//! and there are none: the reader lives exactly as long as this stream.
//!
//! Flow: a poll with no read pending starts `reader.read()`; `{done: true}` ends the stream and
//! drops the reader, its lock unreleased; an error is yielded and ends the stream, except an
//! abort (how the runtime reports a body whose client left), which ends it quietly, as
//! `worker::ByteStream` does. Dropped before its end, the stream is cancelled (the rejection,
//! if any, ignored), so an upstream connection is closed rather than read on.

use futures_util::{Stream, TryStreamExt};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader};
use worker::{Response, ResponseBody};

thread_local! {
    /// The rejection handler of every cancel: one per isolate, never freed.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// The chunks of a JS `ReadableStream` of bytes.
pub struct JsBody {
    /// `None` once the stream has ended (or failed).
    reader: Option<ReadableStreamDefaultReader>,
    /// The read in progress.
    read: Option<JsFuture>,
}

impl JsBody {
    /// Locks `stream` to a new reader; fails if it is locked already.
    pub fn new(stream: &ReadableStream) -> worker::Result<JsBody> {
        let reader = ReadableStreamDefaultReader::new(stream)?;
        Ok(JsBody { reader: Some(reader), read: None })
    }
}

impl Stream for JsBody {
    type Item = worker::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(reader) = &this.reader else { return Poll::Ready(None) };
        let read = this.read.get_or_insert_with(|| JsFuture::from(reader.read()));
        let result = ready!(Pin::new(read).poll(cx));
        this.read = None;
        let chunk = result.and_then(|result| {
            let done = Reflect::get(&result, &JsValue::from_str("done"))?.is_truthy();
            (!done).then(|| Reflect::get(&result, &JsValue::from_str("value"))).transpose()
        });
        match chunk {
            Ok(Some(value)) => Poll::Ready(Some(Ok(value.unchecked_into::<Uint8Array>().to_vec()))),
            Ok(None) => {
                this.reader = None;
                Poll::Ready(None)
            }
            Err(e) => {
                this.reader = None;
                let error = worker::Error::from(e);
                Poll::Ready((error.to_string() != "Error: aborted").then_some(Err(error)))
            }
        }
    }
}

impl Drop for JsBody {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            IGNORE.with(|ignore| {
                let _ = reader.cancel().catch(ignore);
            });
        }
    }
}

/// The whole body of `response` (a Durable Object's reply), read through a [`JsBody`]:
/// `worker::Response::text` and `json` read a streamed body through `worker::ByteStream`.
pub async fn read_reply(response: &Response) -> worker::Result<Vec<u8>> {
    match response.body() {
        ResponseBody::Stream(stream) => {
            JsBody::new(stream)?
                .try_fold(Vec::new(), |mut all, chunk| async move {
                    all.extend_from_slice(&chunk);
                    Ok(all)
                })
                .await
        }
        ResponseBody::Body(bytes) => Ok(bytes.clone()),
        ResponseBody::Empty => Ok(Vec::new()),
    }
}
