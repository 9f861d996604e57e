//! Inboxes: their keys, names, allowed origins and chatflow settings.
//!
//! Owns the `inboxes` tree. Reads are cached in memory (inboxes change rarely and are
//! read on every visitor handshake); every write goes through the writer and refreshes
//! the cache. It must not decide what a chatflow does, only keep it.

use std::sync::Arc;

use dashmap::DashMap;
use widget_protocol::{Chatflow, ErrorCode, Millis};

use crate::error::{Error, Result};
use crate::store::records::InboxRecord;
use crate::store::{self, Batch, Kv, Tree, Writer};

pub const DEFAULT_INBOX: &str = "default";

pub struct Inboxes {
    kv: Arc<dyn Kv>,
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
    pub fn load(kv: Arc<dyn Kv>) -> Result<Self> {
        let cache = DashMap::new();
        for (_, v) in kv.scan_prefix(Tree::Inboxes, b"", usize::MAX)? {
            let rec: InboxRecord = store::decode(Tree::Inboxes, &v)?;
            cache.insert(rec.key.clone(), Arc::new(rec));
        }
        Ok(Inboxes { kv, cache })
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
        writer: &Writer,
        key: &str,
        name: &str,
        origins: Vec<String>,
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
        };
        let stored = rec.clone();
        let created = writer
            .write(move |kv| {
                let mut b = Batch::default();
                if kv.get(Tree::Inboxes, stored.key.as_bytes())?.is_some() {
                    return Ok((b, false));
                }
                b.put_json(Tree::Inboxes, stored.key.as_bytes(), &stored);
                Ok((b, true))
            })
            .await?;
        if created {
            self.cache.insert(rec.key.clone(), Arc::new(rec));
        }
        Ok(created)
    }

    pub async fn set_chatflow(
        &self,
        writer: &Writer,
        key: &str,
        chatflow: Chatflow,
    ) -> Result<Arc<InboxRecord>> {
        let key_owned = key.to_string();
        let updated = writer
            .write(move |kv| {
                let mut b = Batch::default();
                let mut rec: InboxRecord =
                    store::get_json(kv, Tree::Inboxes, key_owned.as_bytes())?
                        .ok_or(store::StoreError::Closed)?;
                rec.chatflow = chatflow;
                b.put_json(Tree::Inboxes, key_owned.as_bytes(), &rec);
                Ok((b, rec))
            })
            .await?;
        let updated = Arc::new(updated);
        self.cache.insert(key.to_string(), updated.clone());
        Ok(updated)
    }

    /// Re-reads one inbox from the store (after a write by another path).
    pub fn refresh(&self, key: &str) -> Result<()> {
        if let Some(rec) =
            store::get_json::<InboxRecord>(self.kv.as_ref(), Tree::Inboxes, key.as_bytes())?
        {
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
