//! Typing, both ways: an agent's reaches the conversation's visitor (with the agent's
//! name) and the inbox's other agents, a visitor's reaches the inbox's agents, never
//! another visitor nor another inbox; a burst is cut to the rate; a state ends with
//! `active: false` when it expires, when the typist's message is sent and when their
//! connection closes; a visitor's typing before a conversation is ignored.

use serde_json::{json, Value};
use widget_protocol::Role;

use crate::support::{Client, TestServer};

/// Ann (two tabs' worth of tokens are one agent) and Bob on the default inbox, Cy on
/// another; visitor V with a conversation and visitor W with another.
struct World {
    s: TestServer,
    ann: Client,
    ann_id: String,
    bob: Client,
    cy: Client,
    v: Client,
    w: Client,
    conv: String,
    other_conv: String,
    ann_token: String,
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(adjust: impl FnOnce(&mut frontdesk::config::Config)) -> World {
    let s = TestServer::start_with(adjust).await;
    s.create_inbox("other", &[]).await;
    let ann_token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let bob = s.create_agent("Bob", &["default"], Role::Agent).await;
    let cy = s.create_agent("Cy", &["other"], Role::Agent).await;
    let (mut v, _) = s.visitor().await;
    let conv = id_of(&v.say("hello").await);
    let (mut w, _) = s.visitor().await;
    let other_conv = id_of(&w.say("hi there").await);
    let (ann, ready) = s.agent(&ann_token).await;
    let ann_id = ready["agent"]["id"].as_str().expect("id").to_string();
    let (bob, _) = s.agent(&bob).await;
    let (cy, _) = s.agent(&cy).await;
    World {
        s,
        ann,
        ann_id,
        bob,
        cy,
        v,
        w,
        conv,
        other_conv,
        ann_token,
    }
}

fn id_of(message: &Value) -> String {
    message["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string()
}

fn typing(conv: &str, active: bool) -> Value {
    json!({"type":"typing","conversation_id":conv,"active":active})
}

/// What an agent hears of Ann typing in `conv`.
fn ann_typing(w: &World, active: bool) -> Value {
    json!({"type":"agent_typing","conversation_id":w.conv,"agent":{"id":w.ann_id,"name":"Ann"},"active":active})
}

fn shown(active: bool) -> Value {
    json!({"type":"typing","active":active,"name":"Ann"})
}

fn visitor_typing(conv: &str, active: bool) -> Value {
    json!({"type":"visitor_typing","conversation_id":conv,"active":active})
}

/// Frames that follow any message and are not about typing.
const BESIDES: &[&str] = &["message", "conversation_updated"];

#[tokio::test]
async fn an_agents_typing_reaches_the_visitor_and_the_other_agents_and_ends_with_the_reply() {
    let mut w = world().await;
    let (mut ann2, _) = w.s.agent(&w.ann_token.clone()).await;
    w.ann.send(typing(&w.conv, true)).await;
    assert_eq!(w.v.expect_skipping("typing").await, shown(true));
    assert_eq!(
        w.bob.expect_skipping("agent_typing").await,
        ann_typing(&w, true)
    );
    // Not Ann herself, not another inbox, never another visitor.
    for c in [&mut w.ann, &mut ann2, &mut w.cy, &mut w.w] {
        c.expect_silence(300, &[]).await;
    }

    w.ann.reply(&w.conv.clone(), "On it").await;
    assert_eq!(w.v.expect_skipping("typing").await, shown(false));
    assert_eq!(
        w.bob.expect_skipping("agent_typing").await,
        ann_typing(&w, false)
    );
    w.w.expect_silence(300, &[]).await;
    // Stopping when nothing is active says nothing more.
    w.ann.send(typing(&w.conv, false)).await;
    w.v.expect_silence(300, &BESIDES[..1]).await;
}

#[tokio::test]
async fn a_visitors_typing_reaches_the_inbox_agents_only_and_ends_with_their_message() {
    let mut w = world().await;
    w.v.send(json!({"type":"typing","active":true})).await;
    for agent in [&mut w.ann, &mut w.bob] {
        assert_eq!(
            agent.expect_skipping("visitor_typing").await,
            visitor_typing(&w.conv, true)
        );
    }
    for c in [&mut w.cy, &mut w.w, &mut w.v] {
        c.expect_silence(300, &[]).await;
    }
    w.v.say("my order?").await;
    for agent in [&mut w.ann, &mut w.bob] {
        assert_eq!(
            agent.expect_skipping("visitor_typing").await,
            visitor_typing(&w.conv, false)
        );
    }
    w.w.send(json!({"type":"typing","active":true})).await;
    assert_eq!(
        w.ann.expect_skipping("visitor_typing").await,
        visitor_typing(&w.other_conv, true)
    );
    w.v.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn a_visitors_typing_before_a_conversation_is_ignored() {
    let mut w = world().await;
    let (mut newcomer, _) = w.s.visitor().await;
    newcomer.send(json!({"type":"typing","active":true})).await;
    newcomer.expect_silence(300, &[]).await;
    w.ann.expect_silence(0, &[]).await;
    // Once they wrote, it counts.
    let conv = id_of(&newcomer.say("first").await);
    newcomer.send(json!({"type":"typing","active":true})).await;
    loop {
        let f = w.ann.expect_skipping("visitor_typing").await;
        if f == visitor_typing(&conv, true) {
            break;
        }
    }
}

#[tokio::test]
async fn a_visitors_typing_counts_in_a_tab_opened_before_another_tab_started_the_chat() {
    let mut w = world().await;
    let (mut first, welcome) = w.s.visitor().await;
    let token = welcome["visitor_token"]
        .as_str()
        .expect("token")
        .to_string();
    let (mut second, _) = w.s.visitor_with(Some(&token), None).await;
    let conv = id_of(&first.say("first").await);
    // The second tab hears the message (so the widget knows the conversation) and types.
    second.expect_skipping("message").await;
    second.send(json!({"type":"typing","active":true})).await;
    loop {
        let f = w.ann.expect_skipping("visitor_typing").await;
        if f == visitor_typing(&conv, true) {
            break;
        }
    }
}

#[tokio::test]
async fn a_typing_state_not_renewed_ends_by_itself() {
    let mut w = world().await;
    w.ann.send(typing(&w.conv, true)).await;
    w.v.send(json!({"type":"typing","active":true})).await;
    assert_eq!(w.v.expect_skipping("typing").await, shown(true));
    assert_eq!(
        w.bob.expect_skipping("visitor_typing").await,
        visitor_typing(&w.conv, true)
    );
    // Nobody renews: after the expiry (6 s), `active: false` (generous waits: WAIT).
    assert_eq!(w.v.expect_skipping("typing").await, shown(false));
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let f = w.bob.next().await.expect("a frame");
        if f["type"] == "agent_typing" || f["type"] == "visitor_typing" {
            heard.push(f);
        }
    }
    assert!(heard.contains(&ann_typing(&w, false)), "{heard:?}");
    assert!(heard.contains(&visitor_typing(&w.conv, false)), "{heard:?}");
}

#[tokio::test]
async fn a_burst_of_typing_frames_is_cut_to_the_rate_silently() {
    let mut w = world().await;
    for _ in 0..50 {
        w.ann.send(typing(&w.conv, true)).await;
        w.v.send(json!({"type":"typing","active":true})).await;
    }
    // No error to either, and only a few forwarded (2 at once, 2 a second after).
    w.ann.expect_silence(1000, &["visitor_typing"]).await;
    let mut shown_count = 0;
    w.v.send(json!({"type":"history"})).await;
    loop {
        let f = w.v.next().await.expect("a frame");
        match f["type"].as_str() {
            Some("typing") => shown_count += 1,
            Some("history") => break,
            _ => panic!("unexpected {f}"),
        }
    }
    assert!((1..=4).contains(&shown_count), "{shown_count} forwarded");
    let mut to_bob = 0;
    w.bob
        .send(json!({"type":"open","conversation_id":w.conv}))
        .await;
    loop {
        let f = w.bob.next().await.expect("a frame");
        match f["type"].as_str() {
            Some("agent_typing") | Some("visitor_typing") => to_bob += 1,
            Some("conversation") => break,
            _ => {}
        }
    }
    assert!((2..=8).contains(&to_bob), "{to_bob} forwarded to Bob");
}

#[tokio::test]
async fn closing_the_connection_ends_the_typists_state() {
    let mut w = world().await;
    w.ann.send(typing(&w.conv, true)).await;
    assert_eq!(w.v.expect_skipping("typing").await, shown(true));
    w.v.send(json!({"type":"typing","active":true})).await;
    assert_eq!(
        w.bob.expect_skipping("agent_typing").await,
        ann_typing(&w, true)
    );
    assert_eq!(
        w.bob.expect_skipping("visitor_typing").await,
        visitor_typing(&w.conv, true)
    );
    let ann_stopped = ann_typing(&w, false);
    drop(w.ann);
    assert_eq!(w.v.expect_skipping("typing").await, shown(false));
    assert_eq!(w.bob.expect_skipping("agent_typing").await, ann_stopped);
    drop(w.v);
    assert_eq!(
        w.bob.expect_skipping("visitor_typing").await,
        visitor_typing(&w.conv, false)
    );
}

#[tokio::test]
async fn typing_in_a_conversation_the_agent_may_not_see_is_not_found() {
    let mut w = world().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [w.conv.as_str(), unknown.as_str(), "nope"] {
        w.cy.send(typing(id, true)).await;
        w.cy.expect_error("not_found").await;
    }
    w.cy.send(json!({"type":"typing","conversation_id":w.conv}))
        .await;
    w.cy.expect_error("bad_frame").await;
    w.v.expect_silence(300, &[]).await;
    w.ann.expect_silence(0, &[]).await;
}

#[tokio::test]
async fn the_binary_takes_the_typing_limits_from_its_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = ["--typing-expiry-ms", "300", "--typing-rate", "1/1s"];
    let server = crate::support::BinaryServer::spawn(dir.path(), &args).await;
    let (mut v, _) = server.visitor(None).await;
    let conv = id_of(&v.say("hello").await);
    let (mut admin, _) = server.agent(&server.admin_token()).await;
    for _ in 0..3 {
        admin.send(typing(&conv, true)).await;
    }
    let name = v.expect_skipping("typing").await["name"].clone();
    // One forwarded (1 a second), and its end 300 ms later.
    let ended = v.expect("typing").await;
    assert_eq!(ended, json!({"type":"typing","active":false,"name":name}));
    server.kill9().await;
}
