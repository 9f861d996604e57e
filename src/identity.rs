//! Visitor tokens: who a visitor is, in a form only this server can make and read.
//!
//! A token is the `cookie` crate's private-jar encryption (AES-256-GCM, authenticated,
//! bound to the cookie name `fd_visitor`) of `KEYVERSION.VISITORID.ISSUEDMS`. The key
//! lives in the data directory. This module owns minting, verifying (with the token's
//! lifetime: one cookie lifetime from its issue time, never from the future), renewing
//! a token in use, and the `Set-Cookie` header; it must not touch the store: a token
//! costs no write.

use std::path::Path;

use cookie::{Cookie, CookieJar, Key, SameSite};
use widget_protocol::Millis;

use crate::ids::VisitorId;

pub const COOKIE_NAME: &str = "fd_visitor";
/// 395 days, as the protocol says.
pub const COOKIE_MAX_AGE_SECS: i64 = 34_128_000;
/// A token lives as long as the cookie that carries it, counted from its issue time.
pub const TOKEN_LIFETIME_MS: Millis = COOKIE_MAX_AGE_SECS * 1000;
/// A token used when it is older than this is replaced by a fresh one for the same
/// visitor, so a visitor who keeps coming back never reaches the lifetime.
pub const RENEW_AFTER_MS: Millis = 24 * 60 * 60 * 1000;
/// How far in the future an issue time may be (clocks of a restarted or moved server).
pub const CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;
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
    lifetime: TokenLifetime,
}

/// How long a token is valid, and after how long one in use is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime {
    /// From its issue time; also the cookie's `Max-Age`.
    pub valid_ms: Millis,
    pub renew_after_ms: Millis,
}

impl Default for TokenLifetime {
    fn default() -> Self {
        TokenLifetime {
            valid_ms: TOKEN_LIFETIME_MS,
            renew_after_ms: RENEW_AFTER_MS,
        }
    }
}

/// A verified (or freshly minted) visitor.
#[derive(Debug, Clone)]
pub struct VisitorIdentity {
    pub visitor_id: VisitorId,
    pub token: String,
    pub issued_at: Millis,
    /// Minted or renewed just now: the client must be given this token (in `welcome`,
    /// and in `Set-Cookie` when the handshake made it).
    pub fresh: bool,
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
        Ok(Identity {
            key,
            secure,
            lifetime: TokenLifetime::default(),
        })
    }

    /// The same key with another token lifetime.
    pub fn with_lifetime(self, lifetime: TokenLifetime) -> Self {
        Identity { lifetime, ..self }
    }

    pub fn mint(&self, now: Millis) -> VisitorIdentity {
        self.mint_for(VisitorId::generate(), now)
    }

    fn mint_for(&self, visitor_id: VisitorId, now: Millis) -> VisitorIdentity {
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
            fresh: true,
        }
    }

    /// The visitor a token names, or `None` for anything forged, garbled, from another
    /// key, expired (issued more than the lifetime's `valid_ms` before `now`, by default
    /// [`TOKEN_LIFETIME_MS`]) or issued in the future (beyond [`CLOCK_SKEW_MS`]): such a
    /// client silently becomes a new visitor. A valid token older than `renew_after_ms`
    /// (by default [`RENEW_AFTER_MS`]) comes back renewed: the same visitor with a fresh
    /// token.
    pub fn verify(&self, token: &str, now: Millis) -> Option<VisitorIdentity> {
        let found = self.decrypt(token)?;
        let age = now.saturating_sub(found.issued_at);
        if !(-CLOCK_SKEW_MS..=self.lifetime.valid_ms).contains(&age) {
            return None;
        }
        if age > self.lifetime.renew_after_ms {
            return Some(self.mint_for(found.visitor_id, now));
        }
        Some(found)
    }

    fn decrypt(&self, token: &str) -> Option<VisitorIdentity> {
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
        let visitor_id = VisitorId::parse(parts.next()?)?;
        let issued_at: Millis = parts.next()?.parse().ok()?;
        Some(VisitorIdentity {
            visitor_id,
            token: token.to_string(),
            issued_at,
            fresh: false,
        })
    }

    /// Reads `fd_visitor` from a `Cookie` request header and verifies it.
    pub fn from_cookie_header(&self, header: &str, now: Millis) -> Option<VisitorIdentity> {
        Cookie::split_parse(header.to_string())
            .filter_map(Result::ok)
            .filter(|c| c.name() == COOKIE_NAME)
            .find_map(|c| self.verify(c.value(), now))
    }

    /// The `Set-Cookie` value for a token.
    pub fn set_cookie(&self, token: &str) -> String {
        let mut c = Cookie::build((COOKIE_NAME, token.to_string()))
            .path("/")
            .max_age(cookie::time::Duration::milliseconds(self.lifetime.valid_ms))
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
        let back = id.verify(&v.token, 42).ok_or("does not verify")?;
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
        assert!(id.verify(&String::from_utf8(bytes)?, 1).is_none());
        assert!(other.verify(&v.token, 1).is_none());
        assert!(id.verify("garbage", 1).is_none());
        assert!(id.verify("", 1).is_none());
        Ok(())
    }

    #[test]
    fn the_key_survives_a_reload() -> R {
        let dir = tempfile::tempdir()?;
        let a = Identity::load_or_create(dir.path(), false)?;
        let v = a.mint(7);
        let b = Identity::load_or_create(dir.path(), false)?;
        assert_eq!(
            b.verify(&v.token, 7).map(|x| x.visitor_id),
            Some(v.visitor_id)
        );
        Ok(())
    }

    #[test]
    fn cookie_header_is_parsed_among_others() -> R {
        let (_d, id) = identity()?;
        let v = id.mint(1);
        let header = format!("a=b; {COOKIE_NAME}={}; c=d", v.token);
        assert_eq!(
            id.from_cookie_header(&header, 1).map(|x| x.visitor_id),
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

    #[test]
    fn tokens_expire_renew_and_are_refused_from_the_future() -> R {
        let (_d, id) = identity()?;
        let t0: Millis = 1_700_000_000_000;
        let v = id.mint(t0);
        let same = id.verify(&v.token, t0 + RENEW_AFTER_MS).ok_or("young")?;
        assert_eq!(same.token, v.token, "a young token is kept");
        let old = id
            .verify(&v.token, t0 + RENEW_AFTER_MS + 1)
            .ok_or("old but valid")?;
        assert_eq!(old.visitor_id, v.visitor_id);
        assert!(old.fresh && old.token != v.token);
        assert!(!same.fresh);
        let fresh = id.verify(&old.token, t0 + TOKEN_LIFETIME_MS + 10);
        assert_eq!(fresh.map(|f| f.visitor_id), Some(v.visitor_id));
        assert!(id.verify(&v.token, t0 + TOKEN_LIFETIME_MS).is_some());
        assert!(id.verify(&v.token, t0 + TOKEN_LIFETIME_MS + 1).is_none());
        assert!(id.verify(&v.token, t0 - CLOCK_SKEW_MS).is_some());
        assert!(id.verify(&v.token, t0 - CLOCK_SKEW_MS - 1).is_none());
        Ok(())
    }

    #[test]
    fn a_configured_lifetime_expires_renews_and_sets_the_cookie_by_itself() -> R {
        const HOUR: Millis = 3_600_000;
        let (_d, id) = identity()?;
        let id = id.with_lifetime(TokenLifetime {
            valid_ms: 48 * HOUR,
            renew_after_ms: HOUR,
        });
        let t0: Millis = 1_700_000_000_000;
        let v = id.mint(t0);
        assert!(!id.verify(&v.token, t0 + HOUR).ok_or("young")?.fresh);
        assert!(id.verify(&v.token, t0 + HOUR + 1).ok_or("renewed")?.fresh);
        assert!(id.verify(&v.token, t0 + 48 * HOUR).is_some());
        assert!(id.verify(&v.token, t0 + 48 * HOUR + 1).is_none());
        assert!(id.set_cookie(&v.token).contains("Max-Age=172800"));
        Ok(())
    }
}
