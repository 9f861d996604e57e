//! Inboxes: their keys, names, allowed origins and chatflow settings.
//!
//! Owns what an inbox may be (its key, its origins) and a cache of them in memory
//! (inboxes change rarely and are read on every visitor handshake); the store's
//! [`Admin`] keeps them, and every write through here refreshes the cache. It must not
//! decide what a chatflow does, only keep it.

use std::sync::Arc;

use dashmap::DashMap;
use widget_protocol::{Chatflow, ErrorCode, Millis, WidgetSettings};

use crate::error::{Error, Result};
use crate::ids::AgentId;
use crate::store::api::Admin;
use crate::store::records::InboxRecord;
use crate::store::StoreError;

pub const DEFAULT_INBOX: &str = "default";

/// What an admin changes in an inbox; None leaves a field as it is. Checked before
/// (see `team`); applied inside the store's write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxChange {
    pub name: Option<String>,
    pub origins: Option<Vec<String>>,
    pub widget: Option<WidgetSettings>,
}

impl InboxChange {
    pub fn apply(&self, rec: &mut InboxRecord) {
        if let Some(name) = &self.name {
            rec.name = name.clone();
        }
        if let Some(origins) = &self.origins {
            rec.origins = origins.clone();
        }
        if let Some(widget) = &self.widget {
            rec.widget = widget.clone();
        }
    }
}

pub struct Inboxes {
    admin: Arc<dyn Admin>,
    cache: DashMap<String, Arc<InboxRecord>>,
}

/// Checks an inbox key: 1..=64 of `[A-Za-z0-9_-]`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Normalises an origin as browsers send it: `scheme://host[:port]`, no path.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let t = raw.trim().trim_end_matches('/');
    let (scheme, rest) = t.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        rest.to_ascii_lowercase()
    ))
}

impl Inboxes {
    pub fn load(admin: Arc<dyn Admin>) -> Result<Self> {
        let cache = DashMap::new();
        for rec in admin.inboxes()? {
            cache.insert(rec.key.clone(), Arc::new(rec));
        }
        Ok(Inboxes { admin, cache })
    }

    pub fn get(&self, key: &str) -> Option<Arc<InboxRecord>> {
        self.cache.get(key).map(|r| r.clone())
    }

    pub fn all(&self) -> Vec<Arc<InboxRecord>> {
        let mut v: Vec<_> = self.cache.iter().map(|r| r.clone()).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Creates an inbox; `Ok(false)` when the key exists already.
    pub async fn create(
        &self,
        key: &str,
        name: &str,
        origins: Vec<String>,
        now: Millis,
    ) -> Result<bool> {
        self.create_with_member(key, name, origins, None, now).await
    }

    /// Creates an inbox with `member` (an agent's id) as a member, in one write;
    /// `Ok(false)` when the key exists already.
    pub async fn create_with_member(
        &self,
        key: &str,
        name: &str,
        origins: Vec<String>,
        member: Option<AgentId>,
        now: Millis,
    ) -> Result<bool> {
        if !valid_key(key) {
            return Err(Error::rejected(
                ErrorCode::BadFrame,
                "an inbox key is 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let rec = InboxRecord {
            key: key.to_string(),
            name: name.to_string(),
            origins,
            chatflow: Chatflow::default(),
            created_at: now,
            widget: WidgetSettings::default(),
        };
        let created = self.admin.create_inbox(rec.clone(), member).await?;
        if created {
            self.cache.insert(rec.key.clone(), Arc::new(rec));
        }
        Ok(created)
    }

    pub async fn set_chatflow(&self, key: &str, chatflow: Chatflow) -> Result<Arc<InboxRecord>> {
        let updated = self
            .admin
            .set_chatflow(key.to_string(), chatflow)
            .await?
            .ok_or(StoreError::Closed)?;
        let updated = Arc::new(updated);
        self.cache.insert(key.to_string(), updated.clone());
        Ok(updated)
    }

    /// Changes an inbox, durably, and the cache with it; None when there is none.
    pub async fn update(&self, key: &str, change: InboxChange) -> Result<Option<Arc<InboxRecord>>> {
        let Some(updated) = self.admin.update_inbox(key.to_string(), change).await? else {
            return Ok(None);
        };
        let updated = Arc::new(updated);
        self.cache.insert(key.to_string(), updated.clone());
        Ok(Some(updated))
    }

    /// Re-reads one inbox from the store (after a write by another path).
    pub fn refresh(&self, key: &str) -> Result<()> {
        if let Some(rec) = self.admin.inbox(key)? {
            self.cache.insert(key.to_string(), Arc::new(rec));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_like_browsers_send_them() {
        assert_eq!(
            normalize_origin("https://Shop.Example.com/").as_deref(),
            Some("https://shop.example.com")
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(normalize_origin("shop.example.com"), None);
        assert_eq!(normalize_origin("https://x.com/path"), None);
        assert_eq!(normalize_origin("ftp://x.com"), None);
    }

    #[test]
    fn inbox_keys() {
        assert!(valid_key("default") && valid_key("sales-EU_2"));
        assert!(!valid_key("") && !valid_key("a b") && !valid_key(&"x".repeat(65)));
    }
}
