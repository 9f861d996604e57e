//! The inbox workflow: a conversation's status and assignee, set by agents, heard by
//! every agent of the inbox and nobody else, durable across restarts and kill -9, and a
//! resolved conversation reopened by the visitor's next message.

use serde_json::{json, Value};
use widget_protocol::Role;

use crate::support::{listed, updated, BinaryServer, Client, TestServer};

/// A server with agents Ann and Bob on the default inbox, Cy on another, and a visitor's
/// conversation; its id.
async fn team() -> (TestServer, [String; 3], Client, String) {
    let s = TestServer::start().await;
    s.create_inbox("other", &[]).await;
    let ann = s.create_agent("Ann", &["default"], Role::Agent).await;
    let bob = s.create_agent("Bob", &["default"], Role::Agent).await;
    let cy = s.create_agent("Cy", &["other"], Role::Agent).await;
    let (mut visitor, _) = s.visitor().await;
    let conv = visitor.say("hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    (s, [ann, bob, cy], visitor, conv)
}

#[tokio::test]
async fn status_and_assignee_reach_the_inbox_agents_only_and_survive_a_restart() {
    let (s, [ann, bob, cy], _visitor, conv) = team().await;
    let (mut a, ready) = s.agent(&ann).await;
    let summary = listed(&ready, &conv);
    assert_eq!(summary["status"], "open");
    assert_eq!(summary["assignee"], Value::Null);
    let (mut b, ready_b) = s.agent(&bob).await;
    let bob_id = ready_b["agent"]["id"].as_str().expect("id").to_string();
    let (mut c, _) = s.agent(&cy).await;

    a.send(json!({"type":"set_status","conversation_id":conv,"status":"pending"}))
        .await;
    for agent in [&mut a, &mut b] {
        assert_eq!(updated(agent, &conv).await["status"], "pending");
    }
    a.send(json!({"type":"assign","conversation_id":conv,"agent_id":bob_id}))
        .await;
    for agent in [&mut a, &mut b] {
        let u = updated(agent, &conv).await;
        assert_eq!(u["assignee"], json!({"id":bob_id,"name":"Bob"}));
        assert_eq!(u["status"], "pending");
    }
    c.expect_silence(300, &[]).await;

    let s = s.restart().await;
    let (_a, ready) = s.agent(&ann).await;
    let summary = listed(&ready, &conv);
    assert_eq!(summary["status"], "pending");
    assert_eq!(summary["assignee"], json!({"id":bob_id,"name":"Bob"}));
}

#[tokio::test]
async fn assigning_a_non_member_or_an_unknown_agent_is_not_found() {
    let (s, [ann, _bob, cy], _visitor, conv) = team().await;
    let (mut c, ready_c) = s.agent(&cy).await;
    let cy_id = ready_c["agent"]["id"].as_str().expect("id").to_string();
    let (mut a, ready_a) = s.agent(&ann).await;
    let ann_id = ready_a["agent"]["id"].as_str().expect("id").to_string();

    let unknown = uuid::Uuid::new_v4().to_string();
    for who in [cy_id.as_str(), unknown.as_str(), "nope"] {
        a.send(json!({"type":"assign","conversation_id":conv,"agent_id":who}))
            .await;
        a.expect_error("not_found").await;
    }
    // A conversation of another inbox is as unknown as one that does not exist.
    for frame in [
        json!({"type":"set_status","conversation_id":conv,"status":"resolved"}),
        json!({"type":"assign","conversation_id":conv,"agent_id":cy_id}),
    ] {
        c.send(frame).await;
        c.expect_error("not_found").await;
    }
    // Nothing changed; an agent may take it, and give it back.
    a.send(json!({"type":"assign","conversation_id":conv,"agent_id":ann_id}))
        .await;
    assert_eq!(updated(&mut a, &conv).await["assignee"]["name"], "Ann");
    a.send(json!({"type":"assign","conversation_id":conv,"agent_id":null}))
        .await;
    let u = updated(&mut a, &conv).await;
    assert_eq!(
        (&u["assignee"], &u["status"]),
        (&Value::Null, &json!("open"))
    );
}

#[tokio::test]
async fn a_visitor_message_reopens_a_resolved_conversation() {
    let (s, [ann, _, _], mut visitor, conv) = team().await;
    let (mut a, _) = s.agent(&ann).await;
    a.send(json!({"type":"set_status","conversation_id":conv,"status":"resolved"}))
        .await;
    assert_eq!(updated(&mut a, &conv).await["status"], "resolved");

    visitor.say("one more thing").await;
    let u = updated(&mut a, &conv).await;
    assert_eq!(u["status"], "open");
    assert_eq!(u["last_message"]["text"], "one more thing");

    let s = s.restart().await;
    let (_a, ready) = s.agent(&ann).await;
    assert_eq!(listed(&ready, &conv)["status"], "open");
}

#[tokio::test]
async fn status_and_assignee_survive_kill_9_of_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (mut visitor, _) = server.visitor(None).await;
    let conv = visitor.say("hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let token = server.admin_token();
    let (mut admin, ready) = server.agent(&token).await;
    let me = ready["agent"].clone();
    admin
        .send(json!({"type":"set_status","conversation_id":conv,"status":"resolved"}))
        .await;
    updated(&mut admin, &conv).await;
    admin
        .send(json!({"type":"assign","conversation_id":conv,"agent_id":me["id"]}))
        .await;
    updated(&mut admin, &conv).await;
    server.kill9().await;

    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (_admin, ready) = server.agent(&token).await;
    let summary = listed(&ready, &conv);
    assert_eq!(summary["status"], "resolved");
    assert_eq!(
        summary["assignee"],
        json!({"id":me["id"],"name":me["name"]})
    );
    server.kill9().await;
}
