//! Team administration over the agent socket while the server runs: agents made,
//! invited, renamed, moved between inboxes and revoked; inboxes made and edited (their
//! origins and widget); who may do it, what is refused, how fast, what survives a
//! restart, and what open connections see at once.

use std::time::Duration;

use serde_json::{json, Value};
use widget_protocol::close;

use frontdesk::config::Rate;

use crate::support::{Client, Closed, Connect, TestServer};

/// Sends an admin frame and returns the `team` that answers it.
async fn ask(c: &mut Client, frame: Value) -> Value {
    c.send(frame).await;
    c.expect_skipping("team").await
}

/// Sends a frame and returns the error with this code that answers it.
async fn refused(c: &mut Client, frame: Value, code: &str) -> Value {
    c.send(frame).await;
    c.expect_error(code).await
}

/// The token inside an `agent_created`'s invite link.
fn token_of(created: &Value) -> String {
    created["invite"]
        .as_str()
        .and_then(|i| i.strip_prefix("/inbox#invite="))
        .expect("an invite link /inbox#invite=TOKEN")
        .to_string()
}

/// The agent of this name in a `team`.
fn member<'a>(team: &'a Value, name: &str) -> &'a Value {
    team["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent {name} in {team}"))
}

/// The inbox of this key in a `team`.
fn inbox<'a>(team: &'a Value, key: &str) -> &'a Value {
    team["inboxes"]
        .as_array()
        .expect("inboxes")
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no inbox {key} in {team}"))
}

/// How an `auth` with this token ends: its close code (a good token gets `ready`,
/// which fails this).
async fn auth_closed(s: &TestServer, token: &str) -> Closed {
    let mut c = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("connect");
    c.send(json!({"type":"auth","token":token})).await;
    c.expect_closed().await
}

/// Creates an agent over the socket: the `agent_created` (to the asker) and the token.
async fn invite(admin: &mut Client, frame: Value) -> (Value, String) {
    admin.send(frame).await;
    let created = admin.expect_skipping("agent_created").await;
    admin.expect_skipping("team").await;
    let token = token_of(&created);
    (created, token)
}

/// A server whose admin frames are not limited, for tests that send many.
async fn unlimited() -> TestServer {
    TestServer::start_with(|c| {
        c.limits.admin_per_connection = Rate::new(10_000, Duration::from_secs(10))
    })
    .await
}

#[tokio::test]
async fn an_invite_signs_in_and_every_admin_hears_the_team_whatever_their_inboxes() {
    let s = TestServer::start().await;
    let (mut admin, ready) = s.admin().await;
    assert_eq!(ready["agent"]["role"], "admin");
    let team = ask(&mut admin, json!({"type":"get_team"})).await;
    assert_eq!(team["agents"].as_array().map(Vec::len), Some(1));
    assert_eq!(member(&team, "Admin")["display_name"], Value::Null);
    assert_eq!(
        inbox(&team, "default")["widget"],
        json!({"title":null,"color":null,"greeting":null})
    );
    // A second admin who belongs to no inbox still hears every change.
    let (_, bo_token) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Bo","role":"admin","inboxes":[]}),
    )
    .await;
    let (mut bo, bo_ready) = s.agent(&bo_token).await;
    assert_eq!(bo_ready["inboxes"], json!([]));
    let (mut tab2, _) = s.admin().await;
    let (created, ann_token) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"  Ann ","display_name":"Ann from Support","role":"agent","inboxes":["default","default"]}),
    )
    .await;
    let agent = &created["agent"];
    assert_eq!(agent["name"], "Ann");
    assert_eq!(agent["display_name"], "Ann from Support");
    assert_eq!(agent["inboxes"], json!(["default"]));
    assert_eq!(
        (agent["role"].clone(), agent["revoked"].clone()),
        (json!("agent"), json!(false))
    );
    // The other admin connections hear the team, and never the invite.
    for other in [&mut bo, &mut tab2] {
        let team = other.expect("team").await;
        assert_eq!(member(&team, "Ann")["id"], agent["id"]);
        assert!(
            !team.to_string().contains(&ann_token),
            "the token is in team"
        );
    }
    // The invite's token signs in, with the display name in ready.
    let (mut ann, ready) = s.agent(&ann_token).await;
    assert_eq!(ready["agent"]["display_name"], "Ann from Support");
    assert_eq!(ready["agent"]["name"], "Ann");
    assert_eq!(ready["inboxes"], json!(["default"]));
    // The team sees names, not display names.
    let names: Vec<&Value> = ready["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|m| &m["name"])
        .collect();
    assert!(
        names.contains(&&json!("Ann")) && names.contains(&&json!("Admin")),
        "{names:?}"
    );
    // An agent may do none of it, and learns nothing.
    let id = agent["id"].as_str().expect("id");
    for frame in [
        json!({"type":"get_team"}),
        json!({"type":"create_agent","name":"Eve","role":"admin","inboxes":["default"]}),
        json!({"type":"reissue_invite","agent_id":id}),
        json!({"type":"update_agent","agent_id":id,"role":"admin"}),
        json!({"type":"revoke_agent","agent_id":id}),
        json!({"type":"create_inbox","key":"eve","name":"Eve"}),
        json!({"type":"update_inbox","inbox":"default","origins":["https://evil.example"]}),
    ] {
        let e = refused(&mut ann, frame.clone(), "forbidden").await;
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains("admin")),
            "{frame}: {e}"
        );
    }
    let team = ask(&mut admin, json!({"type":"get_team"})).await;
    assert_eq!(
        team["agents"].as_array().map(Vec::len),
        Some(3),
        "Admin, Bo, Ann: {team}"
    );
    assert_eq!(member(&team, "Ann")["role"], "agent");
    assert_eq!(inbox(&team, "default")["origins"], json!([]));
}

#[tokio::test]
async fn reissue_invite_gives_a_new_token_and_the_old_one_stops_working() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    let (created, old) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Ann","role":"agent","inboxes":["default"]}),
    )
    .await;
    let id = created["agent"]["id"].as_str().expect("id").to_string();
    admin
        .send(json!({"type":"reissue_invite","agent_id":id}))
        .await;
    let again = admin.expect("agent_created").await;
    assert_eq!(again["agent"]["id"], id.as_str());
    let new = token_of(&again);
    assert_ne!(new, old);
    assert_eq!(auth_closed(&s, &old).await, Closed::Code(close::BAD_TOKEN));
    let (_ann, ready) = s.agent(&new).await;
    assert_eq!(ready["agent"]["id"], id.as_str());
    // An id no agent has, and one that is no id: the same answer.
    for bad in ["3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "nope"] {
        refused(
            &mut admin,
            json!({"type":"reissue_invite","agent_id":bad}),
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn revoking_closes_every_open_connection_of_the_agent_at_once_with_4001() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    let (created, token) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Ann","role":"agent","inboxes":["default"]}),
    )
    .await;
    let id = created["agent"]["id"].as_str().expect("id").to_string();
    let (mut ann1, _) = s.agent(&token).await;
    let (mut ann2, _) = s.agent(&token).await;
    let started = std::time::Instant::now();
    let team = ask(&mut admin, json!({"type":"revoke_agent","agent_id":id})).await;
    assert_eq!(member(&team, "Ann")["revoked"], true);
    for ann in [&mut ann1, &mut ann2] {
        assert_eq!(ann.expect_closed().await, Closed::Code(close::BAD_TOKEN));
    }
    // At once: not after a heartbeat or any other timer.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        auth_closed(&s, &token).await,
        Closed::Code(close::BAD_TOKEN)
    );
    // A revoked agent can be neither changed nor re-invited.
    refused(
        &mut admin,
        json!({"type":"update_agent","agent_id":id,"name":"Ann 2"}),
        "not_found",
    )
    .await;
    refused(
        &mut admin,
        json!({"type":"reissue_invite","agent_id":id}),
        "not_found",
    )
    .await;
    // The agents of the inbox no longer list her.
    let (_, ready) = s.admin().await;
    assert!(
        !ready["agents"].to_string().contains("Ann"),
        "{}",
        ready["agents"]
    );
}

#[tokio::test]
async fn an_admin_cannot_revoke_or_demote_themselves() {
    let s = TestServer::start().await;
    let (mut admin, ready) = s.admin().await;
    let me = ready["agent"]["id"].as_str().expect("id").to_string();
    let e = refused(
        &mut admin,
        json!({"type":"revoke_agent","agent_id":me}),
        "forbidden",
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("themselves")),
        "{e}"
    );
    refused(
        &mut admin,
        json!({"type":"update_agent","agent_id":me,"role":"agent"}),
        "forbidden",
    )
    .await;
    // Still an admin, still connected; keeping the role is no demotion.
    let team = ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":me,"role":"admin","display_name":"Grace"}),
    )
    .await;
    assert_eq!(member(&team, "Admin")["role"], "admin");
    assert_eq!(member(&team, "Admin")["display_name"], "Grace");
    admin.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn a_change_of_inboxes_or_role_closes_with_4010_and_the_reconnect_is_ready_for_it() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    let (created, token) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Ann","role":"agent","inboxes":["default"]}),
    )
    .await;
    let id = created["agent"]["id"].as_str().expect("id").to_string();
    // A new inbox: its creator is a member, so their connections start again, after
    // the team that says so.
    let (mut tab2, _) = s.admin().await;
    let team = ask(&mut admin, json!({"type":"create_inbox","key":"sales","name":"Sales","origins":["https://Shop.Example.com/"]})).await;
    assert_eq!(
        inbox(&team, "sales")["origins"],
        json!(["https://shop.example.com"])
    );
    assert_eq!(
        member(&team, "Admin")["inboxes"],
        json!(["default", "sales"])
    );
    assert_eq!(
        admin.expect_closed().await,
        Closed::Code(close::ACCESS_CHANGED)
    );
    tab2.expect("team").await;
    assert_eq!(
        tab2.expect_closed().await,
        Closed::Code(close::ACCESS_CHANGED)
    );
    let (mut admin, ready) = s.admin().await;
    assert_eq!(ready["inboxes"], json!(["default", "sales"]));
    // A rename changes no access: Ann's connection stays.
    let (mut ann, _) = s.agent(&token).await;
    ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":id,"name":"Ann Smith","display_name":"Ann"}),
    )
    .await;
    ann.send(json!({"type":"list"})).await;
    ann.expect_skipping("conversations").await;
    // Her inboxes change: closed at once with 4010, and the reconnect sees them.
    let started = std::time::Instant::now();
    let team = ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":id,"inboxes":["sales"]}),
    )
    .await;
    assert_eq!(member(&team, "Ann Smith")["inboxes"], json!(["sales"]));
    assert_eq!(
        ann.expect_closed().await,
        Closed::Code(close::ACCESS_CHANGED)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let (mut ann, ready) = s.agent(&token).await;
    assert_eq!(ready["inboxes"], json!(["sales"]));
    assert_eq!(ready["agent"]["name"], "Ann Smith");
    assert_eq!(ready["agent"]["display_name"], "Ann");
    // The same inboxes in another order are no change.
    ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":id,"inboxes":["sales","sales"]}),
    )
    .await;
    ann.send(json!({"type":"list"})).await;
    ann.expect_skipping("conversations").await;
    // Her role changes: closed, and the reconnect is an admin who may see the team.
    ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":id,"role":"admin"}),
    )
    .await;
    assert_eq!(
        ann.expect_closed().await,
        Closed::Code(close::ACCESS_CHANGED)
    );
    let (mut ann, ready) = s.agent(&token).await;
    assert_eq!(ready["agent"]["role"], "admin");
    ask(&mut ann, json!({"type":"get_team"})).await;
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message_and_changes_nothing() {
    let s = unlimited().await;
    let (mut admin, ready) = s.admin().await;
    let me = ready["agent"]["id"].as_str().expect("id").to_string();
    let before = ask(&mut admin, json!({"type":"get_team"})).await;
    let long = "x".repeat(101);
    let many: Vec<String> = (0..51).map(|i| format!("https://s{i}.example")).collect();
    let cases = [
        (
            json!({"type":"create_agent","name":long,"role":"agent"}),
            "invalid_name",
            "name",
        ),
        (
            json!({"type":"create_agent","name":"   ","role":"agent"}),
            "invalid_name",
            "name",
        ),
        (
            json!({"type":"create_agent","name":"Ann\u{202e}","role":"agent"}),
            "invalid_name",
            "name",
        ),
        (
            json!({"type":"create_agent","name":"Ann","display_name":long,"role":"agent"}),
            "invalid_name",
            "display_name",
        ),
        (
            json!({"type":"create_agent","name":"Ann","role":"boss"}),
            "bad_frame",
            "variant",
        ),
        (
            json!({"type":"create_agent","name":"Ann","role":"agent","inboxes":["nope"]}),
            "not_found",
            "inbox",
        ),
        (
            json!({"type":"update_agent","agent_id":me,"name":long}),
            "invalid_name",
            "name",
        ),
        (
            json!({"type":"update_agent","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"X"}),
            "not_found",
            "agent",
        ),
        (
            json!({"type":"update_agent","agent_id":me,"inboxes":["default","nope"]}),
            "not_found",
            "inbox",
        ),
        (
            json!({"type":"revoke_agent","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}),
            "not_found",
            "agent",
        ),
        (
            json!({"type":"create_inbox","key":"default","name":"Again"}),
            "bad_frame",
            "exists",
        ),
        (
            json!({"type":"create_inbox","key":"a b","name":"Spaces"}),
            "bad_frame",
            "key",
        ),
        (
            json!({"type":"create_inbox","key":"x".repeat(65),"name":"Long"}),
            "bad_frame",
            "key",
        ),
        (
            json!({"type":"create_inbox","key":"shop","name":long}),
            "invalid_name",
            "name",
        ),
        (
            json!({"type":"create_inbox","key":"shop","name":"Shop","origins":["javascript:alert(1)"]}),
            "bad_frame",
            "origins",
        ),
        (
            json!({"type":"create_inbox","key":"shop","name":"Shop","origins":["https://shop.example/path"]}),
            "bad_frame",
            "origins",
        ),
        (
            json!({"type":"create_inbox","key":"shop","name":"Shop","origins":many}),
            "bad_frame",
            "50",
        ),
        (
            json!({"type":"update_inbox","inbox":"nope","name":"X"}),
            "not_found",
            "inbox",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","origins":["ftp://x.example"]}),
            "bad_frame",
            "origins",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","widget":{"color":"red"}}),
            "bad_frame",
            "widget.color",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","widget":{"color":"#12345"}}),
            "bad_frame",
            "widget.color",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","widget":{"title":"t".repeat(61)}}),
            "bad_frame",
            "widget.title",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","widget":{"greeting":"g".repeat(501)}}),
            "bad_frame",
            "widget.greeting",
        ),
        (
            json!({"type":"update_inbox","inbox":"default","widget":{"title":"a\u{0}b"}}),
            "bad_frame",
            "widget.title",
        ),
    ];
    for (frame, code, says) in cases {
        let e = refused(&mut admin, frame.clone(), code).await;
        let message = e["message"].as_str().expect("message");
        assert!(message.contains(says), "{frame}: {message}");
        assert!(
            !message.contains("alert") && !message.contains("xxxxxxxx"),
            "echoed: {message}"
        );
    }
    let after = ask(&mut admin, json!({"type":"get_team"})).await;
    assert_eq!(after, before, "a refused frame changed the team");
}

#[tokio::test]
async fn admin_frames_are_limited_per_connection_and_a_limited_one_changes_nothing() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    for _ in 0..20 {
        ask(&mut admin, json!({"type":"get_team"})).await;
    }
    let e = refused(
        &mut admin,
        json!({"type":"create_agent","name":"Flood","role":"admin","inboxes":["default"]}),
        "rate_limited",
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again in")),
        "{e}"
    );
    refused(&mut admin, json!({"type":"get_team"}), "rate_limited").await;
    // Per connection: another one is served, and nobody was made.
    let (mut other, _) = s.admin().await;
    let team = ask(&mut other, json!({"type":"get_team"})).await;
    assert_eq!(team["agents"].as_array().map(Vec::len), Some(1), "{team}");
    // A flood costs the flooder's connection its answers, nothing more: it stays open.
    admin.send(json!({"type":"list"})).await;
    admin.expect_skipping("conversations").await;
}

#[tokio::test]
async fn every_change_survives_a_restart() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    let (_, ann) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Ann","display_name":"Ann from Support","role":"agent","inboxes":["default"]}),
    )
    .await;
    let (bo_created, bo) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Bo","role":"agent","inboxes":["default"]}),
    )
    .await;
    let (cy_created, cy_old) = invite(
        &mut admin,
        json!({"type":"create_agent","name":"Cy","role":"agent","inboxes":["default"]}),
    )
    .await;
    ask(
        &mut admin,
        json!({"type":"revoke_agent","agent_id":bo_created["agent"]["id"]}),
    )
    .await;
    admin
        .send(json!({"type":"reissue_invite","agent_id":cy_created["agent"]["id"]}))
        .await;
    let cy_new = token_of(&admin.expect("agent_created").await);
    ask(&mut admin, json!({"type":"update_inbox","inbox":"default","name":"Support","widget":{"title":"Hi there","color":"#AABBCC","greeting":"Ask us"}})).await;
    ask(&mut admin, json!({"type":"create_inbox","key":"shop","name":"Shop","origins":["https://shop.example"]})).await;
    admin.expect_closed().await;
    let (mut admin, _) = s.admin().await;
    let before = ask(&mut admin, json!({"type":"get_team"})).await;
    drop(admin);
    let s = s.restart().await;
    let (mut admin, ready) = s.admin().await;
    assert_eq!(ready["inboxes"], json!(["default", "shop"]));
    let after = ask(&mut admin, json!({"type":"get_team"})).await;
    assert_eq!(after, before);
    assert_eq!(inbox(&after, "default")["widget"]["color"], "#aabbcc");
    let (_, ready) = s.agent(&ann).await;
    assert_eq!(ready["agent"]["display_name"], "Ann from Support");
    assert_eq!(auth_closed(&s, &bo).await, Closed::Code(close::BAD_TOKEN));
    assert_eq!(
        auth_closed(&s, &cy_old).await,
        Closed::Code(close::BAD_TOKEN)
    );
    s.agent(&cy_new).await;
    let (_, welcome) = s.visitor().await;
    assert_eq!(
        welcome["widget"],
        json!({"title":"Hi there","color":"#aabbcc","greeting":"Ask us"})
    );
}

#[tokio::test]
async fn new_origins_apply_at_the_next_visitor_handshake_without_a_restart() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    ask(
        &mut admin,
        json!({"type":"create_inbox","key":"shop","name":"Shop","origins":["https://a.example"]}),
    )
    .await;
    admin.expect_closed().await;
    let (mut admin, _) = s.admin().await;
    let shop = s.ws_url("/ws/visitor?inbox=shop");
    let hello = async |origin: &str| {
        let mut ws = Client::open(&shop, Connect::default().origin(origin))
            .await
            .expect("upgrade");
        ws.send(json!({"type":"hello"})).await;
        match ws.next_event().await {
            crate::support::Next::Frame(f) => {
                assert_eq!(f["type"], "welcome");
                Ok(ws)
            }
            crate::support::Next::Closed(c) => Err(c),
        }
    };
    let mut on_a = hello("https://a.example").await.expect("a is allowed");
    assert_eq!(
        hello("https://b.example").await.err(),
        Some(Closed::Code(close::ORIGIN_NOT_ALLOWED))
    );
    ask(
        &mut admin,
        json!({"type":"update_inbox","inbox":"shop","origins":["https://b.example"]}),
    )
    .await;
    hello("https://b.example").await.expect("b is allowed now");
    assert_eq!(
        hello("https://a.example").await.err(),
        Some(Closed::Code(close::ORIGIN_NOT_ALLOWED))
    );
    // A page already open stays: the list is checked at the handshake.
    assert_eq!(on_a.say("still here").await["seq"], 1);
    // No origins: any page.
    ask(
        &mut admin,
        json!({"type":"update_inbox","inbox":"shop","origins":[]}),
    )
    .await;
    hello("https://c.example").await.expect("any origin");
}

#[tokio::test]
async fn the_widget_settings_come_in_welcome_and_every_value_null_leaves_them_out() {
    let s = TestServer::start().await;
    let (_, welcome) = s.visitor().await;
    assert!(welcome.get("widget").is_none(), "{welcome}");
    let (mut admin, _) = s.admin().await;
    let team = ask(&mut admin, json!({"type":"update_inbox","inbox":"default","widget":{"title":" Talk to us ","color":"#0A5CFF","greeting":null}})).await;
    assert_eq!(
        inbox(&team, "default")["widget"],
        json!({"title":"Talk to us","color":"#0a5cff","greeting":null})
    );
    // The name and origins were not touched by a widget-only change.
    assert_eq!(inbox(&team, "default")["name"], "Default");
    let (_, welcome) = s.visitor().await;
    assert_eq!(
        welcome["widget"],
        json!({"title":"Talk to us","color":"#0a5cff","greeting":null})
    );
    ask(&mut admin, json!({"type":"update_inbox","inbox":"default","widget":{"title":null,"color":"","greeting":"  "}})).await;
    let (_, welcome) = s.visitor().await;
    assert!(welcome.get("widget").is_none(), "{welcome}");
}

#[tokio::test]
async fn visitors_see_the_display_name_on_replies_and_the_team_sees_the_name() {
    let s = TestServer::start().await;
    let (mut visitor, _) = s.visitor().await;
    let conv = visitor.say("hello").await["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let (mut admin, ready) = s.admin().await;
    let me = ready["agent"]["id"].as_str().expect("id").to_string();
    assert!(ready["agent"]
        .get("display_name")
        .is_none_or(Value::is_null));
    admin.reply(&conv, "first").await;
    assert_eq!(
        visitor.expect_skipping("message").await["message"]["author"]["name"],
        "Admin"
    );
    // Set on this very connection: it stays open, and its next reply carries it.
    ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":me,"display_name":"Grace from Support"}),
    )
    .await;
    let ack = admin.reply(&conv, "second").await;
    assert_eq!(ack["author"]["name"], "Grace from Support");
    let got = visitor.expect_skipping("message").await;
    assert_eq!(got["message"]["author"]["name"], "Grace from Support");
    // The visitor's typing shows it too; the team's list and assignee use the name.
    admin
        .send(json!({"type":"typing","conversation_id":conv,"active":true}))
        .await;
    assert_eq!(
        visitor.expect_skipping("typing").await["name"],
        "Grace from Support"
    );
    let (_, ready) = s.admin().await;
    assert_eq!(ready["agent"]["display_name"], "Grace from Support");
    assert!(ready["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .any(|m| m["name"] == "Admin"));
    // Null: the name again; the old replies keep theirs.
    ask(
        &mut admin,
        json!({"type":"update_agent","agent_id":me,"display_name":null,"name":"Grace"}),
    )
    .await;
    admin.reply(&conv, "third").await;
    assert_eq!(
        visitor.expect_skipping("message").await["message"]["author"]["name"],
        "Grace"
    );
    visitor
        .send(json!({"type":"history","before":null,"limit":10}))
        .await;
    let history = visitor.expect_skipping("history").await;
    let names: Vec<&Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["author"]["name"])
        .collect();
    assert_eq!(
        names,
        [
            &Value::Null,
            &json!("Admin"),
            &json!("Grace from Support"),
            &json!("Grace")
        ]
    );
}
