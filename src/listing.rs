//! The conversation list: what an agent's `list` (and the page in `ready`) asks for.
//!
//! Owns the request's rules: the filters (status; assignee `me`, `none`, an agent, or
//! anyone), the query (see `search`), the page size (default 50, at most 200) and the
//! cursor. The list is ordered by activity, newest first: by `updated_at`, then by
//! conversation id, both descending, so every conversation has one place in it. A
//! cursor is the place of the last conversation of a page, written
//! `"<updated_at>.<conversation uuid>"`; the next page starts strictly after it. Anything
//! else is not a cursor (`bad_frame`). Pure: the store walks its indexes
//! (`Store::list`), the session builds the summaries.

use std::fmt;

use widget_protocol::{ErrorCode, Millis, Status};

use crate::error::Error;
use crate::ids::{AgentId, ConversationId};
use crate::search::Query;
use crate::store::records::ConversationRecord;

/// The page size when `list` gives none.
pub const DEFAULT_LIMIT: usize = 50;
/// The most conversations one page holds.
pub const MAX_LIMIT: usize = 200;

/// Whose conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Nobody,
    Agent(AgentId),
}

impl AssigneeFilter {
    /// The filter `list.assignee` names: `me` is `viewer`, `none` nobody, null anyone.
    pub fn parse(text: Option<&str>, viewer: AgentId) -> Result<AssigneeFilter, Error> {
        match text {
            None => Ok(AssigneeFilter::Anyone),
            Some("me") => Ok(AssigneeFilter::Agent(viewer)),
            Some("none") => Ok(AssigneeFilter::Nobody),
            Some(id) => AgentId::parse(id)
                .map(AssigneeFilter::Agent)
                .ok_or_else(|| bad("assignee is \"me\", \"none\", an agent's id or null")),
        }
    }
}

/// A place in the list: a conversation's activity time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: u64,
    pub id: ConversationId,
}

impl Cursor {
    /// The place of `conv` in the list.
    pub fn of(conv: &ConversationRecord) -> Cursor {
        Cursor {
            at: activity(conv.updated_at),
            id: conv.id,
        }
    }

    /// The cursor a client sent back; `bad_frame` when it is not one the server writes.
    pub fn parse(text: &str) -> Result<Cursor, Error> {
        let not_a_cursor = || bad("not a cursor from this server");
        let (at, id) = text.split_once('.').ok_or_else(not_a_cursor)?;
        let digits_only =
            !at.is_empty() && at.len() <= 20 && at.bytes().all(|b| b.is_ascii_digit());
        let at: u64 = digits_only
            .then(|| at.parse().ok())
            .flatten()
            .ok_or_else(not_a_cursor)?;
        let id = ConversationId::parse(id)
            .filter(|parsed| parsed.to_string() == id)
            .ok_or_else(not_a_cursor)?;
        Ok(Cursor { at, id })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.at, self.id)
    }
}

/// A conversation's activity time as the list orders it (a time before the epoch is
/// the epoch).
pub fn activity(updated_at: Millis) -> u64 {
    u64::try_from(updated_at).unwrap_or(0)
}

/// One page's request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub status: Option<Status>,
    pub assignee: AssigneeFilter,
    pub query: Option<Query>,
    /// Start strictly after this place; None: from the newest.
    pub before: Option<Cursor>,
    pub limit: usize,
}

impl ListRequest {
    /// The newest page of everything (what `ready` carries).
    pub fn newest(limit: usize) -> ListRequest {
        ListRequest {
            status: None,
            assignee: AssigneeFilter::Anyone,
            query: None,
            before: None,
            limit: limit.clamp(1, MAX_LIMIT),
        }
    }

    /// A `list` frame's fields, checked for agent `viewer`: an oversized `limit` is
    /// clamped; a bad assignee, query or cursor is `bad_frame`.
    pub fn from_frame(
        status: Option<Status>,
        assignee: Option<&str>,
        query: Option<&str>,
        before: Option<&str>,
        limit: Option<u32>,
        viewer: AgentId,
    ) -> Result<ListRequest, Error> {
        let query = match query {
            None => None,
            Some(q) => Query::parse(q).map_err(|e| bad(e.to_string()))?,
        };
        let limit = limit.map_or(DEFAULT_LIMIT, |l| {
            usize::try_from(l).unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT)
        });
        Ok(ListRequest {
            status,
            assignee: AssigneeFilter::parse(assignee, viewer)?,
            query,
            before: before.map(Cursor::parse).transpose()?,
            limit,
        })
    }

    /// Whether a conversation at `place` with this status and assignee passes the
    /// filters and comes after the cursor (not the query: the store's index answers
    /// that).
    pub fn admits(&self, place: Cursor, status: Status, assignee: Option<AgentId>) -> bool {
        let whose = match self.assignee {
            AssigneeFilter::Anyone => true,
            AssigneeFilter::Nobody => assignee.is_none(),
            AssigneeFilter::Agent(id) => assignee == Some(id),
        };
        self.status.is_none_or(|s| s == status) && whose && self.before.is_none_or(|b| place < b)
    }
}

/// A page: the conversations with their places, newest activity first, and where the
/// next page starts (None: that was all). A page cut shorter continues after the place
/// of its last conversation.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub conversations: Vec<(Cursor, ConversationRecord)>,
    pub next: Option<Cursor>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::rejected(ErrorCode::BadFrame, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> AgentId {
        AgentId::from_uuid(uuid::Uuid::from_u128(9))
    }

    #[test]
    fn a_cursor_round_trips_and_orders_by_time_then_id() {
        let id = ConversationId::from_uuid(uuid::Uuid::from_u128(5));
        let c = Cursor {
            at: 1_764_082_700_000,
            id,
        };
        let text = c.to_string();
        assert_eq!(text, format!("1764082700000.{id}"));
        assert_eq!(Cursor::parse(&text).expect("a cursor"), c);
        let later_id = ConversationId::from_uuid(uuid::Uuid::from_u128(6));
        assert!(
            c < Cursor {
                at: c.at,
                id: later_id
            }
        );
        assert!(c < Cursor { at: c.at + 1, id });
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        let id = ConversationId::from_uuid(uuid::Uuid::from_u128(0xabcdef));
        for bad in [
            String::new(),
            "garbage".into(),
            format!("-1.{id}"),
            format!("+1.{id}"),
            format!("99999999999999999999999.{id}"),
            format!("1.{id}.2"),
            format!("1.{}", id.to_string().to_uppercase()),
            format!(" 1.{id}"),
            "1.not-a-uuid".into(),
            format!(".{id}"),
        ] {
            assert!(Cursor::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_clamp_and_filters_parse() {
        let r = |limit| {
            ListRequest::from_frame(None, None, None, None, limit, viewer()).expect("valid")
        };
        assert_eq!(r(None).limit, 50);
        assert_eq!(r(Some(10_000)).limit, 200);
        assert_eq!(r(Some(0)).limit, 1);
        let mine =
            ListRequest::from_frame(None, Some("me"), None, None, None, viewer()).expect("valid");
        assert_eq!(mine.assignee, AssigneeFilter::Agent(viewer()));
        assert!(ListRequest::from_frame(None, Some("bob"), None, None, None, viewer()).is_err());
        let long = "a".repeat(500);
        assert!(ListRequest::from_frame(None, None, Some(&long), None, None, viewer()).is_err());
        let blank =
            ListRequest::from_frame(None, None, Some("  "), None, None, viewer()).expect("valid");
        assert_eq!(blank.query, None, "a blank query is no query");
    }
}
