//! What one isolate keeps between the calls it serves: refusals it may repeat
//! ([`HeldRefusals`]), the records it read ([`RecordMemo`]s of key policies and organisations),
//! the slices it leased from hot keys' objects ([`EdgeLeases`]) and the model lists it is reading
//! ([`ListReads`]). Each is bounded and states
//! its own bound. The edge keeps one [`Isolate`] per isolate (a `thread_local`, named at random);
//! host tests make one per world.

use crate::gateway::edge_leases::EdgeLeases;
use crate::gateway::held_refusals::HeldRefusals;
use crate::gateway::models_list::ListReads;
use crate::gateway::organisation::Organisation;
use crate::gateway::record_memo::RecordMemo;
use crate::policy::KeyPolicy;
use std::cell::RefCell;
use std::rc::Rc;

/// The state one isolate shares between calls. No borrow is held across an `.await`.
pub struct Isolate {
    pub held_refusals: RefCell<HeldRefusals>,
    /// Key policies by their record's name (`key:<hash>`).
    pub keys: RefCell<RecordMemo<KeyPolicy>>,
    /// Organisations by their record's name (`org:<id>`).
    pub organisations: RefCell<RecordMemo<Organisation>>,
    /// Shared with the calls' settlement tasks, which outlive the call.
    pub leases: Rc<RefCell<EdgeLeases>>,
    pub list_reads: ListReads,
}

impl Isolate {
    /// An isolate named `id` (random: a restarted isolate is a new lease holder).
    pub fn new(id: String) -> Isolate {
        Isolate {
            held_refusals: RefCell::default(),
            keys: RefCell::default(),
            organisations: RefCell::default(),
            leases: Rc::new(RefCell::new(EdgeLeases::new(id))),
            list_reads: ListReads::default(),
        }
    }
}
