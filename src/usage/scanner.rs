//! The entry point: one [`UsageScanner`] per upstream response body, fed every chunk on its way
//! to the client, then finished, then asked for the usage it saw.
//!
//! Both kinds of body are read as they pass, in fixed memory: a JSON body is walked as one
//! document, an event stream line by line. Only an event stream may be altered (see
//! [`UsageScanner::new`]).

use super::json::JsonBody;
use super::sse::EventStream;
use super::Usage;
use crate::family::Family;

/// How the upstream body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One JSON document (or, for Gemini's `streamGenerateContent` without `alt=sse`, a JSON array).
    Json,
    /// Server-sent events (`text/event-stream`).
    EventStream,
}

impl BodyKind {
    /// `text/event-stream` (any case, any parameters) is an event stream; anything else is
    /// read as JSON.
    pub fn from_content_type(content_type: &str) -> BodyKind {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("text/event-stream") {
            BodyKind::EventStream
        } else {
            BodyKind::Json
        }
    }
}

/// What the gateway sends the client in place of a chunk it fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// The chunk itself.
    Unchanged,
    /// These bytes instead (possibly none).
    Replaced(Vec<u8>),
}

pub struct UsageScanner {
    body: Body,
}

// One per response, never moved in bulk: boxing the larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Body {
    Json(JsonBody),
    EventStream(EventStream),
}

impl UsageScanner {
    /// A scanner for one body of `family`'s upstream.
    ///
    /// `strip_openai_usage_chunk` applies to an OpenAI event stream only, and is ignored
    /// otherwise: set it when the gateway added `stream_options.include_usage` to the request
    /// on the client's behalf, so that the usage-only chunk (a `data:` event with
    /// `"choices":[]` and a non-null `usage`) is read but not forwarded. Everything else is
    /// forwarded byte for byte, in order.
    pub fn new(family: Family, kind: BodyKind, strip_openai_usage_chunk: bool) -> UsageScanner {
        let body = match kind {
            BodyKind::Json => Body::Json(JsonBody::new(family)),
            BodyKind::EventStream => {
                let strip = strip_openai_usage_chunk && family == Family::OpenAi;
                Body::EventStream(EventStream::new(family, strip))
            }
        };
        UsageScanner { body }
    }

    /// Reads the next chunk of the body; returns what to send the client for it. Always
    /// [`Forward::Unchanged`] unless the usage chunk is stripped: then bytes of an event are
    /// held back until the event is known not to be the usage chunk (usually within the same
    /// chunk, as upstreams send whole events).
    pub fn feed(&mut self, chunk: &[u8]) -> Forward {
        match &mut self.body {
            Body::Json(json) => {
                json.feed(chunk);
                Forward::Unchanged
            }
            Body::EventStream(stream) => stream.feed(chunk),
        }
    }

    /// Ends the body, when the upstream's body reaches its end: reads an unterminated last
    /// line and returns the bytes still held back, to send the client last (empty unless the
    /// usage chunk is stripped and the body ended mid-event). Call once, after the last chunk.
    pub fn finish(&mut self) -> Vec<u8> {
        match &mut self.body {
            Body::Json(_) => Vec::new(),
            Body::EventStream(stream) => stream.finish(),
        }
    }

    /// The usage the upstream has reported so far, normalised; `None` if it reported none (an
    /// error body, a stream cut before its usage, a chat stream without `include_usage`).
    /// Unless [`UsageScanner::is_final`], it may be less than the upstream bills.
    pub fn usage(&self) -> Option<Usage> {
        match &self.body {
            Body::Json(json) => json.usage(),
            Body::EventStream(stream) => stream.usage(),
        }
    }

    /// Whether [`UsageScanner::usage`] is the upstream's final count: a JSON body was read whole
    /// with its usage in place, or a stream's terminal event with its usage was read (see the
    /// `sse` module for each family's). False when there is no usage, when a usage member could
    /// not be read, and for a body cut short.
    pub fn is_final(&self) -> bool {
        match &self.body {
            Body::Json(json) => json.is_final(),
            Body::EventStream(stream) => stream.is_final(),
        }
    }
}

#[cfg(test)]
mod tests;
