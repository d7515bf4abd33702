//! Any message from Redis (the adapter's broadcasts, requests, responses).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::redis_message(data);
});
