//! The [`Admin`] over the key-value engine: an inbox is a row of `inboxes` keyed by its
//! key, an agent a row of `agents` keyed by its id, and a token's SHA-256 a key of
//! `agent_tokens` holding the agent's id.

use async_trait::async_trait;
use widget_protocol::Chatflow;

use super::KvStore;
use crate::ids::AgentId;
use crate::store::api::Admin;
use crate::store::keys;
use crate::store::records::{AgentRecord, InboxRecord};
use crate::store::{get_json, Batch, StoreError, Tree};

#[async_trait]
impl Admin for KvStore {
    async fn create_inbox(&self, inbox: InboxRecord) -> Result<bool, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                if kv.get(Tree::Inboxes, inbox.key.as_bytes())?.is_some() {
                    return Ok((b, false));
                }
                b.put_json(Tree::Inboxes, inbox.key.as_bytes(), &inbox);
                Ok((b, true))
            })
            .await
    }

    async fn set_chatflow(
        &self,
        key: String,
        chatflow: Chatflow,
    ) -> Result<Option<InboxRecord>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut rec) = get_json::<InboxRecord>(kv, Tree::Inboxes, key.as_bytes())?
                else {
                    return Ok((b, None));
                };
                rec.chatflow = chatflow;
                b.put_json(Tree::Inboxes, key.as_bytes(), &rec);
                Ok((b, Some(rec)))
            })
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
                for (k, v) in kv.scan_prefix(Tree::AgentTokens, b"", usize::MAX)? {
                    if v == keys::id(id) {
                        b.delete(Tree::AgentTokens, k);
                    }
                }
                Ok((b, true))
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
}
