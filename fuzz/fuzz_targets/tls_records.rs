//! What a hostile client can send a settled TLS 1.3 session (raw bytes and
//! records sealed with its own keys): must never panic, and what waits to
//! be sent must stay bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::tls_records(data);
});
