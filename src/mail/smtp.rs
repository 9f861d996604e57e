//! One SMTP session for one email, with lettre: the checked settings it needs
//! ([`Sender`]), the message as it goes on the wire ([`build`]), and the session
//! ([`attempt`]), whose answer says whether the server can have taken the message.
//!
//! It records nothing: what an outcome changes in the outbox is `delivery`'s. It must
//! not wait on the network beyond the configured timeout, and its errors are logged only
//! through [`without_address`].

use std::time::Duration;

use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::url::{Security, SmtpTarget};
use super::{MailError, Party};
use crate::config::MailConfig;
use crate::store::records::OutboxRecord;
use crate::text::one_line;

/// An address as lettre takes it, or which one did not parse.
pub(super) fn mailbox(which: Party, value: &str) -> Result<Mailbox, MailError> {
    value.parse::<Mailbox>().map_err(|e| MailError::Address {
        which,
        value: value.to_string(),
        reason: e.to_string(),
    })
}

/// Everything needed to talk to the SMTP server, checked.
#[derive(Debug, Clone)]
pub(super) struct Sender {
    target: SmtpTarget,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    timeout: Duration,
}

impl Sender {
    /// None when no SMTP server is configured.
    pub(super) fn from_config(c: &MailConfig) -> Result<Option<Sender>, MailError> {
        let Some(url) = &c.smtp_url else {
            return Ok(None);
        };
        let target = SmtpTarget::parse(url)?;
        let from = mailbox(
            Party::Sender,
            c.from.as_deref().ok_or(MailError::MissingFrom)?,
        )?;
        let reply_to = c
            .reply_to
            .as_deref()
            .map(|r| mailbox(Party::ReplyTo, r))
            .transpose()?;
        Ok(Some(Sender {
            target,
            from,
            reply_to,
            timeout: c.send_timeout,
        }))
    }
}

/// The result of one SMTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// The server did not get the message: safe to try again.
    Retry(String),
    /// The server refused it for good (`5xx`), or it cannot be built.
    Rejected(String),
    /// The connection failed after the message was handed over: it may have arrived.
    Unknown(String),
}

/// The email as lettre sends it.
fn build(sender: &Sender, r: &OutboxRecord) -> Result<lettre::Message, MailError> {
    let to = mailbox(Party::Recipient, &r.to)?;
    let mut m = lettre::Message::builder()
        .from(sender.from.clone())
        .to(to)
        .subject(one_line(&r.subject))
        .message_id(Some(r.message_id.clone()))
        .header(header::Date::new(crate::clock::system_time(r.created_at)));
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
pub(super) async fn attempt(sender: &Sender, r: &OutboxRecord) -> Attempt {
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
pub(super) fn without_address(error: &str, to: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{queued, Email};

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
    fn emails_carry_the_stable_message_id_and_no_injected_headers() {
        let sender = Sender::from_config(&MailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            from: Some("Acme <support@acme.test>".into()),
            reply_to: Some("help@acme.test".into()),
            ..MailConfig::default()
        })
        .expect("valid")
        .expect("configured");
        let (id, record) = queued(
            Email {
                conversation_id: crate::ids::ConversationId::generate(),
                to: "ada@example.com".into(),
                subject: "Hi\r\nBcc: evil@x.test".into(),
                text: "t".into(),
                html: "<p>h</p>".into(),
            },
            1_764_082_800_123,
        );
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
