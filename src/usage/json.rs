//! Usage from a JSON body: the family's usage member at the top level of the answer (for
//! Gemini's `streamGenerateContent` without `alt=sse`, of each answer in the array), and
//! nowhere else. The body is walked as it passes ([`Walker`]), so memory stays fixed whatever
//! its size; the usage is final once the whole document was read with its usage in place.

use super::seen::Seen;
use super::walk::{Step, Target, Walker};
use super::wire::{Reported, MAX_USAGE_LEN};
use super::Usage;
use crate::family::Family;

/// OpenAI (chat, completions, embeddings, responses) and Anthropic: the top-level `usage`.
static USAGE: [Target<()>; 1] = [Target { path: &[Step::Key(b"usage")], max_len: MAX_USAGE_LEN, field: () }];

/// Gemini: the top-level `usageMetadata` of the answer, or of each answer in an array.
static USAGE_METADATA: [Target<()>; 2] = [
    Target { path: &[Step::Key(b"usageMetadata")], max_len: MAX_USAGE_LEN, field: () },
    Target { path: &[Step::Element, Step::Key(b"usageMetadata")], max_len: MAX_USAGE_LEN, field: () },
];

pub(super) struct JsonBody {
    walker: Walker<()>,
    seen: Seen,
}

impl JsonBody {
    pub(super) fn new(family: Family) -> Self {
        let targets = match family {
            Family::OpenAi | Family::Anthropic => USAGE.as_slice(),
            Family::Gemini => USAGE_METADATA.as_slice(),
        };
        JsonBody { walker: Walker::new(targets), seen: Seen::new(family) }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        let seen = &mut self.seen;
        self.walker.feed(chunk, &mut |(), found| {
            if seen.take(Reported::read(found)) {
                seen.set_final(true);
            }
        });
    }

    /// The usage read so far (of an array of answers, the latest counts).
    pub(super) fn usage(&self) -> Option<Usage> {
        self.seen.usage()
    }

    pub(super) fn is_final(&self) -> bool {
        self.walker.is_complete() && self.seen.is_final()
    }
}
