#![no_main]
//! Fuzz target: see `tagback::fuzzing::hook_stdin`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::hook_stdin(data));
