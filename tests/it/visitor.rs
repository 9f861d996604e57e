//! The visitor socket: identity, history, tabs, idempotency, paging, resume, bad input.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{seqs, Client, Closed, TestServer};

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_string())
        .collect()
}

#[tokio::test]
async fn a_new_visitor_gets_a_token_and_no_history_and_costs_no_write() {
    let s = TestServer::start().await;
    let writes_before = s
        .app
        .writer
        .stats()
        .writes
        .load(std::sync::atomic::Ordering::Relaxed);
    let (c, w) = s.visitor().await;
    assert_eq!(w["protocol"], 1);
    assert!(w["visitor_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(w["visitor_id"].as_str().is_some());
    assert_eq!(w["conversation_id"], Value::Null);
    assert_eq!(w["messages"], json!([]));
    assert_eq!(w["has_more"], false);
    assert_eq!(w["email"], Value::Null);
    assert_eq!(w["away"]["active"], false);
    let set = c.set_cookie.clone().expect("Set-Cookie on the handshake");
    for part in [
        "fd_visitor=",
        "Path=/",
        "Max-Age=34128000",
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let writes_after = s
        .app
        .writer
        .stats()
        .writes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        writes_before, writes_after,
        "a page view wrote to the store"
    );
}

#[tokio::test]
async fn a_returning_visitor_gets_history_by_hello_token_and_by_cookie() {
    let s = TestServer::start().await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let cookie = c.cookie_pair();
    let m1 = c.say("Hallo").await;
    let m2 = c.say("Anyone there?").await;
    assert_eq!((m1["seq"].as_u64(), m2["seq"].as_u64()), (Some(1), Some(2)));
    assert_eq!(m1["author"]["kind"], "visitor");
    drop(c);

    let (c2, w2) = s.visitor_with(Some(&token), None).await;
    assert_eq!(w2["visitor_id"], w["visitor_id"]);
    assert_eq!(texts(&w2["messages"]), ["Hallo", "Anyone there?"]);
    assert_eq!(w2["conversation_id"], m1["conversation_id"]);
    assert!(c2.set_cookie.is_some(), "no cookie was sent, so one is set");

    let (c3, w3) = s.visitor_with(None, Some(&cookie)).await;
    assert_eq!(w3["visitor_id"], w["visitor_id"]);
    assert_eq!(texts(&w3["messages"]), ["Hallo", "Anyone there?"]);
    assert!(c3.set_cookie.is_none(), "a valid cookie is not set again");
}

#[tokio::test]
async fn cleared_cookie_other_device_and_forged_tokens_are_new_visitors() {
    let s = TestServer::start().await;
    let (mut c, first) = s.visitor().await;
    c.say("my secret order number 123").await;

    let (_c2, fresh) = s.visitor().await;
    assert_ne!(fresh["visitor_id"], first["visitor_id"]);
    assert_eq!(fresh["messages"], json!([]));

    let token = first["visitor_token"].as_str().expect("token");
    let mut forged = token.to_string().into_bytes();
    let i = forged.len() / 3;
    forged[i] = if forged[i] == b'x' { b'y' } else { b'x' };
    let forged = String::from_utf8(forged).expect("ascii");
    for bad in [forged.as_str(), "garbage", ""] {
        let (_c, w) = s
            .visitor_with(Some(bad), Some(&format!("fd_visitor={bad}")))
            .await;
        assert_ne!(w["visitor_id"], first["visitor_id"]);
        assert_ne!(w["visitor_id"], fresh["visitor_id"]);
        assert_eq!(w["messages"], json!([]), "forged token {bad:?} saw history");
    }
}

#[tokio::test]
async fn two_tabs_see_each_others_messages() {
    let s = TestServer::start().await;
    let (mut a, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let (mut b, _) = s.visitor_with(Some(&token), None).await;
    let sent = a.say("from tab A").await;
    let got = b.expect("message").await;
    assert_eq!(got["message"], sent);
    let sent_b = b.say("from tab B").await;
    let got_a = a.expect("message").await;
    assert_eq!(got_a["message"], sent_b);
    // The sender gets only its ack, not a copy.
    a.expect_silence(200, &[]).await;
}

#[tokio::test]
async fn a_resent_client_msg_id_stores_one_message_and_returns_the_first_ack() {
    let s = TestServer::start().await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let frame = json!({"type":"send","client_msg_id":"f3b0c7e2-1","text":"once"});
    c.send(frame.clone()).await;
    let first = c.expect("ack").await;
    c.send(frame.clone()).await;
    let second = c.expect("ack").await;
    assert_eq!(first, second);
    // Even from another connection of the same visitor.
    let (mut c2, _) = s.visitor_with(Some(&token), None).await;
    c2.send(frame).await;
    assert_eq!(c2.expect("ack").await, first);
    c.expect_silence(200, &[]).await;
    let (_c3, w3) = s.visitor_with(Some(&token), None).await;
    assert_eq!(texts(&w3["messages"]), ["once"]);
}

#[tokio::test]
async fn history_pages_backwards_and_resume_after_replays_what_was_missed() {
    let s = TestServer::start().await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    // 20 per 10 s is the rate limit; wait it out between bursts.
    for i in 1..=60 {
        if i % 20 == 1 && i > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10_050)).await;
        }
        c.say(&format!("m{i}")).await;
    }
    let (mut r, w2) = s.visitor_with(Some(&token), None).await;
    let msgs = w2["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 50, "welcome carries the last page");
    assert_eq!(msgs[0]["seq"], 11);
    assert_eq!(msgs[49]["seq"], 60);
    assert_eq!(w2["has_more"], true);

    r.send(json!({"type":"history","before":11,"limit":7}))
        .await;
    let h = r.expect("history").await;
    assert_eq!(seqs(&h), [4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(h["has_more"], true);
    r.send(json!({"type":"history","before":4,"limit":200}))
        .await;
    let h = r.expect("history").await;
    assert_eq!(texts(&h["messages"]), ["m1", "m2", "m3"]);
    assert_eq!(h["has_more"], false);
    r.send(json!({"type":"history","before":4,"limit":100000}))
        .await;
    assert_eq!(
        r.expect("history").await["messages"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let mut resume = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("connect");
    resume
        .send(json!({"type":"hello","visitor_token":token,"resume_after":57}))
        .await;
    let w3 = resume.expect("welcome").await;
    assert_eq!(texts(&w3["messages"]), ["m58", "m59", "m60"]);
    assert_eq!(w3["has_more"], false);
}

#[tokio::test]
async fn every_bad_input_gets_its_error_and_the_connection_keeps_working() {
    let s = TestServer::start().await;
    let (mut other, _) = s.visitor().await;
    let mut c = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("connect");
    // Before hello.
    c.send(json!({"type":"send","client_msg_id":"x","text":"hi"}))
        .await;
    c.expect_error("not_authenticated").await;
    c.send_text("{not json").await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"hello"})).await;
    let welcome = c.expect("welcome").await;
    let c_token = welcome["visitor_token"].as_str().map(str::to_string);

    c.send_text("definitely not json").await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"teleport"})).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"send","text":"no id"})).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"send","client_msg_id":"a","text":42}))
        .await;
    c.expect_error("bad_frame").await;
    c.send(json!([1, 2, 3])).await;
    c.expect_error("bad_frame").await;
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    c.expect_error("bad_frame").await;
    c.send(json!({"type":"send","client_msg_id":"e1","text":"   \n\t "}))
        .await;
    let e = c.expect_error("empty_message").await;
    assert_eq!(e["ref"], "e1");
    c.send(json!({"type":"send","client_msg_id":"e2","text":"x".repeat(4001)}))
        .await;
    c.expect_error("message_too_long").await;
    c.send(json!({"type":"submit_email","email":"not-an-email"}))
        .await;
    c.expect_error("invalid_email").await;
    c.send(json!({"type":"hello"})).await;
    c.expect_error("bad_frame").await;
    // Unknown fields are ignored.
    c.send(json!({"type":"send","client_msg_id":"ok1","text":"still here","extra":{"a":1}}))
        .await;
    assert_eq!(c.expect("ack").await["message"]["text"], "still here");

    // The flood: 20 `send` frames per 10 s (e1, e2 and ok1 counted too), then
    // rate_limited and nothing stored.
    for i in 0..17 {
        c.say(&format!("flood {i}")).await;
    }
    c.send(json!({"type":"send","client_msg_id":"over","text":"one too many"}))
        .await;
    let e = c.expect_error("rate_limited").await;
    assert_eq!(e["ref"], "over");
    let (_t, w) = s.visitor_with(c_token.as_deref(), None).await;
    assert!(
        !w.to_string().contains("one too many"),
        "a rate-limited message was stored"
    );

    // Others were never disturbed.
    let m = other.say("I am fine").await;
    assert_eq!(m["seq"], 1);
    other.expect_silence(100, &[]).await;

    // A frame over 64 KiB closes with 1009.
    c.send_text(&format!(
        "{{\"type\":\"send\",\"client_msg_id\":\"big\",\"text\":\"{}\"}}",
        "y".repeat(70_000)
    ))
    .await;
    assert_eq!(c.expect_closed().await, Closed::Code(1009));
    let (_, w) = s.visitor().await;
    assert_eq!(w["type"], "welcome", "the server still serves");
}

#[tokio::test]
async fn no_hello_within_the_deadline_closes_with_4008() {
    let s =
        TestServer::start_with(|c| c.limits.hello_timeout = std::time::Duration::from_millis(300))
            .await;
    let mut c = Client::connect(&s.ws_url("/ws/visitor"))
        .await
        .expect("connect");
    assert_eq!(c.expect_closed().await, Closed::Code(4008));
}

#[tokio::test]
async fn unknown_inbox_is_refused_at_the_handshake() {
    let s = TestServer::start().await;
    let err = Client::connect(&s.ws_url("/ws/visitor?inbox=nope"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let s = TestServer::start().await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    c.say("before restart").await;
    drop(c);
    let s = s.restart().await;
    let (mut c, w2) = s.visitor_with(Some(&token), None).await;
    assert_eq!(texts(&w2["messages"]), ["before restart"]);
    let m = c.say("after restart").await;
    assert_eq!(m["seq"], 2);
}
