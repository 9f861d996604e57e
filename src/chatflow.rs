//! Chatflow settings: what admins may set, checked before they are stored.
//!
//! Owns validation and the built-in texts. The decisions a chatflow drives (when to
//! prompt, when to follow up) live in `capture` and `followup`.

use widget_protocol::{AwayMode, AwayState, Chatflow, ErrorCode, Millis};

use crate::error::{Error, Result};
use crate::hours::{self, Schedule};

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
    if let Some(h) = &mut c.hours {
        h.time_zone = h.time_zone.trim().to_string();
        Schedule::compile(h).map_err(|e| bad(e.to_string()))?;
    }
    if c.away.mode == AwayMode::OutsideHours && c.hours.is_none() {
        return Err(bad(
            "away.mode outside_hours needs hours (a time_zone and a weekly schedule)".into(),
        ));
    }
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

/// Whether the inbox is away at `now`, given whether any of its agents is connected,
/// with its away text, and, when away outside its business hours, the next opening.
/// The one rule for "away": the welcome and a first message both ask it.
pub fn away(c: &Chatflow, agents_online: bool, now: Millis) -> AwayState {
    let (active, back_at) = match c.away.mode {
        AwayMode::Off => (false, None),
        AwayMode::Always => (true, None),
        AwayMode::NoAgentsOnline => (!agents_online, None),
        AwayMode::OutsideHours => match c.hours.as_ref().map(Schedule::compile) {
            Some(Ok(s)) if !hours::is_open(&s, now) => (true, hours::next_opening(&s, now)),
            Some(Ok(_)) => (false, None),
            // Checked when stored, so only a time zone dropped from a later tz
            // database lands here: better open than away for good.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "stored business hours no longer compile");
                (false, None)
            }
            None => (false, None),
        },
    };
    AwayState {
        active,
        message: active.then(|| away_text(c)),
        back_at,
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
        assert!(!away(&c, false, 0).active);
        c.away.mode = AwayMode::Always;
        let a = away(&c, true, 0);
        assert!(a.active && a.message.as_deref() == Some(DEFAULT_AWAY) && a.back_at.is_none());
        c.away.mode = AwayMode::NoAgentsOnline;
        assert!(away(&c, false, 0).active && !away(&c, true, 0).active);
    }

    #[test]
    fn outside_hours_is_away_with_the_next_opening_whoever_is_online() {
        use widget_protocol::{Hours, Interval, Weekly};
        let mut c = Chatflow::default();
        c.away.mode = AwayMode::OutsideHours;
        assert!(validate(c.clone())
            .expect_err("needs hours")
            .to_string()
            .contains("needs hours"));
        // 1970-01-01 was a Thursday: open Thursdays 10:00-11:00 UTC.
        c.hours = Some(Hours {
            time_zone: " UTC ".into(),
            weekly: Weekly {
                thu: vec![Interval {
                    from: "10:00".into(),
                    to: "11:00".into(),
                }],
                ..Weekly::default()
            },
            holidays: vec![],
        });
        let c = validate(c).expect("valid");
        assert_eq!(c.hours.as_ref().map(|h| h.time_zone.as_str()), Some("UTC"));
        let hour = 3_600_000;
        let a = away(&c, true, 9 * hour);
        assert!(a.active && a.message.is_some());
        assert_eq!(a.back_at, Some(10 * hour));
        assert_eq!(away(&c, false, 10 * hour), AwayState::default());
        assert_eq!(
            away(&c, true, 11 * hour).back_at,
            Some((7 * 24 + 10) * hour)
        );
    }
}
