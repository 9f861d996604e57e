//! Chatflow settings: what admins may set, checked before they are stored.
//!
//! Owns validation and the built-in texts. The decisions a chatflow drives (when to
//! prompt, when to follow up) live in `capture` and `followup`.

use widget_protocol::{AwayMode, Chatflow, ErrorCode};

use crate::error::{Error, Result};

pub const DEFAULT_PROMPT: &str =
    "Leave your email and we'll get back to you there if you're gone when we reply.";
pub const DEFAULT_AWAY: &str = "We're away right now, but we'll get back to you as soon as we can.";
/// The longest custom text (prompt or away message).
pub const MAX_TEXT_CHARS: usize = 1000;
pub const MAX_DELAY_SECS: u64 = 86_400;

/// Checks an admin's chatflow; the error says which field is wrong.
pub fn validate(mut c: Chatflow) -> Result<Chatflow> {
    let bad = |m: String| Error::rejected(ErrorCode::BadFrame, m);
    if c.email_capture.delay_secs == 0 || c.email_capture.delay_secs > MAX_DELAY_SECS {
        return Err(bad(format!(
            "email_capture.delay_secs must be 1 to {MAX_DELAY_SECS}, got {}",
            c.email_capture.delay_secs
        )));
    }
    if c.follow_up.delay_secs == 0 || c.follow_up.delay_secs > MAX_DELAY_SECS {
        return Err(bad(format!(
            "follow_up.delay_secs must be 1 to {MAX_DELAY_SECS}, got {}",
            c.follow_up.delay_secs
        )));
    }
    c.email_capture.message = text(c.email_capture.message.take(), "email_capture.message")?;
    c.away.message = text(c.away.message.take(), "away.message")?;
    Ok(c)
}

fn text(t: Option<String>, field: &str) -> Result<Option<String>> {
    let Some(t) = t else { return Ok(None) };
    let t = t.trim().to_string();
    if t.is_empty() {
        return Ok(None);
    }
    let n = t.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(Error::rejected(
            ErrorCode::BadFrame,
            format!("{field} is {n} characters; the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(Some(t))
}

/// The prompt text an inbox uses.
pub fn prompt_text(c: &Chatflow) -> String {
    c.email_capture
        .message
        .clone()
        .unwrap_or_else(|| DEFAULT_PROMPT.to_string())
}

/// Whether the inbox is away now, given whether any of its agents is connected.
pub fn away_active(c: &Chatflow, agents_online: bool) -> bool {
    match c.away.mode {
        AwayMode::Off => false,
        AwayMode::Always => true,
        AwayMode::NoAgentsOnline => !agents_online,
    }
}

pub fn away_text(c: &Chatflow) -> String {
    c.away
        .message
        .clone()
        .unwrap_or_else(|| DEFAULT_AWAY.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_delays_and_long_texts() {
        let mut c = Chatflow::default();
        assert!(validate(c.clone()).is_ok());
        c.email_capture.delay_secs = 0;
        assert!(validate(c.clone()).is_err());
        c.email_capture.delay_secs = 86_401;
        let e = validate(c.clone()).expect_err("too long a delay");
        assert!(e.to_string().contains("delay_secs"));
        c.email_capture.delay_secs = 5;
        c.away.message = Some("x".repeat(1001));
        assert!(validate(c.clone())
            .expect_err("long")
            .to_string()
            .contains("away.message"));
        c.away.message = Some("  ".into());
        assert_eq!(validate(c).expect("blank is none").away.message, None);
    }

    #[test]
    fn away_modes() {
        let mut c = Chatflow::default();
        assert!(!away_active(&c, false));
        c.away.mode = AwayMode::Always;
        assert!(away_active(&c, true));
        c.away.mode = AwayMode::NoAgentsOnline;
        assert!(away_active(&c, false) && !away_active(&c, true));
    }
}
