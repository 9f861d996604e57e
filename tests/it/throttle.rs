//! Shared rate limits and presence coalescing: one address flooding an inbox with new
//! visitors and conversations, one visitor's tabs and reconnects flooding messages or
//! emails, and reconnects flapping presence at every agent.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Client, Closed, TestServer};
use frontdesk::config::Rate;

fn per_minute(count: u32) -> Rate {
    Rate::new(count, Duration::from_secs(60))
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Sends a message; Ok(ack's message) or Err(the error frame).
async fn try_say(c: &mut Client, text: &str) -> Result<Value, Value> {
    let id = uuid::Uuid::new_v4().to_string();
    c.send(json!({"type":"send","client_msg_id":id,"text":text}))
        .await;
    loop {
        let f = c.next().await.expect("an answer to send");
        match f["type"].as_str() {
            Some("ack") if f["client_msg_id"] == id.as_str() => return Ok(f["message"].clone()),
            Some("error") if f["ref"] == id.as_str() => return Err(f),
            _ => continue,
        }
    }
}

/// Every frame that arrives until the connection has been quiet for `quiet_ms`.
async fn drain(c: &mut Client, quiet_ms: u64) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(Some(f)) = tokio::time::timeout(Duration::from_millis(quiet_ms), c.next()).await {
        got.push(f);
    }
    got
}

fn listed_texts(ready: &Value) -> Vec<String> {
    ready["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| c["last_message"]["text"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn one_address_cannot_flood_an_inbox_with_new_conversations() {
    let s =
        TestServer::start_with(|c| c.limits.new_conversations_per_address = per_minute(3)).await;
    let mut refused = 0;
    let mut visitors = Vec::new();
    for i in 0..10 {
        let (mut v, _) = s.visitor().await;
        match try_say(&mut v, &format!("flood {i}")).await {
            Ok(_) => assert!(i < 3, "message {i} was stored past the limit"),
            Err(e) => {
                assert_eq!(e["code"], "rate_limited", "{e}");
                let text = e["message"].as_str().unwrap_or_default();
                assert!(text.contains("try again in"), "{e}");
                refused += 1;
            }
        }
        visitors.push(v);
    }
    assert_eq!(refused, 7);
    // A customer from another address is not affected.
    let (mut customer, _) = s.visitor_from(addr("127.0.0.2"), None).await;
    customer.say("I need help with my order").await;
    // The agents' list has the allowed ones and the customer, nothing else.
    let (_a, ready) = s.admin().await;
    let mut texts = listed_texts(&ready);
    texts.sort();
    assert_eq!(
        texts,
        ["I need help with my order", "flood 0", "flood 1", "flood 2"]
    );
    // Those who have a conversation keep talking in it.
    assert!(try_say(&mut visitors[0], "still here").await.is_ok());
}

#[tokio::test]
async fn new_conversations_per_inbox_are_limited_across_addresses() {
    let s = TestServer::start_with(|c| c.limits.new_conversations_per_inbox = per_minute(4)).await;
    let mut stored = 0;
    for i in 2..10 {
        let (mut v, _) = s.visitor_from(addr(&format!("127.0.0.{i}")), None).await;
        if try_say(&mut v, "hello").await.is_ok() {
            stored += 1;
            // Their next messages are not new conversations.
            assert!(try_say(&mut v, "more").await.is_ok());
        }
    }
    assert_eq!(stored, 4);
    let (_a, ready) = s.admin().await;
    assert_eq!(ready["conversations"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn new_visitors_past_the_address_limit_are_refused_but_returning_ones_are_not() {
    let s = TestServer::start_with(|c| c.limits.new_visitors_per_address = per_minute(3)).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (_v, w) = s.visitor().await;
        tokens.push(w["visitor_token"].as_str().expect("token").to_string());
    }
    // The fourth new visitor: no cookie is minted, and a hello without a token is
    // answered with rate_limited and a close the widget backs off from.
    let mut c = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("the upgrade still succeeds");
    assert_eq!(c.set_cookie, None, "no token minted past the limit");
    c.send(json!({"type":"hello"})).await;
    let e = c.expect_error("rate_limited").await;
    assert!(e["message"]
        .as_str()
        .unwrap_or_default()
        .contains("try again in"));
    assert_eq!(c.expect_closed().await, Closed::Code(1013));
    // A returning visitor with their token is served, from the same address.
    let (_v, w) = s.visitor_with(Some(&tokens[0]), None).await;
    assert_eq!(w["visitor_token"], tokens[0].as_str());
    // A new visitor from another address is served.
    let (_v, w) = s.visitor_from(addr("127.0.0.2"), None).await;
    assert!(w["visitor_token"].is_string());
}

#[tokio::test]
async fn a_visitors_tabs_and_reconnects_share_one_send_limit() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_count = 10;
        c.limits.rate_window = Duration::from_secs(60);
    })
    .await;
    let (first, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    drop(first);
    let (mut acked, mut refused) = (0, 0);
    // Three rounds of five tabs, each a new connection (as after a reconnect).
    for _round in 0..3 {
        let mut tabs = Vec::new();
        for _ in 0..5 {
            tabs.push(s.visitor_with(Some(&token), None).await.0);
        }
        for (i, tab) in tabs.iter_mut().enumerate() {
            for j in 0..2 {
                match try_say(tab, &format!("tab {i} message {j}")).await {
                    Ok(_) => acked += 1,
                    Err(e) => {
                        assert_eq!(e["code"], "rate_limited", "{e}");
                        refused += 1;
                    }
                }
            }
        }
    }
    assert_eq!((acked, refused), (10, 20));
    // As stored: ten messages, whatever tab sent them.
    let (mut a, ready) = s.admin().await;
    let conv = ready["conversations"][0]["id"]
        .as_str()
        .expect("conversation");
    a.send(json!({"type":"open","conversation_id":conv,"limit":200}))
        .await;
    let open = a.expect_skipping("conversation").await;
    let mine = open["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["author"]["kind"] == "visitor")
        .count();
    assert_eq!(mine, 10);
}

#[tokio::test]
async fn visitors_behind_one_address_share_a_send_limit() {
    let s = TestServer::start_with(|c| {
        c.limits.send_per_address = per_minute(6);
    })
    .await;
    let mut acked = 0;
    for _ in 0..4 {
        let (mut v, _) = s.visitor().await;
        for _ in 0..3 {
            acked += usize::from(try_say(&mut v, "hi").await.is_ok());
        }
    }
    assert_eq!(acked, 6);
    let (mut elsewhere, _) = s.visitor_from(addr("127.0.0.2"), None).await;
    assert!(try_say(&mut elsewhere, "fine").await.is_ok());
}

#[tokio::test]
async fn an_email_flood_is_refused_and_creates_no_contacts() {
    let s = TestServer::start_with(|c| {
        c.limits.email_per_visitor = per_minute(5);
        c.limits.email_per_address = per_minute(8);
    })
    .await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let (mut tab2, _) = s.visitor_with(Some(&token), None).await;
    let mut captured = Vec::new();
    for i in 0..30 {
        let email = format!("flood{i}@example.com");
        let tab = if i % 2 == 0 { &mut v } else { &mut tab2 };
        tab.send(json!({"type":"submit_email","email":email})).await;
        let f = loop {
            let f = tab.next().await.expect("an answer");
            if f["type"] == "error" || (f["type"] == "email_captured" && f["email"] == email) {
                break f;
            }
        };
        if f["type"] == "email_captured" {
            captured.push(email);
        } else {
            assert_eq!(f["code"], "rate_limited", "{f}");
        }
    }
    assert_eq!(captured.len(), 5, "{captured:?}");
    for i in 0..30 {
        let email = format!("flood{i}@example.com");
        let found = s
            .app
            .store
            .contact_by_email(&email)
            .expect("lookup")
            .is_some();
        assert_eq!(found, captured.contains(&email), "{email}");
    }
    // Other visitors behind the same address share the address's limit (3 more).
    let mut more = 0;
    for i in 0..3 {
        let (mut other, _) = s.visitor().await;
        for j in 0..2 {
            let email = format!("other{i}-{j}@example.com");
            other
                .send(json!({"type":"submit_email","email":email}))
                .await;
            let f = loop {
                let f = other.next().await.expect("an answer");
                if f["type"] == "email_captured" || f["type"] == "error" {
                    break f;
                }
            };
            more += usize::from(f["type"] == "email_captured");
        }
    }
    assert_eq!(more, 3);
}

/// A visitor with a conversation, and an agent connected after it started.
async fn visitor_with_conversation(s: &TestServer) -> (Client, String, String, Client) {
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let m = v.say("hello").await;
    let conv = m["conversation_id"].as_str().expect("id").to_string();
    let (agent, _) = s.admin().await;
    (v, token, conv, agent)
}

fn presence_updates(frames: &[Value], conv: &str) -> Vec<bool> {
    frames
        .iter()
        .filter(|f| f["type"] == "conversation_updated" && f["conversation"]["id"] == conv)
        .map(|f| f["conversation"]["visitor"]["online"] == true)
        .collect()
}

#[tokio::test]
async fn quick_reconnects_do_not_flap_presence_and_a_departure_is_announced_once() {
    let grace = 1_500;
    let s =
        TestServer::start_with(|c| c.limits.presence_grace = Duration::from_millis(grace)).await;
    let (v, token, conv, mut agent) = visitor_with_conversation(&s).await;
    let mut v = Some(v);
    for _ in 0..200 {
        drop(v.take());
        v = Some(s.visitor_with(Some(&token), None).await.0);
    }
    let frames = drain(&mut agent, grace + 500).await;
    let updates = presence_updates(&frames, &conv);
    assert!(
        updates.len() <= 2 && updates.iter().all(|online| *online),
        "200 reconnects sent the agent {} presence updates: {updates:?}",
        updates.len()
    );
    // A real departure: nothing within the grace period, then one update.
    drop(v.take());
    agent.expect_silence(grace / 3, &[]).await;
    let frames = drain(&mut agent, grace + 1_000).await;
    assert_eq!(presence_updates(&frames, &conv), [false]);
    // Coming back after that is announced once.
    let (_v, _) = s.visitor_with(Some(&token), None).await;
    let frames = drain(&mut agent, 500).await;
    assert_eq!(presence_updates(&frames, &conv), [true]);
}

#[tokio::test]
async fn during_the_grace_period_summaries_still_show_the_visitor_online() {
    let s = TestServer::start_with(|c| c.limits.presence_grace = Duration::from_secs(30)).await;
    let (v, _token, conv, _agent) = visitor_with_conversation(&s).await;
    drop(v);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_a2, ready) = s.admin().await;
    let listed = &ready["conversations"][0];
    assert_eq!(listed["id"], conv.as_str());
    assert_eq!(listed["visitor"]["online"], true);
}

#[tokio::test]
async fn an_agents_replies_are_limited_across_their_connections() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_count = 4;
        c.limits.rate_window = Duration::from_secs(60);
    })
    .await;
    let (mut v, _) = s.visitor().await;
    let conv = v.say("hi").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let (mut a1, _) = s.admin().await;
    let (mut a2, _) = s.admin().await;
    let mut acked = 0;
    for i in 0..6 {
        let a = if i % 2 == 0 { &mut a1 } else { &mut a2 };
        let id = format!("r{i}");
        a.send(json!({"type":"reply","conversation_id":conv,"client_msg_id":id,"text":"hello"}))
            .await;
        let f = loop {
            let f = a.next().await.expect("an answer");
            if (f["type"] == "ack" && f["client_msg_id"] == id.as_str())
                || (f["type"] == "error" && f["ref"] == id.as_str())
            {
                break f;
            }
        };
        if f["type"] == "ack" {
            acked += 1;
        } else {
            assert_eq!(f["code"], "rate_limited", "{f}");
        }
    }
    assert_eq!(acked, 4);
}
