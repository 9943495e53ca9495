//! Settling a reservation exactly once, however the call ends.
//!
//! Right after admission the pipeline opens a [`Settlement`] and hands [`open`]'s task to the
//! runtime (`ctx.wait_until`), before anything can go wrong. The call then ends in one of these
//! ways, each sending one [`Ending`] (the first one wins; later ones are ignored):
//! - the upstream failed → the pipeline releases the reservation;
//! - the answer was read whole (model lists) → the pipeline settles it;
//! - the answer streamed → the [`MeteredBody`](super::metered_body::MeteredBody) ends, fails,
//!   or is dropped by the runtime because the client went away → the usage seen so far;
//! - the pipeline itself was dropped (the client left before the answer) → the dropped
//!   `Settlement`: abandoned if the upstream was working on the call, else released;
//! - the client left and the runtime neither drops the pipeline nor ends or drops the body →
//!   the client-gone signal → the usage the shared [`Meter`] has seen so far, or, before the
//!   answer, abandoned or released as above.
//!
//! Each way is a row of the fault table in `tests/gateway_flow.rs`.

use crate::gateway::metering::Ending;
use crate::gateway::ports::KeyLedger;
use crate::ledger::Command;
use crate::usage::UsageScanner;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

/// The upstream answer's status and the scanner reading its body; shared between the body
/// stream and the settlement task, which reads it if the client leaves mid-stream.
pub struct Meter {
    pub status: u16,
    pub scanner: UsageScanner,
}

impl Meter {
    /// How the call ended if it ended now: answered, with the usage seen so far.
    pub fn ending(&self) -> Ending {
        Ending::Answered { status: self.status, usage: self.scanner.usage(), complete: self.scanner.is_final() }
    }
}

/// The [`Meter`], set once the upstream answered with a body to stream.
pub type SharedMeter = Rc<RefCell<Option<Meter>>>;

/// Whether the upstream is working on the call: set while the pipeline awaits its answer.
type UpstreamWorking = Rc<Cell<bool>>;

/// How a call that ends without an answer ended.
fn unanswered(upstream_working: &UpstreamWorking) -> Ending {
    if upstream_working.get() {
        Ending::Abandoned
    } else {
        Ending::Released
    }
}

/// The one-shot sender of a call's [`Ending`]; dropping it unsent ends the call unanswered.
pub struct Settlement {
    tx: Option<oneshot::Sender<Ending>>,
    upstream_working: UpstreamWorking,
}

impl Settlement {
    pub fn end(&mut self, ending: Ending) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(ending);
        }
    }

    /// Marks the span in which the upstream has the call and has not answered yet.
    pub fn upstream_working(&self, working: bool) {
        self.upstream_working.set(working);
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        self.end(unanswered(&self.upstream_working));
    }
}

/// Opens a settlement: the sender for the pipeline, and the task for the runtime, which hands
/// the ending to `finish` (which counts it: [`send`] to the key's ledger, or at the edge for a
/// leased call) and runs what `finish` answers.
pub fn open<F: Future<Output = ()> + 'static>(
    client_gone: impl Future<Output = ()> + 'static,
    meter: SharedMeter,
    finish: impl FnOnce(Ending) -> F + 'static,
) -> (Settlement, impl Future<Output = ()> + 'static) {
    let (tx, rx) = oneshot::channel();
    let upstream_working = UpstreamWorking::default();
    let settlement = Settlement { tx: Some(tx), upstream_working: upstream_working.clone() };
    let task = async move {
        let ending = match select(rx, pin!(client_gone)).await {
            Either::Left((ending, _)) => ending.unwrap_or(Ending::Released),
            Either::Right(_) => match meter.borrow().as_ref() {
                Some(meter) => meter.ending(),
                None => unanswered(&upstream_working),
            },
        };
        finish(ending).await;
    };
    (settlement, task)
}

/// Sends the command `ending` makes to `ledger`. A settle that fails is logged by the ledger's
/// adapter; the ledger expires the reservation at its estimate after its time to live, so
/// nothing is lost unbilled.
pub async fn send(ledger: impl KeyLedger, command: Command) {
    let _ = ledger.send(&command).await;
}
