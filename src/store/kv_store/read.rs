//! The engine-level reads of [`super::KvStore`]: a record by its key, a conversation by
//! its visitor, a contact by its email, and pages of messages cut to a budget. They run
//! on the engine for `Store`'s reads and on the writer's view inside a write, where
//! [`KvReads`] lends them to a domain function that decides what to read.

use widget_protocol::{Contact, Message};

use crate::conversations::{Cut, StoredMessages};
use crate::ids::{ContactId, ConversationId, VisitorId};
use crate::store::api::Reads;
use crate::store::keys;
use crate::store::records::{ConversationRecord, VisitorRecord};
use crate::store::{Kv, StoreError, Tree};

pub(super) fn corrupt(tree: Tree, what: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: what.to_string(),
    }
}

pub(super) fn load(
    kv: &dyn Kv,
    id: ConversationId,
) -> Result<Option<ConversationRecord>, StoreError> {
    crate::store::get_json(kv, Tree::Conversations, &keys::id(id))
}

pub(super) fn find_for_visitor(
    kv: &dyn Kv,
    visitor: VisitorId,
    inbox: &str,
) -> Result<Option<ConversationRecord>, StoreError> {
    match kv.get(Tree::ConvByVisitor, &keys::conv_by_visitor(visitor, inbox))? {
        None => Ok(None),
        Some(id) => {
            let id = keys::read_id(&id)
                .ok_or_else(|| corrupt(Tree::ConvByVisitor, "conversation id"))?;
            load(kv, id)
        }
    }
}

/// Every conversation of `visitor` (one per inbox), with its inbox.
pub(super) fn visitor_conversations(
    kv: &dyn Kv,
    visitor: VisitorId,
) -> Result<Vec<(String, ConversationId)>, StoreError> {
    let prefix = keys::id(visitor);
    kv.scan_prefix(Tree::ConvByVisitor, &prefix, usize::MAX)?
        .into_iter()
        .map(|(k, v)| {
            let inbox = String::from_utf8(k[prefix.len()..].to_vec());
            let id = keys::read_id(&v);
            match (inbox, id) {
                (Ok(inbox), Some(id)) => Ok((inbox, id)),
                _ => Err(corrupt(Tree::ConvByVisitor, "inbox or id")),
            }
        })
        .collect()
}

pub(super) fn load_visitor(
    kv: &dyn Kv,
    visitor: VisitorId,
) -> Result<Option<VisitorRecord>, StoreError> {
    crate::store::get_json(kv, Tree::Visitors, &keys::id(visitor))
}

/// The contact with this email, whatever its case, and its id.
pub(super) fn lookup(kv: &dyn Kv, email: &str) -> Result<Option<(ContactId, Contact)>, StoreError> {
    let Some(id) = kv.get(Tree::ContactEmails, &keys::contact_email(email))? else {
        return Ok(None);
    };
    let id = keys::read_id(&id).ok_or_else(|| corrupt(Tree::ContactEmails, "contact id"))?;
    Ok(contact(kv, id)?.map(|c| (id, c)))
}

pub(super) fn contact(kv: &dyn Kv, id: ContactId) -> Result<Option<Contact>, StoreError> {
    crate::store::get_json(kv, Tree::Contacts, &keys::id(id))
}

/// Whether the team can email the conversation's visitor (see [`VisitorRecord::reachable`]);
/// an unreadable visitor record counts as no address.
pub(super) fn visitor_reachable(kv: &dyn Kv, conv: &ConversationRecord) -> bool {
    load_visitor(kv, conv.visitor_id)
        .ok()
        .flatten()
        .is_some_and(|v| v.reachable())
}

/// The earlier message for a repeated `client_msg_id`, if any.
pub(super) fn earlier(
    kv: &dyn Kv,
    conv_id: ConversationId,
    client_msg_id: &str,
) -> Result<Option<Message>, StoreError> {
    let Some(seq) = kv.get(Tree::ClientIds, &keys::client_id(conv_id, client_msg_id))? else {
        return Ok(None);
    };
    let seq = keys::read_u64(&seq).ok_or_else(|| corrupt(Tree::ClientIds, "seq"))?;
    crate::store::get_json(kv, Tree::Messages, &keys::message(conv_id, seq))
}

/// Rows the first read of a list takes; later reads take what the rest of the byte
/// budget holds at the size of the rows read so far, so short messages fill a page in
/// one or two reads and long ones never load much past the budget.
const FIRST_READ: usize = 64;

/// How many rows to read next: room for `rows_left` more, or for as many as `bytes_left`
/// holds at the average size of the `rows` rows (`bytes` in all) read so far, plus one
/// to learn whether more exist.
fn next_read(rows_left: usize, bytes_left: usize, rows: usize, bytes: usize) -> usize {
    let fit = match (rows, bytes) {
        (0, _) => FIRST_READ,
        (_, 0) => rows_left,
        _ => bytes_left / (bytes / rows).max(1),
    };
    fit.saturating_add(1).clamp(1, rows_left.saturating_add(1))
}

/// The newest messages with `from_seq <= seq < before` (`before` none: up to the last),
/// oldest first, within `cut`, and whether more of that range were left out. Reads the
/// store a few rows at a time, from the newest, and stops once the cut is reached, so
/// an oversized list is never loaded.
pub(super) fn newest(
    kv: &dyn Kv,
    conv: ConversationId,
    from_seq: u64,
    before: Option<u64>,
    cut: Cut,
) -> Result<(StoredMessages, bool), StoreError> {
    let from = keys::message(conv, from_seq);
    let mut to = keys::message(conv, before.unwrap_or(u64::MAX));
    let limit = cut.limit.max(1);
    let (mut rows, mut bytes) = (Vec::new(), 0usize);
    loop {
        let want = next_read(
            limit - rows.len(),
            cut.bytes.saturating_sub(bytes),
            rows.len(),
            bytes,
        );
        let chunk = kv.range_rev(Tree::Messages, &from, &to, want)?;
        let exhausted = chunk.len() < want;
        for (key, value) in chunk {
            let adding = value.len() + usize::from(!rows.is_empty());
            if rows.len() == limit || (!rows.is_empty() && bytes + adding > cut.bytes) {
                return Ok((StoredMessages::from_newest(rows)?, true));
            }
            bytes += adding;
            to = key;
            rows.push(value);
        }
        if exhausted {
            return Ok((StoredMessages::from_newest(rows)?, false));
        }
    }
}

pub(super) fn page(
    kv: &dyn Kv,
    conversation: ConversationId,
    before: Option<u64>,
    cut: Cut,
) -> Result<(StoredMessages, bool), StoreError> {
    newest(kv, conversation, 0, before, cut)
}

pub(super) fn after(
    kv: &dyn Kv,
    conversation: ConversationId,
    after: u64,
    cut: Cut,
    page: usize,
) -> Result<(StoredMessages, bool), StoreError> {
    let (mut messages, more) = newest(kv, conversation, after.saturating_add(1), None, cut)?;
    if more && messages.len() >= cut.limit {
        messages.keep_newest(page.max(1));
    }
    Ok((messages, more))
}

/// The reads of a write in progress, for a domain function that decides what to read.
pub(super) struct KvReads<'a>(pub(super) &'a dyn Kv);

/// Anything that reads the engine: the store itself, or a write in progress.
pub(super) trait Engine {
    fn engine(&self) -> &dyn Kv;
}

impl Engine for KvReads<'_> {
    fn engine(&self) -> &dyn Kv {
        self.0
    }
}

impl<T: Engine> Reads for T {
    fn visitor(&self, id: VisitorId) -> Result<Option<VisitorRecord>, StoreError> {
        load_visitor(self.engine(), id)
    }

    fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        contact(self.engine(), id)
    }

    fn page(
        &self,
        conversation: ConversationId,
        before: Option<u64>,
        cut: Cut,
    ) -> Result<(StoredMessages, bool), StoreError> {
        page(self.engine(), conversation, before, cut)
    }

    fn after(
        &self,
        conversation: ConversationId,
        after: u64,
        cut: Cut,
        page: usize,
    ) -> Result<(StoredMessages, bool), StoreError> {
        self::after(self.engine(), conversation, after, cut, page)
    }
}

#[cfg(test)]
mod tests {
    use super::next_read;

    #[test]
    fn reads_are_sized_by_the_room_left_at_the_size_read_so_far() {
        assert_eq!(
            next_read(50, 512 * 1024, 0, 0),
            51,
            "a first read of a page"
        );
        assert_eq!(
            next_read(1000, 512 * 1024, 0, 0),
            65,
            "a long replay starts at 64"
        );
        // 64 rows of 200 bytes read, 1000 wanted: the rest of the budget, plus one.
        assert_eq!(next_read(936, 512 * 1024 - 12_800, 64, 12_800), 937);
        // 4 rows of 16 KiB: only what still fits, plus one.
        assert_eq!(next_read(996, 64 * 1024, 4, 64 * 1024), 5);
        assert_eq!(
            next_read(10, 0, 3, 3000),
            1,
            "a full budget reads one to see"
        );
        assert_eq!(
            next_read(0, 1000, 5, 500),
            1,
            "a full page reads one to see"
        );
    }
}
