//! What an attachment is: its id (the SHA-256 of its bytes, in hex), its name (what the
//! uploader called it, made safe to show and to put in a header), its size, and its type
//! (read from the bytes, never from the client's name or `Content-Type`). Also how a
//! download must be presented (`Content-Disposition`: inline only for the four image
//! types; SVG and HTML are never served as such).
//!
//! Where the bytes live on disk is `files.rs`. This module does no I/O, knows nothing of
//! HTTP requests or the store, and must not trust anything the client says about a file
//! beyond the name it wants shown.

pub mod files;

use std::fmt;

/// Longest name kept, in characters; a longer one is cut (its extension kept).
pub const MAX_NAME_CHARS: usize = 200;

/// The name used when nothing of the client's name survives sanitising.
pub const FALLBACK_NAME: &str = "file";

/// The type of an attachment, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    /// Anything else, SVG and HTML included: only ever offered as a download.
    Other,
}

/// How many leading bytes `Kind::sniff` needs to decide.
pub const SNIFF_BYTES: usize = 12;

impl Kind {
    /// The type by magic number; what the client says is never consulted.
    pub fn sniff(head: &[u8]) -> Kind {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Kind::Png
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            Kind::Jpeg
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Kind::Gif
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Kind::Webp
        } else if head.starts_with(b"%PDF-") {
            Kind::Pdf
        } else {
            Kind::Other
        }
    }

    /// The media type it is served as.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Other => "application/octet-stream",
        }
    }

    /// Back from a stored media type; anything unknown is `Other`.
    pub fn from_mime(mime: &str) -> Kind {
        [Kind::Png, Kind::Jpeg, Kind::Gif, Kind::Webp, Kind::Pdf]
            .into_iter()
            .find(|k| k.mime() == mime)
            .unwrap_or(Kind::Other)
    }

    /// Only the four raster image types may be shown inline (as thumbnails).
    pub fn inline(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Gif | Kind::Webp)
    }
}

/// An attachment's id: the lowercase hex SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentId(String);

impl AttachmentId {
    /// From a digest computed over the bytes.
    pub fn from_digest(digest: &[u8]) -> AttachmentId {
        use std::fmt::Write;
        let mut s = String::with_capacity(64);
        for b in digest {
            let _ = write!(s, "{b:02x}");
        }
        AttachmentId(s)
    }

    /// Parses what a client sent: exactly 64 lowercase hex digits, or nothing (so an id
    /// can never name a path outside the attachments directory).
    pub fn parse(s: &str) -> Option<AttachmentId> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| AttachmentId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a message carries of an attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub name: String,
    pub size: u64,
    pub kind: Kind,
}

/// The client's name made safe: only its last path component (both `/` and `\` count),
/// no control, format or bidi characters, no leading dots (so no `..` or hidden files),
/// trimmed, at most `MAX_NAME_CHARS` characters with the extension kept; an empty result
/// is `FALLBACK_NAME`.
pub fn sanitize_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !crate::validate::is_format(*c)
                && !crate::validate::is_bidi_control(*c)
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return FALLBACK_NAME.to_string();
    }
    if cleaned.chars().count() <= MAX_NAME_CHARS {
        return cleaned.to_string();
    }
    let ext: String = match cleaned.rsplit_once('.') {
        Some((_, e)) if !e.is_empty() && e.chars().count() <= 10 => format!(".{e}"),
        _ => String::new(),
    };
    let keep = MAX_NAME_CHARS - ext.chars().count();
    let stem: String = cleaned.chars().take(keep).collect();
    format!("{}{ext}", stem.trim_end())
}

/// The `Content-Disposition` of a download: `inline` only for the image types, else
/// `attachment`; the name as an RFC 6266 / RFC 8187 `filename*` (UTF-8, percent-encoded)
/// with a plain-ASCII `filename` fallback for old clients.
pub fn content_disposition(a: &Attachment) -> String {
    let kind = if a.kind.inline() {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in a.name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Until messages record their attachments durably (the store's upload records), a
/// `send` or `reply` naming any is refused rather than acked without them.
pub fn not_yet(ids: &[String]) -> crate::error::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    Err(crate::error::Error::rejected(
        widget_protocol::ErrorCode::BadFrame,
        "attachments on messages are not accepted yet",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(Kind::sniff(b"\x89PNG\r\n\x1a\n...."), Kind::Png);
        assert_eq!(Kind::sniff(&[0xff, 0xd8, 0xff, 0xe0]), Kind::Jpeg);
        assert_eq!(Kind::sniff(b"GIF89a...."), Kind::Gif);
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Kind::Webp);
        assert_eq!(Kind::sniff(b"%PDF-1.7\n"), Kind::Pdf);
        assert_eq!(
            Kind::sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            Kind::Other
        );
        assert_eq!(Kind::sniff(b"<!doctype html><script>"), Kind::Other);
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WAVE"), Kind::Other);
        assert_eq!(Kind::sniff(b""), Kind::Other);
        assert!(!Kind::Pdf.inline() && !Kind::Other.inline() && Kind::Webp.inline());
        for k in [
            Kind::Png,
            Kind::Jpeg,
            Kind::Gif,
            Kind::Webp,
            Kind::Pdf,
            Kind::Other,
        ] {
            assert_eq!(Kind::from_mime(k.mime()), k);
        }
        assert_eq!(Kind::from_mime("image/svg+xml"), Kind::Other);
    }

    #[test]
    fn ids_are_64_lowercase_hex_digits_only() {
        let id = AttachmentId::from_digest(&[0xab; 32]);
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(AttachmentId::parse(id.as_str()), Some(id));
        assert_eq!(AttachmentId::parse(&"A".repeat(64)), None);
        assert_eq!(AttachmentId::parse("../../etc/passwd"), None);
        assert_eq!(AttachmentId::parse(&"a".repeat(63)), None);
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\x\\shot.png"), "shot.png");
        assert_eq!(sanitize_name("a\u{0}b\nc\u{202e}gpj.exe"), "abcgpj.exe");
        assert_eq!(sanitize_name(".."), FALLBACK_NAME);
        assert_eq!(sanitize_name(".bashrc"), "bashrc");
        assert_eq!(sanitize_name("dir/"), FALLBACK_NAME);
        assert_eq!(sanitize_name("  "), FALLBACK_NAME);
        let long = format!("{}.pdf", "é".repeat(300));
        let cut = sanitize_name(&long);
        assert_eq!(cut.chars().count(), MAX_NAME_CHARS);
        assert!(cut.ends_with(".pdf"));
    }

    #[test]
    fn only_images_are_inline_and_names_are_encoded() {
        let mut a = Attachment {
            id: AttachmentId::from_digest(&[0; 32]),
            name: "résumé \"final\";.pdf".into(),
            size: 3,
            kind: Kind::Pdf,
        };
        let d = content_disposition(&a);
        assert!(d.starts_with("attachment; filename=\""), "{d}");
        assert!(
            d.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B.pdf"),
            "{d}"
        );
        assert!(
            d.contains("filename=\"r_sum_ _final__.pdf\";"),
            "the fallback is plain ASCII: {d}"
        );
        a.kind = Kind::Png;
        assert!(content_disposition(&a).starts_with("inline;"));
    }
}
