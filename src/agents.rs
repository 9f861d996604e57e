//! Agents: who may use the inbox, with which role, for which inboxes.
//!
//! Owns the `agents` and `agent_tokens` trees. A token is 32 random bytes shown once;
//! only its SHA-256 is stored, so a copy of the data directory does not leak working
//! tokens. It must not know about sockets.

use std::sync::Arc;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use widget_protocol::{Millis, Role};

use crate::error::Result;
use crate::ids::AgentId;
use crate::store::records::AgentRecord;
use crate::store::{self, keys, Batch, Kv, Tree, Writer};

/// A new token: 256 bits from the OS generator, URL-safe text.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "fda_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates an agent and returns it with its token (the only time the token exists).
pub async fn create(
    writer: &Writer,
    name: &str,
    role: Role,
    inboxes: Vec<String>,
    now: Millis,
) -> Result<(AgentRecord, String)> {
    let token = new_token();
    let rec = AgentRecord {
        id: AgentId::generate(),
        name: name.to_string(),
        role,
        inboxes,
        created_at: now,
        revoked: false,
    };
    let stored = rec.clone();
    let hash = token_hash(&token);
    writer
        .write(move |_kv| {
            let mut b = Batch::default();
            b.put_json(Tree::Agents, keys::id(stored.id), &stored);
            b.put(Tree::AgentTokens, hash, keys::id(stored.id));
            Ok((b, ()))
        })
        .await?;
    Ok((rec, token))
}

/// The agent a token belongs to, unless unknown or revoked.
pub fn authenticate(kv: &dyn Kv, token: &str) -> Result<Option<AgentRecord>> {
    let Some(id) = kv.get(Tree::AgentTokens, &token_hash(token))? else {
        return Ok(None);
    };
    let rec: Option<AgentRecord> = store::get_json(kv, Tree::Agents, &id)?;
    Ok(rec.filter(|a| !a.revoked))
}

pub fn list(kv: &dyn Kv) -> Result<Vec<AgentRecord>> {
    let mut out = Vec::new();
    for (_, v) in kv.scan_prefix(Tree::Agents, b"", usize::MAX)? {
        out.push(store::decode::<AgentRecord>(Tree::Agents, &v)?);
    }
    out.sort_by_key(|a| a.created_at);
    Ok(out)
}

/// Revokes an agent; `Ok(false)` when no agent has that id.
pub async fn revoke(writer: &Writer, id: AgentId) -> Result<bool> {
    Ok(writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut rec) = store::get_json::<AgentRecord>(kv, Tree::Agents, &keys::id(id))?
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
        .await?)
}

/// Whether any agent exists (first start creates the admin).
pub fn any(kv: &Arc<dyn Kv>) -> Result<bool> {
    Ok(!kv.scan_prefix(Tree::Agents, b"", 1)?.is_empty())
}
