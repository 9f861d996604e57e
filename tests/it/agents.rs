//! The agent socket: auth, the live inbox, replies, the assign-visitor flow, access.

use serde_json::{json, Value};
use widget_protocol::Role;

use crate::support::{Client, Closed, TestServer};

/// A visitor who has said something, and the conversation id.
async fn chatting_visitor(s: &TestServer, text: &str) -> (Client, Value, String) {
    let (mut c, w) = s.visitor().await;
    let m = c.say(text).await;
    let conv = m["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    (c, w, conv)
}

#[tokio::test]
async fn two_agents_and_visitors_live() {
    let s = TestServer::start().await;
    let ann = s.create_agent("Ann", &["default"], Role::Agent).await;
    let (mut a1, ready) = s.agent(&ann).await;
    assert_eq!(ready["agent"]["name"], "Ann");
    assert_eq!(ready["agent"]["role"], "agent");
    assert_eq!(ready["inboxes"], json!(["default"]));
    assert_eq!(ready["conversations"], json!([]));
    let (mut a2, _) = s.admin().await;

    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let (mut v_tab2, _) = s.visitor_with(Some(&token), None).await;
    let (mut other_visitor, _) = s.visitor().await;

    let m = v.say("Where is my bike?").await;
    let conv = m["conversation_id"].as_str().expect("id").to_string();
    for a in [&mut a1, &mut a2] {
        let got = a.expect_skipping("message").await;
        assert_eq!(got["message"], m);
        let upd = a.expect_skipping("conversation_updated").await;
        assert_eq!(upd["conversation"]["id"], conv.as_str());
        assert_eq!(upd["conversation"]["visitor"]["label"], "Unknown visitor");
        assert_eq!(upd["conversation"]["visitor"]["online"], true);
        assert_eq!(
            upd["conversation"]["last_message"]["text"],
            "Where is my bike?"
        );
    }
    assert_eq!(v_tab2.expect("message").await["message"], m);

    let r = a1.reply(&conv, "On its way!").await;
    assert_eq!(r["author"]["kind"], "agent");
    assert_eq!(r["author"]["name"], "Ann");
    assert_eq!(r["seq"], 2);
    assert_eq!(v.expect_skipping("message").await["message"], r);
    assert_eq!(v_tab2.expect_skipping("message").await["message"], r);
    assert_eq!(a2.expect_skipping("message").await["message"], r);
    // The other visitor hears nothing of it.
    other_visitor.expect_silence(300, &[]).await;

    // open: the conversation with paging.
    a2.send(json!({"type":"open","conversation_id":conv,"limit":1}))
        .await;
    let open = a2.expect_skipping("conversation").await;
    assert_eq!(open["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(open["messages"][0]["text"], "On its way!");
    assert_eq!(open["has_more"], true);
    a2.send(json!({"type":"open","conversation_id":conv,"before":2}))
        .await;
    let older = a2.expect_skipping("conversation").await;
    assert_eq!(older["messages"][0]["text"], "Where is my bike?");
    assert_eq!(older["has_more"], false);

    // A new agent connection lists it, newest first.
    let (_a3, ready) = s.agent(&ann).await;
    assert_eq!(ready["conversations"][0]["id"], conv.as_str());

    // Going offline is announced.
    drop(v);
    drop(v_tab2);
    loop {
        let upd = a1.expect_skipping("conversation_updated").await;
        if upd["conversation"]["visitor"]["online"] == false {
            break;
        }
    }
}

#[tokio::test]
async fn a_reply_to_an_offline_visitor_is_in_their_history_when_they_return() {
    let s = TestServer::start().await;
    let (v, w, conv) = chatting_visitor(&s, "hello?").await;
    let cookie = v.cookie_pair();
    drop(v);
    let (mut a, _) = s.admin().await;
    a.reply(&conv, "Sorry for the wait").await;
    let (_v2, w2) = s.visitor_with(None, Some(&cookie)).await;
    assert_eq!(w2["visitor_id"], w["visitor_id"]);
    let texts: Vec<&str> = w2["messages"]
        .as_array()
        .expect("m")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["hello?", "Sorry for the wait"]);
}

#[tokio::test]
async fn replies_are_idempotent_on_client_msg_id() {
    let s = TestServer::start().await;
    let (mut v, _, conv) = chatting_visitor(&s, "hi").await;
    let (mut a, _) = s.admin().await;
    let frame = json!({"type":"reply","conversation_id":conv,"client_msg_id":"r-1","text":"once"});
    a.send(frame.clone()).await;
    let first = a.expect_skipping("ack").await;
    a.send(frame).await;
    let second = a.expect_skipping("ack").await;
    assert_eq!(first, second);
    assert_eq!(
        v.expect_skipping("message").await["message"]["text"],
        "once"
    );
    v.expect_silence(300, &["conversation_updated"]).await;
}

#[tokio::test]
async fn the_assign_visitor_flow() {
    let s = TestServer::start().await;
    let (mut a, _) = s.admin().await;
    let (mut v1, _, conv1) = chatting_visitor(&s, "hi, I'm Ada").await;
    let (_v2, _, conv2) = chatting_visitor(&s, "hi, also Ada, other laptop").await;

    a.send(json!({"type":"lookup_contact","email":"ada@example.com"}))
        .await;
    let l = a.expect_skipping("contact_lookup").await;
    assert_eq!(l["contact"], Value::Null);

    a.send(json!({"type":"assign_visitor","conversation_id":conv1,"email":"ada@example.com"}))
        .await;
    a.expect_error("contact_not_found").await;

    a.send(json!({"type":"create_contact","conversation_id":conv1,"email":"Ada@Example.com","first_name":"Ada","last_name":""}))
        .await;
    a.expect_error("invalid_name").await;
    a.send(json!({"type":"create_contact","conversation_id":conv1,"email":"ada@","first_name":"Ada","last_name":"Lovelace"}))
        .await;
    a.expect_error("invalid_email").await;
    a.send(json!({"type":"create_contact","conversation_id":conv1,"email":"Ada@Example.com","first_name":"Ada","last_name":"Lovelace"}))
        .await;
    let assigned = a.expect_skipping("visitor_assigned").await;
    assert_eq!(assigned["conversation_id"], conv1.as_str());
    let contact = assigned["contact"].clone();
    assert_eq!(contact["email"], "Ada@Example.com");
    assert_eq!(contact["source"], "agent");
    assert_eq!(contact["first_name"], "Ada");
    let upd = a.expect_skipping("conversation_updated").await;
    assert_eq!(upd["conversation"]["visitor"]["label"], "Ada Lovelace");
    assert_eq!(
        upd["conversation"]["visitor"]["contact"]["id"],
        contact["id"]
    );

    // Case-insensitive lookup; create again is refused.
    a.send(json!({"type":"lookup_contact","email":"ADA@example.COM"}))
        .await;
    assert_eq!(
        a.expect_skipping("contact_lookup").await["contact"]["id"],
        contact["id"]
    );
    a.send(json!({"type":"create_contact","conversation_id":conv2,"email":"ada@example.com","first_name":"A","last_name":"L"}))
        .await;
    a.expect_error("contact_exists").await;
    a.send(json!({"type":"assign_visitor","conversation_id":conv2,"email":"ada@EXAMPLE.com"}))
        .await;
    let assigned2 = a.expect_skipping("visitor_assigned").await;
    assert_eq!(assigned2["contact"]["id"], contact["id"]);

    // The visitor is never shown what the agent set.
    v1.expect_silence(300, &[]).await;
    let (_c, w) = s.visitor_with(None, Some(&v1.cookie_pair())).await;
    assert_eq!(w["email"], Value::Null);
    assert!(!w.to_string().contains("Lovelace"));
}

#[tokio::test]
async fn concurrent_creates_of_one_email_make_one_contact() {
    let s = TestServer::start().await;
    let mut convs = Vec::new();
    for i in 0..8 {
        let (_v, _, c) = chatting_visitor(&s, &format!("visitor {i}")).await;
        convs.push(c);
    }
    let mut agents = Vec::new();
    for _ in 0..8 {
        agents.push(s.admin().await.0);
    }
    for (a, conv) in agents.iter_mut().zip(&convs) {
        a.send(json!({"type":"create_contact","conversation_id":conv,"email":"race@example.com","first_name":"Race","last_name":"Condition"}))
            .await;
    }
    let mut created = 0;
    let mut exists = 0;
    for a in agents.iter_mut() {
        loop {
            let f = a.next().await.expect("frame");
            match f["type"].as_str() {
                Some("visitor_assigned") => {
                    created += 1;
                    break;
                }
                Some("error") => {
                    assert_eq!(f["code"], "contact_exists");
                    exists += 1;
                    break;
                }
                _ => continue,
            }
        }
    }
    assert_eq!((created, exists), (1, 7));
}

#[tokio::test]
async fn an_agent_of_inbox_a_cannot_touch_inbox_b() {
    let s = TestServer::start().await;
    s.create_inbox("sales", &[]).await;
    let sales_agent = s.create_agent("Sam", &["sales"], Role::Agent).await;
    let (_v, _, conv) = chatting_visitor(&s, "secret in default").await;
    let (mut sam, ready) = s.agent(&sales_agent).await;
    assert_eq!(ready["inboxes"], json!(["sales"]));
    assert_eq!(ready["conversations"], json!([]));
    let missing = uuid::Uuid::new_v4().to_string();
    for id in [conv.as_str(), missing.as_str(), "not-a-uuid"] {
        sam.send(json!({"type":"open","conversation_id":id})).await;
        let e1 = sam.expect_error("not_found").await;
        sam.send(json!({"type":"reply","conversation_id":id,"client_msg_id":"x","text":"hi"}))
            .await;
        let e2 = sam.expect_error("not_found").await;
        sam.send(json!({"type":"assign_visitor","conversation_id":id,"email":"a@b.co"}))
            .await;
        sam.expect_error("not_found").await;
        sam.send(json!({"type":"create_contact","conversation_id":id,"email":"a@b.co","first_name":"A","last_name":"B"}))
            .await;
        sam.expect_error("not_found").await;
        assert_eq!(e1["message"], e2["message"]);
    }
    sam.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    sam.expect_error("not_found").await;
    // A message in default never reaches the sales agent.
    let (mut v2, _) = s.visitor().await;
    v2.say("another secret").await;
    sam.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn bad_token_no_auth_and_non_admin_chatflow() {
    let s =
        TestServer::start_with(|c| c.limits.hello_timeout = std::time::Duration::from_millis(400))
            .await;
    let mut bad = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("connect");
    bad.send(json!({"type":"auth","token":"fda_wrong"})).await;
    assert_eq!(bad.expect_closed().await, Closed::Code(4001));

    let mut early = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("connect");
    early
        .send(json!({"type":"open","conversation_id":"x"}))
        .await;
    early.expect_error("not_authenticated").await;
    assert_eq!(early.expect_closed().await, Closed::Code(4008));

    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let (mut ann, _) = s.agent(&token).await;
    ann.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    let cf = ann.expect_skipping("chatflow").await;
    assert_eq!(cf["chatflow"]["email_capture"]["when"], "no_reply");
    ann.send(json!({"type":"update_chatflow","inbox":"default","chatflow":{"email_capture":{"when":"never"}}}))
        .await;
    ann.expect_error("forbidden").await;
    ann.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    assert_eq!(
        ann.expect_skipping("chatflow").await["chatflow"]["email_capture"]["when"],
        "no_reply"
    );
}

#[tokio::test]
async fn a_restart_keeps_agents_contacts_and_links() {
    let s = TestServer::start().await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let (_v, _, conv) = chatting_visitor(&s, "hi").await;
    let (mut a, _) = s.agent(&token).await;
    a.send(json!({"type":"create_contact","conversation_id":conv,"email":"grace@example.com","first_name":"Grace","last_name":"Hopper"}))
        .await;
    a.expect_skipping("visitor_assigned").await;
    drop(a);
    let s = s.restart().await;
    let (mut a, ready) = s.agent(&token).await;
    assert_eq!(
        ready["conversations"][0]["visitor"]["label"],
        "Grace Hopper"
    );
    a.send(json!({"type":"lookup_contact","email":"GRACE@example.com"}))
        .await;
    assert_eq!(
        a.expect_skipping("contact_lookup").await["contact"]["last_name"],
        "Hopper"
    );
}

#[tokio::test]
async fn an_inbox_with_many_conversations_still_lets_agents_in() {
    use frontdesk::conversations::{FirstMessagePlan, VisitorSend};
    let s = TestServer::start().await;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..700 {
        let app = s.app.clone();
        sends.spawn(async move {
            app.store
                .append_visitor(VisitorSend {
                    visitor: frontdesk::ids::VisitorId::generate(),
                    inbox: "default".into(),
                    client_msg_id: format!("c{i}"),
                    text: format!("{i}: {}", "a fairly long first message ".repeat(8)),
                    page: None,
                    now: app.now(),
                    plan: FirstMessagePlan {
                        when: widget_protocol::CaptureWhen::Never,
                        delay_ms: 0,
                        prompt_text: String::new(),
                        away: None,
                    },
                })
                .await
                .expect("stored")
        });
    }
    while let Some(r) = sends.join_next().await {
        r.expect("task");
    }
    let (_a, ready) = s.admin().await;
    let listed = ready["conversations"].as_array().expect("list");
    assert_eq!(listed.len(), 50, "ready lists the newest page");
    assert!(ready["next"].is_string(), "and where the rest starts");
    let times: Vec<i64> = listed
        .iter()
        .filter_map(|c| c["updated_at"].as_i64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn an_agent_asking_for_changes_only_gets_no_summary_that_a_message_already_said() {
    let s = TestServer::start().await;
    let mut lean = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("agent connects");
    lean.send(json!({"type":"auth","token":s.admin_token,"summaries":"changes"}))
        .await;
    lean.expect("ready").await;
    let (mut every, _) = s.admin().await;

    // A new conversation is news for both.
    let (mut v, _, conv) = chatting_visitor(&s, "first").await;
    for a in [&mut lean, &mut every] {
        a.expect_skipping("message").await;
        let upd = a.expect_skipping("conversation_updated").await;
        assert_eq!(upd["conversation"]["id"], conv.as_str());
    }
    lean.expect_silence(300, &[]).await;

    // The next message only moves `last_message`: the default agent still hears it as a
    // summary, the lean one from the message frame alone.
    let m = v.say("second").await;
    assert_eq!(every.expect_skipping("message").await["message"], m);
    let upd = every.expect_skipping("conversation_updated").await;
    assert_eq!(upd["conversation"]["last_message"], m);
    assert_eq!(lean.expect("message").await["message"], m);
    lean.expect_silence(300, &[]).await;

    // The same for a reply by the other agent.
    let r = every.reply(&conv, "On it").await;
    assert_eq!(lean.expect("message").await["message"], r);
    lean.expect_silence(300, &[]).await;

    // Presence is news again: the visitor leaves.
    drop(v);
    let upd = lean.expect("conversation_updated").await;
    assert_eq!(upd["conversation"]["id"], conv.as_str());
    assert_eq!(upd["conversation"]["visitor"]["online"], false);
}
