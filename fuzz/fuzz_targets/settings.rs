#![no_main]
//! Fuzz target: see `tagback::fuzzing::settings`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::settings(data));
