//! Any request head: parsing and upgrade validation must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::request_head(data);
});
