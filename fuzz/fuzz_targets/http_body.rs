//! Any bytes as an HTTP request body, chunked or by length, in one piece
//! or two: decoding never panics and does not depend on the split.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrosocket::fuzzing::http_body(data);
});
