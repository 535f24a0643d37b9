#![no_main]

// The checks are shared with the stable corpus-replay test (tests/fuzz_corpus.rs).
#[path = "../../tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::fuzzing::decode_v2(data));
