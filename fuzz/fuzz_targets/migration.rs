#![no_main]
//! Fuzz target: see `tagback::fuzzing::migration`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::migration(data));
