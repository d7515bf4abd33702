//! Reading on the JS thread (#14, heartbeat CPU).
//!
//! At low rates every message used to wake two threads: a connection
//! group's, which read it and queued the event, and then the JS thread
//! through the threadsafe function (its queue, mutex and callback scope).
//! Here Node's own event loop watches each group's epoll set (one `uv_poll`
//! per group on the set's fd) and, when it is readable, runs the group's
//! read round on the JS thread and hands the batch to JS at once through
//! `napi_make_callback`: one wake-up per message, on a thread that was
//! waiting anyway. The groups' threads only watch that this keeps up and
//! read in its place while JS is busy in user code (ws/group.rs, `WATCH`).
//! Events from tokio (opens, closes by the sweeper, HTTP) still come
//! through the threadsafe function.
//!
//! libuv is Node's; its functions are looked up in the running process
//! (`dlsym`), so a Node that does not export them leaves the groups on
//! their threads, as `FERROSOCKET_LOOP_READ=0` does.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use napi::bindgen_prelude::{Function, FunctionRef, ToNapiValue};
use napi::{sys, Env, JsValue};

use super::events::{Delivery, EventBatch, DRIVING};
use crate::ws::ServerCore;

/// `UV_POLL` in libuv's `uv_handle_type`, and `UV_READABLE`.
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type CloseCb = unsafe extern "C" fn(*mut c_void);

/// The libuv functions used here, from the process (Node exports them).
struct Uv {
    handle_size: HandleSize,
    poll_init: PollInit,
    poll_start: PollStart,
    poll_stop: HandleFn,
    close: Close,
    unref: Unref,
}

type HandleSize = unsafe extern "C" fn(c_int) -> usize;
type PollInit = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type PollStart = unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int;
type HandleFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type Close = unsafe extern "C" fn(*mut c_void, CloseCb);
type Unref = unsafe extern "C" fn(*mut c_void);

fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        fn sym(name: &CStr) -> Option<*mut c_void> {
            // SAFETY: looks a symbol up by a NUL-terminated name.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char) };
            (!p.is_null()).then_some(p)
        }
        // SAFETY: each symbol is libuv's function of that name, whose C
        // signature the field's type spells.
        unsafe {
            Some(Uv {
                handle_size: std::mem::transmute::<*mut c_void, HandleSize>(sym(c"uv_handle_size")?),
                poll_init: std::mem::transmute::<*mut c_void, PollInit>(sym(c"uv_poll_init")?),
                poll_start: std::mem::transmute::<*mut c_void, PollStart>(sym(c"uv_poll_start")?),
                poll_stop: std::mem::transmute::<*mut c_void, HandleFn>(sym(c"uv_poll_stop")?),
                close: std::mem::transmute::<*mut c_void, Close>(sym(c"uv_close")?),
                unref: std::mem::transmute::<*mut c_void, Unref>(sym(c"uv_unref")?),
            })
        }
    })
    .as_ref()
}

/// On unless `FERROSOCKET_LOOP_READ=0` (the groups read on their own
/// threads, as before; for measuring one against the other).
pub(crate) fn wanted() -> bool {
    std::env::var_os("FERROSOCKET_LOOP_READ").is_none_or(|v| v != "0")
}

/// What every poll handle of one server shares; lives on the JS thread.
struct Shared {
    env: sys::napi_env,
    server: Arc<ServerCore>,
    delivery: Arc<Delivery>,
    on_events: FunctionRef<EventBatch, ()>,
    async_ctx: sys::napi_async_context,
    rt: tokio::runtime::Handle,
}

/// A poll handle's `data`: its server and group.
struct Slot {
    shared: Rc<Shared>,
    group: usize,
}

pub(crate) struct LoopReader {
    handles: Vec<*mut c_void>,
    thread: ThreadId,
}

// SAFETY: the handles are touched only by `stop`, which does so only on
// the thread that created them (the JS thread) and leaves them otherwise.
unsafe impl Send for LoopReader {}

impl LoopReader {
    /// Lends `server`'s groups to the JS thread's event loop; None (the
    /// groups keep their threads) when libuv or N-API says no.
    pub(crate) fn start(
        on_events: &Function<EventBatch, ()>,
        server: &Arc<ServerCore>,
        delivery: Arc<Delivery>,
        rt: tokio::runtime::Handle,
    ) -> Option<Self> {
        let uv = uv()?;
        let env = on_events.value().env;
        let mut lp = ptr::null_mut();
        // SAFETY: N-API calls on the JS thread (a constructor runs there).
        let async_ctx = unsafe {
            if sys::napi_get_uv_event_loop(env, &mut lp) != sys::Status::napi_ok || lp.is_null() {
                return None;
            }
            let mut name = ptr::null_mut();
            let text = c"ferrosocket";
            if sys::napi_create_string_utf8(env, text.as_ptr(), 11, &mut name) != sys::Status::napi_ok {
                return None;
            }
            let mut ctx = ptr::null_mut();
            if sys::napi_async_init(env, ptr::null_mut(), name, &mut ctx) != sys::Status::napi_ok {
                return None;
            }
            ctx
        };
        let shared = Rc::new(Shared {
            env,
            server: server.clone(),
            delivery,
            on_events: on_events.create_ref().ok()?,
            async_ctx,
            rt,
        });
        let mut reader = Self { handles: Vec::new(), thread: std::thread::current().id() };
        for (group, fd) in server.lend_groups().into_iter().enumerate() {
            // SAFETY: a zeroed block of the size libuv asks for a poll
            // handle, initialized on the loop's thread; `data` (the first
            // field of every libuv handle) carries the slot.
            unsafe {
                let h = libc::calloc(1, (uv.handle_size)(UV_POLL));
                if h.is_null() || (uv.poll_init)(lp.cast(), h, fd) != 0 {
                    libc::free(h);
                    server.reclaim_group(group);
                    continue;
                }
                let slot = Box::into_raw(Box::new(Slot { shared: shared.clone(), group }));
                *(h as *mut *mut Slot) = slot;
                reader.handles.push(h);
                if (uv.poll_start)(h, UV_READABLE, on_ready) != 0 {
                    server.reclaim_group(group);
                }
                // Never keeps Node running by itself (the JS owner does
                // while it listens or holds sockets).
                (uv.unref)(h);
            }
        }
        Some(reader)
    }

    /// Gives the groups back to their threads and closes the handles. Off
    /// the JS thread (a last reference dropped elsewhere) the handles are
    /// left as they are: they hold what they use.
    pub(crate) fn stop(self, server: &ServerCore) {
        server.reclaim_groups();
        if std::thread::current().id() != self.thread {
            return;
        }
        let Some(uv) = uv() else { return };
        for h in self.handles {
            // SAFETY: our own handles, on their loop's thread.
            unsafe {
                (uv.poll_stop)(h);
                (uv.close)(h, on_closed);
            }
        }
    }
}

unsafe extern "C" fn on_closed(h: *mut c_void) {
    // SAFETY: `data` holds the slot `start` boxed; libuv is done with `h`.
    unsafe {
        drop(Box::from_raw(*(h as *mut *mut Slot)));
        libc::free(h);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the last slot goes in a close callback, on the JS thread.
        unsafe { sys::napi_async_destroy(self.env, self.async_ctx) };
    }
}

unsafe extern "C" fn on_ready(h: *mut c_void, status: c_int, _events: c_int) {
    // SAFETY: `data` holds the slot `start` boxed, freed only on close.
    let slot = unsafe { &**(h as *mut *mut Slot) };
    let shared = &*slot.shared;
    if status < 0 {
        // The set's fd failed: its group's thread reads it from now on.
        stop_one(h, shared, slot.group);
        return;
    }
    let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _rt = shared.rt.enter();
        DRIVING.with(|d| d.set(Arc::as_ptr(&shared.delivery.batch)));
        shared.server.drive(slot.group);
    }));
    DRIVING.with(|d| d.set(ptr::null()));
    if round.is_err() {
        // A panic must not unwind into libuv (it would abort Node): the
        // group goes back to its thread, as after an error on the fd.
        stop_one(h, shared, slot.group);
    }
    if shared.delivery.batch.is_empty() {
        return;
    }
    let arg = shared.delivery.take();
    // SAFETY: N-API calls on the JS thread, inside a handle scope of our own.
    unsafe { shared.call(arg) };
}

fn stop_one(h: *mut c_void, shared: &Shared, group: usize) {
    if let Some(uv) = uv() {
        // SAFETY: our handle, on its loop's thread.
        unsafe { (uv.poll_stop)(h) };
    }
    shared.server.reclaim_group(group);
}

impl Shared {
    /// Calls the JS callback with one batch, as a threadsafe function would:
    /// `napi_make_callback` runs microtasks and `process.nextTick` after it,
    /// and an exception that escapes goes to 'uncaughtException'.
    unsafe fn call(&self, arg: EventBatch) {
        let env = self.env;
        let mut scope = ptr::null_mut();
        // SAFETY (whole block): N-API on the JS thread with a live env.
        unsafe {
            if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
                return;
            }
            let e = Env::from_raw(env);
            if let (Ok(func), Ok(argv)) = (self.on_events.borrow_back(&e), EventBatch::to_napi_value(env, arg)) {
                let mut global = ptr::null_mut();
                sys::napi_get_global(env, &mut global);
                let mut result = ptr::null_mut();
                let status =
                    sys::napi_make_callback(env, self.async_ctx, global, func.value().value, 1, &argv, &mut result);
                if status == sys::Status::napi_pending_exception {
                    let mut error = ptr::null_mut();
                    sys::napi_get_and_clear_last_exception(env, &mut error);
                    sys::napi_fatal_exception(env, error);
                }
            }
            sys::napi_close_handle_scope(env, scope);
        }
    }
}
