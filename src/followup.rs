//! Follow-up emails to visitors who left before reading agent replies.
//!
//! `conversations::append_agent` schedules a `FollowUp` deadline (`follow_up_due`) when
//! an agent replies to an offline visitor with a known email; from there this module
//! owns the conversation's follow-up state: marking replies seen when the visitor comes
//! back (`seen`), correcting a reply's fate when the visitor came or went between its
//! store and its delivery (`reached`, `missed`), and, when the deadline falls due,
//! writing one email with every unseen reply into the outbox in the same write that
//! clears `follow_up_due` and moves `seen_seq` (so one batch of replies is one email,
//! and the next batch starts fresh).
//! It also tells the conversation (a `system` message, to agents and to the visitor's
//! history) when the email went out or could not.
//!
//! What the email says is decided here ([`render`]); how it is delivered (SMTP, retries,
//! at-most-once) is `mail`'s. Everything users typed is escaped in the HTML part and
//! made one line wherever it reaches a header. It must never show a visitor contact
//! data they did not type, so the system message names no address.

pub mod state;

use uuid::Uuid;
use widget_protocol::{encode, AgentServer, AuthorKind, Message, Millis, VisitorServer};

use crate::app::App;
use crate::conversations::{self, parse_id, Cut};
use crate::mail::{self, Delivery, Email, GaveUp};
use crate::metrics::Metrics;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::ConversationRecord;
use crate::store::{Batch, Kv, StoreError, Tree};

pub const SENT: &str = "Follow-up email sent to the visitor";
pub const UNDELIVERABLE: &str = "The follow-up email to the visitor could not be delivered";
pub const MAYBE_SENT: &str =
    "Sending the follow-up email to the visitor was interrupted; it may not have arrived";

/// Unseen replies gathered into one email, at most.
const MAX_REPLIES: usize = 200;

/// A `FollowUp` or `Delivery` deadline fell due. Runs as its own task, like
/// `capture::fire`, so slow SMTP servers never hold up the deadline queue.
pub fn fire(app: &App, kind: DeadlineKind, subject: Uuid, due: u64) {
    let app = app.clone();
    tokio::spawn(async move {
        match kind {
            DeadlineKind::FollowUp => follow_up(&app, subject, due).await,
            DeadlineKind::Delivery => deliver(&app, subject, due).await,
            DeadlineKind::Prompt => {}
        }
    });
}

/// After a `welcome`: the visitor sees every message, so a pending follow-up is
/// cancelled and the next one starts after what they have now.
pub async fn seen(app: &App, conv: Uuid) {
    change(app, conv, "that a visitor saw the replies", move |b, c| {
        cancel(b, c, conv);
        c.seen_seq = c.last_seq;
        true
    })
    .await
}

/// An agent's reply stored while the visitor was offline reached a connection of theirs
/// after all (they came back between the store and the delivery): it counts as seen,
/// as it would have had they been online a moment earlier, and a follow-up pending only
/// for it is cancelled.
pub async fn reached(app: &App, conv: Uuid, seq: u64) {
    change(app, conv, "a reply the visitor saw", move |b, c| {
        if c.seen_seq >= seq {
            return false;
        }
        c.seen_seq = seq;
        if c.seen_seq >= c.last_seq {
            cancel(b, c, conv);
        }
        true
    })
    .await
}

/// Changes a conversation's follow-up state in one write; `f` returns whether it changed
/// anything to store.
async fn change(
    app: &App,
    conv: Uuid,
    what: &str,
    f: impl FnOnce(&mut Batch, &mut ConversationRecord) -> bool + Send + 'static,
) {
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            if let Some(mut c) = conversations::load(kv, conv)? {
                if f(&mut b, &mut c) {
                    b.put_json(Tree::Conversations, keys::id(conv), &c);
                }
            }
            Ok((b, ()))
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record {what}");
    }
}

/// An agent's reply stored as seen while the visitor was online reached none of their
/// connections (they left between the store and the delivery): it is unseen after all,
/// and gets a follow-up like a reply to an offline visitor. Nothing changes when they
/// are back by the time this runs: their welcome, read after the reply was stored,
/// had it.
pub async fn missed(app: &App, conv: Uuid, seq: u64, delay_ms: u64) {
    let inner = app.clone();
    let now = app.now();
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut c) = conversations::load(kv, conv)? else {
                return Ok((b, None));
            };
            if conversations::visitor_key(&c).is_some_and(|k| inner.hub.visitor_online(&k)) {
                return Ok((b, None));
            }
            c.seen_seq = c.seen_seq.min(seq.saturating_sub(1));
            let armed = conversations::arm_follow_up(kv, &mut b, conv, &mut c, now, delay_ms);
            b.put_json(Tree::Conversations, keys::id(conv), &c);
            Ok((b, armed))
        })
        .await;
    match r {
        Ok(Some((due, kind))) => app.deadlines.schedule(due, kind, conv),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not follow up a reply the visitor missed"),
    }
}

/// Drops the conversation's pending follow-up, if any, and its deadline.
fn cancel(b: &mut Batch, c: &mut ConversationRecord, conv: Uuid) {
    if let Some(due) = c.follow_up_due.take() {
        b.delete(
            Tree::Deadlines,
            keys::deadline(due.max(0) as u64, DeadlineKind::FollowUp, conv),
        );
    }
}

/// Whether `seen` has anything to record for this conversation.
pub fn has_unseen(conv: &ConversationRecord) -> bool {
    conv.follow_up_due.is_some() || conv.seen_seq < conv.last_seq
}

async fn follow_up(app: &App, conv: Uuid, due: u64) {
    let inner = app.clone();
    let now = app.now();
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut c) =
                conversations::fell_due(kv, &mut b, due, DeadlineKind::FollowUp, conv)?
            else {
                return Ok((b, None));
            };
            if c.follow_up_due != Some(due as Millis) {
                return Ok((b, None));
            }
            let email = compose(kv, &inner, conv, &c)?;
            c.follow_up_due = None;
            c.seen_seq = c.last_seq;
            b.put_json(Tree::Conversations, keys::id(conv), &c);
            let queued = email.map(|e| mail::enqueue(&mut b, e, now));
            Ok((b, queued))
        })
        .await;
    match r {
        Ok(Some((id, due))) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not fire a follow-up deadline"),
    }
}

/// The email for a conversation's unseen replies, or None when none is due: the visitor
/// is online (they read the replies), the follow-up was turned off, no address is
/// known, or there is no agent reply after `seen_seq`.
fn compose(
    kv: &dyn Kv,
    app: &App,
    conv_id: Uuid,
    c: &ConversationRecord,
) -> Result<Option<Email>, StoreError> {
    let Some(key) = conversations::visitor_key(c) else {
        return Ok(None);
    };
    if app.hub.visitor_online(&key) {
        return Ok(None);
    }
    let inbox = app.inboxes.get(&c.inbox);
    if inbox
        .as_ref()
        .is_some_and(|i| !i.chatflow.follow_up.enabled)
    {
        return Ok(None);
    }
    let Some(visitor) = conversations::load_visitor(kv, key.visitor)? else {
        return Ok(None);
    };
    let to = match (&visitor.email, &visitor.contact_id) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(id)) => conversations::contact(kv, id)?.map(|ct| ct.email),
        (None, None) => None,
    };
    let Some(to) = to else {
        return Ok(None);
    };
    // More than fit in one email: the newest ones.
    let (unseen, _) = conversations::after(
        kv,
        conv_id,
        c.seen_seq,
        Cut::count(MAX_REPLIES),
        MAX_REPLIES,
    )?;
    let replies: Vec<Message> = unseen
        .decode()?
        .into_iter()
        .filter(|m| m.seq > c.seen_seq && m.author.kind == AuthorKind::Agent)
        .collect();
    if replies.is_empty() {
        return Ok(None);
    }
    let recent = conversations::page(kv, conv_id, None, Cut::count(100))?
        .0
        .decode()?;
    let last_visitor = recent
        .iter()
        .rev()
        .find(|m| m.author.kind == AuthorKind::Visitor);
    let inbox_name = inbox
        .as_ref()
        .map_or_else(|| c.inbox.clone(), |i| i.name.clone());
    let origins = inbox.as_ref().map_or(&[][..], |i| i.origins.as_slice());
    let link = continue_link(
        visitor.page.and_then(|p| p.url).as_deref(),
        origins,
        app.config.mail.public_url.as_deref(),
    );
    let (subject, text, html) = render(&Content {
        inbox: &inbox_name,
        replies: &replies,
        last_visitor,
        link: link.as_deref(),
    });
    Ok(Some(Email {
        conversation_id: c.id.clone(),
        to,
        subject,
        text,
        html,
    }))
}

/// Where "continue the conversation" points. The page the visitor reported is only a
/// claim, and the email goes out from the team's sender to an address nobody verified:
/// so it is linked only when it is on one of the inbox's configured origins (the team's
/// own site), and then without user info, query or fragment (the path is the page;
/// a query could steer an open redirect). Otherwise `--public-url`, else the inbox's
/// first origin, else no link. Never a host the visitor chose.
pub fn continue_link(
    page: Option<&str>,
    origins: &[String],
    public_url: Option<&str>,
) -> Option<String> {
    let web = |u: &url::Url| matches!(u.scheme(), "http" | "https") && u.host().is_some();
    let parse = |s: &str| url::Url::parse(s).ok().filter(web);
    let own: Vec<url::Origin> = origins
        .iter()
        .filter_map(|o| parse(o))
        .map(|u| u.origin())
        .collect();
    let on_own_site = page.and_then(parse).filter(|u| own.contains(&u.origin()));
    if let Some(mut u) = on_own_site {
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        return Some(u.to_string());
    }
    public_url
        .and_then(parse)
        .map(|u| u.to_string())
        .or_else(|| own.first().map(|o| o.ascii_serialization()))
}

/// The visitor's own text, quoted back in an email the team sends: anything a mail
/// client would turn into a link (`scheme://`, `www.`, `host.tld`, `a@host.tld`) is
/// broken up (`https[:]//evil[.]example`), so nothing a visitor typed becomes a
/// clickable link under the team's name.
fn defang(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_linkable(word) {
            out.push_str(&word.replace("://", "[:]//").replace('.', "[.]"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for ch in s.chars() {
        if ch.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(ch);
        } else {
            word.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Whether a word would be auto-linked: it has a scheme, or a dot followed by a label
/// of two or more letters (a top-level domain).
fn looks_linkable(word: &str) -> bool {
    if word.contains("://") || word.to_ascii_lowercase().starts_with("www.") {
        return true;
    }
    word.split('.').skip(1).any(|label| {
        let letters: String = label.chars().take_while(|c| c.is_alphabetic()).collect();
        letters.chars().count() >= 2
    })
}

/// What goes into a follow-up email.
pub struct Content<'a> {
    pub inbox: &'a str,
    /// Agent replies, oldest first; not empty.
    pub replies: &'a [Message],
    pub last_visitor: Option<&'a Message>,
    /// Where to continue the chat (an http(s) URL, from [`continue_link`]).
    pub link: Option<&'a str>,
}

/// Subject, plain text and HTML of a follow-up email.
pub fn render(c: &Content<'_>) -> (String, String, String) {
    let inbox = mail::one_line(c.inbox);
    let agent = |m: &Message| {
        m.author
            .name
            .as_deref()
            .map(mail::one_line)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| inbox.clone())
    };
    let subject = match c.replies {
        [one] => format!("{} replied to your chat with {inbox}", agent(one)),
        many => format!("{} new replies to your chat with {inbox}", many.len()),
    };
    let intro = if c.replies.len() == 1 {
        format!("You chatted with {inbox} and left before we answered. Here is our reply:")
    } else {
        format!("You chatted with {inbox} and left before we answered. Here are our replies:")
    };

    let mut text = format!("Hello,\n\n{intro}\n\n");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif;line-height:1.4\">\n<p>Hello,</p>\n<p>{}</p>\n",
        escape(&intro)
    );
    for m in c.replies {
        let (who, when) = (agent(m), mail::utc_minute(m.at));
        text.push_str(&format!("{who}, {when}:\n{}\n\n", indent(&m.text)));
        html.push_str(&format!(
            "<p><strong>{}</strong> <span style=\"color:#666\">{}</span><br>\n{}</p>\n",
            escape(&who),
            escape(&when),
            paragraph(&m.text)
        ));
    }
    if let Some(v) = c.last_visitor {
        let quoted = defang(&v.text);
        text.push_str(&format!("Your last message:\n{}\n\n", indent(&quoted)));
        html.push_str(&format!(
            "<p style=\"color:#666\">Your last message:</p>\n<blockquote style=\"color:#666\">{}</blockquote>\n",
            paragraph(&quoted)
        ));
    }
    if let Some(link) = c.link {
        text.push_str(&format!("Continue the conversation: {link}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">Continue the conversation</a></p>\n",
            escape(link)
        ));
    }
    text.push_str(&format!("-- \n{inbox}\n"));
    html.push_str(&format!("<p>{}</p>\n</body></html>\n", escape(&inbox)));
    (subject, text, html)
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Line endings as `\n` only (CR alone included).
fn lines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn indent(s: &str) -> String {
    lines(s)
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn paragraph(s: &str) -> String {
    lines(s)
        .lines()
        .map(escape)
        .collect::<Vec<_>>()
        .join("<br>\n")
}

async fn deliver(app: &App, id: Uuid, due: u64) {
    match mail::deliver(app, id, due).await {
        Ok(Delivery::Nothing) => {}
        Ok(Delivery::Retry { due }) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(Delivery::Sent { conversation_id }) => {
            Metrics::inc(&app.metrics.follow_ups_sent);
            announce(app, &conversation_id, SENT).await;
        }
        Ok(Delivery::Failed {
            conversation_id,
            why,
        }) => {
            let text = match why {
                GaveUp::Undeliverable => UNDELIVERABLE,
                GaveUp::MaybeSent => MAYBE_SENT,
            };
            announce(app, &conversation_id, text).await;
        }
        Err(e) => tracing::error!(email = %id, error = %e, "could not deliver an email"),
    }
}

/// A `system` message in the conversation, to its agents (with the new summary) and to
/// any open connection of the visitor; their history keeps it.
async fn announce(app: &App, conversation_id: &str, text: &str) {
    let Some(conv) = parse_id(conversation_id) else {
        return;
    };
    let appended = match app
        .store
        .append_system(conv, text.to_string(), app.now())
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not record a follow-up in its conversation");
            return;
        }
    };
    let c = &appended.conversation;
    let frame = encode(&VisitorServer::Message {
        message: appended.message.clone(),
    })
    .into();
    if let Some(key) = conversations::visitor_key(c) {
        app.hub.to_visitor(&key, &frame, None);
    }
    app.hub.to_agents(&c.inbox, &frame, None);
    match conversations::summary(app.store.as_ref(), &app.hub, c) {
        Ok(summary) => {
            let frame = encode(&AgentServer::ConversationUpdated {
                conversation: summary,
            })
            .into();
            app.hub.to_agents(&c.inbox, &frame, None);
        }
        Err(e) => tracing::warn!(error = %e, "could not build a conversation summary"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use widget_protocol::Author;

    fn msg(kind: AuthorKind, name: Option<&str>, text: &str, seq: u64) -> Message {
        Message {
            id: format!("m{seq}"),
            conversation_id: "c".into(),
            seq,
            author: Author {
                kind,
                name: name.map(str::to_string),
            },
            text: text.into(),
            at: 1_764_082_800_123,
        }
    }

    #[test]
    fn every_reply_the_last_visitor_message_and_the_link_are_in_both_parts() {
        let replies = [
            msg(AuthorKind::Agent, Some("Maja"), "First", 2),
            msg(AuthorKind::Agent, Some("Maja"), "Second\nline", 3),
            msg(AuthorKind::Agent, Some("Lars"), "Third", 4),
        ];
        let v = msg(AuthorKind::Visitor, None, "Where is my order?", 1);
        let (subject, text, html) = render(&Content {
            inbox: "Acme",
            replies: &replies,
            last_visitor: Some(&v),
            link: Some("https://shop.example/p?a=1&b=2"),
        });
        assert_eq!(subject, "3 new replies to your chat with Acme");
        for part in [&text, &html] {
            for t in [
                "First",
                "Second",
                "line",
                "Third",
                "Where is my order?",
                "Maja",
                "Lars",
            ] {
                assert!(part.contains(t), "{t} missing from {part}");
            }
            assert!(part.contains("2025-11-25 15:00 UTC"));
        }
        assert!(text.contains("https://shop.example/p?a=1&b=2"));
        assert!(html.contains("href=\"https://shop.example/p?a=1&amp;b=2\""));
    }

    #[test]
    fn hostile_names_and_texts_are_escaped_and_kept_on_one_line() {
        let replies = [msg(
            AuthorKind::Agent,
            Some("Eve\r\nBcc: victim@evil.test <script>"),
            "<script>alert('x')</script>",
            2,
        )];
        let v = msg(
            AuthorKind::Visitor,
            None,
            "<img src=x onerror=alert(1)>\r\nX-Injected: yes",
            1,
        );
        let (subject, _, html) = render(&Content {
            inbox: "Acme\n\"Shop\"",
            replies: &replies,
            last_visitor: Some(&v),
            link: Some("https://x.test/\"><script>"),
        });
        assert!(
            !subject.contains('\r') && !subject.contains('\n'),
            "{subject}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("Acme &quot;Shop&quot;"));
    }

    #[test]
    fn the_link_is_never_a_host_the_visitor_chose() {
        let own = vec!["https://shop.example".to_string()];
        let public = Some("https://chat.acme.test/");
        let link = |page: &str, origins: &[String], public: Option<&str>| {
            continue_link(Some(page), origins, public)
        };
        assert_eq!(
            link(
                "https://shop.example/p/42?next=//evil.example#x",
                &own,
                public
            )
            .as_deref(),
            Some("https://shop.example/p/42")
        );
        assert_eq!(
            link("https://evil.example/login", &own, public).as_deref(),
            Some("https://chat.acme.test/")
        );
        assert_eq!(
            link("https://shop.example@evil.example/", &own, None).as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            link("http://shop.example/p", &own, None).as_deref(),
            Some("https://shop.example"),
            "another scheme is another origin"
        );
        assert_eq!(
            link("https://user:pw@SHOP.example:443/p", &own, None).as_deref(),
            Some("https://shop.example/p")
        );
        assert_eq!(link("https://evil.example/", &[], None), None);
        assert_eq!(
            link("https://evil.example/", &[], public).as_deref(),
            Some("https://chat.acme.test/")
        );
        assert_eq!(continue_link(None, &[], None), None);
    }

    #[test]
    fn links_in_the_visitors_quoted_text_are_broken_up() {
        let replies = [msg(AuthorKind::Agent, Some("Maja"), "See www.acme.test", 2)];
        let v = msg(
            AuthorKind::Visitor,
            None,
            "Your account is locked: https://evil.example/login or evil.example, mail a@evil.example. Order #4.5 ok?",
            1,
        );
        let (_, text, html) = render(&Content {
            inbox: "Acme",
            replies: &replies,
            last_visitor: Some(&v),
            link: None,
        });
        for part in [&text, &html] {
            assert!(!part.contains("evil.example"), "{part}");
            assert!(!part.contains("https://evil"), "{part}");
            assert!(part.contains("https[:]//evil[.]example/login"), "{part}");
            assert!(part.contains("Order #4.5 ok?"), "{part}");
            assert!(
                part.contains("See www.acme.test"),
                "agents' text is kept: {part}"
            );
        }
    }
}
