//! Usage from an event stream, read line by line as the stream passes.
//!
//! Each `data:` line is one JSON document, walked as its bytes arrive ([`Walker`]); only the
//! members where the family writes usage, and those that say which event the line is, are
//! read, and only once the whole line was read. By family:
//! - OpenAI chat and completions: a chunk's top-level `usage` (the usage chunk that
//!   `stream_options.include_usage` adds, `"choices":[]`); final at `data: [DONE]` after it.
//! - OpenAI responses: `response.usage` of `response.completed`, `response.incomplete` or
//!   `response.failed`, the terminal events: final there. Usage elsewhere is not read.
//! - Anthropic: `message_start`'s `message.usage`, then each `message_delta`'s cumulative
//!   `usage`; final at `message_stop` after a `message_delta`.
//! - Gemini: each chunk's cumulative top-level `usageMetadata`; final while the latest chunk
//!   with usage also carries a candidate's `finishReason` (or `promptFeedback.blockReason`).
//!
//! A stream cut short still reports the usage it had reached, as not final. With a
//! [`UsageChunkFilter`] the stream's lines are also routed to the client, or not.

use super::lines::{LineKind, LineReader, Piece};
use super::scanner::Forward;
use super::seen::Seen;
use super::strip::UsageChunkFilter;
use super::walk::{Found, Step, Target, Walker};
use super::wire::{Reported, MAX_USAGE_LEN};
use super::Usage;
use crate::family::Family;

/// What a target member of a data line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `type`: which event the line is.
    EventType,
    /// The top-level `usage` / `usageMetadata`.
    Usage,
    /// `response.usage` / `message.usage`.
    NestedUsage,
    /// OpenAI chat's `choices`.
    Choices,
    /// The bare word in `[DONE]`, which reads as an array holding it.
    Sentinel,
    /// Gemini's signs of a last chunk.
    Finish,
}

const TYPE: Target<Field> = Target { path: &[Step::Key(b"type")], max_len: 64, field: Field::EventType };
const USAGE: Target<Field> = Target { path: &[Step::Key(b"usage")], max_len: MAX_USAGE_LEN, field: Field::Usage };

static OPENAI: [Target<Field>; 5] = [
    TYPE,
    USAGE,
    Target { path: &[Step::Key(b"response"), Step::Key(b"usage")], max_len: MAX_USAGE_LEN, field: Field::NestedUsage },
    Target { path: &[Step::Key(b"choices")], max_len: 16, field: Field::Choices },
    Target { path: &[Step::Element], max_len: 8, field: Field::Sentinel },
];

static ANTHROPIC: [Target<Field>; 3] = [
    TYPE,
    USAGE,
    Target { path: &[Step::Key(b"message"), Step::Key(b"usage")], max_len: MAX_USAGE_LEN, field: Field::NestedUsage },
];

static GEMINI: [Target<Field>; 3] = [
    Target { path: &[Step::Key(b"usageMetadata")], max_len: MAX_USAGE_LEN, field: Field::Usage },
    Target {
        path: &[Step::Key(b"candidates"), Step::Element, Step::Key(b"finishReason")],
        max_len: 64,
        field: Field::Finish,
    },
    Target { path: &[Step::Key(b"promptFeedback"), Step::Key(b"blockReason")], max_len: 64, field: Field::Finish },
];

pub(super) struct EventStream {
    lines: LineReader,
    /// The current data line.
    line: Walker<Field>,
    said: LineSaid,
    reading: Reading,
    /// Present when the usage-only chunk must not reach the client.
    filter: Option<UsageChunkFilter>,
}

impl EventStream {
    pub(super) fn new(family: Family, strip_usage_chunk: bool) -> Self {
        let targets = match family {
            Family::OpenAi => OPENAI.as_slice(),
            Family::Anthropic => ANTHROPIC.as_slice(),
            Family::Gemini => GEMINI.as_slice(),
        };
        EventStream {
            lines: LineReader::default(),
            line: Walker::new(targets),
            said: LineSaid::default(),
            reading: Reading { family, seen: Seen::new(family), message_delta_read: false },
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
        self.reading.seen.usage()
    }

    pub(super) fn is_final(&self) -> bool {
        self.reading.seen.is_final()
    }

    fn read(&mut self, chunk: &[u8], body_ends: bool) -> Forward {
        let EventStream { lines, line, said, reading, filter } = self;
        let mut pass = filter.as_mut().map(|filter| filter.pass(chunk));
        lines.feed(chunk, body_ends, |piece| match piece {
            Piece::Data(bytes) => line.feed(bytes, &mut |field, found| said.note(field, found)),
            Piece::End { kind, end } => {
                let usage_only = kind == LineKind::Data && reading.data_line(line.is_complete(), std::mem::take(said));
                line.reset();
                if let Some(pass) = &mut pass {
                    pass.line(kind, usage_only, end);
                }
            }
        });
        let Some(mut pass) = pass else { return Forward::Unchanged };
        if body_ends {
            pass.event_end(chunk.len());
        }
        pass.finish()
    }
}

/// The event a data line is, by its `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Event {
    /// No `type` (an OpenAI chat chunk, a Gemini chunk), or one of no interest.
    #[default]
    Other,
    /// `response.completed`, `response.incomplete`, `response.failed`.
    ResponseEnd,
    /// Any other `response.*` event.
    Response,
    MessageStart,
    MessageDelta,
    MessageStop,
}

impl Event {
    fn from_type(json_string: &[u8]) -> Event {
        match json_string {
            b"\"response.completed\"" | b"\"response.incomplete\"" | b"\"response.failed\"" => Event::ResponseEnd,
            b"\"message_start\"" => Event::MessageStart,
            b"\"message_delta\"" => Event::MessageDelta,
            b"\"message_stop\"" => Event::MessageStop,
            _ if json_string.starts_with(b"\"response.") => Event::Response,
            _ => Event::Other,
        }
    }
}

/// What the current data line said, member by member.
#[derive(Debug, Default)]
struct LineSaid {
    event: Event,
    usage: Option<Reported>,
    nested_usage: Option<Reported>,
    no_choices: bool,
    done: bool,
    finish: bool,
}

impl LineSaid {
    fn note(&mut self, field: Field, found: Found<'_>) {
        let value = match found {
            Found::Value(value) => Some(value),
            Found::TooLong => None,
        };
        match field {
            Field::EventType => self.event = value.map_or(Event::Other, Event::from_type),
            Field::Usage => self.usage = Some(Reported::read(found)),
            Field::NestedUsage => self.nested_usage = Some(Reported::read(found)),
            Field::Choices => {
                self.no_choices = value.is_some_and(|v| v.iter().filter(|b| !b.is_ascii_whitespace()).eq(b"[]"))
            }
            Field::Sentinel => self.done = value == Some(b"DONE".as_slice()),
            Field::Finish => self.finish |= value.is_some_and(|v| v != b"null"),
        }
    }
}

/// The stream's usage, read event by event by the family's rules.
struct Reading {
    family: Family,
    seen: Seen,
    /// Anthropic: a `message_delta` with usage was read.
    message_delta_read: bool,
}

impl Reading {
    /// Takes in what a data line said, if the line was one whole JSON document; returns whether
    /// it was an OpenAI usage-only chunk.
    fn data_line(&mut self, complete: bool, said: LineSaid) -> bool {
        if !complete {
            return false;
        }
        let seen = &mut self.seen;
        match (self.family, said.event) {
            (Family::OpenAi, Event::ResponseEnd) => {
                let read = said.nested_usage.is_some_and(|usage| seen.take(usage));
                seen.set_final(read);
                false
            }
            (Family::OpenAi, Event::Response) => false,
            (Family::OpenAi, _) => {
                let read = said.usage.is_some_and(|usage| seen.take(usage));
                if said.done && seen.has_usage() {
                    seen.set_final(true);
                }
                read && said.no_choices
            }
            (Family::Anthropic, Event::MessageStart) => {
                if let Some(usage) = said.nested_usage {
                    seen.take(usage);
                }
                false
            }
            (Family::Anthropic, Event::MessageDelta) => {
                if said.usage.is_some_and(|usage| seen.take(usage)) {
                    self.message_delta_read = true;
                }
                false
            }
            (Family::Anthropic, Event::MessageStop) => {
                seen.set_final(self.message_delta_read);
                false
            }
            (Family::Anthropic, _) => false,
            (Family::Gemini, _) => {
                if said.usage.is_some_and(|usage| seen.take(usage)) {
                    seen.set_final(said.finish);
                }
                false
            }
        }
    }
}
