//! Visitor tokens: who a visitor is, in a form only this server can make and read.
//!
//! A token is the `cookie` crate's private-jar encryption (AES-256-GCM, authenticated,
//! bound to the cookie name `fd_visitor`) of `KEYVERSION.VISITORID.ISSUEDMS`. The key
//! lives in the data directory. This module owns minting, verifying and the
//! `Set-Cookie` header; it must not touch the store: a token costs no write.

use std::path::Path;

use cookie::{Cookie, CookieJar, Key, SameSite};
use uuid::Uuid;
use widget_protocol::Millis;

pub const COOKIE_NAME: &str = "fd_visitor";
/// 395 days, as the protocol says.
pub const COOKIE_MAX_AGE_SECS: i64 = 34_128_000;
const KEY_VERSION: u32 = 1;
const KEY_FILE: &str = "visitor-token.key";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read or create the token key {path}: {reason}")]
    Key { path: String, reason: String },
}

pub struct Identity {
    key: Key,
    secure: bool,
}

/// A verified (or freshly minted) visitor.
#[derive(Debug, Clone)]
pub struct VisitorIdentity {
    pub visitor_id: Uuid,
    pub token: String,
    pub issued_at: Millis,
}

impl Identity {
    /// Loads the key from `dir`, creating it (mode 0600) on first start.
    pub fn load_or_create(dir: &Path, secure: bool) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        let err = |reason: String| IdentityError::Key {
            path: path.display().to_string(),
            reason,
        };
        let key = match std::fs::read(&path) {
            Ok(bytes) => Key::try_from(bytes.as_slice()).map_err(|e| err(format!("{e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Key::generate();
                crate::fsutil::write_private(&path, key.master())
                    .map_err(|e| err(e.to_string()))?;
                key
            }
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(Identity { key, secure })
    }

    pub fn mint(&self, now: Millis) -> VisitorIdentity {
        let visitor_id = Uuid::new_v4();
        let plain = format!("{KEY_VERSION}.{visitor_id}.{now}");
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new(COOKIE_NAME, plain));
        let token = jar
            .get(COOKIE_NAME)
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        VisitorIdentity {
            visitor_id,
            token,
            issued_at: now,
        }
    }

    /// The visitor a token names, or `None` for anything forged, garbled or from
    /// another key: such a client silently becomes a new visitor.
    pub fn verify(&self, token: &str) -> Option<VisitorIdentity> {
        if token.is_empty() || token.len() > 512 {
            return None;
        }
        let jar = CookieJar::new();
        let plain = jar
            .private(&self.key)
            .decrypt(Cookie::new(COOKIE_NAME, token.to_string()))?;
        let mut parts = plain.value().splitn(3, '.');
        let version: u32 = parts.next()?.parse().ok()?;
        if version != KEY_VERSION {
            return None;
        }
        let visitor_id = Uuid::parse_str(parts.next()?).ok()?;
        let issued_at: Millis = parts.next()?.parse().ok()?;
        Some(VisitorIdentity {
            visitor_id,
            token: token.to_string(),
            issued_at,
        })
    }

    /// Reads `fd_visitor` from a `Cookie` request header and verifies it.
    pub fn from_cookie_header(&self, header: &str) -> Option<VisitorIdentity> {
        Cookie::split_parse(header.to_string())
            .filter_map(Result::ok)
            .filter(|c| c.name() == COOKIE_NAME)
            .find_map(|c| self.verify(c.value()))
    }

    /// The `Set-Cookie` value for a token.
    pub fn set_cookie(&self, token: &str) -> String {
        let mut c = Cookie::build((COOKIE_NAME, token.to_string()))
            .path("/")
            .max_age(cookie::time::Duration::seconds(COOKIE_MAX_AGE_SECS))
            .http_only(true)
            .same_site(SameSite::Lax)
            .build();
        if self.secure {
            c.set_secure(true);
        }
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn identity() -> Result<(tempfile::TempDir, Identity), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let id = Identity::load_or_create(dir.path(), false)?;
        Ok((dir, id))
    }

    #[test]
    fn minted_tokens_verify_and_name_the_visitor() -> R {
        let (_d, id) = identity()?;
        let v = id.mint(42);
        let back = id.verify(&v.token).ok_or("does not verify")?;
        assert_eq!(back.visitor_id, v.visitor_id);
        assert_eq!(back.issued_at, 42);
        Ok(())
    }

    #[test]
    fn tampered_and_foreign_tokens_do_not_verify() -> R {
        let (_d, id) = identity()?;
        let (_d2, other) = identity()?;
        let v = id.mint(1);
        let mut bytes = v.token.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert!(id.verify(&String::from_utf8(bytes)?).is_none());
        assert!(other.verify(&v.token).is_none());
        assert!(id.verify("garbage").is_none());
        assert!(id.verify("").is_none());
        Ok(())
    }

    #[test]
    fn the_key_survives_a_reload() -> R {
        let dir = tempfile::tempdir()?;
        let a = Identity::load_or_create(dir.path(), false)?;
        let v = a.mint(7);
        let b = Identity::load_or_create(dir.path(), false)?;
        assert_eq!(b.verify(&v.token).map(|x| x.visitor_id), Some(v.visitor_id));
        Ok(())
    }

    #[test]
    fn cookie_header_is_parsed_among_others() -> R {
        let (_d, id) = identity()?;
        let v = id.mint(1);
        let header = format!("a=b; {COOKIE_NAME}={}; c=d", v.token);
        assert_eq!(
            id.from_cookie_header(&header).map(|x| x.visitor_id),
            Some(v.visitor_id)
        );
        let set = id.set_cookie(&v.token);
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Lax")
                && set.contains("Max-Age=34128000")
        );
        Ok(())
    }
}
