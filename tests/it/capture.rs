//! Email capture: the chatflow modes, the prompt's timing and its one-per-conversation
//! rule, away messages, and a submitted email becoming (or finding) a contact.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::TestServer;

const DEFAULT_PROMPT: &str =
    "Leave your email and we'll get back to you there if you're gone when we reply.";

fn flow(when: &str, delay: u64) -> Value {
    json!({"email_capture":{"when":when,"delay_secs":delay}})
}

/// A server whose default inbox has this chatflow.
async fn server(chatflow: Value) -> TestServer {
    let s = TestServer::start().await;
    s.set_chatflow(chatflow).await;
    s
}

#[tokio::test]
async fn first_message_prompts_at_once_with_the_default_text_and_only_once() {
    let s = server(flow("first_message", 60)).await;
    let (mut v, _) = s.visitor().await;
    v.say("hi").await;
    let p = v.expect("email_prompt").await;
    assert_eq!(p["text"], DEFAULT_PROMPT);
    v.say("second message").await;
    v.expect_silence(400, &[]).await;
}

#[tokio::test]
async fn no_reply_prompts_at_the_deadline_with_the_custom_text() {
    let s = server(json!({"email_capture":{"when":"no_reply","delay_secs":1,"message":"Where can we reach you?"}})).await;
    let (mut v, _) = s.visitor().await;
    let sent = Instant::now();
    v.say("anyone?").await;
    v.expect_silence(600, &[]).await;
    let p = v.expect("email_prompt").await;
    assert_eq!(p["text"], "Where can we reach you?");
    assert!(
        sent.elapsed() >= Duration::from_millis(950),
        "fired early: {:?}",
        sent.elapsed()
    );
    v.say("still here").await;
    v.expect_silence(1500, &[]).await;
}

#[tokio::test]
async fn an_agent_reply_before_the_deadline_cancels_the_prompt() {
    let s = server(flow("no_reply", 1)).await;
    let (mut a, _) = s.admin().await;
    let (mut v, _) = s.visitor().await;
    let m = v.say("help").await;
    a.reply(
        m["conversation_id"].as_str().expect("id"),
        "Hi! How can I help?",
    )
    .await;
    v.expect("message").await;
    v.expect_silence(2000, &[]).await;
}

#[tokio::test]
async fn never_means_no_prompt() {
    let s = server(flow("never", 1)).await;
    let (mut v, _) = s.visitor().await;
    v.say("hi").await;
    v.expect_silence(1800, &[]).await;
}

#[tokio::test]
async fn a_prompt_due_while_offline_comes_after_the_next_welcome() {
    let s = server(flow("no_reply", 1)).await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    v.say("hi").await;
    drop(v);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (mut back, _) = s.visitor_with(Some(&token), None).await;
    assert_eq!(back.expect("email_prompt").await["text"], DEFAULT_PROMPT);
    drop(back);
    // Not pushed again; the welcome says it is still open.
    let (mut again, w) = s.visitor_with(Some(&token), None).await;
    assert_eq!(w["email_prompt"], DEFAULT_PROMPT);
    again.expect_silence(500, &[]).await;
}

/// The prompt is recorded as sent in the write that stores the first message, and pushed
/// after it; here the visitor's connection is gone by then (as the socket of a server
/// killed between the two would be). Every welcome shows it until the email is given.
#[tokio::test]
async fn a_prompt_sent_and_unanswered_is_in_every_welcome_until_the_email_is_given() {
    let s = server(flow("first_message", 60)).await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    assert!(
        w.get("email_prompt").is_none(),
        "no prompt before a message"
    );
    let visitor =
        frontdesk::ids::VisitorId::parse(w["visitor_id"].as_str().expect("id")).expect("uuid");
    v.send(json!({"type":"send","client_msg_id":"m1","text":"hi"}))
        .await;
    drop(v);
    let until = Instant::now() + crate::support::WAIT;
    loop {
        let conv = s
            .app
            .store
            .conversation_for_visitor(visitor, "default")
            .expect("store");
        if conv.is_some_and(|c| c.prompt == frontdesk::store::records::PromptState::Sent) {
            break;
        }
        assert!(Instant::now() < until, "the message was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..2 {
        let (mut back, w) = s.visitor_with(Some(&token), None).await;
        assert_eq!(w["email_prompt"], DEFAULT_PROMPT);
        back.expect_silence(300, &[]).await;
    }
    let (mut back, _) = s.visitor_with(Some(&token), None).await;
    back.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    back.expect_skipping("email_captured").await;
    let (_, w) = s.visitor_with(Some(&token), None).await;
    assert!(w.get("email_prompt").is_none(), "answered: {w}");
}

#[tokio::test]
async fn a_deadline_survives_a_restart_before_it_and_fires_on_time() {
    let s = server(flow("no_reply", 2)).await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let sent = Instant::now();
    v.say("hi").await;
    drop(v);
    let s = s.restart().await;
    let (mut v, _) = s.visitor_with(Some(&token), None).await;
    let p = v.expect("email_prompt").await;
    assert_eq!(p["text"], DEFAULT_PROMPT);
    assert!(
        sent.elapsed() >= Duration::from_millis(1950),
        "fired early: {:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn a_deadline_that_passed_while_the_server_was_down_fires_on_start() {
    let s = server(flow("no_reply", 1)).await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    v.say("hi").await;
    drop(v);
    let (dir, path) = s.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = TestServer::start_in_existing(dir, path).await;
    // It fired at start while the visitor was away, so it is owed to their next welcome.
    let (mut v, _) = s.visitor_with(Some(&token), None).await;
    assert_eq!(v.expect("email_prompt").await["text"], DEFAULT_PROMPT);
}

#[tokio::test]
async fn away_always_answers_with_the_away_message_and_prompts_at_once() {
    let s = server(json!({
        "email_capture":{"when":"no_reply","delay_secs":60,"message":"Your email, please?"},
        "away":{"mode":"always","message":"We are out until Monday."}
    }))
    .await;
    let (mut a, _) = s.admin().await;
    let (mut v, w) = s.visitor().await;
    assert_eq!(
        w["away"],
        json!({"active":true,"message":"We are out until Monday."})
    );
    v.say("hello").await;
    let sys = v.expect("message").await;
    assert_eq!(sys["message"]["author"]["kind"], "system");
    assert_eq!(sys["message"]["text"], "We are out until Monday.");
    assert_eq!(sys["message"]["seq"], 2);
    assert_eq!(
        v.expect("email_prompt").await["text"],
        "Your email, please?"
    );
    loop {
        let m = a.expect_skipping("message").await;
        if m["message"]["author"]["kind"] == "system" {
            break;
        }
    }
    // Only for the first message.
    v.say("more").await;
    v.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn away_when_no_agents_online_depends_on_agents_connected() {
    let s = server(
        json!({"email_capture":{"when":"never"},"away":{"mode":"no_agents_online","message":null}}),
    )
    .await;
    // Nobody online: away, with the default away text and no prompt (when = never).
    let (mut v, w) = s.visitor().await;
    assert_eq!(w["away"]["active"], true);
    v.say("hi").await;
    let sys = v.expect("message").await;
    assert_eq!(sys["message"]["author"]["kind"], "system");
    assert!(sys["message"]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    v.expect_silence(300, &[]).await;

    // An agent connected: not away.
    let (_a, _) = s.admin().await;
    let (mut v2, w2) = s.visitor().await;
    assert_eq!(w2["away"]["active"], false);
    v2.say("hi").await;
    v2.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn submitting_an_email_makes_a_contact_and_the_same_email_links_to_it() {
    let s = server(flow("first_message", 60)).await;
    let (mut a, _) = s.admin().await;
    let (mut v1, _) = s.visitor().await;
    let m = v1.say("hi").await;
    let conv1 = m["conversation_id"].as_str().expect("id").to_string();
    v1.expect("email_prompt").await;
    for bad in ["", "ada", "ada@", "a b@example.com", "ada@example"] {
        v1.send(json!({"type":"submit_email","email":bad})).await;
        v1.expect_error("invalid_email").await;
    }
    v1.send(json!({"type":"submit_email","email":"Ada@Example.com"}))
        .await;
    assert_eq!(
        v1.expect("email_captured").await["email"],
        "Ada@Example.com"
    );
    let upd = loop {
        let u = a.expect_skipping("conversation_updated").await;
        if u["conversation"]["visitor"]["contact"] != Value::Null {
            break u;
        }
    };
    assert_eq!(upd["conversation"]["id"], conv1.as_str());
    assert_eq!(upd["conversation"]["visitor"]["label"], "Ada@Example.com");
    assert_eq!(
        upd["conversation"]["visitor"]["contact"]["source"],
        "email_capture"
    );
    let contact_id = upd["conversation"]["visitor"]["contact"]["id"].clone();

    // A second visitor (other device) types the same email in other case: same contact,
    // and nothing of the first conversation reaches them.
    let (mut v2, _) = s.visitor().await;
    let m2 = v2.say("hello from my phone").await;
    v2.expect("email_prompt").await;
    v2.send(json!({"type":"submit_email","email":"ada@example.COM"}))
        .await;
    assert_eq!(
        v2.expect("email_captured").await["email"],
        "ada@example.COM"
    );
    let upd2 = loop {
        let u = a.expect_skipping("conversation_updated").await;
        if u["conversation"]["id"] == m2["conversation_id"]
            && u["conversation"]["visitor"]["contact"] != Value::Null
        {
            break u;
        }
    };
    assert_eq!(upd2["conversation"]["visitor"]["contact"]["id"], contact_id);
    let (_v2b, w2) = s.visitor_with(None, Some(&v2.cookie_pair())).await;
    assert_eq!(w2["email"], "ada@example.COM");
    assert!(
        !w2.to_string().contains("\"hi\""),
        "the other conversation leaked: {w2}"
    );
    assert_eq!(w2["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn no_prompt_for_a_visitor_whose_email_is_known_and_none_at_chat_start() {
    let s = server(flow("first_message", 60)).await;
    let (mut a, _) = s.admin().await;
    let (mut v, _) = s.visitor().await;
    // Opening a chat makes nobody a contact.
    a.send(json!({"type":"lookup_contact","email":"early@example.com"}))
        .await;
    assert_eq!(
        a.expect_skipping("contact_lookup").await["contact"],
        Value::Null
    );
    v.send(json!({"type":"submit_email","email":"early@example.com"}))
        .await;
    v.expect("email_captured").await;
    v.say("hi").await;
    v.expect_silence(400, &[]).await;
    // A prompt pending when the email arrives is cancelled.
    s.set_chatflow(flow("no_reply", 1)).await;
    let (mut v2, _) = s.visitor().await;
    v2.say("hi").await;
    v2.send(json!({"type":"submit_email","email":"late@example.com"}))
        .await;
    v2.expect("email_captured").await;
    v2.expect_silence(1600, &[]).await;
}

#[tokio::test]
async fn admins_chatflow_is_validated() {
    let s = TestServer::start().await;
    let (mut a, _) = s.admin().await;
    let cases = [
        (json!({"email_capture":{"when":"sometimes"}}), "no_reply"),
        (json!({"email_capture":{"delay_secs":0}}), "delay_secs"),
        (json!({"email_capture":{"delay_secs":86401}}), "delay_secs"),
        (
            json!({"email_capture":{"message":"x".repeat(1001)}}),
            "email_capture.message",
        ),
        (json!({"away":{"mode":"sometimes"}}), "no_agents_online"),
        (
            json!({"away":{"mode":"always","message":"y".repeat(1001)}}),
            "away.message",
        ),
    ];
    for (cf, field) in cases {
        a.send(json!({"type":"update_chatflow","inbox":"default","chatflow":cf}))
            .await;
        let e = a.expect_error("bad_frame").await;
        // The message names the field, or lists the values it takes.
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(field)),
            "{e} should say {field}"
        );
    }
    a.send(json!({"type":"update_chatflow","inbox":"default","chatflow":{"email_capture":{"when":"first_message","delay_secs":30,"message":" Hi! "}}}))
        .await;
    let cf = a.expect_skipping("chatflow").await;
    assert_eq!(
        cf["chatflow"]["email_capture"],
        json!({"when":"first_message","delay_secs":30,"message":"Hi!"})
    );
    assert_eq!(cf["chatflow"]["away"]["mode"], "off");
    let s = {
        drop(a);
        s.restart().await
    };
    let (mut a, _) = s.admin().await;
    a.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    assert_eq!(
        a.expect_skipping("chatflow").await["chatflow"]["email_capture"]["when"],
        "first_message"
    );
}

#[tokio::test]
async fn ten_thousand_pending_prompts_each_fire_exactly_once() {
    use frontdesk::conversations::{FirstMessagePlan, VisitorSend};
    use frontdesk::store::records::PromptState;
    use widget_protocol::CaptureWhen;

    let s = TestServer::start().await;
    let app = s.app.clone();
    let n = 10_000usize;
    let due_in_ms: widget_protocol::Millis = 1_500;
    // Through the same path a visitor's first message takes: the writer persists the
    // conversation and its deadline, and the one sleeper task fires it.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = app.clone();
        sends.spawn(async move {
            let a = app
                .store
                .append_visitor(VisitorSend {
                    visitor: frontdesk::ids::VisitorId::generate(),
                    inbox: "default".into(),
                    client_msg_id: format!("c{i}"),
                    text: format!("visitor {i}"),
                    page: None,
                    now: app.now(),
                    plan: FirstMessagePlan {
                        when: CaptureWhen::NoReply,
                        delay_ms: due_in_ms,
                        prompt_text: "p".into(),
                        away: None,
                    },
                })
                .await
                .expect("stored");
            let (due, kind) = a.deadline.expect("a deadline");
            let id = a.conversation.id;
            app.deadlines.schedule(due, kind, id);
            id
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(id) = sends.join_next().await {
        ids.push(id.expect("task"));
    }
    assert!(app.deadlines.len() <= n);
    // Wait until every one has fired (the visitors are offline, so each becomes owed).
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = ids
            .iter()
            .filter(|id| {
                app.store
                    .conversation(**id)
                    .expect("load")
                    .is_some_and(|c| c.prompt != PromptState::Owed)
            })
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "{pending} of {n} deadlines never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Fired once: the persisted deadlines are all consumed and the queue is empty.
    let left = app
        .kv()
        .scan_prefix(frontdesk::store::Tree::Deadlines, b"", usize::MAX)
        .expect("scan");
    assert!(left.is_empty(), "{} deadlines still stored", left.len());
    assert!(app.deadlines.is_empty());
}
