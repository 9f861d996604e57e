//! Follow-up emails through a real SMTP server (aiosmtpd, `support::smtp`): gathering
//! unseen replies into one email, not sending when the visitor came back or has no
//! address, retrying while the server is down, surviving restarts, never sending twice
//! after a crash mid-send, escaping hostile input, and `frontdesk outbox list`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use widget_protocol::Role;

use frontdesk::config::Config;
use frontdesk::followup;
use frontdesk::store::records::{OutboxRecord, OutboxState};

use crate::support::smtp::{free_port, SmtpSink};
use crate::support::{BinaryServer, Client, TestServer, WAIT};

const FROM: &str = "Acme Support <support@acme.test>";
const VISITOR_EMAIL: &str = "ada@example.com";

/// Mail settings pointing at `port`, with retries quick enough for tests.
pub(crate) fn mail_to(port: u16) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail.from = Some(FROM.into());
        c.mail.reply_to = Some("help@acme.test".into());
        c.mail.retry_base = Duration::from_millis(300);
        c.mail.send_timeout = Duration::from_secs(5);
    }
}

/// A chatflow that prompts for the email at the first message and follows up after a
/// second.
pub(crate) const PROMPT_THEN_FOLLOW_UP: &str = r#"{"email_capture":{"when":"first_message","delay_secs":60},"follow_up":{"enabled":true,"delay_secs":1}}"#;

pub(crate) fn chatflow(delay_secs: u64) -> Value {
    json!({"email_capture":{"when":"never"},"follow_up":{"enabled":true,"delay_secs":delay_secs}})
}

fn outbox(s: &TestServer) -> Vec<OutboxRecord> {
    s.app.outbox.outbox().expect("outbox readable")
}

/// Polls the outbox until `done` holds for its records.
async fn outbox_until(
    s: &TestServer,
    what: &str,
    done: impl Fn(&[OutboxRecord]) -> bool,
) -> Vec<OutboxRecord> {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let list = outbox(s);
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "outbox never got {what}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Skips frames until a system message with this text arrives.
async fn until_system(agent: &mut Client, text: &str) -> Value {
    loop {
        let f = agent.expect_skipping("message").await;
        if f["message"]["author"]["kind"] == "system" && f["message"]["text"] == text {
            return f["message"].clone();
        }
    }
}

/// A visitor writes, (optionally) leaves their email, and closes the widget; the agent
/// sees them go offline. Returns the visitor token and the conversation id.
async fn visitor_leaves(
    s: &TestServer,
    agent: &mut Client,
    text: &str,
    email: Option<&str>,
) -> (String, String) {
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let m = v.say(text).await;
    let conv = m["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    if let Some(email) = email {
        v.send(json!({"type":"submit_email","email":email})).await;
        v.expect_skipping("email_captured").await;
    }
    drop(v);
    agent.until_presence(&conv, false).await;
    (token, conv)
}

#[tokio::test]
async fn three_quick_replies_to_an_offline_visitor_make_one_email_with_all_three() {
    let sink = SmtpSink::start();
    // The default inbox has no configured origins: the link is --public-url, never the
    // page the visitor reported (tests/it/secrets.rs).
    let s = TestServer::start_with(|c| {
        mail_to(sink.port)(c);
        c.mail.public_url = Some("https://chat.acme.test/".into());
    })
    .await;
    s.set_chatflow(chatflow(1)).await;
    let maja = s.create_agent("Maja Berg", &["default"], Role::Agent).await;
    let (mut agent, _) = s.agent(&maja).await;
    let (token, conv) = visitor_leaves(
        &s,
        &mut agent,
        "Where is my order #42?",
        Some(VISITOR_EMAIL),
    )
    .await;

    for text in [
        "Hi Ada, let me check.",
        "It left our warehouse today.",
        "Tracking: ZX-991",
    ] {
        agent.reply(&conv, text).await;
    }
    let got = sink.wait_for(1, WAIT).await;
    let sent = until_system(&mut agent, followup::SENT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "one email for one batch of replies"
    );

    let mail = &got[0];
    assert_eq!(mail.rcpt_tos(), [VISITOR_EMAIL]);
    assert_eq!(mail.header("To"), VISITOR_EMAIL);
    assert_eq!(mail.header("From"), FROM);
    assert_eq!(mail.header("Reply-To"), "help@acme.test");
    assert_eq!(
        mail.header("Subject"),
        "3 new replies to your chat with Default"
    );
    let record = outbox(&s).pop().expect("the email is in the outbox");
    assert_eq!(
        mail.header("Message-ID"),
        format!("<{}@frontdesk>", record.id)
    );
    assert_eq!((record.state, record.attempts), (OutboxState::Sent, 1));
    assert_eq!(record.conversation_id.to_string(), conv);
    for part in [mail.text(), mail.html()] {
        for t in [
            "Hi Ada, let me check.",
            "It left our warehouse today.",
            "Tracking: ZX-991",
            "Where is my order #42?",
            "Maja Berg",
            "Default",
            "https://chat.acme.test/",
        ] {
            assert!(part.contains(t), "{t:?} missing from {part}");
        }
    }
    assert_eq!(s.app.metrics.follow_ups_sent.load(Ordering::Relaxed), 1);

    // The follow-up is part of the conversation, for agents and in the visitor's history.
    assert_eq!(sent["conversation_id"], conv.as_str());
    let (_v, w) = s.visitor_with(Some(&token), None).await;
    let last = w["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("history");
    assert_eq!(
        (&last["author"]["kind"], &last["text"]),
        (&json!("system"), &json!(followup::SENT))
    );
}

#[tokio::test]
async fn no_email_when_the_visitor_comes_back_in_time() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(2)).await;
    let (mut agent, _) = s.admin().await;
    let (token, conv) = visitor_leaves(&s, &mut agent, "Hello?", Some(VISITOR_EMAIL)).await;
    agent.reply(&conv, "Hi! Are you still there?").await;

    // Back before the deadline: they read the reply in the widget, and leave again.
    let (back, w) = s.visitor_with(Some(&token), None).await;
    let texts: Vec<&str> = w["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"Hi! Are you still there?"), "{texts:?}");
    drop(back);
    agent.until_presence(&conv, false).await;

    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        sink.messages().is_empty(),
        "the visitor read the reply in the widget"
    );
    assert!(outbox(&s).is_empty());
    let id = frontdesk::ids::ConversationId::parse(&conv).expect("uuid");
    let c = s
        .app
        .store
        .conversation(id)
        .expect("store")
        .expect("conversation");
    assert_eq!((c.follow_up_due, c.seen_seq), (None, c.last_seq));
}

fn conversation(s: &TestServer, conv: &str) -> frontdesk::store::records::ConversationRecord {
    let id = frontdesk::ids::ConversationId::parse(conv).expect("uuid");
    s.app
        .store
        .conversation(id)
        .expect("store")
        .expect("conversation")
}

/// The visitor left between the reply's store (they were online: it counted as seen)
/// and its delivery (no connection took it). The agent's session then calls `missed`,
/// which this test calls itself: the window is too short to hit from outside.
#[tokio::test]
async fn a_reply_stored_as_seen_that_reached_no_connection_is_followed_up() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let conv = v.say("Do you ship to Norway?").await["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    v.send(json!({"type":"submit_email","email":VISITOR_EMAIL}))
        .await;
    v.expect_skipping("email_captured").await;
    let reply = agent.reply(&conv, "Yes, in 3 days.").await;
    let seq = reply["seq"].as_u64().expect("seq");
    let c = conversation(&s, &conv);
    assert_eq!((c.seen_seq, c.follow_up_due), (seq, None), "stored as seen");
    drop(v);
    agent.until_presence(&conv, false).await;

    let id = frontdesk::ids::ConversationId::parse(&conv).expect("uuid");
    followup::missed(&s.app, id, seq, 1000).await;
    let c = conversation(&s, &conv);
    assert_eq!(c.seen_seq, seq - 1);
    assert!(c.follow_up_due.is_some(), "a follow-up is armed");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpt_tos(), [VISITOR_EMAIL]);
    assert!(
        got[0].text().contains("Yes, in 3 days."),
        "{}",
        got[0].text()
    );
    until_system(&mut agent, followup::SENT).await;
    assert_eq!(
        (conversation(&s, &conv).seen_seq, sink.messages().len()),
        (seq, 1)
    );

    // Back in the widget before `missed` runs: their welcome had the reply.
    let again = agent.reply(&conv, "Anything else?").await;
    let again_seq = again["seq"].as_u64().expect("seq");
    let (_back, w) = s.visitor_with(Some(&token), None).await;
    assert!(w["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .any(|m| m["seq"] == again_seq));
    // Once the welcome is recorded as seen, `missed` finds them online and changes nothing.
    let until = tokio::time::Instant::now() + WAIT;
    let before = loop {
        let c = conversation(&s, &conv);
        if c.follow_up_due.is_none() && c.seen_seq == c.last_seq {
            break c;
        }
        assert!(tokio::time::Instant::now() < until, "never seen: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    followup::missed(&s.app, id, again_seq, 1000).await;
    let after = conversation(&s, &conv);
    assert_eq!(
        (after.seen_seq, after.follow_up_due),
        (before.seen_seq, before.follow_up_due)
    );
}

/// The visitor came back between the reply's store (they were offline: a follow-up was
/// armed) and its delivery (their new connection took it live): `reached` counts it as
/// seen and the follow-up does not go out.
#[tokio::test]
async fn a_reply_stored_for_an_offline_visitor_that_reached_them_sends_no_email() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (_token, conv) = visitor_leaves(&s, &mut agent, "Hello?", Some(VISITOR_EMAIL)).await;
    let reply = agent.reply(&conv, "Hi, how can I help?").await;
    let seq = reply["seq"].as_u64().expect("seq");
    assert!(conversation(&s, &conv).follow_up_due.is_some(), "armed");

    let id = frontdesk::ids::ConversationId::parse(&conv).expect("uuid");
    followup::reached(&s.app, id, seq).await;
    let c = conversation(&s, &conv);
    assert_eq!((c.seen_seq, c.follow_up_due), (seq, None));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(sink.messages().is_empty(), "they saw the reply live");
    assert!(outbox(&s).is_empty());
}

#[tokio::test]
async fn no_email_when_no_address_is_known() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (_, conv) = visitor_leaves(&s, &mut agent, "Just browsing", None).await;
    agent.reply(&conv, "Let us know if we can help").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(sink.messages().is_empty());
    assert!(outbox(&s).is_empty());
}

#[tokio::test]
async fn an_smtp_server_down_at_first_gets_the_email_once_after_a_retry() {
    let port = free_port();
    let s = TestServer::start_with(mail_to(port)).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (_, conv) = visitor_leaves(&s, &mut agent, "Is this in stock?", Some(VISITOR_EMAIL)).await;
    agent.reply(&conv, "Yes, three left.").await;

    let failed_once = outbox_until(&s, "a failed first attempt", |l| {
        l.first().is_some_and(|r| {
            r.attempts >= 1 && r.state == OutboxState::Queued && r.last_error.is_some()
        })
    })
    .await;
    assert!(failed_once[0].next_attempt_at.is_some());

    let sink = SmtpSink::start_on(port);
    let got = sink.wait_for(1, WAIT).await;
    until_system(&mut agent, followup::SENT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "delivered once");
    assert!(got[0].text().contains("Yes, three left."));
    let r = outbox(&s).pop().expect("record");
    assert_eq!(r.state, OutboxState::Sent);
    assert!(r.attempts >= 2, "sent on a retry: {r:?}");
    assert_eq!(r.last_error, None);
}

/// `frontdesk outbox list` on a stopped server's data directory: one line per email.
fn outbox_list(data: &Path) -> Vec<Vec<String>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["outbox", "list", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the frontdesk binary runs");
    assert!(
        out.status.success(),
        "outbox list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn an_email_waiting_in_the_outbox_goes_out_once_after_a_restart() {
    // No SMTP server configured: the email waits.
    let s = TestServer::start_with(|c| c.mail.from = Some(FROM.into())).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (_, conv) = visitor_leaves(
        &s,
        &mut agent,
        "Do you ship to Norway?",
        Some(VISITOR_EMAIL),
    )
    .await;
    agent.reply(&conv, "We do, in 3 days.").await;
    outbox_until(&s, "a queued email", |l| l.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = outbox(&s);
    assert_eq!(
        (waiting[0].state, waiting[0].attempts),
        (OutboxState::Queued, 0)
    );
    drop(agent);

    let sink = SmtpSink::start();
    let s = s.restart_with(mail_to(sink.port)).await;
    let got = sink.wait_for(1, WAIT).await;
    assert!(got[0].text().contains("We do, in 3 days."));
    outbox_until(&s, "the email sent", |l| {
        l.len() == 1 && l[0].state == OutboxState::Sent
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sink.messages().len(), 1, "delivered once");
    let s = s.restart_with(mail_to(sink.port)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "a sent email is not sent again after a restart"
    );

    let (_dir, path) = s.stop().await;
    let lines = outbox_list(&path);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l[0], waiting[0].id.to_string());
    assert_eq!(
        (l[1].as_str(), l[2].as_str(), l[3].as_str()),
        ("sent", "1", VISITOR_EMAIL)
    );
    assert_eq!(l[4], "Admin replied to your chat with Default");
    assert!(
        l[5].ends_with('Z') && l[5].contains('T'),
        "created time {}",
        l[5]
    );
}

#[tokio::test]
async fn hostile_names_and_texts_arrive_escaped_and_inject_no_headers() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(1)).await;
    let eve = s
        .create_agent(
            "Eve\r\nBcc: victim@evil.test\r\nX-Injected: yes <script>alert(1)</script>",
            &["default"],
            Role::Agent,
        )
        .await;
    let (mut agent, _) = s.agent(&eve).await;
    let visitor_text = "<script>alert('visitor')</script>\r\nX-Injected: visitor";
    let (_, conv) = visitor_leaves(&s, &mut agent, visitor_text, Some(VISITOR_EMAIL)).await;
    let reply = "<b>bold</b><img src=x onerror=alert(2)>\r\n\r\nSubject: hijacked";
    agent.reply(&conv, reply).await;

    let got = sink.wait_for(1, WAIT).await;
    let mail = &got[0];
    assert_eq!(mail.rcpt_tos(), [VISITOR_EMAIL], "no injected recipient");
    assert!(
        mail.headers("Bcc").is_empty() && mail.headers("X-Injected").is_empty(),
        "{}",
        mail.raw_headers()
    );
    for line in mail.raw_headers().lines() {
        assert!(
            !line.starts_with("Bcc")
                && !line.starts_with("X-Injected")
                && !line.starts_with("<script"),
            "injected header line {line:?}"
        );
    }
    let subject = mail.header("Subject");
    assert!(
        subject.starts_with("Eve Bcc: victim@evil.test X-Injected: yes"),
        "{subject}"
    );
    assert!(!subject.contains('\r') && !subject.contains('\n'));

    let html = mail.html();
    let lower = html.to_lowercase();
    for raw in ["<script", "<img", "<b>", "onerror=alert(2)>"] {
        assert!(!lower.contains(raw), "{raw} unescaped in {html}");
    }
    for escaped in [
        "&lt;script&gt;alert(&#39;visitor&#39;)&lt;/script&gt;",
        "&lt;b&gt;bold&lt;/b&gt;",
        "&lt;img src=x",
    ] {
        assert!(html.contains(escaped), "{escaped} missing from {html}");
    }
    // The plain part shows what people typed, as text.
    assert!(mail.text().contains("<b>bold</b>"));
    assert!(mail.text().contains("Subject: hijacked"));
}

/// The real binary, an SMTP server that takes the message but never confirms it, and a
/// kill -9 while the binary waits: after the restart the email is not sent again.
#[tokio::test]
async fn an_email_interrupted_mid_send_by_a_crash_is_never_sent_twice() {
    let data = tempfile::tempdir().expect("temp dir");
    let hanging = SmtpSink::start_hanging();
    let url = hanging.url();
    let server = BinaryServer::spawn(data.path(), &["--smtp-url", &url, "--mail-from", FROM]).await;
    let admin = std::fs::read_to_string(data.path().join("admin-token")).expect("admin token");
    let (mut agent, _) = server.agent(admin.trim()).await;
    agent
        .send(json!({"type":"update_chatflow","inbox":"default","chatflow":chatflow(1)}))
        .await;
    agent.expect_skipping("chatflow").await;

    let mut v = Client::connect(&server.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("visitor connects");
    v.send(json!({"type":"hello","visitor_token":null,"page":{"url":"https://shop.example/p"}}))
        .await;
    v.expect("welcome").await;
    let conv = v.say("Can I change my address?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.send(json!({"type":"submit_email","email":VISITOR_EMAIL}))
        .await;
    v.expect_skipping("email_captured").await;
    drop(v);
    agent.until_presence(&conv, false).await;
    agent.reply(&conv, "Yes, until it ships.").await;

    // The server has the whole message; the binary waits for its "250".
    hanging.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(agent);
    server.kill9().await;

    let lines = outbox_list(data.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0][1].as_str(), lines[0][2].as_str()),
        ("sending", "1")
    );

    let sink = SmtpSink::start();
    let url = sink.url();
    let server = BinaryServer::spawn(data.path(), &["--smtp-url", &url, "--mail-from", FROM]).await;
    let (mut agent, _) = server.agent(admin.trim()).await;
    // The conversation says what happened.
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        agent
            .send(json!({"type":"open","conversation_id":conv,"before":null,"limit":50}))
            .await;
        let c = agent.expect_skipping("conversation").await;
        let texts: Vec<&str> = c["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        if texts.contains(&followup::MAYBE_SENT) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no system message about the interrupted email: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        sink.messages().is_empty(),
        "the email was sent again after the crash"
    );
    assert_eq!(hanging.messages().len(), 1);
    drop(agent);
    assert!(server.terminate().await.success());

    let lines = outbox_list(data.path());
    assert_eq!(
        (lines[0][1].as_str(), lines[0][2].as_str()),
        ("failed", "1")
    );
    assert_eq!(lines[0][6], "interrupted; may have been sent");
}

#[tokio::test]
async fn serve_refuses_smtp_without_a_sender_or_with_a_bad_url() {
    let data = tempfile::tempdir().expect("temp dir");
    for (args, says) in [
        (
            vec!["--smtp-url", "smtp://127.0.0.1:2525"],
            "--mail-from is required with --smtp-url",
        ),
        (
            vec!["--smtp-url", "http://127.0.0.1:2525", "--mail-from", FROM],
            "is not smtp or smtps",
        ),
        (
            vec![
                "--smtp-url",
                "smtp://127.0.0.1:2525",
                "--mail-from",
                "nobody",
            ],
            "--mail-from \"nobody\" is not an email address",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(&args)
            .output()
            .expect("the frontdesk binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
