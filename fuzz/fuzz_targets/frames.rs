//! Any byte stream from a client, parsed the way a connection parses it:
//! must never panic, and every message handed up must respect the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::frame_stream(data, 64 * 1024);
});
