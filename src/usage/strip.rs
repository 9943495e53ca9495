//! Removing the usage-only chunk from an OpenAI chat event stream.
//!
//! When the gateway sets `stream_options.include_usage` on the client's behalf, the upstream
//! sends one event the client did not ask for: `data: {…,"choices":[],"usage":{…}}`. The filter
//! holds back the bytes of each event only until its first `data:` line is complete, then
//! forwards or drops the whole event, through the blank line that ends it. Every other byte
//! reaches the client unchanged and in order; a chunk whose bytes are all forwarded as they came
//! is answered [`Forward::Unchanged`], without copying.

use super::lines::LineKind;
use super::scanner::Forward;
use std::ops::Range;

/// An undecided event is released once this many of its bytes are held: the usage-only chunk
/// is a few hundred bytes, so an event this long is not it.
const MAX_HELD: usize = 16 * 1024;

/// What happens to the current event's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Event {
    /// Held: its first `data:` line is not complete yet.
    #[default]
    Undecided,
    Forward,
    Drop,
}

#[derive(Debug, Default)]
pub(super) struct UsageChunkFilter {
    event: Event,
    /// The current event's bytes from earlier chunks; empty unless the event is undecided.
    held: Vec<u8>,
}

impl UsageChunkFilter {
    /// Starts routing `chunk`: report its lines to the [`Pass`], then [`Pass::finish`] it.
    pub(super) fn pass<'a>(&'a mut self, chunk: &'a [u8]) -> Pass<'a> {
        Pass { filter: self, out: Output::new(chunk), start: 0 }
    }
}

/// The routing of one chunk.
pub(super) struct Pass<'a> {
    filter: &'a mut UsageChunkFilter,
    out: Output<'a>,
    /// Where the chunk's bytes not routed yet begin.
    start: usize,
}

impl Pass<'_> {
    /// Routes the chunk up to `end`, where a line of `kind` ends. `usage_only`: it is a data
    /// line holding the usage-only chunk (`"choices":[]` and a non-null usage).
    pub(super) fn line(&mut self, kind: LineKind, usage_only: bool, end: usize) {
        match (self.filter.event, kind) {
            (_, LineKind::Blank) => self.event_end(end),
            (Event::Undecided, LineKind::Data) => {
                self.filter.event = if usage_only { Event::Drop } else { Event::Forward };
                self.route(end);
            }
            (Event::Undecided, LineKind::Other) => {}
            (Event::Forward | Event::Drop, _) => self.route(end),
        }
    }

    /// Ends the current event at `end` (a blank line, or the end of the body). An event that
    /// ends without a `data:` line is not the usage chunk.
    pub(super) fn event_end(&mut self, end: usize) {
        if self.filter.event == Event::Undecided {
            self.filter.event = Event::Forward;
        }
        self.route(end);
        self.filter.event = Event::Undecided;
    }

    /// What to send for the chunk. Its bytes after the last line stay held while the event is
    /// undecided, unless that would hold more than [`MAX_HELD`].
    pub(super) fn finish(mut self) -> Forward {
        let end = self.out.chunk.len();
        let held = self.filter.held.len() + (end - self.start);
        if self.filter.event == Event::Undecided && held > MAX_HELD {
            self.filter.event = Event::Forward;
        }
        match self.filter.event {
            Event::Undecided => self.filter.held.extend_from_slice(&self.out.chunk[self.start..]),
            Event::Forward | Event::Drop => self.route(end),
        }
        self.out.finish()
    }

    /// Forwards or drops, as the event is decided, the held bytes and the chunk up to `end`.
    fn route(&mut self, end: usize) {
        debug_assert_ne!(self.filter.event, Event::Undecided, "routing an undecided event");
        if self.filter.event == Event::Forward {
            self.out.forward_bytes(&self.filter.held);
            self.out.forward(self.start..end);
        }
        self.filter.held.clear();
        self.start = end;
    }
}

/// What to send for one chunk; copied only once it stops being a prefix of the chunk.
struct Output<'a> {
    chunk: &'a [u8],
    /// While `copy` is `None`, the output is `chunk[..prefix]`.
    prefix: usize,
    copy: Option<Vec<u8>>,
}

impl<'a> Output<'a> {
    fn new(chunk: &'a [u8]) -> Self {
        Output { chunk, prefix: 0, copy: None }
    }

    fn forward(&mut self, range: Range<usize>) {
        if self.copy.is_none() && range.start == self.prefix {
            self.prefix = range.end;
        } else if !range.is_empty() {
            let chunk = self.chunk;
            self.copied().extend_from_slice(&chunk[range]);
        }
    }

    fn forward_bytes(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.copied().extend_from_slice(bytes);
        }
    }

    fn copied(&mut self) -> &mut Vec<u8> {
        let prefix = &self.chunk[..self.prefix];
        self.copy.get_or_insert_with(|| prefix.to_vec())
    }

    fn finish(self) -> Forward {
        match self.copy {
            Some(copy) => Forward::Replaced(copy),
            None if self.prefix == self.chunk.len() => Forward::Unchanged,
            None => Forward::Replaced(self.chunk[..self.prefix].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_copies_only_when_it_departs_from_the_chunk() {
        let chunk = b"abcdef";
        let mut out = Output::new(chunk);
        out.forward(0..2);
        out.forward(2..6);
        assert_eq!(out.finish(), Forward::Unchanged);

        let mut out = Output::new(chunk);
        out.forward(0..2);
        assert_eq!(out.finish(), Forward::Replaced(b"ab".to_vec()));

        let mut out = Output::new(chunk);
        out.forward(0..2);
        out.forward(4..6);
        assert_eq!(out.finish(), Forward::Replaced(b"abef".to_vec()));

        let mut out = Output::new(chunk);
        out.forward_bytes(b"xy");
        out.forward(0..6);
        assert_eq!(out.finish(), Forward::Replaced(b"xyabcdef".to_vec()));
    }
}
