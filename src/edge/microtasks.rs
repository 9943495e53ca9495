//! How the futures executor of this wasm instance is woken: by `then` on a resolved promise, a
//! job V8 queues itself, rather than by the runtime's `queueMicrotask`.
//!
//! The executor behind `wasm_bindgen_futures` (js-sys' single-threaded queue) schedules each run
//! of its ready tasks with the global `queueMicrotask` if it is a function, else with `then` on a
//! resolved promise, and looks once, when its queue is created. On workerd `queueMicrotask` is a
//! binding that wraps each callback (its async context, its error reporting) in objects of its
//! own: on raw workerd ~105 k instructions per call of a hot key in the binding and about as many
//! again in the collector for its garbage (`bench/instructions.mjs`, README "Instructions per
//! call"). Both ways run the queue as a microtask of the same turn, in the same order.
//!
//! [`wake_by_promise_jobs`] runs once when the instance starts, before any request: it shadows
//! `queueMicrotask` on the global object, creates the queue (by spawning an empty task), and puts
//! the global back as it was, so nothing else in the isolate sees a difference. If the global
//! cannot be shadowed (a property that cannot be redefined), nothing changes and the queue uses
//! `queueMicrotask`, as before. The executor's callback never throws (a task's panic aborts the
//! instance), so the promise's rejection path is never taken.

use worker::js_sys::{global, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::spawn_local;

/// Creates the executor's queue while `queueMicrotask` reads as `undefined` on the global object.
pub fn wake_by_promise_jobs() {
    let (global, name) = (global(), JsValue::from_str("queueMicrotask"));
    let own = Reflect::get_own_property_descriptor(&global, &name).unwrap_or(JsValue::UNDEFINED);
    let hidden = Object::new();
    let _ = Reflect::set(&hidden, &JsValue::from_str("configurable"), &JsValue::TRUE);
    let _ = Reflect::set(&hidden, &JsValue::from_str("writable"), &JsValue::TRUE);
    let _ = Reflect::set(&hidden, &JsValue::from_str("value"), &JsValue::UNDEFINED);
    if !Reflect::define_property(&global, &name, &hidden).unwrap_or(false) {
        return;
    }
    spawn_local(async {});
    let _ = match own.dyn_into::<Object>() {
        Ok(descriptor) => Reflect::define_property(&global, &name, &descriptor),
        Err(_) => Reflect::delete_property(&global, &name),
    };
}
