//! Canned replies over the agent socket: any member lists them, only admins save and
//! delete them, every agent of the inbox (and nobody else) hears each change, the
//! checks and limits refuse bad ones without storing anything, and they survive a
//! restart.

use std::time::Duration;

use frontdesk::config::Rate;
use serde_json::{json, Value};
use widget_protocol::Role;

use crate::support::{Client, TestServer};

fn save(id: Option<&str>, title: &str, text: &str, shortcut: &str) -> Value {
    json!({"type":"save_canned","inbox":"default","id":id,"title":title,"text":text,"shortcut":shortcut})
}

async fn list(c: &mut Client, inbox: &str) -> Value {
    c.send(json!({"type":"list_canned","inbox":inbox})).await;
    let f = c.expect_skipping("canned").await;
    assert_eq!(f["inbox"], inbox);
    f["replies"].clone()
}

/// Sends `frame` and returns the `canned` frame that answers it.
async fn change(c: &mut Client, frame: Value) -> Value {
    c.send(frame).await;
    c.expect_skipping("canned").await["replies"].clone()
}

async fn refused(c: &mut Client, frame: Value, code: &str, says: &str) {
    c.send(frame).await;
    let e = c.expect_error(code).await;
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains(says)),
        "{e} should say {says}"
    );
}

#[tokio::test]
async fn admins_save_and_delete_every_agent_of_the_inbox_hears_it_and_it_survives_a_restart() {
    let s = TestServer::start().await;
    s.create_inbox("sales", &[]).await;
    let agent = s.create_agent("Ann", &["default"], Role::Agent).await;
    let seller = s.create_agent("Sam", &["sales"], Role::Admin).await;
    let (mut admin, _) = s.admin().await;
    let (mut ann, _) = s.agent(&agent).await;
    let (mut sam, _) = s.agent(&seller).await;
    assert_eq!(list(&mut ann, "default").await, json!([]));

    let replies = change(
        &mut admin,
        save(None, " Shipping ", "We ship in 2 days.", "Ship"),
    )
    .await;
    let id = replies[0]["id"].as_str().expect("an id").to_string();
    assert_eq!(
        replies,
        json!([{"id":id,"inbox":"default","title":"Shipping","text":"We ship in 2 days.","shortcut":"ship"}])
    );
    // The inbox's other agent hears the same list; another inbox's agent nothing.
    assert_eq!(ann.expect_skipping("canned").await["replies"], replies);
    sam.expect_silence(300, &[]).await;
    assert_eq!(list(&mut sam, "sales").await, json!([]));

    let second = change(
        &mut admin,
        save(None, "Refunds", "Within 30 days.", "refund"),
    )
    .await;
    assert_eq!(second.as_array().map(Vec::len), Some(2));
    assert_eq!(second[0]["id"], id.as_str(), "oldest first");
    ann.expect_skipping("canned").await;
    // An edit keeps the id and its place; a shortcut can stay its own.
    let edited = change(
        &mut admin,
        save(Some(&id), "Shipping", "We ship in 1 day.", "ship"),
    )
    .await;
    assert_eq!(edited[0]["text"], "We ship in 1 day.");
    assert_eq!(edited[0]["id"], id.as_str());
    assert_eq!(ann.expect_skipping("canned").await["replies"], edited);
    let rest = change(
        &mut admin,
        json!({"type":"delete_canned","inbox":"default","id":second[1]["id"]}),
    )
    .await;
    assert_eq!(rest, json!([edited[0]]));
    assert_eq!(ann.expect_skipping("canned").await["replies"], rest);

    drop((admin, ann, sam));
    let s = s.restart().await;
    let (mut admin, _) = s.admin().await;
    assert_eq!(list(&mut admin, "default").await, rest);
}

#[tokio::test]
async fn only_admins_change_them_and_only_members_see_them() {
    let s = TestServer::start().await;
    s.create_inbox("sales", &[]).await;
    let agent = s.create_agent("Ann", &["default"], Role::Agent).await;
    let (mut admin, _) = s.admin().await;
    let replies = change(&mut admin, save(None, "Hi", "Hello!", "hi")).await;
    let id = replies[0]["id"].clone();
    let (mut ann, _) = s.agent(&agent).await;
    refused(
        &mut ann,
        save(None, "Mine", "Mine.", "mine"),
        "forbidden",
        "admins",
    )
    .await;
    refused(
        &mut ann,
        json!({"type":"delete_canned","inbox":"default","id":id}),
        "forbidden",
        "admins",
    )
    .await;
    refused(
        &mut ann,
        json!({"type":"list_canned","inbox":"sales"}),
        "not_found",
        "no such inbox",
    )
    .await;
    // The admin's own inboxes only: "sales" was made by nobody's admin frame.
    refused(
        &mut admin,
        json!({"type":"save_canned","inbox":"sales","id":null,"title":"t","text":"t","shortcut":"t"}),
        "not_found",
        "no such inbox",
    )
    .await;
    assert_eq!(list(&mut ann, "default").await, replies);
}

#[tokio::test]
async fn bad_replies_are_refused_naming_the_field_and_nothing_is_stored() {
    let s = TestServer::start_with(|c| {
        c.limits.canned_per_connection = Rate::new(10_000, Duration::from_secs(10))
    })
    .await;
    let (mut admin, _) = s.admin().await;
    let first = change(&mut admin, save(None, "Hi", "Hello!", "hi")).await;
    let id = first[0]["id"].as_str().expect("id").to_string();
    let cases = [
        (save(None, &"t".repeat(101), "x", "a"), "title is 101"),
        (save(None, "  ", "x", "a"), "title must not be blank"),
        (save(None, "t", &"x".repeat(4001), "a"), "text is 4001"),
        (save(None, "t", "x", "has space"), "shortcut"),
        (save(None, "t", "x", ""), "shortcut"),
        (save(None, "t", "x", &"a".repeat(33)), "shortcut"),
        (save(None, "t", "x", "HI"), "shortcut /hi is taken"),
    ];
    for (frame, says) in cases {
        refused(&mut admin, frame, "bad_frame", says).await;
    }
    refused(
        &mut admin,
        save(
            Some("0193a7c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f"),
            "t",
            "x",
            "new",
        ),
        "not_found",
        "no such canned reply",
    )
    .await;
    refused(
        &mut admin,
        save(Some("not-a-uuid"), "t", "x", "new"),
        "not_found",
        "no such canned reply",
    )
    .await;
    refused(
        &mut admin,
        json!({"type":"delete_canned","inbox":"default","id":"nope"}),
        "not_found",
        "no such canned reply",
    )
    .await;
    // At the limits exactly: accepted.
    let at = change(
        &mut admin,
        save(
            Some(&id),
            &"t".repeat(100),
            &"x".repeat(4000),
            &"a".repeat(32),
        ),
    )
    .await;
    assert_eq!(at.as_array().map(Vec::len), Some(1));
    assert_eq!(list(&mut admin, "default").await, at);

    // 200 an inbox.
    for i in 1..200 {
        change(&mut admin, save(None, "t", "x", &format!("s{i}"))).await;
    }
    refused(
        &mut admin,
        save(None, "t", "x", "one-more"),
        "bad_frame",
        "200 canned replies",
    )
    .await;
    assert_eq!(
        list(&mut admin, "default").await.as_array().map(Vec::len),
        Some(200)
    );
}

#[tokio::test]
async fn canned_frames_are_limited_per_connection() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    for _ in 0..30 {
        list(&mut admin, "default").await;
    }
    refused(
        &mut admin,
        save(None, "t", "x", "flood"),
        "rate_limited",
        "try again in",
    )
    .await;
    // Per connection: another one is served, and nothing was stored.
    let (mut other, _) = s.admin().await;
    assert_eq!(list(&mut other, "default").await, json!([]));
}
