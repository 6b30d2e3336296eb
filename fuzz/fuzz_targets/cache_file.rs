#![no_main]
//! Fuzz target: see `tagback::fuzzing::cache_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::cache_file(data));
