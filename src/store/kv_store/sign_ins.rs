//! The [`SignIns`] over the key-value engine: a session is a row of `sign_ins` keyed by
//! the SHA-256 of its secret, and a key of `agent_sign_ins` (agent id ++ that hash), so
//! an agent's sessions are one prefix scan for what a sign-in drops and a revoke ends.

use async_trait::async_trait;

use super::KvStore;
use crate::ids::AgentId;
use crate::signin::{self, SessionKey};
use crate::store::api::SignIns;
use crate::store::keys;
use crate::store::records::{AgentRecord, SignInRecord};
use crate::store::{get_json, Batch, Kv, StoreError, Tree};

#[async_trait]
impl SignIns for KvStore {
    async fn create_sign_in(
        &self,
        key: SessionKey,
        mut record: SignInRecord,
        max_per_agent: usize,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let agent = record.agent_id;
                let live = get_json::<AgentRecord>(kv, Tree::Agents, &keys::id(agent))?
                    .is_some_and(|a| !a.revoked);
                if !live {
                    return Ok((b, false));
                }
                let existing = of_agent(kv, agent)?;
                // Inside the write, so concurrent sign-ins are ordered too.
                record.created_at = signin::creation_time(&existing, record.created_at);
                for old in signin::plan_sign_in(&existing, record.created_at, max_per_agent) {
                    delete(&mut b, agent, &old);
                }
                b.put_json(Tree::SignIns, key.0.to_vec(), &record);
                b.put(
                    Tree::AgentSignIns,
                    keys::agent_sign_in(agent, &key.0),
                    Vec::new(),
                );
                Ok((b, true))
            })
            .await
    }

    async fn revoke_sign_in(&self, key: SessionKey) -> Result<Option<SignInRecord>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let found = get_json::<SignInRecord>(kv, Tree::SignIns, &key.0)?;
                if let Some(rec) = &found {
                    delete(&mut b, rec.agent_id, &key);
                }
                Ok((b, found))
            })
            .await
    }

    fn sign_in(&self, key: &SessionKey) -> Result<Option<SignInRecord>, StoreError> {
        get_json(self.kv.as_ref(), Tree::SignIns, &key.0)
    }

    fn sign_ins_of(&self, agent: AgentId) -> Result<Vec<(SessionKey, SignInRecord)>, StoreError> {
        of_agent(self.kv.as_ref(), agent)
    }
}

/// Every session of `agent`, as `kv` (inside a write: with the group's earlier writes)
/// has them.
fn of_agent(kv: &dyn Kv, agent: AgentId) -> Result<Vec<(SessionKey, SignInRecord)>, StoreError> {
    let prefix = keys::agent_sign_ins(agent);
    let mut out = Vec::new();
    for (k, _) in kv.scan_prefix(Tree::AgentSignIns, &prefix, usize::MAX)? {
        let Some(key) = k.get(prefix.len()..).and_then(SessionKey::from_bytes) else {
            continue;
        };
        if let Some(rec) = get_json::<SignInRecord>(kv, Tree::SignIns, &key.0)? {
            out.push((key, rec));
        }
    }
    Ok(out)
}

fn delete(b: &mut Batch, agent: AgentId, key: &SessionKey) {
    b.delete(Tree::SignIns, key.0.to_vec());
    b.delete(Tree::AgentSignIns, keys::agent_sign_in(agent, &key.0));
}

/// Deletes every session of `agent` in `b` (a revoked agent's sessions end with it).
pub(super) fn delete_all_of(kv: &dyn Kv, b: &mut Batch, agent: AgentId) -> Result<(), StoreError> {
    let prefix = keys::agent_sign_ins(agent);
    for (k, _) in kv.scan_prefix(Tree::AgentSignIns, &prefix, usize::MAX)? {
        b.delete(
            Tree::SignIns,
            k.get(prefix.len()..).unwrap_or_default().to_vec(),
        );
        b.delete(Tree::AgentSignIns, k);
    }
    Ok(())
}
