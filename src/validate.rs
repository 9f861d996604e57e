//! Checks on what people type: message text, names and email addresses.
//!
//! Invisible characters that change how text looks without showing (format characters,
//! bidi controls) are refused where they would make two contacts look alike; emails are
//! returned in Unicode NFC, so two spellings of one address are one contact.

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{BidiControl, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use widget_protocol::ErrorCode;

use crate::config::Limits;
use crate::error::{Error, Result};

/// Trimmed message text of 1..=max characters.
pub fn text(raw: &str, limits: &Limits) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(Error::rejected(
            ErrorCode::EmptyMessage,
            "message text is empty",
        ));
    }
    let n = t.chars().count();
    if n > limits.max_text_chars {
        return Err(Error::rejected(
            ErrorCode::MessageTooLong,
            format!(
                "message text is {n} characters; the limit is {}",
                limits.max_text_chars
            ),
        ));
    }
    Ok(t.to_string())
}

/// A trimmed person's name of 1..=max characters without control characters.
pub fn name(raw: &str, which: &str, limits: &Limits) -> Result<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > limits.max_name_chars {
        return Err(Error::rejected(
            ErrorCode::InvalidName,
            format!("{which} must be 1 to {} characters", limits.max_name_chars),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::rejected(
            ErrorCode::InvalidName,
            format!("{which} contains control characters"),
        ));
    }
    if t.chars().any(is_bidi_control) {
        return Err(Error::rejected(
            ErrorCode::InvalidName,
            format!("{which} contains invisible text-direction controls"),
        ));
    }
    Ok(t.to_string())
}

/// Unicode general category Cf (zero-width spaces and joiners, bidi marks and
/// embeddings, word joiners, the byte-order mark, the soft hyphen, tags, ...).
pub(crate) fn is_format(c: char) -> bool {
    CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
}

/// The Bidi_Control property: marks, embeddings, overrides and isolates.
pub(crate) fn is_bidi_control(c: char) -> bool {
    CodePointSetData::new::<BidiControl>().contains(c)
}

/// A trimmed email address in the common `local@domain.tld` form.
pub fn email(raw: &str, limits: &Limits) -> Result<String> {
    let t = raw.trim();
    let bad = |why: &str| {
        Error::rejected(
            ErrorCode::InvalidEmail,
            format!("not a valid email address: {why}"),
        )
    };
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    if t.chars().any(is_format) {
        return Err(bad("it contains invisible formatting characters"));
    }
    let nfc = ComposingNormalizerBorrowed::new_nfc().normalize(t);
    let t = nfc.as_ref();
    if t.chars().count() > limits.max_email_chars {
        return Err(bad(&format!(
            "longer than {} characters",
            limits.max_email_chars
        )));
    }
    let (local, domain) = t.rsplit_once('@').ok_or_else(|| bad("it has no @"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the part before @ must be 1 to 64 characters"));
    }
    let local_ok = local.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+/=?^_`{|}~.-".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
    });
    if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad(
            "the part before @ has characters an address cannot have",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("the domain needs a dot"));
    }
    for l in &labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(bad("the domain is malformed"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad("the domain has no valid top-level part"));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let l = Limits::default();
        for ok in [
            "ada@example.com",
            " Ada.Lovelace+x@Mail.Example.org ",
            "a@b.co",
            "ü@bücher.de",
        ] {
            assert!(email(ok, &l).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@-x.com",
            "ada@x..com",
            ".ada@x.com",
            "ada@x.c",
            "a\r\n@x.com",
            "ada@1.2",
        ] {
            let e = email(bad, &l).expect_err(bad);
            assert_eq!(e.code(), ErrorCode::InvalidEmail, "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(email(&long, &l).is_err());
    }

    #[test]
    fn emails_refuse_format_characters_and_come_back_in_nfc() {
        let l = Limits::default();
        for bad in [
            "ada\u{200B}@example.com",
            "ada@exa\u{200D}mple.com",
            "\u{202E}moc.elpmaxe@ada",
            "ada\u{2060}@example.com",
            "ada\u{2066}@example.com",
            "\u{FEFF}ada@example.com",
            "ada\u{00AD}@example.com",
            "ada@example.com\u{E0001}",
        ] {
            let e = email(bad, &l).expect_err(bad);
            assert_eq!(e.code(), ErrorCode::InvalidEmail, "{bad:?}");
        }
        let nfd = "jose\u{0301}@example.com";
        let nfc = "jos\u{00E9}@example.com";
        assert_eq!(email(nfd, &l).ok().as_deref(), Some(nfc));
        assert_eq!(email(nfc, &l).ok().as_deref(), Some(nfc));
        assert_eq!(
            email(" Ada.Lovelace+x@Mail.Example.org ", &l)
                .ok()
                .as_deref(),
            Some("Ada.Lovelace+x@Mail.Example.org"),
            "ASCII addresses are kept as they were"
        );
    }

    #[test]
    fn names_refuse_bidi_controls_but_keep_joiners() {
        let l = Limits::default();
        for bad in ["Ada\u{202E}", "\u{2067}Ada", "A\u{200F}da", "A\u{061C}da"] {
            let e = name(bad, "first name", &l).expect_err(bad);
            assert_eq!(e.code(), ErrorCode::InvalidName, "{bad:?}");
        }
        // Persian and Indic names need the zero-width (non-)joiner.
        assert!(name(
            "\u{0645}\u{06CC}\u{200C}\u{0631}\u{0648}\u{062F}",
            "first name",
            &l
        )
        .is_ok());
    }

    #[test]
    fn texts_and_names() {
        let l = Limits::default();
        assert_eq!(text("  hi ", &l).ok().as_deref(), Some("hi"));
        assert_eq!(
            text(" \n ", &l).map_err(|e| e.code()).err(),
            Some(ErrorCode::EmptyMessage)
        );
        assert_eq!(
            text(&"x".repeat(4001), &l).map_err(|e| e.code()).err(),
            Some(ErrorCode::MessageTooLong)
        );
        assert!(text(&"é".repeat(4000), &l).is_ok());
        assert!(name("Ada", "first name", &l).is_ok());
        assert!(name("", "first name", &l).is_err());
        assert!(name("A\u{0}", "first name", &l).is_err());
        assert!(name(&"x".repeat(101), "last name", &l).is_err());
    }
}
