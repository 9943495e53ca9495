//! How large a slice is: sized to the holder's observed rate, capped by a fair share of the
//! headroom, never below the waiting call, and shrinking to exactly that call as headroom runs
//! low.
//!
//! Rule, per limited dimension (requests, tokens, micro-dollars, in-flight slots):
//! * demand: what the holder's previous lease used, doubled if it used it all before it ended
//!   (at least one call; the first lease: one call), in calls of the size the holder's calls
//!   averaged (at least the waiting call's);
//! * fair share: the free headroom (limit − committed − reserved − outstanding leases) divided
//!   by twice the holders active in the last [`ACTIVE_MS`];
//! * the slice is the smaller of the two, but at least the waiting call; if the waiting call
//!   alone does not fit, the dimension refuses.
//!
//! So when the free headroom is below two calls per active holder, every lease is exactly one
//! call: admission is exact per call.

/// An edge isolate's lease of a hot key's object: 1 s, which bounds revocation for leased keys.
pub const EDGE_LEASE_MS: u64 = 1_000;
/// A key object's lease of its project's and organisation's objects.
pub const KEY_LEASE_MS: u64 = 2_000;
/// The longest lease an upper level grants, whatever a holder asks.
pub const MAX_LEASE_MS: u64 = 5_000;
/// A holder counts as active for fair shares this long after its latest lease.
pub const ACTIVE_MS: u64 = 10_000;
