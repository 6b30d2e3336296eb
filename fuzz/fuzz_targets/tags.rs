#![no_main]
//! Fuzz target: see `tagback::fuzzing::tags`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::tags(data));
