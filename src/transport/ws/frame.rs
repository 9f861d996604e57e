//! One frame on the wire: the opcodes and close codes, a client frame's header (parsed
//! and checked against our limits as soon as its bytes are there), unmasking, and what
//! a close frame may carry.
//!
//! Pure functions over bytes: no state, no I/O, and nothing about the message a frame
//! belongs to.

pub(super) const OP_CONTINUE: u8 = 0x0;
pub(super) const OP_TEXT: u8 = 0x1;
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
pub(super) const OP_PING: u8 = 0x9;
pub(super) const OP_PONG: u8 = 0xA;

pub(super) const CLOSE_NORMAL: u16 = 1000;
pub(super) const CLOSE_PROTOCOL: u16 = 1002;
pub(super) const CLOSE_INVALID: u16 = 1007;
pub(super) const CLOSE_TOO_BIG: u16 = 1009;
pub(super) const CLOSE_POLICY: u16 = widget_protocol::close::MESSAGE_TIMEOUT;

/// The peer broke the protocol or our limits: the close code to answer with, and why.
pub(super) type Violation = (u16, &'static str);

/// A frame's first bytes, once all of them are there.
pub(super) struct Header {
    pub(super) fin: bool,
    pub(super) opcode: u8,
    pub(super) mask: [u8; 4],
    /// Where the payload starts and ends in the bytes parsed.
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The frame at the start of `data`: None while bytes are missing.
pub(super) fn parse(data: &[u8], max_frame: usize) -> Result<Option<Header>, Violation> {
    Ok(parse_head(data, max_frame)?.filter(|h| data.len() >= h.end))
}

/// The header of the frame at the start of `data`, once the header itself is there: its
/// payload may still be arriving (`end` past the end of `data`).
pub(super) fn parse_head(data: &[u8], max_frame: usize) -> Result<Option<Header>, Violation> {
    let [b0, b1, ..] = *data else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err((
            CLOSE_PROTOCOL,
            "reserved bits set (no extension was agreed)",
        ));
    }
    let opcode = b0 & 0x0F;
    let fin = b0 & 0x80 != 0;
    if !matches!(
        opcode,
        OP_CONTINUE | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err((CLOSE_PROTOCOL, "unknown opcode"));
    }
    if b1 & 0x80 == 0 {
        return Err((CLOSE_PROTOCOL, "client frames must be masked"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match data.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match data.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && (len > 125 || !fin) {
        return Err((CLOSE_PROTOCOL, "control frames are short and whole"));
    }
    let len = match usize::try_from(len) {
        Ok(l) if l <= max_frame => l,
        _ => return Err((CLOSE_TOO_BIG, "frame larger than the limit")),
    };
    let Some(mask) = data
        .get(at..at + 4)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
    else {
        return Ok(None);
    };
    let start = at + 4;
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        start,
        end: start + len,
    }))
}

pub(super) fn unmask(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    unmask_from(payload, mask, 0)
}

/// Unmasks payload bytes that start `offset` bytes into their frame's payload.
pub(super) fn unmask_from(payload: &[u8], mask: [u8; 4], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[(offset + i) % 4])
        .collect()
}

/// Whether a close frame's payload is one a peer may send: empty, or a code that is
/// allowed on the wire followed by UTF-8.
pub(super) fn close_payload_ok(p: &[u8]) -> Result<Option<u16>, Violation> {
    match p {
        [] => Ok(None),
        [_] => Err((CLOSE_PROTOCOL, "close frame of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err((CLOSE_PROTOCOL, "close code not allowed"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err((CLOSE_INVALID, "close reason is not valid UTF-8"));
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::client_frame;
    use super::*;

    #[test]
    fn a_frame_parses_only_once_all_of_it_is_there() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let f = client_frame(true, OP_BINARY, &payload);
            for cut in [0, 1, 2, 3, f.len() / 2, f.len() - 1] {
                match parse(&f[..cut], 100_000) {
                    Ok(None) => {}
                    _ => panic!("a {len}-byte payload cut at {cut} parsed"),
                }
            }
            let h = match parse(&f, 100_000) {
                Ok(Some(h)) => h,
                _ => panic!("a whole {len}-byte frame did not parse"),
            };
            assert_eq!(h.end, f.len());
            assert_eq!(unmask(&f[h.start..h.end], h.mask), payload);
        }
    }

    #[test]
    fn broken_frames_get_the_close_code_they_deserve() {
        let code = |f: &[u8], max| parse(f, max).err().map(|(c, _)| c);
        let mut unmasked = client_frame(true, OP_TEXT, b"hi");
        unmasked[1] &= 0x7F;
        assert_eq!(code(&unmasked, 100), Some(CLOSE_PROTOCOL));
        let mut reserved = client_frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        assert_eq!(code(&reserved, 100), Some(CLOSE_PROTOCOL));
        assert_eq!(
            code(&client_frame(true, 0x3, b""), 100),
            Some(CLOSE_PROTOCOL)
        );
        assert_eq!(
            code(&client_frame(false, OP_PING, b""), 100),
            Some(CLOSE_PROTOCOL)
        );
        assert_eq!(
            code(&client_frame(true, OP_PING, &[0; 126]), 1000),
            Some(CLOSE_PROTOCOL)
        );
        // Too big is known from the header alone, before the payload arrives.
        let big = client_frame(true, OP_TEXT, &[b'a'; 101]);
        assert_eq!(code(&big[..4], 100), Some(CLOSE_TOO_BIG));
        assert_eq!(close_payload_ok(&[0x03, 0xe8]), Ok(Some(1000)));
        assert!(close_payload_ok(&[0x03]).is_err());
        assert!(
            close_payload_ok(&[0x03, 0xed]).is_err(),
            "1005 is not for the wire"
        );
        assert_eq!(
            close_payload_ok(&[0x03, 0xe8, 0xff]).err().map(|(c, _)| c),
            Some(CLOSE_INVALID)
        );
    }
}
