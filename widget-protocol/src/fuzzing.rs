//! The property every input must keep, shared by the fuzz target
//! (`fuzz/fuzz_targets/decode_frames.rs`) and the test that replays its committed corpus
//! (`tests/fuzz_corpus.rs`), so both check exactly the same thing.
//!
//! Not part of the protocol's API: hidden from the docs and free to change.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{decode, encode, AgentClient, AgentServer, VisitorClient, VisitorServer};

/// The longest a [`crate::DecodeError`] message may be, whatever the input: the message
/// is built from our own types' names, so it must not grow with what the client sent.
pub const MAX_ERROR_LEN: usize = 400;

/// Reads `data` as every kind of frame and panics if a property breaks:
///
/// - decoding never panics (and cannot overflow the stack: serde_json stops at 128 levels);
/// - a frame that decodes encodes to JSON that decodes to an equal frame, and encoding
///   that again gives the same text;
/// - an error message is short and says which kind of problem it was.
///
/// Bytes that are not UTF-8 are read lossily: a WebSocket text message is always UTF-8
/// (binary messages never reach the decoder), and the replacement characters still
/// exercise the parser.
pub fn check_frame_bytes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check::<VisitorClient>(&text);
    check::<VisitorServer>(&text);
    check::<AgentClient>(&text);
    check::<AgentServer>(&text);
}

fn check<T>(text: &str)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let kind = std::any::type_name::<T>();
    match decode::<T>(text) {
        Ok(frame) => {
            let encoded = encode(&frame);
            let again: T = decode(&encoded)
                .unwrap_or_else(|e| panic!("{kind}: our own encoding {encoded} fails: {e}"));
            assert_eq!(again, frame, "{kind}: {encoded} decodes to another frame");
            assert_eq!(encode(&again), encoded, "{kind}: encoding is not stable");
        }
        Err(e) => {
            assert!(
                e.0.len() <= MAX_ERROR_LEN,
                "{kind}: error message of {} bytes: {}",
                e.0.len(),
                e.0
            );
            assert!(
                e.0.starts_with("frame is not valid JSON")
                    || e.0.starts_with("frame does not match the protocol"),
                "{kind}: unexpected error wording: {}",
                e.0
            );
        }
    }
}
