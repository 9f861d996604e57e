//! Contacts: people with an email, made from a visitor who typed it or by an agent.
//!
//! Owns what a link does ([`plan_link`]): the contact found or made, the visitor's
//! record, and the conversation's prompt (`capture`'s [`PromptEvent::EmailKnown`]). All
//! three ways a visitor gets linked to a contact (the visitor's own `submit_email`, an
//! agent's `assign_visitor`, an agent's `create_contact`) run as one write each in the
//! store (`Store::link_contact`), with the unique, case-insensitive email index, so
//! "look up, then create" cannot race: two agents creating the same email at once get
//! one contact and one `contact_exists`. Linking changes who a visitor is in the inbox;
//! it never gives the visitor anything of the contact's other conversations.

use widget_protocol::{Contact, ContactSource, ErrorCode, Millis};

use crate::capture::{self, PromptEvent};
use crate::deadlines::Change;
use crate::error::{Error, Result};
use crate::ids::{ContactId, ConversationId, VisitorId};
use crate::store::records::{ConversationRecord, VisitorRecord};

/// How the visitor is being linked.
#[derive(Debug, Clone)]
pub enum Link {
    /// The visitor typed their email: link to the existing contact or create one.
    Captured,
    /// An agent chose an existing contact.
    Assign,
    /// An agent creates a new contact with a name.
    Create {
        first_name: String,
        last_name: String,
    },
}

#[derive(Debug, Clone)]
pub struct Linked {
    pub contact: Contact,
    pub created: bool,
    /// The conversation the link was made from (or the visitor's in that inbox).
    pub conversation: Option<ConversationRecord>,
}

/// Who is being linked: a visitor in an inbox (visitor side), or a conversation's
/// visitor (agent side; the caller checked access).
#[derive(Debug, Clone)]
pub enum Whom {
    Visitor { visitor: VisitorId, inbox: String },
    Conversation(ConversationId),
}

/// What a link changes.
#[derive(Debug, Clone)]
pub struct LinkPlan {
    pub linked: Linked,
    /// The id of `linked.contact`.
    pub contact_id: ContactId,
    /// The visitor's record, to store.
    pub visitor: VisitorRecord,
    /// The conversation's record changed (its prompt was cancelled): store it.
    pub conversation_changed: bool,
    /// What to do with the conversation's `Prompt` deadline.
    pub prompt_deadline: Option<Change>,
}

/// The plan of linking `visitor_id` (stored record `visitor`, conversation `conv`) to
/// the contact with `email` (`existing`, with its id, if there is one), or the refusal.
pub fn plan_link(
    how: &Link,
    email: &str,
    existing: Option<(ContactId, Contact)>,
    visitor_id: VisitorId,
    visitor: Option<VisitorRecord>,
    conv: Option<ConversationRecord>,
    now: Millis,
) -> Result<LinkPlan> {
    let ((contact_id, contact), created) = match (how, existing) {
        (Link::Create { .. }, Some(_)) => {
            return Err(Error::rejected(
                ErrorCode::ContactExists,
                "a contact with this email exists already",
            ))
        }
        (Link::Assign, None) => {
            return Err(Error::rejected(
                ErrorCode::ContactNotFound,
                "no contact has this email",
            ))
        }
        (_, Some(c)) => (c, false),
        (Link::Captured, None) => (
            new_contact(email, None, ContactSource::EmailCapture, now),
            true,
        ),
        (
            Link::Create {
                first_name,
                last_name,
            },
            None,
        ) => (
            new_contact(
                email,
                Some((first_name.clone(), last_name.clone())),
                ContactSource::Agent,
                now,
            ),
            true,
        ),
    };
    let mut visitor = visitor.unwrap_or_else(|| VisitorRecord::new(visitor_id, now));
    visitor.contact_id = Some(contact_id);
    if matches!(how, Link::Captured) {
        // Only what the visitor typed is ever shown back to them.
        visitor.email = Some(email.to_string());
    }
    let (mut conversation_changed, mut prompt_deadline) = (false, None);
    let conversation = conv.map(|mut c| {
        let step = capture::apply(&mut c, PromptEvent::EmailKnown);
        (conversation_changed, prompt_deadline) = (step.changed, step.deadline);
        c
    });
    Ok(LinkPlan {
        linked: Linked {
            contact,
            created,
            conversation,
        },
        contact_id,
        visitor,
        conversation_changed,
        prompt_deadline,
    })
}

fn new_contact(
    email: &str,
    names: Option<(String, String)>,
    source: ContactSource,
    now: Millis,
) -> (ContactId, Contact) {
    let (first_name, last_name) = match names {
        Some((f, l)) => (Some(f), Some(l)),
        None => (None, None),
    };
    let id = ContactId::generate();
    let contact = Contact {
        id: id.into(),
        email: email.to_string(),
        first_name,
        last_name,
        source,
        created_at: now,
    };
    (id, contact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::PromptState;

    fn conv(prompt: PromptState) -> ConversationRecord {
        ConversationRecord {
            id: ConversationId::from_uuid(uuid::Uuid::from_u128(3)),
            inbox: "default".into(),
            visitor_id: VisitorId::from_uuid(uuid::Uuid::from_u128(4)),
            created_at: 0,
            updated_at: 0,
            last_seq: 1,
            last_message: None,
            prompt,
            prompt_text: None,
            seen_seq: 1,
            follow_up_due: None,
            status: widget_protocol::Status::Open,
            assignee: None,
            visitor_messages: 1,
            read: Default::default(),
            visitor_seen_seq: 0,
        }
    }

    fn link(
        how: Link,
        existing: Option<(ContactId, Contact)>,
        prompt: PromptState,
    ) -> Result<LinkPlan> {
        let v = VisitorId::from_uuid(uuid::Uuid::from_u128(4));
        plan_link(
            &how,
            "ada@example.com",
            existing,
            v,
            None,
            Some(conv(prompt)),
            7,
        )
    }

    #[test]
    fn a_typed_email_makes_a_contact_shows_it_to_the_visitor_and_cancels_the_prompt() {
        let p = link(Link::Captured, None, PromptState::Pending { due: 9 }).expect("linked");
        assert!(p.linked.created);
        assert_eq!(p.linked.contact.source, ContactSource::EmailCapture);
        assert_eq!(p.visitor.email.as_deref(), Some("ada@example.com"));
        assert_eq!(
            p.visitor.contact_id.map(String::from).as_deref(),
            Some(p.linked.contact.id.as_str())
        );
        assert!(p.conversation_changed);
        assert_eq!(p.prompt_deadline, Some(Change::Disarm(9)));
    }

    #[test]
    fn an_agent_link_never_shows_the_visitor_the_contacts_email() {
        let existing = new_contact("ada@example.com", None, ContactSource::Agent, 1);
        let p = link(Link::Assign, Some(existing.clone()), PromptState::Sent).expect("linked");
        assert!(!p.linked.created && p.visitor.email.is_none());
        assert_eq!(p.linked.contact.id, existing.1.id);
        assert!(!p.conversation_changed, "a sent prompt stays sent");
    }

    #[test]
    fn creating_an_existing_email_or_assigning_an_unknown_one_is_refused() {
        let existing = new_contact("ada@example.com", None, ContactSource::Agent, 1);
        let create = Link::Create {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        };
        let refused = link(create, Some(existing), PromptState::None).map(|_| ());
        assert!(matches!(refused, Err(e) if e.code() == ErrorCode::ContactExists));
        let refused = link(Link::Assign, None, PromptState::None).map(|_| ());
        assert!(matches!(refused, Err(e) if e.code() == ErrorCode::ContactNotFound));
    }
}
