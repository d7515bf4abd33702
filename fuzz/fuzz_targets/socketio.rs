//! Any Socket.IO packet text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::socketio(data);
});
