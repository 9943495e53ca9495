//! Settling a reservation exactly once, however the call ends.
//!
//! Right after admission the handler opens a [`Settlement`] and registers [`settle_when_ended`]
//! in `ctx.wait_until`, before anything can go wrong. The call then ends in one of these ways,
//! each sending one [`Ending`] (the first one wins; later ones are ignored):
//! - the upstream failed → the handler releases the reservation;
//! - the answer was read whole (model lists) → the handler settles it;
//! - the answer streamed → the [`Meter`]ed body ends, fails, or is dropped by the runtime because
//!   the client went away → the usage seen so far;
//! - the handler itself was cancelled (the client left before the answer) → the dropped
//!   `Settlement`: abandoned if the upstream was working on the call, else released;
//! - the client left and the runtime neither cancels the handler nor ends or drops the body →
//!   the request's abort signal (`enable_request_signal`) → the usage the shared [`Meter`] has
//!   seen so far, or, before the answer, abandoned or released as above.

use super::ledger_client::LedgerClient;
pub use crate::gateway::metering::Ending;
use crate::ledger::Command;
use crate::usage::UsageScanner;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Request};

/// The upstream answer's status and the scanner reading its body; shared between the body
/// stream and the settlement task, which reads it if the client leaves mid-stream.
pub struct Meter {
    pub status: u16,
    pub scanner: UsageScanner,
}

pub type SharedMeter = Rc<RefCell<Option<Meter>>>;

/// Whether the upstream is working on the call: set while the handler awaits its answer.
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

/// Opens a settlement: the sender for the handler, and the task to hand to `ctx.wait_until`,
/// which turns the ending into one ledger command with `command`.
pub fn open(
    ledger: LedgerClient,
    request: &Request,
    meter: SharedMeter,
    command: impl FnOnce(Ending) -> Command + 'static,
) -> (Settlement, impl std::future::Future<Output = ()> + 'static) {
    let (tx, rx) = oneshot::channel();
    let upstream_working = UpstreamWorking::default();
    let settlement = Settlement { tx: Some(tx), upstream_working: upstream_working.clone() };
    let client_gone = client_gone(request);
    let task = async move {
        let ending = match select(rx, client_gone).await {
            Either::Left((ending, _)) => ending.unwrap_or(Ending::Released),
            Either::Right(_) => match meter.borrow().as_ref() {
                Some(meter) => Ending::Answered { status: meter.status, usage: meter.scanner.usage() },
                None => unanswered(&upstream_working),
            },
        };
        ledger.finish(command(ending)).await;
    };
    (settlement, task)
}

/// Resolves when the client disconnects (never, where the runtime gives requests no signal).
fn client_gone(request: &Request) -> JsFuture {
    let signal = request.inner().signal();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if signal.aborted() {
            let _ = resolve.call0(&JsValue::NULL);
        } else {
            signal.set_onabort(Some(&resolve));
        }
    });
    JsFuture::from(promise)
}
