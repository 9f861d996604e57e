//! How the compiled-in assets go over HTTP: compressed (brotli or gzip, as the
//! request's `Accept-Encoding` allows), with a strong `ETag` per representation, and a
//! `304 Not Modified` for a request that already holds it (`If-None-Match`).
//!
//! Each asset is compressed once, on first use, and kept for the life of the process
//! (they are a few tens of KiB). This module owns content negotiation and validators;
//! it knows nothing of which asset is which (that is `assets`) nor of other headers.

use std::collections::HashMap;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// A content coding the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    /// The `Content-Encoding` value; None for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }
}

/// The best coding `accept` (an `Accept-Encoding` value) allows: brotli, then gzip,
/// then identity. A coding with `q=0` is refused; `*` stands for any not named.
pub fn negotiate(accept: Option<&str>) -> Coding {
    let Some(accept) = accept else {
        return Coding::Identity;
    };
    let mut named: HashMap<String, bool> = HashMap::new();
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        named.insert(name, !refused);
    }
    let any = named.get("*").copied();
    let allows = |name: &str| named.get(name).copied().or(any).unwrap_or(false);
    if allows("br") {
        Coding::Brotli
    } else if allows("gzip") || allows("x-gzip") {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// Whether an `If-None-Match` value names `etag` (or is `*`): the client holds it.
/// Comparison is weak, as RFC 9110 asks for `If-None-Match`.
pub fn holds(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(value) = if_none_match else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = opaque(etag);
    value
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

/// One asset in every coding, with its validators.
pub struct Encoded {
    identity: &'static [u8],
    gzip: Vec<u8>,
    brotli: Vec<u8>,
    /// The hash of the identity body, hex; each representation's tag adds a suffix.
    hash: String,
}

impl Encoded {
    fn new(body: &'static [u8]) -> Encoded {
        let digest = Sha256::digest(body);
        let hash = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Encoded {
            identity: body,
            gzip: gzip(body),
            brotli: brotli(body),
            hash,
        }
    }

    /// The body in `coding`. A coding that came out no smaller is sent as identity.
    pub fn body(&'static self, coding: Coding) -> (Coding, &'static [u8]) {
        let body: &'static [u8] = match coding {
            Coding::Identity => self.identity,
            Coding::Gzip => &self.gzip,
            Coding::Brotli => &self.brotli,
        };
        if body.is_empty() || body.len() >= self.identity.len() {
            (Coding::Identity, self.identity)
        } else {
            (coding, body)
        }
    }

    /// The strong `ETag` of the representation in `coding` (quoted).
    pub fn etag(&self, coding: Coding) -> String {
        format!("\"{}{}\"", self.hash, coding.suffix())
    }
}

/// The encodings of `body`, made on the first call for `path` and kept.
pub fn encoded(path: &'static str, body: &'static str) -> &'static Encoded {
    static ALL: OnceLock<std::sync::Mutex<HashMap<&'static str, &'static Encoded>>> =
        OnceLock::new();
    let all = ALL.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked while inserting: the map
    // itself is whole (inserts are single calls), so go on with it.
    let mut map = all.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(path)
        .or_insert_with(|| Box::leak(Box::new(Encoded::new(body.as_bytes()))))
}

/// Empty when compression fails (it cannot for an in-memory writer): identity is sent.
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(body)
        .and_then(|_| e.finish())
        .unwrap_or_default()
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    match brotli::BrotliCompress(&mut &body[..], &mut out, &params) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_brotli_then_gzip_and_honours_q_zero() {
        assert_eq!(negotiate(None), Coding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br")), Coding::Brotli);
        assert_eq!(negotiate(Some("gzip")), Coding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0.5")), Coding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0")), Coding::Identity);
        assert_eq!(negotiate(Some("*")), Coding::Brotli);
        assert_eq!(negotiate(Some("*, br;q=0")), Coding::Gzip);
        assert_eq!(negotiate(Some("identity")), Coding::Identity);
        assert_eq!(negotiate(Some(",;;, ,q=")), Coding::Identity);
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_per_representation() {
        let tag = "\"abc-gz\"";
        assert!(holds(Some("\"abc-gz\""), tag));
        assert!(holds(Some("W/\"abc-gz\""), tag));
        assert!(holds(Some("\"x\", \"abc-gz\""), tag));
        assert!(holds(Some("*"), tag));
        assert!(!holds(Some("\"abc\""), tag), "another representation");
        assert!(!holds(None, tag));
    }

    #[test]
    fn every_coding_decodes_to_the_body_and_tags_differ() {
        use std::io::Read;
        let body: &'static str = Box::leak("frontdesk ".repeat(500).into_boxed_str());
        let e = encoded("/test-asset", body);
        let (c, gz) = e.body(Coding::Gzip);
        assert_eq!(c, Coding::Gzip);
        let mut out = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut out)
            .expect("gunzips");
        assert_eq!(out, body);
        let (c, br) = e.body(Coding::Brotli);
        assert_eq!(c, Coding::Brotli);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).expect("decompresses");
        assert_eq!(out, body.as_bytes());
        let tags = [Coding::Identity, Coding::Gzip, Coding::Brotli].map(|c| e.etag(c));
        assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
        // Made once: the same encodings on the next call.
        assert!(std::ptr::eq(e, encoded("/test-asset", body)));
    }

    #[test]
    fn a_body_that_does_not_shrink_goes_as_identity() {
        let e = encoded("/tiny", "x");
        assert_eq!(e.body(Coding::Brotli).0, Coding::Identity);
        assert_eq!(e.body(Coding::Gzip), (Coding::Identity, &b"x"[..]));
    }
}
