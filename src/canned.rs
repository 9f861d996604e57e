//! Canned replies: what an admin may save in an inbox, and what a save or a delete does
//! to the inbox's list.
//!
//! Owns the checks (title, text, shortcut, uniqueness, the count per inbox) as pure
//! functions; the store runs [`plan_save`] and [`plan_delete`] inside its one write, so
//! two admins saving the same shortcut at once cannot both win. It never writes, and
//! says nothing about who may ask (that is the agent session's role check).

use widget_protocol::{CannedReply, ErrorCode};

use crate::error::Error;

pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 4000;
pub const MAX_SHORTCUT_CHARS: usize = 32;
pub const MAX_PER_INBOX: usize = 200;

/// Why a canned reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedError {
    #[error("{field} must not be blank")]
    Blank { field: &'static str },
    #[error("{field} is {n} characters; the limit is {limit}")]
    TooLong {
        field: &'static str,
        n: usize,
        limit: usize,
    },
    #[error(
        "shortcut {0:?} must be 1 to {MAX_SHORTCUT_CHARS} of a-z, 0-9, _ and - (typed after /)"
    )]
    BadShortcut(String),
    #[error("shortcut /{0} is taken by another canned reply of this inbox")]
    TakenShortcut(String),
    #[error("this inbox has {MAX_PER_INBOX} canned replies, the most it keeps")]
    TooMany,
    #[error("no such canned reply")]
    NotFound,
}

impl From<CannedError> for Error {
    fn from(e: CannedError) -> Self {
        let code = match e {
            CannedError::NotFound => ErrorCode::NotFound,
            _ => ErrorCode::BadFrame,
        };
        Error::rejected(code, e.to_string())
    }
}

/// A reply's title, text and shortcut as checked: trimmed, the shortcut folded to
/// lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub text: String,
    pub shortcut: String,
}

impl Draft {
    pub fn check(title: &str, text: &str, shortcut: &str) -> Result<Draft, CannedError> {
        let shortcut = shortcut.trim().to_lowercase();
        let valid = (1..=MAX_SHORTCUT_CHARS).contains(&shortcut.len())
            && shortcut
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(CannedError::BadShortcut(
                shortcut.chars().take(40).collect(),
            ));
        }
        Ok(Draft {
            title: bounded(title, "title", MAX_TITLE_CHARS)?,
            text: bounded(text, "text", MAX_TEXT_CHARS)?,
            shortcut,
        })
    }

    pub fn into_reply(self, id: String, inbox: String) -> CannedReply {
        CannedReply {
            id,
            inbox,
            title: self.title,
            text: self.text,
            shortcut: self.shortcut,
        }
    }
}

fn bounded(s: &str, field: &'static str, limit: usize) -> Result<String, CannedError> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 {
        return Err(CannedError::Blank { field });
    }
    if n > limit {
        return Err(CannedError::TooLong { field, n, limit });
    }
    Ok(s.to_string())
}

/// Whether `reply` may be stored among the inbox's `existing` replies: as a new one
/// (`create`) within the count, or in place of the one with its id; its shortcut not
/// another's.
pub fn plan_save(
    existing: &[CannedReply],
    reply: &CannedReply,
    create: bool,
) -> Result<(), CannedError> {
    let known = existing.iter().any(|r| r.id == reply.id);
    if !create && !known {
        return Err(CannedError::NotFound);
    }
    if create && existing.len() >= MAX_PER_INBOX {
        return Err(CannedError::TooMany);
    }
    if existing
        .iter()
        .any(|r| r.id != reply.id && r.shortcut == reply.shortcut)
    {
        return Err(CannedError::TakenShortcut(reply.shortcut.clone()));
    }
    Ok(())
}

/// Whether the reply `id` is there to delete.
pub fn plan_delete(existing: &[CannedReply], id: &str) -> Result<(), CannedError> {
    if existing.iter().any(|r| r.id == id) {
        Ok(())
    } else {
        Err(CannedError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str, shortcut: &str) -> CannedReply {
        Draft::check("Title", "Text", shortcut)
            .expect("valid")
            .into_reply(id.into(), "default".into())
    }

    #[test]
    fn drafts_are_trimmed_bounded_and_the_shortcut_folded() {
        let d = Draft::check(" Hi ", " Hello! ", " Ship-2_X ").expect("valid");
        assert_eq!((d.title.as_str(), d.text.as_str()), ("Hi", "Hello!"));
        assert_eq!(d.shortcut, "ship-2_x");
        for bad in ["", "has space", "é", "/ship", &"a".repeat(33)] {
            assert!(
                matches!(
                    Draft::check("t", "x", bad),
                    Err(CannedError::BadShortcut(_))
                ),
                "{bad}"
            );
        }
        assert!(Draft::check("t", "x", &"a".repeat(32)).is_ok());
        let e = Draft::check(&"t".repeat(101), "x", "a").expect_err("long title");
        assert!(e.to_string().contains("title is 101"));
        assert!(Draft::check(&"t".repeat(100), &"x".repeat(4000), "a").is_ok());
        let e = Draft::check("t", &"x".repeat(4001), "a").expect_err("long text");
        assert!(e.to_string().contains("text is 4001"));
        assert_eq!(
            Draft::check("  ", "x", "a"),
            Err(CannedError::Blank { field: "title" })
        );
    }

    #[test]
    fn shortcuts_are_unique_per_inbox_and_the_count_is_bounded() {
        let list = vec![reply("1", "ship"), reply("2", "hours")];
        assert!(plan_save(&list, &reply("3", "refund"), true).is_ok());
        assert_eq!(
            plan_save(&list, &reply("3", "ship"), true),
            Err(CannedError::TakenShortcut("ship".into()))
        );
        // Its own shortcut is not taken from itself; another's is.
        assert!(plan_save(&list, &reply("1", "ship"), false).is_ok());
        assert!(plan_save(&list, &reply("1", "hours"), false).is_err());
        assert_eq!(
            plan_save(&list, &reply("9", "new"), false),
            Err(CannedError::NotFound)
        );
        let full: Vec<_> = (0..MAX_PER_INBOX)
            .map(|i| reply(&i.to_string(), &format!("s{i}")))
            .collect();
        assert_eq!(
            plan_save(&full, &reply("x", "x"), true),
            Err(CannedError::TooMany)
        );
        assert!(
            plan_save(&full, &reply("0", "s0"), false).is_ok(),
            "an edit"
        );
        assert!(plan_delete(&list, "2").is_ok());
        assert_eq!(plan_delete(&list, "3"), Err(CannedError::NotFound));
    }
}
