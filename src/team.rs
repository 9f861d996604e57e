//! Team administration: what an admin may ask to change in agents and inboxes while
//! the server runs, checked before anything is written, and the team as admins see it.
//!
//! Owns the rules of the admin frames: the limits on names, origins and widget
//! settings (with a message saying which field is wrong), the guard that keeps an admin
//! from revoking or demoting themselves, and the `team` frame's view of the records. It
//! must not write (the store's [`crate::store::api::Admin`] does, through `agents` and
//! `inboxes`) nor know connections (the session closes them, `fanout` tells the team).

use widget_protocol::{ErrorCode, Role, TeamAgent, TeamInbox, WidgetSettings};

use crate::agents::AgentChange;
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::ids::AgentId;
use crate::inboxes::{normalize_origin, Inboxes};
use crate::store::api::Admin;
use crate::store::records::{AgentRecord, InboxRecord};
use crate::validate;

/// The most origins an inbox allows.
pub const MAX_ORIGINS: usize = 50;
/// The most inboxes one agent is a member of.
pub const MAX_MEMBERSHIPS: usize = 100;
/// The widget's title, in characters.
pub const MAX_TITLE: usize = 60;
/// The widget's greeting, in characters.
pub const MAX_GREETING: usize = 500;

/// Where an invite link points, before its token.
pub const INVITE_PREFIX: &str = "/inbox#invite=";

fn bad(message: impl Into<String>) -> Error {
    Error::rejected(ErrorCode::BadFrame, message)
}

/// The same answer for an agent id that is not a UUID, unknown, or revoked.
pub fn no_such_agent() -> Error {
    Error::rejected(ErrorCode::NotFound, "no such agent")
}

/// An agent id from a frame: `not_found` when it is not one.
pub fn agent_id(raw: &str) -> Result<AgentId> {
    AgentId::parse(raw).ok_or_else(no_such_agent)
}

/// A name the team sees (an agent's or an inbox's): 1..=100 characters, trimmed.
pub fn name(raw: &str, which: &str, limits: &Limits) -> Result<String> {
    validate::name(raw, which, limits)
}

/// A display name: blank (or null) means none, visitors then see the name.
pub fn display_name(raw: Option<&str>, limits: &Limits) -> Result<Option<String>> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => validate::name(t, "display_name", limits).map(Some),
        None => Ok(None),
    }
}

/// Inbox keys an agent is to be a member of: each one existing, no repeats, at most
/// [`MAX_MEMBERSHIPS`].
pub fn memberships(raw: &[String], inboxes: &Inboxes) -> Result<Vec<String>> {
    if raw.len() > MAX_MEMBERSHIPS {
        return Err(bad(format!("inboxes: at most {MAX_MEMBERSHIPS} per agent")));
    }
    let mut keys: Vec<String> = Vec::with_capacity(raw.len());
    for k in raw {
        if inboxes.get(k).is_none() {
            return Err(Error::rejected(
                ErrorCode::NotFound,
                "inboxes: no inbox has one of these keys",
            ));
        }
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    Ok(keys)
}

/// Allowed origins as browsers send them (`https://host[:port]`), no repeats, at most
/// [`MAX_ORIGINS`]. The message never echoes the origin.
pub fn origins(raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > MAX_ORIGINS {
        return Err(bad(format!("origins: at most {MAX_ORIGINS} per inbox")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, o) in raw.iter().enumerate() {
        let o = normalize_origin(o).ok_or_else(|| {
            bad(format!(
                "origins: entry {} is not an origin like https://shop.example.com (a scheme, a host and an optional port, no path)",
                i + 1
            ))
        })?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// An inbox key for a new inbox.
pub fn new_key(key: &str, inboxes: &Inboxes) -> Result<()> {
    if !crate::inboxes::valid_key(key) {
        return Err(bad("key: 1 to 64 letters, digits, '-' or '_'"));
    }
    if inboxes.get(key).is_some() {
        return Err(bad("key: an inbox with this key exists already"));
    }
    Ok(())
}

/// A text of the widget: trimmed, blank is null, at most `max` characters, no control
/// characters but line breaks (a greeting may have lines).
fn widget_text(raw: Option<&str>, field: &str, max: usize) -> Result<Option<String>> {
    let Some(t) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > max {
        return Err(bad(format!("widget.{field}: at most {max} characters")));
    }
    if t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad(format!("widget.{field}: contains control characters")));
    }
    Ok(Some(t.to_string()))
}

/// The widget's settings: `title` ≤ 60 and `greeting` ≤ 500 characters, `color`
/// `#rrggbb` (kept in lower case).
pub fn widget(raw: &WidgetSettings) -> Result<WidgetSettings> {
    let color = match raw
        .color
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => {
            let hex = c
                .strip_prefix('#')
                .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            match hex {
                Some(h) => Some(format!("#{}", h.to_ascii_lowercase())),
                None => return Err(bad("widget.color: a colour like #0a5cff")),
            }
        }
    };
    Ok(WidgetSettings {
        title: widget_text(raw.title.as_deref(), "title", MAX_TITLE)?,
        color,
        greeting: widget_text(raw.greeting.as_deref(), "greeting", MAX_GREETING)?,
    })
}

/// An admin may not revoke themselves, nor take their own admin role: the team always
/// keeps an admin who can undo a change.
pub fn guard_self(actor: AgentId, target: AgentId, demotes: bool, what: &str) -> Result<()> {
    if actor == target && demotes {
        return Err(Error::rejected(
            ErrorCode::Forbidden,
            format!("an admin cannot {what} themselves"),
        ));
    }
    Ok(())
}

/// Whether `change` would take the admin role from its agent.
pub fn demotes(change: &AgentChange) -> bool {
    change.role.is_some_and(|r| r != Role::Admin)
}

/// An invite link for a token, relative to the server.
pub fn invite_link(token: &str) -> String {
    format!("{INVITE_PREFIX}{token}")
}

pub fn team_agent(a: &AgentRecord) -> TeamAgent {
    TeamAgent {
        id: a.id.into(),
        name: a.name.clone(),
        display_name: a.display_name.clone(),
        role: a.role,
        inboxes: a.inboxes.clone(),
        revoked: a.revoked,
        created_at: a.created_at,
    }
}

pub fn team_inbox(i: &InboxRecord) -> TeamInbox {
    TeamInbox {
        key: i.key.clone(),
        name: i.name.clone(),
        origins: i.origins.clone(),
        widget: i.widget.clone(),
        created_at: i.created_at,
    }
}

/// The team as it is now: agents oldest first (the revoked included), inboxes by key.
pub fn view(admin: &dyn Admin, inboxes: &Inboxes) -> Result<(Vec<TeamAgent>, Vec<TeamInbox>)> {
    let agents = crate::agents::list(admin)?.iter().map(team_agent).collect();
    let inboxes = inboxes.all().iter().map(|i| team_inbox(i)).collect();
    Ok((agents, inboxes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_settings_are_checked_field_by_field() {
        let ok = widget(&WidgetSettings {
            title: Some("  Sales ".into()),
            color: Some("#0A5CFF".into()),
            greeting: Some("Hi!\nAsk us.".into()),
        })
        .expect("valid");
        assert_eq!(ok.title.as_deref(), Some("Sales"));
        assert_eq!(ok.color.as_deref(), Some("#0a5cff"));
        let blank = widget(&WidgetSettings {
            title: Some(" ".into()),
            color: Some("".into()),
            greeting: None,
        })
        .expect("blank is null");
        assert!(blank.is_default());
        for color in [
            "0a5cff",
            "#0a5cf",
            "#0a5cffa",
            "red",
            "#gg0000",
            "#0a5cff;x",
        ] {
            let e = widget(&WidgetSettings {
                color: Some(color.into()),
                ..WidgetSettings::default()
            })
            .expect_err(color);
            assert!(e.to_string().contains("widget.color"), "{e}");
        }
        let long = widget(&WidgetSettings {
            title: Some("x".repeat(MAX_TITLE + 1)),
            ..WidgetSettings::default()
        });
        assert!(long.is_err_and(|e| e.to_string().contains("widget.title")));
        let long = widget(&WidgetSettings {
            greeting: Some("x".repeat(MAX_GREETING + 1)),
            ..WidgetSettings::default()
        });
        assert!(long.is_err_and(|e| e.to_string().contains("widget.greeting")));
    }

    #[test]
    fn origins_are_normalised_deduplicated_and_bounded() {
        let o = origins(&[
            "https://Shop.Example.com/".into(),
            "https://shop.example.com".into(),
        ])
        .expect("valid");
        assert_eq!(o, ["https://shop.example.com"]);
        let e =
            origins(&["https://ok.example".into(), "javascript:alert(1)".into()]).expect_err("bad");
        assert!(e.to_string().contains("entry 2"), "{e}");
        assert!(!e.to_string().contains("alert"), "never echoed: {e}");
        let many: Vec<String> = (0..=MAX_ORIGINS)
            .map(|i| format!("https://{i}.example"))
            .collect();
        assert!(origins(&many).is_err());
    }

    #[test]
    fn an_admin_cannot_revoke_or_demote_themselves() {
        let (me, other) = (AgentId::generate(), AgentId::generate());
        assert!(guard_self(me, me, true, "revoke").is_err());
        assert!(guard_self(me, other, true, "revoke").is_ok());
        assert!(guard_self(me, me, false, "demote").is_ok());
        let demote = AgentChange {
            role: Some(Role::Agent),
            ..AgentChange::default()
        };
        assert!(demotes(&demote) && !demotes(&AgentChange::default()));
    }

    #[test]
    fn display_names() {
        let l = Limits::default();
        assert_eq!(display_name(Some("  "), &l).expect("blank"), None);
        assert_eq!(display_name(None, &l).expect("none"), None);
        assert_eq!(
            display_name(Some(" Ann "), &l).expect("set").as_deref(),
            Some("Ann")
        );
        assert!(display_name(Some(&"x".repeat(101)), &l).is_err());
    }
}
