//! The [`Admin`] over the key-value engine: an inbox is a row of `inboxes` keyed by its
//! key, an agent a row of `agents` keyed by its id, and a token's SHA-256 a key of
//! `agent_tokens` holding the agent's id, a canned reply a row of `canned` under its
//! inbox's key. Each change is one write through the writer:
//! what it reads and what it writes are one atomic, durable step.

use async_trait::async_trait;
use uuid::Uuid;
use widget_protocol::{CannedReply, Chatflow};

use super::KvStore;
use crate::agents::AgentChange;
use crate::canned::{self, CannedError};
use crate::ids::AgentId;
use crate::inboxes::InboxChange;
use crate::store::api::Admin;
use crate::store::keys;
use crate::store::records::{AgentRecord, InboxRecord};
use crate::store::{get_json, Batch, Kv, StoreError, Tree};

/// Deletes every token of agent `id` in `b` (the tokens are few: one per agent).
fn forget_tokens(kv: &dyn Kv, id: AgentId, b: &mut Batch) -> Result<(), StoreError> {
    for (k, v) in kv.scan_prefix(Tree::AgentTokens, b"", usize::MAX)? {
        if v == keys::id(id) {
            b.delete(Tree::AgentTokens, k);
        }
    }
    Ok(())
}

/// The agent `id` unless unknown or revoked.
fn live_agent(kv: &dyn Kv, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
    Ok(get_json::<AgentRecord>(kv, Tree::Agents, &keys::id(id))?.filter(|a| !a.revoked))
}

/// The inbox's canned replies, oldest first.
fn canned_of(kv: &dyn Kv, inbox: &str) -> Result<Vec<CannedReply>, StoreError> {
    kv.scan_prefix(Tree::Canned, &keys::canned_prefix(inbox), usize::MAX)?
        .into_iter()
        .map(|(_, v)| crate::store::decode(Tree::Canned, &v))
        .collect()
}

/// The list with `reply` in place of the one with its id, or added at the end.
fn replaced(mut list: Vec<CannedReply>, reply: CannedReply) -> Vec<CannedReply> {
    match list.iter_mut().find(|r| r.id == reply.id) {
        Some(slot) => *slot = reply,
        None => list.push(reply),
    }
    list
}

impl KvStore {
    /// Changes the inbox `key` as `change` says, in one write; None when there is none.
    async fn change_inbox(
        &self,
        key: String,
        change: impl FnOnce(&mut InboxRecord) + Send + 'static,
    ) -> Result<Option<InboxRecord>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut rec) = get_json::<InboxRecord>(kv, Tree::Inboxes, key.as_bytes())?
                else {
                    return Ok((b, None));
                };
                change(&mut rec);
                b.put_json(Tree::Inboxes, key.as_bytes(), &rec);
                Ok((b, Some(rec)))
            })
            .await
    }
}

#[async_trait]
impl Admin for KvStore {
    async fn create_inbox(
        &self,
        inbox: InboxRecord,
        member: Option<AgentId>,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                if kv.get(Tree::Inboxes, inbox.key.as_bytes())?.is_some() {
                    return Ok((b, false));
                }
                b.put_json(Tree::Inboxes, inbox.key.as_bytes(), &inbox);
                if let Some(mut agent) = member.map(|id| live_agent(kv, id)).transpose()?.flatten()
                {
                    if !agent.inboxes.contains(&inbox.key) {
                        agent.inboxes.push(inbox.key.clone());
                    }
                    b.put_json(Tree::Agents, keys::id(agent.id), &agent);
                }
                Ok((b, true))
            })
            .await
    }

    async fn update_inbox(
        &self,
        key: String,
        change: InboxChange,
    ) -> Result<Option<InboxRecord>, StoreError> {
        self.change_inbox(key, move |rec| change.apply(rec)).await
    }

    async fn set_chatflow(
        &self,
        key: String,
        chatflow: Chatflow,
    ) -> Result<Option<InboxRecord>, StoreError> {
        self.change_inbox(key, move |rec| rec.chatflow = chatflow)
            .await
    }

    fn inbox(&self, key: &str) -> Result<Option<InboxRecord>, StoreError> {
        get_json(self.kv.as_ref(), Tree::Inboxes, key.as_bytes())
    }

    fn inboxes(&self) -> Result<Vec<InboxRecord>, StoreError> {
        self.all(Tree::Inboxes)
    }

    async fn create_agent(
        &self,
        agent: AgentRecord,
        token_hash: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |_kv| {
                let id = agent.id;
                let mut b = Batch::default();
                b.put_json(Tree::Agents, keys::id(id), &agent);
                b.put(Tree::AgentTokens, token_hash, keys::id(id));
                Ok((b, ()))
            })
            .await
    }

    async fn revoke_agent(&self, id: AgentId) -> Result<bool, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut rec) = get_json::<AgentRecord>(kv, Tree::Agents, &keys::id(id))?
                else {
                    return Ok((b, false));
                };
                rec.revoked = true;
                b.put_json(Tree::Agents, keys::id(id), &rec);
                // Forget the token hash too, so the token can never authenticate again.
                forget_tokens(kv, id, &mut b)?;
                // And its sign-in sessions (they would not authenticate anyway).
                super::sign_ins::delete_all_of(kv, &mut b, id)?;
                Ok((b, true))
            })
            .await
    }

    async fn update_agent(
        &self,
        id: AgentId,
        change: AgentChange,
    ) -> Result<Option<(AgentRecord, AgentRecord)>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(before) = live_agent(kv, id)? else {
                    return Ok((b, None));
                };
                let mut after = before.clone();
                change.apply(&mut after);
                b.put_json(Tree::Agents, keys::id(id), &after);
                Ok((b, Some((before, after))))
            })
            .await
    }

    async fn replace_token(
        &self,
        id: AgentId,
        token_hash: Vec<u8>,
    ) -> Result<Option<AgentRecord>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(agent) = live_agent(kv, id)? else {
                    return Ok((b, None));
                };
                forget_tokens(kv, id, &mut b)?;
                b.put(Tree::AgentTokens, token_hash, keys::id(id));
                Ok((b, Some(agent)))
            })
            .await
    }

    fn agent_by_token(&self, token_hash: &[u8]) -> Result<Option<AgentRecord>, StoreError> {
        let kv = self.kv.as_ref();
        match kv.get(Tree::AgentTokens, token_hash)? {
            Some(id) => get_json(kv, Tree::Agents, &id),
            None => Ok(None),
        }
    }

    fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        get_json(self.kv.as_ref(), Tree::Agents, &keys::id(id))
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.all(Tree::Agents)
    }

    fn any_agent(&self) -> Result<bool, StoreError> {
        Ok(!self.kv.scan_prefix(Tree::Agents, b"", 1)?.is_empty())
    }

    fn canned(&self, inbox: &str) -> Result<Vec<CannedReply>, StoreError> {
        canned_of(self.kv.as_ref(), inbox)
    }

    async fn save_canned(
        &self,
        reply: CannedReply,
        create: bool,
    ) -> Result<Result<Vec<CannedReply>, CannedError>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Ok(id) = Uuid::parse_str(&reply.id) else {
                    return Ok((b, Err(CannedError::NotFound)));
                };
                let list = canned_of(kv, &reply.inbox)?;
                if let Err(e) = canned::plan_save(&list, &reply, create) {
                    return Ok((b, Err(e)));
                }
                b.put_json(Tree::Canned, keys::canned(&reply.inbox, id), &reply);
                Ok((b, Ok(replaced(list, reply))))
            })
            .await
    }

    async fn delete_canned(
        &self,
        inbox: String,
        id: String,
    ) -> Result<Result<Vec<CannedReply>, CannedError>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let list = canned_of(kv, &inbox)?;
                let Ok(uuid) = Uuid::parse_str(&id) else {
                    return Ok((b, Err(CannedError::NotFound)));
                };
                if let Err(e) = canned::plan_delete(&list, &id) {
                    return Ok((b, Err(e)));
                }
                b.delete(Tree::Canned, keys::canned(&inbox, uuid));
                let rest = list.into_iter().filter(|r| r.id != id).collect();
                Ok((b, Ok(rest)))
            })
            .await
    }
}
