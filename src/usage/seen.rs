//! The usage an answer has reported so far, and whether it is the upstream's final count.

use super::wire::{Reported, WireUsage};
use super::Usage;
use crate::family::Family;

pub(super) struct Seen {
    family: Family,
    /// Each counter's latest value; `None` until a usage object is read.
    latest: Option<WireUsage>,
    /// The counts read are the final ones: the terminal event (or the whole body) was read.
    final_count: bool,
    /// A usage value at its place could not be read: the count is unknown for good.
    unreadable: bool,
}

impl Seen {
    pub(super) fn new(family: Family) -> Self {
        Seen { family, latest: None, final_count: false, unreadable: false }
    }

    /// Takes in a usage value read where the family writes it; returns whether it held counts.
    pub(super) fn take(&mut self, reported: Reported) -> bool {
        match reported {
            Reported::Usage(found) => {
                match &mut self.latest {
                    Some(latest) => latest.update(found),
                    None => self.latest = Some(found),
                }
                true
            }
            Reported::Nothing => false,
            Reported::Unreadable => {
                self.unreadable = true;
                false
            }
        }
    }

    pub(super) fn has_usage(&self) -> bool {
        self.latest.is_some()
    }

    /// Marks the counts taken so far as final, or (a later report with more to come) not.
    pub(super) fn set_final(&mut self, final_count: bool) {
        self.final_count = final_count;
    }

    pub(super) fn usage(&self) -> Option<Usage> {
        self.latest.map(|found| found.normalise(self.family))
    }

    /// Whether [`Seen::usage`] is the final count: marked so, and nothing unreadable was met.
    pub(super) fn is_final(&self) -> bool {
        self.final_count && !self.unreadable && self.latest.is_some()
    }
}
