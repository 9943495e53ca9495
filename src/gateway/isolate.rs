//! What one isolate keeps between the calls it serves: refusals it may repeat
//! ([`HeldRefusals`]) and the records it read ([`RecordMemo`]s of key policies and
//! organisations). Each is bounded and states its own staleness bound. The edge keeps one
//! [`Isolate`] per isolate (a `thread_local`); host tests make one per world.

use crate::gateway::held_refusals::HeldRefusals;
use crate::gateway::organisation::Organisation;
use crate::gateway::record_memo::RecordMemo;
use crate::policy::KeyPolicy;
use std::cell::RefCell;

/// The state one isolate shares between calls. No borrow is held across an `.await`.
#[derive(Default)]
pub struct Isolate {
    pub held_refusals: RefCell<HeldRefusals>,
    /// Key policies by their record's name (`key:<hash>`).
    pub keys: RefCell<RecordMemo<KeyPolicy>>,
    /// Organisations by their record's name (`org:<id>`).
    pub organisations: RefCell<RecordMemo<Organisation>>,
}
