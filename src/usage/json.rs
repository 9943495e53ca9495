//! Usage from a JSON body: every family writes its usage object near the end of the body, so
//! only the body's bounded [`Tail`] is kept, and it is searched once, when usage is asked for.
//! A body whose usage object starts more than [`TAIL_BYTES`](super::tail::TAIL_BYTES) before
//! its end reports none.

use super::tail::Tail;
use super::wire;
use super::Usage;
use crate::family::Family;

pub(super) struct JsonBody {
    family: Family,
    tail: Tail,
}

impl JsonBody {
    pub(super) fn new(family: Family) -> Self {
        JsonBody { family, tail: Tail::default() }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        self.tail.push(chunk);
    }

    /// The last usage object in the body so far (a Gemini JSON array of responses included).
    pub(super) fn usage(&self) -> Option<Usage> {
        wire::find_last(self.tail.bytes(), self.family).map(|found| found.normalise(self.family))
    }
}
