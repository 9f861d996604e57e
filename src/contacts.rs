//! Contacts: people with an email, made from a visitor who typed it or by an agent.
//!
//! Owns the `contacts` tree and the unique, case-insensitive `contact_emails` index. All
//! three ways a visitor gets linked to a contact (the visitor's own `submit_email`, an
//! agent's `assign_visitor`, an agent's `create_contact`) run as one writer closure
//! each, so "look up, then create" cannot race: two agents creating the same email at
//! once get one contact and one `contact_exists`. Linking changes who a visitor is in
//! the inbox; it never gives the visitor anything of the contact's other conversations.
//! What a link does to the conversation's prompt is `capture`'s ([`PromptEvent::EmailKnown`]).

use uuid::Uuid;
use widget_protocol::{Contact, ContactSource, ErrorCode, Millis};

use crate::capture::{self, PromptEvent};
use crate::conversations::{self, parse_id};
use crate::error::{Error, Result};
use crate::store::keys;
use crate::store::records::{ConversationRecord, VisitorRecord};
use crate::store::{self, Batch, Kv, StoreError, Tree, Writer};

pub fn lookup(kv: &dyn Kv, email: &str) -> Result<Option<Contact>, StoreError> {
    match kv.get(Tree::ContactEmails, &keys::contact_email(email))? {
        None => Ok(None),
        Some(id) => store::get_json(kv, Tree::Contacts, &id),
    }
}

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
    Visitor { visitor: Uuid, inbox: String },
    Conversation(Uuid),
}

pub async fn link(
    writer: &Writer,
    whom: Whom,
    email: String,
    how: Link,
    now: Millis,
) -> Result<Linked> {
    writer
        .transact(move |kv| {
            let mut b = Batch::default();
            let (visitor_id, conv) = match &whom {
                Whom::Visitor { visitor, inbox } => (
                    *visitor,
                    conversations::find_for_visitor(kv, *visitor, inbox)?,
                ),
                Whom::Conversation(id) => {
                    let c = conversations::load(kv, *id)?.ok_or_else(Error::not_found)?;
                    let v = parse_id(&c.visitor_id).ok_or_else(Error::not_found)?;
                    (v, Some(c))
                }
            };
            let existing = lookup(kv, &email)?;
            let (contact, created) = match (&how, existing) {
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
                    new_contact(&mut b, &email, None, ContactSource::EmailCapture, now),
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
                        &mut b,
                        &email,
                        Some((first_name.clone(), last_name.clone())),
                        ContactSource::Agent,
                        now,
                    ),
                    true,
                ),
            };
            let mut visitor =
                conversations::load_visitor(kv, visitor_id)?.unwrap_or_else(|| VisitorRecord {
                    id: visitor_id.to_string(),
                    created_at: now,
                    contact_id: None,
                    email: None,
                    page: None,
                });
            visitor.contact_id = Some(contact.id.clone());
            if matches!(how, Link::Captured) {
                // Only what the visitor typed is ever shown back to them.
                visitor.email = Some(email.clone());
            }
            b.put_json(Tree::Visitors, keys::id(visitor_id), &visitor);
            let conversation = conv.map(|mut c| {
                if let Some(id) = parse_id(&c.id) {
                    if capture::apply(&mut b, id, &mut c, PromptEvent::EmailKnown).changed {
                        b.put_json(Tree::Conversations, keys::id(id), &c);
                    }
                }
                c
            });
            Ok((
                b,
                Linked {
                    contact,
                    created,
                    conversation,
                },
            ))
        })
        .await
}

fn new_contact(
    b: &mut Batch,
    email: &str,
    names: Option<(String, String)>,
    source: ContactSource,
    now: Millis,
) -> Contact {
    let id = Uuid::new_v4();
    let (first_name, last_name) = match names {
        Some((f, l)) => (Some(f), Some(l)),
        None => (None, None),
    };
    let c = Contact {
        id: id.to_string(),
        email: email.to_string(),
        first_name,
        last_name,
        source,
        created_at: now,
    };
    b.put_json(Tree::Contacts, keys::id(id), &c);
    b.put(
        Tree::ContactEmails,
        keys::contact_email(email),
        keys::id(id),
    );
    c
}
