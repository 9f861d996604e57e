//! Feeds arbitrary bytes to every frame decoder of widget-protocol (visitor and agent,
//! both directions). A frame that decodes must encode and decode back to itself; an
//! error must keep its wording and stay short, whatever the input. The property lives in
//! `widget_protocol::fuzzing::check_frame_bytes`, which `tests/fuzz_corpus.rs` also
//! runs over the committed seeds in `corpus/decode_frames/`.
//!
//! Run from `widget-protocol/` (nightly):
//!
//! ```text
//! cargo +nightly fuzz run decode_frames fuzz/corpus/work fuzz/corpus/decode_frames -- -max_len=70000
//! ```
//!
//! New inputs go to the first directory (`corpus/work`, ignored by git); copy a
//! finding worth keeping into `corpus/decode_frames/` under a descriptive name.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    widget_protocol::fuzzing::check_frame_bytes(data);
});
