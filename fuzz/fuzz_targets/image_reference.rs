#![no_main]
//! Fuzz target: see `tagback::fuzzing::image_reference`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagback::fuzzing::image_reference(data));
