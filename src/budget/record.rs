//! The upper level's record of one lease, from its grant until it is finished, and what it
//! counts in each counter.
//!
//! A lease counts, in every dimension, the most its holder may still need: while it is open
//! (neither closed by a report nor ended by the holder's silence past its TTL) its whole slice
//! with the settled calls' estimates replaced by their actuals; once closed, what its holder
//! reported using, likewise. A dimension the slice left unlimited counts what was reported.
