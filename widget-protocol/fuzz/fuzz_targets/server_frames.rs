//! Feeds arbitrary bytes to the server's side of frame decoding: decode as a visitor and
//! as an agent frame, then the stateless checks the sessions apply. The property lives
//! in `frontdesk::fuzzing::check_client_bytes`, which `tests/it/fuzz_corpus.rs` also runs
//! over the committed seeds in `corpus/decode_frames/`.
//!
//! Run from `widget-protocol/` (nightly):
//!
//! ```text
//! cargo +nightly fuzz run server_frames fuzz/corpus/work-server fuzz/corpus/decode_frames -- -max_len=70000
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frontdesk::fuzzing::check_client_bytes(data);
});
