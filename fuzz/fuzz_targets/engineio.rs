//! Any Engine.IO polling body or WebSocket text frame.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::engineio(data);
});
