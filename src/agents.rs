//! Agents: who may use the inbox, with which role, for which inboxes.
//!
//! Owns the agents' tokens: a token is 32 random bytes shown once; only its SHA-256 is
//! stored (by the store's [`Admin`]), so a copy of the data directory does not leak
//! working tokens. It must not know about sockets.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use widget_protocol::{Millis, Role};

use crate::error::Result;
use crate::ids::AgentId;
use crate::store::api::Admin;
use crate::store::records::AgentRecord;

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
    admin: &dyn Admin,
    name: &str,
    role: Role,
    inboxes: Vec<String>,
    now: Millis,
) -> Result<(AgentRecord, String)> {
    invite(admin, name, None, role, inboxes, now).await
}

/// Creates an agent with the name visitors see (None: `name`), and returns it with its
/// token (the only time the token exists).
pub async fn invite(
    admin: &dyn Admin,
    name: &str,
    display_name: Option<String>,
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
        display_name,
    };
    admin.create_agent(rec.clone(), token_hash(&token)).await?;
    Ok((rec, token))
}

/// A new token for an agent in place of their earlier ones (which stop working in the
/// same write); None when no agent has this id or it is revoked.
pub async fn reissue(admin: &dyn Admin, id: AgentId) -> Result<Option<(AgentRecord, String)>> {
    let token = new_token();
    let agent = admin.replace_token(id, token_hash(&token)).await?;
    Ok(agent.map(|a| (a, token)))
}

/// What an admin changes in an agent; None leaves a field as it is. Checked before
/// (see `team`); applied inside the store's write, to the record as it is then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentChange {
    pub name: Option<String>,
    /// `Some(None)`: visitors see `name` again.
    pub display_name: Option<Option<String>>,
    pub role: Option<Role>,
    pub inboxes: Option<Vec<String>>,
}

impl AgentChange {
    pub fn apply(&self, rec: &mut AgentRecord) {
        if let Some(name) = &self.name {
            rec.name = name.clone();
        }
        if let Some(display_name) = &self.display_name {
            rec.display_name = display_name.clone();
        }
        if let Some(role) = self.role {
            rec.role = role;
        }
        if let Some(inboxes) = &self.inboxes {
            rec.inboxes = inboxes.clone();
        }
    }

    /// Whether the change took away or gave the agent access (its role or inboxes),
    /// so that its open connections must start again.
    pub fn changes_access(before: &AgentRecord, after: &AgentRecord) -> bool {
        let set = |r: &AgentRecord| {
            let mut v = r.inboxes.clone();
            v.sort();
            v.dedup();
            v
        };
        before.role != after.role || set(before) != set(after)
    }
}

/// Changes an agent; None when no agent has this id or it is revoked. The agent
/// before and after.
pub async fn update(
    admin: &dyn Admin,
    id: AgentId,
    change: AgentChange,
) -> Result<Option<(AgentRecord, AgentRecord)>> {
    Ok(admin.update_agent(id, change).await?)
}

/// The agent a token belongs to, unless unknown or revoked.
pub fn authenticate(admin: &dyn Admin, token: &str) -> Result<Option<AgentRecord>> {
    let rec = admin.agent_by_token(&token_hash(token))?;
    Ok(rec.filter(|a| !a.revoked))
}

/// Every agent, oldest first.
pub fn list(admin: &dyn Admin) -> Result<Vec<AgentRecord>> {
    let mut out = admin.agents()?;
    out.sort_by_key(|a| a.created_at);
    Ok(out)
}

/// Revokes an agent; `Ok(false)` when no agent has that id.
pub async fn revoke(admin: &dyn Admin, id: AgentId) -> Result<bool> {
    Ok(admin.revoke_agent(id).await?)
}

/// Whether any agent exists (first start creates the admin).
pub fn any(admin: &dyn Admin) -> Result<bool> {
    Ok(admin.any_agent()?)
}
