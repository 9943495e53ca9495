//! Budgets of the levels above a call (a project's or organisation's limits, or a key's object
//! acting as the upper level of the edge isolates that lease from it) and the lease protocol
//! that lets a lower level admit calls from a slice of the upper one's headroom without a round
//! trip per call.
//!
//! Flow: a lower level (a [`Holder`]: a key's object under its project and organisation, or an
//! edge isolate under a hot key's object) admits each call from the slice of its current lease
//! ([`Holder::admit`]). When the slice cannot cover a call, or has expired, it sends a
//! [`HolderMessage`] ([`Holder::request`]) that returns the unused part of its lease, reports
//! what its calls used, and asks for a new lease sized for the waiting call. The upper level's
//! [`Budget`] applies the report and answers a [`Grant`] or a [`BudgetDenial`] naming its level
//! and scope ([`Budget::handle`]) — or, for a reason of its own (a bound on what it remembers),
//! declines (`Declined`: the call is then admitted per call); the holder takes the reply ([`Holder::receive`]) and admits
//! again. Settled calls ([`Holder::settle`]) flow up in batches: with the next request, or by
//! [`Holder::flush`] within [`FLUSH_MS`] of the first unreported one or at the lease's end
//! ([`Holder::flush_at`]: the edge waits for it in `waitUntil`, a key object sets an alarm). A
//! refusal may recall the open slices ([`Budget::open_slices`], [`Holder::give_back`]). Calls that
//! do not lease are admitted one by one on the same counters ([`Budget::admit_call`]).
//! [`BudgetState`] is the pure state machine of an upper level's Durable Object (commands in,
//! replies out, a versioned stored state); the edge class is a thin adapter.
//!
//! Intervals: an edge isolate's lease of a hot key's object lasts [`EDGE_LEASE_MS`] (1 s, the
//! revocation bound of a leased key); a key object's lease of its project's and organisation's
//! objects [`KEY_LEASE_MS`] (2 s); no lease more than [`MAX_LEASE_MS`] (5 s).
//!
//! Modules, one concept each: `slice` (what a lease grants and what a report counts), `protocol`
//! (the messages), `record` (the upper's record of one lease and what it counts), `sizing` (how
//! large a slice is), `ledger` (the upper level's ledger and its guarantees), `holder` (the lower
//! level's side), `denial` (refusals naming their level), `object` (the Durable Object's state
//! machine).
//!
//! The guarantees are stated in `ledger` (the upper level) and `holder` (the lower level).
mod denial;
mod holder;
mod ledger;
mod object;
mod protocol;
mod record;
mod sizing;
mod slice;

#[cfg(test)]
mod simulation;

pub use denial::{BudgetDenial, BudgetEvent};
pub use holder::{
    BulkTicket, CallTicket, Holder, HolderAdmission, Received, DECLINED_HOLD_MS, FLUSH_MS, REPLY_TIMEOUT_MS,
};
pub use ledger::{Budget, Handled, MAX_HOLDERS, MAX_LEASES};
pub use object::{Answered, BudgetCommand, BudgetReply, BudgetState, STATE_FORMAT};
pub use protocol::{Declined, Grant, HolderMessage, LeaseOutcome, LeaseReport, UpperReply, Want};
pub use sizing::{ACTIVE_MS, EDGE_LEASE_MS, KEY_LEASE_MS, MAX_LEASE_MS};
pub use slice::{Slice, SliceLeft, Tally};
