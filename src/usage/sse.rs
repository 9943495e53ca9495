//! Usage from an event stream, read line by line as the stream passes.
//!
//! Only `data:` lines are searched, and only for the family's usage key (a byte search from the
//! line's end); just the object after the key is deserialized. Each usage object found updates
//! the counters seen so far:
//! - OpenAI chat: the final chunk's `usage` (present when `stream_options.include_usage` is set);
//! - OpenAI responses: `response.usage` of `response.completed` (or `.incomplete`, `.failed`);
//! - Anthropic: `message_start`'s `message.usage`, then each `message_delta`'s cumulative `usage`;
//! - Gemini: each chunk's cumulative `usageMetadata`.
//!
//! So a stream cut short still reports the usage it had reached. With a [`UsageChunkFilter`]
//! the stream's lines are also routed to the client, or not.

use super::lines::{Line, LineReader};
use super::scanner::Forward;
use super::strip::UsageChunkFilter;
use super::wire::{self, WireUsage};
use super::Usage;
use crate::family::Family;

pub(super) struct EventStream {
    lines: LineReader,
    reported: Reported,
    /// Present when the usage-only chunk must not reach the client.
    filter: Option<UsageChunkFilter>,
}

impl EventStream {
    pub(super) fn new(family: Family, strip_usage_chunk: bool) -> Self {
        EventStream {
            lines: LineReader::default(),
            reported: Reported { family, latest: None },
            filter: strip_usage_chunk.then(UsageChunkFilter::default),
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) -> Forward {
        self.read(chunk, false)
    }

    /// Ends the body: its unterminated last line, if any, is read, and the bytes still held
    /// back are returned.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        match self.read(&[], true) {
            Forward::Unchanged => Vec::new(),
            Forward::Replaced(bytes) => bytes,
        }
    }

    pub(super) fn usage(&self) -> Option<Usage> {
        let Reported { family, latest } = self.reported;
        latest.map(|found| found.normalise(family))
    }

    fn read(&mut self, chunk: &[u8], body_ends: bool) -> Forward {
        let reported = &mut self.reported;
        let mut pass = self.filter.as_mut().map(|filter| filter.pass(chunk));
        self.lines.feed(chunk, body_ends, |line, end| {
            let carries_usage = reported.read(line);
            if let Some(pass) = &mut pass {
                pass.line(line, carries_usage, end);
            }
        });
        let Some(mut pass) = pass else { return Forward::Unchanged };
        if body_ends {
            pass.event_end(chunk.len());
        }
        pass.finish()
    }
}

/// The usage a stream has reported so far.
struct Reported {
    family: Family,
    /// Each counter's latest value; `None` until a usage object is seen.
    latest: Option<WireUsage>,
}

impl Reported {
    /// Takes in the usage object `line` carries, if any; returns whether it carried one.
    fn read(&mut self, line: Line<'_>) -> bool {
        let Line::Data { value, .. } = line else { return false };
        let Some(found) = wire::find_last(value, self.family) else { return false };
        match &mut self.latest {
            Some(latest) => latest.update(found),
            None => self.latest = Some(found),
        }
        true
    }
}
