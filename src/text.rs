//! Text and time helpers for what frontdesk writes for people outside the widget: email
//! headers and bodies, and the command line's listings.
//!
//! Pure functions over strings and milliseconds since the epoch. They must not know
//! where the text goes (no mail, store or protocol types), so any module can use them.

use widget_protocol::Millis;

/// Text for a header: control characters (CR, LF, tabs…) and line separators become
/// spaces, runs of spaces one, at most 200 characters. Headers built from user input
/// can then never start a new header line.
pub fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(199).collect::<String>() + "…";
    }
    out
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2025-11-25 14:03 UTC` for milliseconds since the epoch.
pub fn utc_minute(ms: Millis) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `2025-11-25T14:03:07Z` for milliseconds since the epoch.
pub fn utc_rfc3339(ms: Millis) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Date and time in UTC (proleptic Gregorian calendar, days-from-civil inverted).
fn civil(ms: Millis) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_every_line_break() {
        assert_eq!(
            one_line("Eve\r\nBcc: x@y.z\u{2028}\tHi  \u{85}there"),
            "Eve Bcc: x@y.z Hi there"
        );
        assert_eq!(one_line(&"a".repeat(300)).chars().count(), 200);
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_minute(1_764_082_800_123), "2025-11-25 15:00 UTC");
        assert_eq!(utc_rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(-1000), "1969-12-31T23:59:59Z");
    }
}
