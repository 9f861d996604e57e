//! The outbox and its delivery: emails persisted in the `outbox` tree, handed to an SMTP
//! server with lettre, retried with capped exponential backoff across restarts.
//!
//! Owns every state change of an `OutboxRecord` (`Queued` → `Sending` → `Sent`, back to
//! `Queued` for a retry, or `Failed`), the `Delivery` deadlines that drive them, the
//! SMTP URL and address checks the command line runs, and the listing behind
//! `frontdesk outbox list`. It knows nothing of conversations: what an email says and
//! what a conversation shows when it went out belong to `followup`.
//!
//! # Delivery policy: at most once
//!
//! An email must never reach the visitor twice. Each attempt is recorded durably as
//! `Sending` (with `attempts + 1`) *before* the first byte goes to the server, and its
//! outcome is recorded after. That leaves one window: the process dies while sending.
//! A record found in `Sending` after a restart may or may not have been accepted, and
//! SMTP gives no way to ask; so it is never sent again but marked `Failed` with
//! "interrupted; may have been sent" (an operator can see it in `outbox list`). The
//! same holds for a connection that breaks after the message was handed over within
//! one run. Only failures that prove the server did not take the message are retried:
//! connecting, TLS or login failing before the envelope, or a `4xx` reply. A `5xx`
//! reply fails the email at once. Every email also carries a stable
//! `Message-ID: <outbox-id@frontdesk>`, so that if a copy ever were duplicated by a
//! relay, receivers could recognise it.
//!
//! The crash window is closed without scanning the outbox at start: the write that
//! marks an attempt `Sending` also persists a `Delivery` deadline due at once (a
//! "watchdog"), which this process never schedules in memory and the write that records
//! the outcome deletes. Only a restart loads it; firing it finds the record still
//! `Sending` and fails it. Start-up cost grows with pending emails, not with sent ones.
//!
//! Without `--smtp-url` a due delivery does nothing and its deadline stays persisted,
//! so the email waits as `Queued` and goes out after a start with SMTP configured.
//!
//! It must not block a worker thread on the network beyond the configured timeouts, and
//! must never log passwords or email bodies.

use std::time::Duration;

use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use uuid::Uuid;
use widget_protocol::Millis;

use crate::app::App;
use crate::config::MailConfig;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::{OutboxRecord, OutboxState};
use crate::store::{self, Batch, Kv, StoreError, Tree};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("--smtp-url {url:?} is not usable: {reason} (expected smtp://[user:pass@]host[:port][?tls=starttls|opportunistic] or smtps://[user:pass@]host[:port])")]
    Url { url: String, reason: String },
    #[error("--mail-from is required with --smtp-url (the sender of follow-up emails, e.g. \"Acme Support <support@acme.test>\")")]
    MissingFrom,
    #[error("{which} {value:?} is not an email address like \"Acme Support <support@acme.test>\": {reason}")]
    Address {
        which: &'static str,
        value: String,
        reason: String,
    },
    #[error("--public-url {0:?} must start with http:// or https://")]
    PublicUrl(String),
    #[error("cannot build the email: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: no TLS (a relay on the same host or network).
    Plain,
    /// `smtp://…?tls=starttls` (or `required`): STARTTLS, refusing to go on without it.
    StartTls,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtps://`: TLS from the first byte.
    Wrapper,
}

/// A parsed `--smtp-url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl SmtpTarget {
    /// `smtp://[user:pass@]host[:port][?tls=starttls|required|opportunistic]` or
    /// `smtps://[user:pass@]host[:port]`. Default ports: 25 plain, 587 STARTTLS, 465 TLS.
    pub fn parse(raw: &str) -> Result<SmtpTarget, MailError> {
        let bad = |reason: &str| MailError::Url {
            url: redact(raw),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut tls = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "tls" => tls = Some(v.into_owned()),
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => Security::Plain,
            ("smtp", Some("starttls" | "required")) => Security::StartTls,
            ("smtp", Some("opportunistic")) => Security::Opportunistic,
            ("smtps", None | Some("wrapper")) => Security::Wrapper,
            ("smtp" | "smtps", Some(t)) => {
                return Err(bad(&format!(
                    "tls={t} is not one of starttls, required, opportunistic"
                )))
            }
            (s, _) => return Err(bad(&format!("the scheme {s:?} is not smtp or smtps"))),
        };
        let port = url.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls | Security::Opportunistic => 587,
            Security::Wrapper => 465,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("the credentials are not UTF-8 once percent-decoded"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some((decode(user)?, decode(pass)?)),
            (_, None) => return Err(bad("a user needs a password (user:pass@host)")),
        };
        if url.path().len() > 1 {
            return Err(bad("it has a path"));
        }
        Ok(SmtpTarget {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// The URL with any password replaced, for error messages.
fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

fn mailbox(which: &'static str, value: &str) -> Result<Mailbox, MailError> {
    value.parse::<Mailbox>().map_err(|e| MailError::Address {
        which,
        value: value.to_string(),
        reason: e.to_string(),
    })
}

/// Everything needed to talk to the SMTP server, checked.
#[derive(Debug, Clone)]
struct Sender {
    target: SmtpTarget,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    timeout: Duration,
}

impl Sender {
    /// None when no SMTP server is configured.
    fn from_config(c: &MailConfig) -> Result<Option<Sender>, MailError> {
        let Some(url) = &c.smtp_url else {
            return Ok(None);
        };
        let target = SmtpTarget::parse(url)?;
        let from = mailbox(
            "--mail-from",
            c.from.as_deref().ok_or(MailError::MissingFrom)?,
        )?;
        let reply_to = c
            .reply_to
            .as_deref()
            .map(|r| mailbox("--reply-to", r))
            .transpose()?;
        Ok(Some(Sender {
            target,
            from,
            reply_to,
            timeout: c.send_timeout,
        }))
    }
}

/// Checks the mail settings once, for the command line: a usable `--smtp-url`, a
/// `--mail-from` with it, addresses that parse, an http(s) `--public-url`.
pub fn check(c: &MailConfig) -> Result<(), MailError> {
    Sender::from_config(c)?;
    if let Some(from) = &c.from {
        mailbox("--mail-from", from)?;
    }
    if let Some(r) = &c.reply_to {
        mailbox("--reply-to", r)?;
    }
    if let Some(u) = &c.public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(MailError::PublicUrl(u.clone()));
        }
    }
    Ok(())
}

/// An email to put in the outbox.
#[derive(Debug, Clone)]
pub struct Email {
    pub conversation_id: String,
    pub to: String,
    /// One line; callers strip line breaks, and `compose` does again.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Adds `email` to the outbox in `b`, due at once. Returns its id and deadline, for the
/// caller to schedule once the batch is written.
pub fn enqueue(b: &mut Batch, email: Email, now: Millis) -> (Uuid, u64) {
    let id = Uuid::now_v7();
    let due = now.max(0) as u64;
    let record = OutboxRecord {
        id: id.to_string(),
        message_id: format!("<{id}@frontdesk>"),
        conversation_id: email.conversation_id,
        to: email.to,
        subject: one_line(&email.subject),
        text: email.text,
        html: email.html,
        created_at: now,
        attempts: 0,
        last_error: None,
        state: OutboxState::Queued,
        next_attempt_at: Some(due as Millis),
        sent_at: None,
    };
    b.put_json(Tree::Outbox, keys::id(id), &record);
    b.put(
        Tree::Deadlines,
        keys::deadline(due, DeadlineKind::Delivery, id),
        Vec::new(),
    );
    (id, due)
}

/// Every email in the outbox, oldest first (ids are time-ordered).
pub fn list(kv: &dyn Kv) -> Result<Vec<OutboxRecord>, StoreError> {
    kv.scan_prefix(Tree::Outbox, b"", usize::MAX)?
        .into_iter()
        .map(|(_, v)| store::decode(Tree::Outbox, &v))
        .collect()
}

pub fn get(kv: &dyn Kv, id: Uuid) -> Result<Option<OutboxRecord>, StoreError> {
    store::get_json(kv, Tree::Outbox, &keys::id(id))
}

/// Why an email will not be sent (again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// The server refused it for good, or every attempt failed.
    Undeliverable,
    /// Sending was interrupted after the message may have reached the server.
    MaybeSent,
}

/// What a due delivery deadline led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A stale deadline, or no SMTP server configured (the email waits).
    Nothing,
    Sent {
        conversation_id: String,
    },
    /// Schedule the next attempt at this time.
    Retry {
        due: u64,
    },
    Failed {
        conversation_id: String,
        why: GaveUp,
    },
}

/// The result of one SMTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Sent,
    /// The server did not get the message: safe to try again.
    Retry(String),
    /// The server refused it for good (`5xx`), or it cannot be built.
    Rejected(String),
    /// The connection failed after the message was handed over: it may have arrived.
    Unknown(String),
}

/// Backoff before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most `max`.
pub fn backoff(c: &MailConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    c.retry_base.saturating_mul(factor).min(c.retry_max)
}

enum Begin {
    /// Nothing to do; apply the batch (it may delete a stale deadline).
    Nothing,
    /// No SMTP server: leave everything as it is.
    Waiting,
    Send(OutboxRecord),
    /// A watchdog found the record still `Sending`: it was interrupted by a restart.
    Interrupted(OutboxRecord),
}

/// A `Delivery` deadline for email `id` fell due: attempt it, record the outcome.
pub async fn deliver(app: &App, id: Uuid, due: u64) -> Result<Delivery, MailError> {
    let sender = Sender::from_config(&app.config.mail)?;
    let configured = sender.is_some();
    let now = app.now();
    let begin = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let key = keys::deadline(due, DeadlineKind::Delivery, id);
            let Some(mut r) = get(kv, id)? else {
                b.delete(Tree::Deadlines, key);
                return Ok((b, Begin::Nothing));
            };
            if r.next_attempt_at != Some(due as Millis) {
                b.delete(Tree::Deadlines, key);
                return Ok((b, Begin::Nothing));
            }
            match r.state {
                OutboxState::Queued if !configured => Ok((b, Begin::Waiting)),
                OutboxState::Queued => {
                    b.delete(Tree::Deadlines, key);
                    r.state = OutboxState::Sending;
                    r.attempts += 1;
                    // The watchdog: only a restart ever loads it (see the module docs).
                    let watchdog = (now.max(0) as u64).max(due + 1);
                    r.next_attempt_at = Some(watchdog as Millis);
                    b.put(
                        Tree::Deadlines,
                        keys::deadline(watchdog, DeadlineKind::Delivery, id),
                        Vec::new(),
                    );
                    b.put_json(Tree::Outbox, keys::id(id), &r);
                    Ok((b, Begin::Send(r)))
                }
                OutboxState::Sending => {
                    b.delete(Tree::Deadlines, key);
                    r.state = OutboxState::Failed;
                    r.next_attempt_at = None;
                    r.last_error = Some("interrupted; may have been sent".to_string());
                    b.put_json(Tree::Outbox, keys::id(id), &r);
                    Ok((b, Begin::Interrupted(r)))
                }
                OutboxState::Sent | OutboxState::Failed => {
                    b.delete(Tree::Deadlines, key);
                    Ok((b, Begin::Nothing))
                }
            }
        })
        .await?;
    let record = match begin {
        Begin::Nothing => return Ok(Delivery::Nothing),
        Begin::Waiting => {
            tracing::info!(email = %id, "no --smtp-url: the email waits in the outbox");
            return Ok(Delivery::Nothing);
        }
        Begin::Interrupted(r) => {
            tracing::warn!(email = %id, "an email was being sent when the server stopped; it may have arrived, so it is not sent again");
            return Ok(Delivery::Failed {
                conversation_id: r.conversation_id,
                why: GaveUp::MaybeSent,
            });
        }
        Begin::Send(r) => r,
    };
    let Some(sender) = sender else {
        return Ok(Delivery::Nothing);
    };
    let outcome = attempt(&sender, &record).await;
    finish(app, id, &record.to, record.attempts, outcome).await
}

/// Records the outcome of attempt number `attempt_no`.
async fn finish(
    app: &App,
    id: Uuid,
    to: &str,
    attempt_no: u32,
    outcome: Attempt,
) -> Result<Delivery, MailError> {
    let now = app.now();
    let mail = app.config.mail.clone();
    match &outcome {
        Attempt::Sent => tracing::info!(email = %id, attempt = attempt_no, "email sent"),
        Attempt::Retry(e) => {
            let e = without_address(e, to);
            tracing::warn!(email = %id, attempt = attempt_no, error = %e, "email not sent; will retry")
        }
        Attempt::Rejected(e) | Attempt::Unknown(e) => {
            let e = without_address(e, to);
            tracing::error!(email = %id, attempt = attempt_no, error = %e, "email not sent; giving up")
        }
    }
    Ok(app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut r) = get(kv, id)? else {
                return Ok((b, Delivery::Nothing));
            };
            if r.state != OutboxState::Sending || r.attempts != attempt_no {
                // Someone else recorded this attempt's end (it cannot happen in one
                // process); the truth that it was sent still wins.
                if outcome == Attempt::Sent && r.state != OutboxState::Sent {
                    r.state = OutboxState::Sent;
                    r.sent_at = Some(now);
                    b.put_json(Tree::Outbox, keys::id(id), &r);
                }
                return Ok((b, Delivery::Nothing));
            }
            if let Some(watchdog) = r.next_attempt_at.take() {
                b.delete(
                    Tree::Deadlines,
                    keys::deadline(watchdog.max(0) as u64, DeadlineKind::Delivery, id),
                );
            }
            let conversation_id = r.conversation_id.clone();
            let delivery = match outcome {
                Attempt::Sent => {
                    r.state = OutboxState::Sent;
                    r.sent_at = Some(now);
                    r.last_error = None;
                    Delivery::Sent { conversation_id }
                }
                Attempt::Retry(e) if r.attempts < mail.max_attempts => {
                    let wait = backoff(&mail, r.attempts).as_millis() as u64;
                    let due = now.max(0) as u64 + wait;
                    r.state = OutboxState::Queued;
                    r.next_attempt_at = Some(due as Millis);
                    r.last_error = Some(e);
                    b.put(
                        Tree::Deadlines,
                        keys::deadline(due, DeadlineKind::Delivery, id),
                        Vec::new(),
                    );
                    Delivery::Retry { due }
                }
                Attempt::Retry(e) => {
                    r.state = OutboxState::Failed;
                    r.last_error = Some(format!("gave up after {} attempts: {e}", r.attempts));
                    Delivery::Failed {
                        conversation_id,
                        why: GaveUp::Undeliverable,
                    }
                }
                Attempt::Rejected(e) => {
                    r.state = OutboxState::Failed;
                    r.last_error = Some(e);
                    Delivery::Failed {
                        conversation_id,
                        why: GaveUp::Undeliverable,
                    }
                }
                Attempt::Unknown(e) => {
                    r.state = OutboxState::Failed;
                    r.last_error = Some(format!("may have been sent: {e}"));
                    Delivery::Failed {
                        conversation_id,
                        why: GaveUp::MaybeSent,
                    }
                }
            };
            b.put_json(Tree::Outbox, keys::id(id), &r);
            Ok((b, delivery))
        })
        .await?)
}

/// The email as lettre sends it.
fn build(sender: &Sender, r: &OutboxRecord) -> Result<lettre::Message, MailError> {
    let to = mailbox("the recipient", &r.to)?;
    let mut m = lettre::Message::builder()
        .from(sender.from.clone())
        .to(to)
        .subject(one_line(&r.subject))
        .message_id(Some(r.message_id.clone()))
        .header(header::Date::new(
            std::time::UNIX_EPOCH + Duration::from_millis(r.created_at.max(0) as u64),
        ));
    if let Some(reply_to) = &sender.reply_to {
        m = m.reply_to(reply_to.clone());
    }
    m.multipart(MultiPart::alternative_plain_html(
        r.text.clone(),
        r.html.clone(),
    ))
    .map_err(|e| MailError::Build(e.to_string()))
}

/// One SMTP session for one email. Which phase failed decides whether a retry is safe.
async fn attempt(sender: &Sender, r: &OutboxRecord) -> Attempt {
    let message = match build(sender, r) {
        Ok(m) => m,
        Err(e) => return Attempt::Rejected(e.to_string()),
    };
    let t = &sender.target;
    let timeout = sender.timeout;
    let hello = ClientId::default();
    let tls = || TlsParameters::new(t.host.clone());
    // Phase 1: connect, TLS, login. Nothing of the email has left: any failure is safe
    // to retry, except a server that refuses the login for good.
    let connect = async {
        let wrapper = match t.security {
            Security::Wrapper => Some(tls()?),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (t.host.as_str(), t.port),
            Some(timeout),
            &hello,
            wrapper,
            None,
        )
        .await?;
        match t.security {
            Security::StartTls => conn.starttls(tls()?, &hello).await?,
            Security::Opportunistic if conn.can_starttls() => conn.starttls(tls()?, &hello).await?,
            _ => {}
        }
        if let Some((user, pass)) = &t.credentials {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), pass.clone()),
            )
            .await?;
        }
        Ok::<_, lettre::transport::smtp::Error>(conn)
    };
    let mut conn = match tokio::time::timeout(timeout, connect).await {
        Err(_) => return Attempt::Retry(format!("no connection within {timeout:?}")),
        Ok(Err(e)) if e.is_permanent() => return Attempt::Rejected(e.to_string()),
        Ok(Err(e)) => return Attempt::Retry(e.to_string()),
        Ok(Ok(c)) => c,
    };
    // Phase 2: the envelope and the message. A reply code is an unambiguous answer;
    // anything else (a broken connection, no answer in time) leaves it unknown whether
    // the server took the message.
    let raw = message.formatted();
    let sent = tokio::time::timeout(timeout, conn.send(message.envelope(), &raw)).await;
    let outcome = match sent {
        Ok(Ok(_)) => Attempt::Sent,
        Ok(Err(e)) if e.is_transient() => Attempt::Retry(e.to_string()),
        Ok(Err(e)) if e.is_permanent() || e.is_client() => Attempt::Rejected(e.to_string()),
        Ok(Err(e)) => Attempt::Unknown(e.to_string()),
        Err(_) => Attempt::Unknown(format!("no answer within {timeout:?}")),
    };
    if outcome == Attempt::Sent {
        // Politeness only: the message is already accepted.
        let _ = tokio::time::timeout(timeout, conn.quit()).await;
    }
    outcome
}

/// An SMTP error for the log: servers quote the recipient back ("550 <ada@…>: no such
/// user"), and logs must hold no email address. Matched ignoring ASCII case, which
/// keeps byte offsets. The outbox keeps the full text for `frontdesk outbox list`.
fn without_address(error: &str, to: &str) -> String {
    let needle = to.trim().to_ascii_lowercase();
    if needle.is_empty() {
        return error.to_string();
    }
    let hay = error.to_ascii_lowercase();
    let mut out = String::with_capacity(error.len());
    let mut rest = 0;
    while let Some(at) = hay[rest..].find(&needle) {
        out.push_str(&error[rest..rest + at]);
        out.push_str("[recipient]");
        rest += at + needle.len();
    }
    out.push_str(&error[rest..]);
    out
}

/// Text for a header: control characters (CR, LF, tabs…) and line separators become
/// spaces, runs of spaces one, at most 200 characters. Headers built from user input
/// can then never start a new header line.
pub fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(199).collect::<String>() + "…";
    }
    out
}

/// `2025-11-25 14:03 UTC` for milliseconds since the epoch.
pub fn utc_minute(ms: Millis) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `2025-11-25T14:03:07Z` for milliseconds since the epoch.
pub fn utc_rfc3339(ms: Millis) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Date and time in UTC (proleptic Gregorian calendar, days-from-civil inverted).
fn civil(ms: Millis) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The name of a state, as `outbox list` prints it.
pub fn state_name(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Queued => "queued",
        OutboxState::Sending => "sending",
        OutboxState::Sent => "sent",
        OutboxState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_smtp_errors_name_no_recipient() {
        let e = "permanent error (550): 5.1.1 <Ada@Example.com>: no such user; ada@example.com";
        assert_eq!(
            without_address(e, "ada@example.com"),
            "permanent error (550): 5.1.1 <[recipient]>: no such user; [recipient]"
        );
        assert_eq!(
            without_address("réseau: Ada@x.test", "ada@x.test"),
            "réseau: [recipient]"
        );
        assert_eq!(without_address("timeout", ""), "timeout");
    }

    #[test]
    fn smtp_urls_parse_with_defaults_and_errors_hide_passwords() {
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525").expect("plain");
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("127.0.0.1", 2525, Security::Plain)
        );
        assert_eq!(t.credentials, None);
        let t = SmtpTarget::parse("smtp://me%40x.test:p%3Ass@mail.x.test?tls=starttls")
            .expect("starttls");
        assert_eq!((t.port, t.security), (587, Security::StartTls));
        assert_eq!(t.credentials, Some(("me@x.test".into(), "p:ss".into())));
        assert!(!format!("{t:?}").contains("p:ss"));
        let t = SmtpTarget::parse("smtps://mail.x.test").expect("wrapper");
        assert_eq!((t.port, t.security), (465, Security::Wrapper));
        assert_eq!(
            SmtpTarget::parse("smtp://h?tls=opportunistic")
                .expect("opp")
                .security,
            Security::Opportunistic
        );
        for bad in [
            "http://h",
            "smtp://h?tls=maybe",
            "smtp://u@h",
            "smtp://h/path",
            "nonsense",
        ] {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad} accepted");
        }
        let e = SmtpTarget::parse("smtp://u:secret@h?tls=x").expect_err("bad tls");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn check_wants_a_sender_with_smtp_and_valid_addresses() {
        let mut c = MailConfig::default();
        assert!(check(&c).is_ok(), "no mail at all is fine");
        c.smtp_url = Some("smtp://127.0.0.1:25".into());
        assert!(matches!(check(&c), Err(MailError::MissingFrom)));
        c.from = Some("Acme <support@acme.test>".into());
        assert!(check(&c).is_ok());
        c.reply_to = Some("not an address".into());
        assert!(matches!(check(&c), Err(MailError::Address { .. })));
        c.reply_to = None;
        c.public_url = Some("ftp://x".into());
        assert!(matches!(check(&c), Err(MailError::PublicUrl(_))));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = MailConfig {
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            ..MailConfig::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| backoff(&c, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(&c, u32::MAX).as_secs(), 600);
    }

    #[test]
    fn one_line_removes_every_line_break() {
        assert_eq!(
            one_line("Eve\r\nBcc: x@y.z\u{2028}\tHi  \u{85}there"),
            "Eve Bcc: x@y.z Hi there"
        );
        assert_eq!(one_line(&"a".repeat(300)).chars().count(), 200);
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_minute(1_764_082_800_123), "2025-11-25 15:00 UTC");
        assert_eq!(utc_rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn emails_carry_the_stable_message_id_and_no_injected_headers() {
        let sender = Sender::from_config(&MailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            from: Some("Acme <support@acme.test>".into()),
            reply_to: Some("help@acme.test".into()),
            ..MailConfig::default()
        })
        .expect("valid")
        .expect("configured");
        let mut b = Batch::default();
        let (id, _) = enqueue(
            &mut b,
            Email {
                conversation_id: "c".into(),
                to: "ada@example.com".into(),
                subject: "Hi\r\nBcc: evil@x.test".into(),
                text: "t".into(),
                html: "<p>h</p>".into(),
            },
            1_764_082_800_123,
        );
        let record: OutboxRecord = b
            .ops
            .iter()
            .find(|(t, _, _)| *t == Tree::Outbox)
            .and_then(|(_, _, v)| v.as_ref())
            .map(|v| serde_json::from_slice(v).expect("record"))
            .expect("an outbox put");
        let raw =
            String::from_utf8(build(&sender, &record).expect("builds").formatted()).expect("ascii");
        let head = raw.split("\r\n\r\n").next().expect("headers");
        assert!(
            head.contains(&format!("Message-ID: <{id}@frontdesk>")),
            "{head}"
        );
        assert!(head.contains("Reply-To: help@acme.test"), "{head}");
        assert!(
            !head.lines().any(|l| l.starts_with("Bcc")),
            "injected header: {head}"
        );
    }
}
