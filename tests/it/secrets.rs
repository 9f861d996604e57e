//! Secrets and content: follow-up emails that link only the team's own site,
//! visitor tokens that expire and renew, lookalike emails, an owner-only data
//! directory, the pages' Content-Security-Policy and framing headers, and logs that
//! hold no message text, email or token (the first admin token included).

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use widget_protocol::Role;

use frontdesk::identity::{RENEW_AFTER_MS, TOKEN_LIFETIME_MS};
use frontdesk::store::Tree;

use crate::followup::{chatflow, mail_to, PROMPT_THEN_FOLLOW_UP};
use crate::support::smtp::SmtpSink;
use crate::support::{http, BinaryServer, Client, Closed, Connect, FakeClock, TestServer, WAIT};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

// ---------------------------------------------------------------------------------
// The follow-up email links only the inbox's own site.
// ---------------------------------------------------------------------------------

/// A visitor of the `shop` inbox on a page they claim, who writes, leaves an email and
/// goes; an agent replies. Returns the email that went out.
async fn follow_up_for_page(
    s: &TestServer,
    sink: &SmtpSink,
    agent: &mut Client,
    page: &str,
    nth: usize,
) -> crate::support::smtp::Received {
    let mut v = Client::open(
        &s.ws_url("/ws/visitor?inbox=shop"),
        Connect::default().origin("https://shop.example"),
    )
    .await
    .expect("visitor connects");
    v.send(json!({"type":"hello","page":{"url":page,"title":"Sign in"}}))
        .await;
    v.expect("welcome").await;
    let m = v
        .say("Your account is locked, sign in again at https://evil.example/login")
        .await;
    let conv = m["conversation_id"].as_str().expect("id").to_string();
    v.send(json!({"type":"submit_email","email":format!("victim{nth}@example.com")}))
        .await;
    v.expect_skipping("email_captured").await;
    drop(v);
    agent.until_presence(&conv, false).await;
    agent.reply(&conv, "Thanks, we will look into it.").await;
    sink.wait_for(nth, WAIT).await.remove(nth - 1)
}

#[tokio::test]
async fn a_follow_up_never_links_a_page_the_visitor_claimed_off_the_inboxs_origins() {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.create_inbox("shop", &["https://shop.example"]).await;
    let maja = s.create_agent("Maja", &["shop"], Role::Admin).await;
    let (mut agent, _) = s.agent(&maja).await;
    agent
        .send(json!({"type":"update_chatflow","inbox":"shop","chatflow":chatflow(1)}))
        .await;
    agent.expect_skipping("chatflow").await;

    let mail = follow_up_for_page(
        &s,
        &sink,
        &mut agent,
        "https://evil.example/login?from=shop",
        1,
    )
    .await;
    for part in [mail.text(), mail.html()] {
        assert!(!part.contains("evil.example"), "{part}");
        assert!(part.contains("Thanks, we will look into it."), "{part}");
    }
    assert!(
        mail.html()
            .contains("<a href=\"https://shop.example\">Continue the conversation</a>"),
        "{}",
        mail.html()
    );
    assert!(
        mail.text()
            .lines()
            .any(|l| l.trim() == "Continue the conversation: https://shop.example"),
        "{}",
        mail.text()
    );

    // A page on the inbox's own origin is linked, without its query.
    let mail = follow_up_for_page(
        &s,
        &sink,
        &mut agent,
        "https://shop.example/orders/42?next=https://evil.example/",
        2,
    )
    .await;
    for part in [mail.text(), mail.html()] {
        assert!(!part.contains("evil.example"), "{part}");
        assert!(part.contains("https://shop.example/orders/42"), "{part}");
    }
}

// ---------------------------------------------------------------------------------
// Visitor tokens expire, are renewed in use, and are refused from the future.
// ---------------------------------------------------------------------------------

/// A visitor presenting `token` both in the cookie and in `hello`.
async fn returning(s: &TestServer, token: &str) -> (Client, Value) {
    let cookie = format!("fd_visitor={token}");
    s.visitor_with(Some(token), Some(&cookie)).await
}

fn token_of(w: &Value) -> String {
    w["visitor_token"].as_str().expect("token").to_string()
}

/// The token in a handshake's `Set-Cookie`.
fn cookie_token(c: &Client) -> Option<String> {
    c.set_cookie
        .as_deref()?
        .split(';')
        .next()?
        .strip_prefix("fd_visitor=")
        .map(str::to_string)
}

#[tokio::test]
async fn a_token_in_use_is_renewed_for_the_same_visitor_with_their_history() {
    let clock = Arc::new(FakeClock::default());
    let s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let (mut v, w) = s.visitor().await;
    let first = token_of(&w);
    let id = w["visitor_id"].clone();
    v.say("Do you ship to Norway?").await;
    drop(v);

    // Young: kept as it is, no new cookie.
    clock.advance(RENEW_AFTER_MS / 2);
    let (v, w) = returning(&s, &first).await;
    assert_eq!(token_of(&w), first);
    assert_eq!(v.set_cookie, None);

    // Older than the renewal age: a fresh token in the welcome and in Set-Cookie.
    clock.advance(RENEW_AFTER_MS);
    let (v, w) = returning(&s, &first).await;
    let renewed = token_of(&w);
    assert_ne!(renewed, first);
    assert_eq!(cookie_token(&v).as_deref(), Some(renewed.as_str()));
    assert_eq!(w["visitor_id"], id);
    let texts: Vec<&str> = w["messages"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["Do you ship to Norway?"]);

    // The renewed token carries the visitor past the first token's lifetime.
    clock.advance(TOKEN_LIFETIME_MS - DAY_MS);
    let (_v, w) = returning(&s, &renewed).await;
    assert_eq!(w["visitor_id"], id);
    assert_eq!(w["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_expired_token_is_a_new_visitor() {
    let clock = Arc::new(FakeClock::default());
    let s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let (mut v, w) = s.visitor().await;
    let token = token_of(&w);
    v.say("Hello from last year").await;
    drop(v);

    clock.advance(TOKEN_LIFETIME_MS + DAY_MS);
    let (v, again) = returning(&s, &token).await;
    assert_ne!(again["visitor_id"], w["visitor_id"]);
    assert_eq!(again["conversation_id"], Value::Null);
    assert_eq!(again["messages"].as_array().map(Vec::len), Some(0));
    let fresh = token_of(&again);
    assert_ne!(fresh, token);
    assert_eq!(cookie_token(&v).as_deref(), Some(fresh.as_str()));
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let clock = Arc::new(FakeClock::default());
    let s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    clock.advance(DAY_MS);
    let (mut v, w) = s.visitor().await;
    let token = token_of(&w);
    v.say("Written tomorrow").await;
    drop(v);

    clock.advance(-DAY_MS);
    let (_v, again) = returning(&s, &token).await;
    assert_ne!(again["visitor_id"], w["visitor_id"]);
    assert_eq!(again["messages"].as_array().map(Vec::len), Some(0));
}

// ---------------------------------------------------------------------------------
// Lookalike emails.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn invisible_characters_make_an_invalid_email_and_two_spellings_are_one_contact() {
    let s = TestServer::start().await;
    let (mut v, _) = s.visitor().await;
    v.say("Hi").await;
    for email in ["ada\u{200B}@example.com", "ada@exa\u{202E}mple.com"] {
        v.send(json!({"type":"submit_email","email":email})).await;
        v.expect_error("invalid_email").await;
    }

    let nfc = "jos\u{00E9}@example.com";
    for spelling in ["jose\u{0301}@example.com", nfc] {
        let (mut v, _) = s.visitor().await;
        v.say("Hello").await;
        v.send(json!({"type":"submit_email","email":spelling}))
            .await;
        let got = v.expect_skipping("email_captured").await;
        assert_eq!(got["email"], nfc);
    }
    let contacts = s
        .app
        .kv()
        .scan_prefix(Tree::Contacts, b"", usize::MAX)
        .expect("contacts");
    assert_eq!(contacts.len(), 1, "one contact for both spellings");
}

// ---------------------------------------------------------------------------------
// The data directory is its owner's alone.
// ---------------------------------------------------------------------------------

/// Every entry under `dir` (and `dir`) whose mode lets group or others in.
fn loose_entries(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut loose = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).expect("metadata");
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            loose.push(format!("{} {mode:o}", p.display()));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).expect("read dir") {
                todo.push(e.expect("entry").path());
            }
        }
    }
    loose
}

/// How many entries `p` holds, itself included.
fn count_entries(p: &Path) -> usize {
    let meta = std::fs::symlink_metadata(p).expect("metadata");
    1 + if meta.is_dir() {
        std::fs::read_dir(p)
            .expect("read dir")
            .map(|e| count_entries(&e.expect("entry").path()))
            .sum()
    } else {
        0
    }
}

#[tokio::test]
async fn the_data_directory_is_owner_only_and_a_loose_one_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data.join("notes.txt"), b"left by hand").expect("file");
    std::fs::set_permissions(
        data.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");

    let s = TestServer::start_in_existing(None, data.clone()).await;
    let (mut v, _) = s.visitor().await;
    v.say("Is my data safe?").await;
    assert!(count_entries(&data) > 5, "the store and the log are there");
    assert_eq!(loose_entries(&data), Vec::<String>::new());
    drop(v);
    s.stop().await;
}

#[tokio::test]
async fn the_binary_keeps_the_data_directory_owner_only_under_umask_022() {
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("data");
    let server = BinaryServer::spawn_with_umask(&data, &[], "022").await;
    let mut v = Client::connect(&server.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("visitor connects");
    v.send(json!({"type":"hello"})).await;
    v.expect("welcome").await;
    v.say("Written under umask 022").await;
    drop(v);
    // A clean stop: the engine writes its snapshot on the way out.
    assert!(server.terminate().await.success());
    assert!(count_entries(&data) > 5);
    assert_eq!(loose_entries(&data), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------
// Headers of the pages.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_pages_carry_a_csp_and_cannot_be_framed_by_others() {
    let s = TestServer::start().await;
    let inbox = http::get(s.addr, "/inbox").await;
    let csp = inbox
        .header("content-security-policy")
        .expect("a CSP on /inbox");
    for d in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        &format!("connect-src 'self' ws://{0} wss://{0}", s.addr),
    ] {
        assert!(csp.contains(d), "{d} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(inbox.header("x-frame-options"), Some("DENY"));
    assert_eq!(inbox.header("referrer-policy"), Some("no-referrer"));

    let demo = http::get(s.addr, "/").await;
    let csp = demo.header("content-security-policy").expect("a CSP on /");
    for d in [
        "script-src 'self'",
        "frame-ancestors 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(d), "{d} missing from {csp}");
    }
    assert_eq!(demo.header("x-frame-options"), Some("SAMEORIGIN"));

    // The widget is loaded into customers' pages: nothing that would stop it there.
    for path in ["/widget.js", "/widget.css"] {
        let widget = http::get(s.addr, path).await;
        for h in [
            "content-security-policy",
            "x-frame-options",
            "cross-origin-resource-policy",
        ] {
            assert_eq!(widget.header(h), None, "{h} on {path}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Logs: no message text, email or token, and not the first admin token.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn info_logs_hold_no_message_text_email_or_token() {
    // The SMTP server refuses the follow-up quoting the address, as real ones do: the
    // error that gets logged must not carry it either.
    let smtp = SmtpSink::start_rejecting();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let smtp_url = smtp.url();
    let server = BinaryServer::spawn_with(
        &data,
        &[
            "--smtp-url",
            &smtp_url,
            "--mail-from",
            "Acme <support@acme.test>",
        ],
        "info",
        log.into(),
    )
    .await;
    let admin = server.admin_token();
    let text = "SECRET-MESSAGE-TEXT-7f3a";
    let email = "secret.person.7f3a@example.com";
    let reply = "SECRET-AGENT-REPLY-7f3a";

    let (mut agent, _) = server.agent(&admin).await;
    agent
        .send(json!({"type":"update_chatflow","inbox":"default","chatflow":serde_json::from_str::<Value>(PROMPT_THEN_FOLLOW_UP).expect("json")}))
        .await;
    agent.expect_skipping("chatflow").await;

    let (mut v, w) = server.visitor(None).await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let conv = v.say(text).await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.expect_skipping("email_prompt").await;
    // Bad input that carries secrets too.
    v.send(json!({"type":"submit_email","email":format!("{text}@@{email}")}))
        .await;
    v.expect_skipping("error").await;
    v.send(json!({"type":text,"email":email})).await;
    v.expect_skipping("error").await;
    v.send_text(&format!("{{\"type\":\"send\",\"text\":\"{text}"))
        .await;
    v.expect_skipping("error").await;
    v.send(json!({"type":"submit_email","email":email})).await;
    v.expect_skipping("email_captured").await;
    drop(v);
    // Gone, back with the token, gone again.
    agent.until_presence(&conv, false).await;
    let (v2, _) = server.visitor(Some(&token)).await;
    agent.until_presence(&conv, true).await;
    drop(v2);
    agent.until_presence(&conv, false).await;
    agent
        .send(json!({"type":"reply","conversation_id":conv,"client_msg_id":"r1","text":reply}))
        .await;
    agent.expect_skipping("ack").await;
    agent
        .send(json!({"type":"lookup_contact","email":email}))
        .await;
    agent.expect_skipping("contact_lookup").await;
    agent
        .send(json!({"type":"assign_visitor","conversation_id":conv,"email":email}))
        .await;
    agent.expect_skipping("visitor_assigned").await;
    // The follow-up is attempted and refused; the conversation is told.
    loop {
        let m = agent.expect_skipping("message").await;
        if m["message"]["text"] == frontdesk::followup::UNDELIVERABLE {
            break;
        }
    }
    // A bad agent token is refused and must not be logged either.
    let bad_token = "fda_SECRETBADTOKEN7f3a";
    let mut bad = Client::connect(&server.ws_url("/ws/agent"))
        .await
        .expect("connect");
    bad.send(json!({"type":"auth","token":bad_token})).await;
    assert_eq!(bad.expect_closed().await, Closed::Code(4001));

    assert!(server.terminate().await.success());
    let logged = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(
        logged.contains("shutting down"),
        "info-level lines were not logged at all:\n{logged}"
    );
    assert!(
        logged.contains("email not sent"),
        "the mail error path did not run:\n{logged}"
    );
    for secret in [text, email, reply, &token, &admin, bad_token, "7f3a"] {
        assert!(
            !logged.contains(secret),
            "the log holds {secret:?}:\n{logged}"
        );
    }
}

#[tokio::test]
async fn the_binary_does_not_print_the_admin_token_when_stdout_is_not_a_terminal() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(data.path(), &[]).await;
    let file = data.path().join("admin-token");
    let token = std::fs::read_to_string(&file).expect("admin-token file");
    let token = token.trim();
    assert!(!token.is_empty());
    let printed = server.preamble.join("\n");
    assert!(!printed.contains(token), "the token was printed: {printed}");
    assert!(
        printed.contains(&file.display().to_string()),
        "the file is not named: {printed}"
    );
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(server.terminate().await.success());
}
