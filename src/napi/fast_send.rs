//! `WebSocket.send` as a plain N-API function (#14, echo and heartbeat).
//!
//! A napi-rs class method pays per call for its borrow bookkeeping (a
//! native-borrow scope, class identity checks, a hash lookup): ~2% of the
//! server's CPU in the heartbeat profile, on the one call every echoed
//! message makes. This function is bound to its server when created
//! (`NativeApp.sender()`) and reads its arguments with bare N-API:
//! `(id, data, isBinary[, compress])`, data a string (sent as its UTF-8), an
//! ArrayBuffer or any ArrayBufferView (its bytes), so an echoed message
//! needs no Buffer made for it. It returns what `send` did: 1 sent, 0
//! queued behind backpressure, 2 dropped, -1 not open, -2 data of another
//! kind (the caller converts it and calls again).

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::sys;

use crate::ws::ServerCore;

/// The sender function for `server`; the function holds the server until
/// it is collected.
pub(crate) fn sender(env: sys::napi_env, server: Arc<ServerCore>) -> napi::Result<sys::napi_value> {
    let data = Arc::into_raw(server) as *mut c_void;
    let mut f = ptr::null_mut();
    // SAFETY: N-API on the JS thread (called from a method); `data` stays
    // valid until the finalizer below takes it back.
    unsafe {
        let name = c"send";
        if sys::napi_create_function(env, name.as_ptr(), 4, Some(send_cb), data, &mut f) != sys::Status::napi_ok
            || sys::napi_add_finalizer(env, f, data, Some(release), ptr::null_mut(), ptr::null_mut())
                != sys::Status::napi_ok
        {
            drop(Arc::from_raw(data as *const ServerCore));
            return Err(napi::Error::from_reason("cannot create the send function"));
        }
    }
    Ok(f)
}

unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the pointer `sender` made with Arc::into_raw, released once.
    drop(unsafe { Arc::from_raw(data as *const ServerCore) });
}

thread_local! {
    /// A string's UTF-8, reused from send to send.
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

const WRONG_ARGUMENT: i32 = -2;

unsafe extern "C" fn send_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): N-API on the JS thread inside a callback; `data`
    // is the server `sender` bound, alive while this function is.
    unsafe {
        let mut argc = 4usize;
        let mut argv = [ptr::null_mut(); 4];
        let mut data = ptr::null_mut();
        let code = 'call: {
            if sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data)
                != sys::Status::napi_ok
                || argc < 3
            {
                break 'call WRONG_ARGUMENT;
            }
            let server = &*(data as *const ServerCore);
            let mut id = 0i64;
            let mut binary = false;
            if sys::napi_get_value_int64(env, argv[0], &mut id) != sys::Status::napi_ok
                || sys::napi_get_value_bool(env, argv[2], &mut binary) != sys::Status::napi_ok
            {
                break 'call WRONG_ARGUMENT;
            }
            // Optional: compress (permessage-deflate, where negotiated).
            let mut compress = false;
            if argc >= 4 {
                sys::napi_get_value_bool(env, argv[3], &mut compress);
            }
            let mut kind = 0;
            sys::napi_typeof(env, argv[1], &mut kind);
            let sent = if kind == sys::ValueType::napi_string {
                TEXT.with(|t| {
                    let mut t = t.borrow_mut();
                    let mut len = 0usize;
                    if sys::napi_get_value_string_utf8(env, argv[1], ptr::null_mut(), 0, &mut len)
                        != sys::Status::napi_ok
                    {
                        return Err(());
                    }
                    t.resize(len + 1, 0);
                    sys::napi_get_value_string_utf8(env, argv[1], t.as_mut_ptr().cast(), len + 1, &mut len);
                    Ok(server.send(id as u64, &t[..len], binary, compress))
                })
            } else {
                let mut p = ptr::null_mut();
                let mut len = 0usize;
                let mut is_ab = false;
                sys::napi_is_arraybuffer(env, argv[1], &mut is_ab);
                let got = if is_ab {
                    sys::napi_get_arraybuffer_info(env, argv[1], &mut p, &mut len)
                } else {
                    // Any ArrayBufferView: its own bytes (offset and length).
                    sys::napi_get_buffer_info(env, argv[1], &mut p, &mut len)
                };
                if got != sys::Status::napi_ok {
                    Err(())
                } else {
                    let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(p as *const u8, len) };
                    Ok(server.send(id as u64, bytes, binary, compress))
                }
            };
            match sent {
                Ok(s) => s.map_or(-1, |s| s as i32), // as SendStatus numbers them
                Err(()) => WRONG_ARGUMENT,
            }
        };
        let mut out = ptr::null_mut();
        sys::napi_create_int32(env, code, &mut out);
        out
    }
}
