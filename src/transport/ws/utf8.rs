//! The UTF-8 check of a text message, made as its bytes arrive: a read of a frame still
//! in flight, a fragment once whole, the message once whole. Each byte of a frame is
//! checked once as it comes, so text that is not UTF-8 fails when the bad byte
//! arrives, however the peer fragments or chops it; a character cut in two by the
//! pieces is carried to the next one and is an error only if the message ends in it.
//!
//! Holds at most the three bytes of a cut character, never the text itself; it does
//! not know frames beyond the cursor into the one in progress.

use super::frame::{unmask_from, Violation, CLOSE_INVALID};

const NOT_UTF8: Violation = (CLOSE_INVALID, "text is not valid UTF-8");

/// The check of the text message in progress.
#[derive(Debug, Default)]
pub(super) struct Utf8Check {
    /// The first bytes of a character the last piece cut in two: `carry[..carried]`.
    carry: [u8; 3],
    carried: usize,
    /// Of the frame in progress: how many bytes of its payload were checked.
    pub(super) checked: usize,
}

impl Utf8Check {
    /// Checks the payload of the frame in progress as far as it has arrived (`so_far`,
    /// still masked), from where the last call stopped.
    pub(super) fn arrived(&mut self, so_far: &[u8], mask: [u8; 4]) -> Result<(), Violation> {
        let new = so_far.get(self.checked..).unwrap_or_default();
        if new.is_empty() {
            return Ok(());
        }
        let text = unmask_from(new, mask, self.checked);
        self.checked = so_far.len();
        self.push(&text)
    }

    /// Checks the rest of a whole fragment's payload (unmasked) that is not the last of
    /// its message; the next frame starts from its first byte.
    pub(super) fn fragment(&mut self, payload: &[u8]) -> Result<(), Violation> {
        let from = std::mem::take(&mut self.checked);
        self.push(payload.get(from..).unwrap_or_default())
    }

    /// The whole message as text; the next message starts a new check. The conversion
    /// checks it all (the one safe way to make a `String`), which is also the check of
    /// its last frame.
    pub(super) fn message(&mut self, bytes: Vec<u8>) -> Result<String, Violation> {
        *self = Utf8Check::default();
        String::from_utf8(bytes).map_err(|_| NOT_UTF8)
    }

    /// Checks the next bytes of the message's text.
    fn push(&mut self, mut piece: &[u8]) -> Result<(), Violation> {
        if self.carried > 0 {
            // Finish the cut character with the first bytes of this piece.
            let n = self.carried;
            let take = piece.len().min(4 - n);
            let mut joined = [0u8; 4];
            joined[..n].copy_from_slice(&self.carry[..n]);
            joined[n..n + take].copy_from_slice(&piece[..take]);
            let joined = &joined[..n + take];
            let done = match std::str::from_utf8(joined) {
                Ok(_) => joined.len(),
                // The character is whole; what follows it is checked with the rest.
                Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
                // Still cut: this piece was too short to finish it.
                Err(e) if e.error_len().is_none() => {
                    self.carry(joined);
                    return Ok(());
                }
                Err(_) => return Err(NOT_UTF8),
            };
            piece = &piece[done - n..];
            self.carried = 0;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry(&piece[e.valid_up_to()..]),
            Err(_) => return Err(NOT_UTF8),
        }
        Ok(())
    }

    /// Keeps the start of a character cut by the end of a piece (at most three bytes).
    fn carry(&mut self, start: &[u8]) {
        self.carried = start.len().min(self.carry.len());
        self.carry[..self.carried].copy_from_slice(&start[..self.carried]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::unmask;
    use super::*;

    /// Feeds `text` in pieces cut at `cuts`: the first failing piece, if any.
    fn check_in_pieces(text: &[u8], cuts: &[usize]) -> Option<usize> {
        let mut check = Utf8Check::default();
        let mut at = 0;
        for (i, &cut) in cuts.iter().chain([text.len()].iter()).enumerate() {
            if check.push(&text[at..cut]).is_err() {
                return Some(i);
            }
            at = cut;
        }
        None
    }

    #[test]
    fn text_cut_anywhere_passes_and_its_cut_characters_are_carried() {
        let text = "a é 日本 🎉 z".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(check_in_pieces(text, &[a, b]), None, "cut at {a} and {b}");
            }
        }
        // Byte by byte: at most three bytes are ever carried.
        let mut check = Utf8Check::default();
        for b in text {
            check.push(&[*b]).expect("valid");
            assert!(check.carried <= 3);
        }
        assert_eq!(check.carried, 0);
    }

    #[test]
    fn a_byte_that_can_never_be_utf8_fails_in_the_piece_that_brings_it() {
        // After a whole character, inside a cut one, and as a bad continuation of one.
        for (text, bad_at) in [
            (&b"ok \xFF rest"[..], 3),
            (b"caf\xC3\x28 rest", 4),
            (b"\xE6\x97\xFF rest", 2),
            (b"\xED\xA0\x80 surrogate", 1),
        ] {
            for cut in 0..=bad_at {
                // The piece that starts before the bad byte and holds it fails.
                assert_eq!(
                    check_in_pieces(text, &[cut, bad_at + 1]),
                    Some(1),
                    "{text:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_masked_frame_is_checked_from_where_the_last_read_stopped() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let payload = "café au lait, 日本".as_bytes();
        // Masking is its own inverse.
        let masked = unmask(payload, mask);
        let mut check = Utf8Check::default();
        for end in 0..=masked.len() {
            check.arrived(&masked[..end], mask).expect("valid");
            assert_eq!(check.checked, end);
        }
        check.fragment(payload).expect("nothing left to check");
        assert_eq!((check.checked, check.carried), (0, 0));
        let mut bad = payload.to_vec();
        bad[5] = 0xFF;
        let bad = unmask(&bad, mask);
        let mut check = Utf8Check::default();
        check.arrived(&bad[..5], mask).expect("valid so far");
        assert!(check.arrived(&bad[..6], mask).is_err());
    }

    #[test]
    fn a_message_ending_inside_a_character_is_not_text() {
        let mut check = Utf8Check::default();
        check.fragment(b"caf\xC3").expect("a cut character");
        assert!(check.message(b"caf\xC3".to_vec()).is_err());
        assert_eq!(check.message("café".into()), Ok("café".to_string()));
    }
}
