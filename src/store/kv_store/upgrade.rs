//! The numbered migrations that rewrite stored data, run through the writer before the
//! server (or a command-line tool) uses the store.
//!
//! Version 2 adds the conversation list and search: for every conversation it writes
//! the `activity` keys and the words of its messages and contact (see `listing`), and
//! counts its visitor's messages into `ConversationRecord::visitor_messages`. It runs in
//! batches of [`BATCH`] conversations (fewer when their writes grow past [`BATCH_OPS`]),
//! each one durable write that also records the last conversation done in `meta`
//! (`keys::UPGRADE_PROGRESS_KEY`); the last batch stamps the schema version and drops
//! that key. A crash mid-way leaves whole batches behind and the next start goes on
//! after the last one; redoing a conversation writes the same keys again, so even a lost
//! progress key only costs time. Nothing else writes while it runs.

use std::collections::BTreeSet;

use widget_protocol::{AuthorKind, Message};

use super::listing::{index_words, put_conversation};
use super::{contact_words, KvStore};
use crate::search;
use crate::store::keys::{self, UPGRADE_PROGRESS_KEY};
use crate::store::records::ConversationRecord;
use crate::store::{decode, schema_version, Batch, Kv, Scan, StoreError, Tree, SCHEMA_VERSION};

/// Conversations one batch of the migration to version 2 takes at most.
pub const BATCH: usize = 100;
/// A batch ends after the conversation that takes its writes past this many.
pub const BATCH_OPS: usize = 20_000;

impl KvStore {
    /// Brings the stored data up to [`SCHEMA_VERSION`]. Call it before anything else
    /// uses the store.
    pub async fn upgrade(&self) -> Result<(), StoreError> {
        while !self.upgrade_steps(usize::MAX).await? {}
        Ok(())
    }

    /// Runs at most `batches` batches of the pending migrations; whether the data is
    /// up to date. (Tests stop it part-way as a crash would.)
    #[doc(hidden)]
    pub async fn upgrade_steps(&self, batches: usize) -> Result<bool, StoreError> {
        let kv = self.kv.as_ref();
        let mut done = 0;
        while schema_version(kv)? < SCHEMA_VERSION {
            if done == batches {
                return Ok(false);
            }
            let finished = self.writer.write(to_v2_batch).await?;
            done += 1;
            if finished {
                tracing::info!(version = SCHEMA_VERSION, "store upgraded");
            }
        }
        Ok(true)
    }
}

/// One batch of the migration to version 2; whether it was the last.
fn to_v2_batch(kv: &dyn Kv) -> Result<(Batch, bool), StoreError> {
    let mut b = Batch::default();
    // Just after the last conversation done (its id plus a 0 byte), or from the start.
    let from = match kv.get(Tree::Meta, UPGRADE_PROGRESS_KEY)? {
        Some(mut last) => {
            last.push(0);
            last
        }
        None => Vec::new(),
    };
    let rows = kv.scan(
        Tree::Conversations,
        Scan {
            from: &from,
            to: None,
            newest_first: false,
            limit: BATCH,
        },
    )?;
    let (mut last, mut processed) = (None, 0);
    for (key, value) in &rows {
        let mut conv: ConversationRecord = decode(Tree::Conversations, value)?;
        backfill(kv, &mut b, &mut conv)?;
        (last, processed) = (Some(key.clone()), processed + 1);
        if b.ops.len() >= BATCH_OPS {
            break;
        }
    }
    let finished = processed == rows.len() && rows.len() < BATCH;
    if finished {
        b.put(Tree::Meta, keys::SCHEMA_KEY, 2u32.to_be_bytes().to_vec());
        b.delete(Tree::Meta, UPGRADE_PROGRESS_KEY);
    } else if let Some(last) = last {
        b.put(Tree::Meta, UPGRADE_PROGRESS_KEY, last);
        tracing::info!(
            conversations = rows.len(),
            "upgrading the store to schema 2"
        );
    }
    Ok((b, finished))
}

/// A conversation's version-2 keys and its count of visitor messages.
fn backfill(kv: &dyn Kv, b: &mut Batch, conv: &mut ConversationRecord) -> Result<(), StoreError> {
    let visitor = super::load_visitor(kv, conv.visitor_id)?;
    let mut words: BTreeSet<String> = contact_words(kv, visitor.as_ref())?;
    let mut from_visitor = 0;
    for (_, value) in kv.scan_prefix(Tree::Messages, &keys::id(conv.id), usize::MAX)? {
        let m: Message = decode(Tree::Messages, &value)?;
        if m.author.kind == AuthorKind::Visitor {
            from_visitor += 1;
        }
        search::text_tokens(&m.text, &mut words);
    }
    conv.visitor_messages = from_visitor;
    index_words(kv, b, &conv.inbox, conv.id, &words)?;
    put_conversation(b, None, conv);
    Ok(())
}
