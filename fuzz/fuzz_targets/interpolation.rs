#![no_main]
//! Fuzz target: see `tagback::fuzzing::interpolation`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::interpolation(data));
