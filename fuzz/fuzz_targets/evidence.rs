#![no_main]
//! Fuzz target: see `tagback::fuzzing::evidence`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::evidence(data));
