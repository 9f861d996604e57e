//! Sign-in sessions: what keeps an agent's browser signed in after it traded a token
//! once (`POST /api/session`), so that a new tab or a restarted browser needs no token.
//!
//! Owns what a session is: a secret of 256 bits from the OS generator, given to the
//! browser once in the `fd_session` cookie and stored only as its SHA-256 (the
//! [`SessionKey`]), with its agent, when it was made and when it expires (a fixed
//! lifetime from sign-in, not extended by use); when one authenticates (known, not
//! expired, its agent not revoked); which of an agent's sessions a new sign-in drops
//! ([`plan_sign_in`]: the expired ones, and the oldest past [`MAX_PER_AGENT`]); and the
//! cookie's text both ways. Signing out deletes the session, so a revoked session is one
//! the store no longer has. It must not know HTTP or sockets (the transport reads the
//! headers and decides the cookie's `Secure`), nor close connections (the caller asks
//! the hub).

use std::time::Duration;

use base64::Engine;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};
use widget_protocol::Millis;

use crate::agents;
use crate::error::Result;
use crate::store::api::{Admin, SignIns};
use crate::store::records::{AgentRecord, SignInRecord};

pub const COOKIE_NAME: &str = "fd_session";
/// How long a session lasts from sign-in by default (the cookie's `Max-Age`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Sessions one agent keeps at most (browsers, devices); a sign-in past it drops the
/// oldest, so signing in again and again cannot grow the store.
pub const MAX_PER_AGENT: usize = 50;
/// A secret's length: 32 bytes in URL-safe base64 without padding.
const SECRET_CHARS: usize = 43;

/// The SHA-256 of a session's secret: how the store and the hub name the session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    /// A prefix is enough to tell sessions apart in logs (and still is not the secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl SessionKey {
    pub fn from_bytes(b: &[u8]) -> Option<SessionKey> {
        b.try_into().ok().map(SessionKey)
    }
}

/// A session's secret as the browser holds it. Never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A cookie value that can be a secret (its length and alphabet), or None: anything
    /// else is not looked up at all.
    pub fn parse(value: &str) -> Option<Secret> {
        let ok = value.len() == SECRET_CHARS
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Secret(value.to_string()))
    }

    pub fn key(&self) -> SessionKey {
        SessionKey(Sha256::digest(self.0.as_bytes()).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Every `fd_session` in a `Cookie` request header that can be a secret (a browser may
/// send two of one name, e.g. from different paths), in order, at most
/// [`MAX_PER_REQUEST`].
pub fn from_cookie_header(header: &str) -> Vec<Secret> {
    Cookie::split_parse(header.to_string())
        .filter_map(std::result::Result::ok)
        .filter(|c| c.name() == COOKIE_NAME)
        .filter_map(|c| Secret::parse(c.value()))
        .take(MAX_PER_REQUEST)
        .collect()
}

/// Session cookies of one request looked at, at most: a header stuffed with them buys
/// no more lookups.
pub const MAX_PER_REQUEST: usize = 4;

/// The `Set-Cookie` value that gives the browser `secret` for `lifetime`.
pub fn set_cookie(secret: &Secret, lifetime: Duration, secure: bool) -> String {
    let max_age = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    cookie_with(secret.as_str(), max_age, secure)
}

/// The `Set-Cookie` value that makes the browser forget its session cookie.
pub fn clear_cookie(secure: bool) -> String {
    cookie_with("", 0, secure)
}

fn cookie_with(value: &str, max_age_secs: i64, secure: bool) -> String {
    let mut c = Cookie::build((COOKIE_NAME, value.to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    if secure {
        c.set_secure(true);
    }
    c.to_string()
}

/// Which of an agent's sessions a new sign-in at `now` drops so that, with the new
/// one, they keep at most `max`: every expired one, then the oldest (by creation,
/// then key, so the choice is stable).
pub fn plan_sign_in(
    existing: &[(SessionKey, SignInRecord)],
    now: Millis,
    max: usize,
) -> Vec<SessionKey> {
    let (expired, mut live): (Vec<_>, Vec<_>) =
        existing.iter().partition(|(_, r)| r.expires_at <= now);
    let mut dropped: Vec<SessionKey> = expired.into_iter().map(|(k, _)| *k).collect();
    live.sort_by_key(|(k, r)| (r.created_at, *k));
    let over = (live.len() + 1).saturating_sub(max.max(1));
    dropped.extend(live.into_iter().take(over).map(|(k, _)| *k));
    dropped
}

/// When a sign-in at `now` is recorded as made: `now`, or just after the newest of the
/// agent's `existing` sessions when that is not earlier, so an agent's sessions never
/// share a creation time and "the oldest" [`plan_sign_in`] drops is the first made even
/// for sign-ins within one millisecond (or after the clock stepped back).
pub fn creation_time(existing: &[(SessionKey, SignInRecord)], now: Millis) -> Millis {
    existing
        .iter()
        .map(|(_, r)| r.created_at.saturating_add(1))
        .fold(now, Millis::max)
}

/// A session just made: the secret for the cookie (its only copy) and its agent.
#[derive(Debug)]
pub struct SignedIn {
    pub secret: Secret,
    pub agent: AgentRecord,
    pub record: SignInRecord,
}

/// Trades an agent's token for a new session lasting `lifetime`, durable when this
/// returns; None when the token is unknown or its agent revoked.
pub async fn sign_in(
    admin: &dyn Admin,
    sign_ins: &dyn SignIns,
    token: &str,
    now: Millis,
    lifetime: Duration,
) -> Result<Option<SignedIn>> {
    let Some(agent) = agents::authenticate(admin, token)? else {
        return Ok(None);
    };
    let secret = Secret::generate();
    let lifetime_ms = Millis::try_from(lifetime.as_millis()).unwrap_or(Millis::MAX);
    let record = SignInRecord {
        agent_id: agent.id,
        created_at: now,
        expires_at: now.saturating_add(lifetime_ms),
    };
    // The store looks at the agent again inside its write: one revoked since is refused.
    if !sign_ins
        .create_sign_in(secret.key(), record.clone(), MAX_PER_AGENT)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(SignedIn {
        secret,
        agent,
        record,
    }))
}

/// The agent the first of `secrets` that is a live session belongs to, with that
/// session's key; None when none is known, unexpired and of an agent not revoked.
pub fn authenticate(
    admin: &dyn Admin,
    sign_ins: &dyn SignIns,
    secrets: &[Secret],
    now: Millis,
) -> Result<Option<(SessionKey, AgentRecord)>> {
    for secret in secrets {
        let key = secret.key();
        let Some(rec) = sign_ins.sign_in(&key)? else {
            continue;
        };
        if rec.expires_at <= now {
            continue;
        }
        if let Some(agent) = admin.agent(rec.agent_id)?.filter(|a| !a.revoked) {
            return Ok(Some((key, agent)));
        }
    }
    Ok(None)
}

/// Whether the session `key` still authenticates its agent at `now`.
pub fn still_valid(
    admin: &dyn Admin,
    sign_ins: &dyn SignIns,
    key: &SessionKey,
    now: Millis,
) -> Result<bool> {
    let Some(rec) = sign_ins.sign_in(key)? else {
        return Ok(false);
    };
    let agent = admin.agent(rec.agent_id)?;
    Ok(rec.expires_at > now && agent.is_some_and(|a| !a.revoked))
}

/// Ends every one of `secrets` that is a session, durably when this returns: the keys
/// of those that existed (their open connections are to be closed).
pub async fn sign_out(sign_ins: &dyn SignIns, secrets: &[Secret]) -> Result<Vec<SessionKey>> {
    let mut ended = Vec::new();
    for secret in secrets {
        let key = secret.key();
        // A read first: a made-up cookie costs no write.
        if sign_ins.sign_in(&key)?.is_some() && sign_ins.revoke_sign_in(key).await?.is_some() {
            ended.push(key);
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AgentId;

    fn rec(created_at: Millis, expires_at: Millis) -> SignInRecord {
        SignInRecord {
            agent_id: AgentId::generate(),
            created_at,
            expires_at,
        }
    }

    fn key(n: u8) -> SessionKey {
        SessionKey([n; 32])
    }

    #[test]
    fn secrets_are_256_bits_and_only_their_shape_is_looked_up() {
        let a = Secret::generate();
        assert_eq!(a.as_str().len(), SECRET_CHARS);
        assert_ne!(a, Secret::generate());
        assert_eq!(Secret::parse(a.as_str()), Some(a.clone()));
        assert_eq!(
            a.key(),
            Secret::parse(a.as_str()).map(|s| s.key()).expect("k")
        );
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", &a.as_str()[1..]),
        ] {
            assert!(Secret::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{a:?}").contains(a.as_str()), "never in a log");
    }

    #[test]
    fn the_cookie_is_read_among_others_and_written_strict() {
        let s = Secret::generate();
        let header = format!(
            "fd_visitor=x; {COOKIE_NAME}=garbage; {COOKIE_NAME}={}; a=b",
            s.as_str()
        );
        assert_eq!(from_cookie_header(&header), vec![s.clone()]);
        assert!(from_cookie_header("a=b").is_empty());
        let set = set_cookie(&s, DEFAULT_LIFETIME, false);
        assert_eq!(
            set,
            format!(
                "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000",
                s.as_str()
            )
        );
        assert_eq!(
            set_cookie(&s, DEFAULT_LIFETIME, true),
            set.replace("Strict;", "Strict; Secure;"),
        );
        assert_eq!(
            clear_cookie(false),
            format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
        );
    }

    #[test]
    fn a_sign_in_drops_the_expired_and_the_oldest_past_the_cap() {
        let now = 1_000;
        let existing = vec![
            (key(1), rec(10, 2_000)),
            (key(2), rec(5, 1_000)), // expired at now
            (key(3), rec(20, 2_000)),
            (key(4), rec(1, 900)), // expired
        ];
        assert_eq!(plan_sign_in(&existing, now, 10), vec![key(2), key(4)]);
        // Room for three with the new one: the oldest live one goes too.
        assert_eq!(plan_sign_in(&existing, now, 3), vec![key(2), key(4)]);
        assert_eq!(
            plan_sign_in(&existing, now, 2),
            vec![key(2), key(4), key(1)]
        );
        assert_eq!(
            plan_sign_in(&existing, now, 1),
            vec![key(2), key(4), key(1), key(3)]
        );
        assert!(plan_sign_in(&[], now, MAX_PER_AGENT).is_empty());
        let full: Vec<_> = (0..MAX_PER_AGENT as u8)
            .map(|i| (key(i), rec(Millis::from(i), 5_000)))
            .collect();
        assert_eq!(plan_sign_in(&full, now, MAX_PER_AGENT), vec![key(0)]);
    }

    #[test]
    fn sign_ins_in_one_millisecond_keep_their_order() {
        assert_eq!(creation_time(&[], 7), 7);
        let existing = vec![(key(9), rec(7, 100)), (key(1), rec(8, 100))];
        assert_eq!(creation_time(&existing, 7), 9);
        assert_eq!(creation_time(&existing, 20), 20);
        // Made in one millisecond, the first made is the one dropped, whatever its key.
        let mut made: Vec<(SessionKey, SignInRecord)> = Vec::new();
        for k in [9, 3, 7] {
            let at = creation_time(&made, 5);
            made.push((key(k), rec(at, 100)));
        }
        assert_eq!(plan_sign_in(&made, 5, 3), vec![key(9)]);
    }
}
