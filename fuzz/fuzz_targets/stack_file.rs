#![no_main]
//! Fuzz target: see `tagback::fuzzing::stack_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::stack_file(data));
