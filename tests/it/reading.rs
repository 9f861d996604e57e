//! Read cursors and seen cursors: `mark_read` answers this agent's tabs with their own
//! `unread` and tells the visitor `seen`, never moves back; `unread` differs per agent
//! and survives restarts; the visitor's `seen` clamps, moves forward only and reaches the
//! agents; both survive kill -9 of the real binary and come back in `welcome`; and a
//! reply the visitor has seen is never followed up by email (a real SMTP server).

use std::time::Duration;

use serde_json::{json, Value};
use widget_protocol::Role;

use frontdesk::followup::state::FollowUpNews;
use frontdesk::hub::VisitorKey;
use frontdesk::ids::{ConversationId, VisitorId};

use crate::followup::{chatflow, mail_to};
use crate::support::smtp::SmtpSink;
use crate::support::{listed, updated, BinaryServer, Client, TestServer, WAIT};

/// Skips `conversation_updated` frames about `conv` (earlier ones may still be on their
/// way) until one whose summary has `field` at `value`.
async fn until(agent: &mut Client, conv: &str, field: &str, value: u64) -> Value {
    loop {
        let u = updated(agent, conv).await;
        if u[field] == value {
            return u;
        }
    }
}

/// `mark_read`, and the answer saying this agent's `unread` is `unread`.
async fn mark_read(agent: &mut Client, conv: &str, seq: u64, unread: u64) {
    agent
        .send(json!({"type":"mark_read","conversation_id":conv,"seq":seq}))
        .await;
    until(agent, conv, "unread", unread).await;
}

/// This agent's `unread` of `conv` as `open` reports it.
async fn opened_unread(agent: &mut Client, conv: &str) -> Value {
    agent
        .send(json!({"type":"open","conversation_id":conv}))
        .await;
    agent.expect_skipping("conversation").await["conversation"]["unread"].clone()
}

/// Ann and Bob on the default inbox, Cy on another, and a visitor who wrote three
/// messages; the visitor's token and the conversation id.
async fn team() -> (TestServer, [String; 3], Client, String, String) {
    let s = TestServer::start().await;
    s.create_inbox("other", &[]).await;
    let ann = s.create_agent("Ann", &["default"], Role::Agent).await;
    let bob = s.create_agent("Bob", &["default"], Role::Agent).await;
    let cy = s.create_agent("Cy", &["other"], Role::Agent).await;
    let (mut visitor, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let conv = visitor.say("one").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    visitor.say("two").await;
    visitor.say("three").await;
    (s, [ann, bob, cy], visitor, token, conv)
}

#[tokio::test]
async fn mark_read_answers_the_agents_tabs_with_their_unread_and_tells_the_visitor_seen() {
    let (s, [ann, bob, _], mut visitor, _, conv) = team().await;
    let (mut a1, ready) = s.agent(&ann).await;
    assert_eq!(
        listed(&ready, &conv)["unread"],
        3,
        "never opened: every message"
    );
    let (mut a2, _) = s.agent(&ann).await;
    let (mut b, ready) = s.agent(&bob).await;
    assert_eq!(listed(&ready, &conv)["unread"], 3);

    mark_read(&mut a1, &conv, 2, 1).await;
    until(&mut a2, &conv, "unread", 1).await; // Ann's other tab
    assert_eq!(
        visitor.expect_skipping("seen").await,
        json!({"type":"seen","seq":2})
    );
    b.expect_silence(300, &[]).await;

    // A new message: each agent hears their own count.
    visitor.say("four").await;
    assert_eq!(updated(&mut a1, &conv).await["unread"], 2);
    assert_eq!(updated(&mut b, &conv).await["unread"], 4);

    // Back is no move: answered, nothing written, the visitor hears nothing.
    mark_read(&mut a1, &conv, 1, 2).await;
    assert_eq!(opened_unread(&mut a1, &conv).await, 2);
    visitor.expect_silence(300, &[]).await;
    // Past the end is the end; an agent's reply is never unread.
    b.reply(&conv, "Hello!").await;
    mark_read(&mut b, &conv, 99, 0).await;
    assert_eq!(
        visitor.expect_skipping("seen").await,
        json!({"type":"seen","seq":5})
    );
    assert_eq!(opened_unread(&mut b, &conv).await, 0);
    assert_eq!(opened_unread(&mut a1, &conv).await, 2);
    // Ann reading less far than Bob does not move the visitor's "Seen".
    mark_read(&mut a1, &conv, 3, 1).await;
    visitor.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn mark_read_of_a_conversation_the_agent_may_not_see_is_not_found() {
    let (s, [_, _, cy], mut visitor, _, conv) = team().await;
    let (mut c, _) = s.agent(&cy).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [conv.as_str(), unknown.as_str(), "nope"] {
        c.send(json!({"type":"mark_read","conversation_id":id,"seq":1}))
            .await;
        c.expect_error("not_found").await;
    }
    for bad in [
        json!({"type":"mark_read","conversation_id":conv,"seq":-1}),
        json!({"type":"mark_read","conversation_id":conv}),
    ] {
        c.send(bad).await;
        c.expect_error("bad_frame").await;
    }
    visitor.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn unread_seen_and_read_cursors_survive_a_restart_and_come_back_in_welcome() {
    let (s, [ann, bob, _], mut visitor, token, conv) = team().await;
    let (mut a, _) = s.agent(&ann).await;
    mark_read(&mut a, &conv, 2, 1).await;
    a.reply(&conv, "Hi").await;
    visitor.send(json!({"type":"seen","seq":4})).await;
    until(&mut a, &conv, "visitor_seen_seq", 4).await;
    drop((a, visitor));

    let s = s.restart().await;
    let (_a, ready) = s.agent(&ann).await;
    assert_eq!(listed(&ready, &conv)["unread"], 1);
    assert_eq!(listed(&ready, &conv)["visitor_seen_seq"], 4);
    let (_b, ready) = s.agent(&bob).await;
    assert_eq!(listed(&ready, &conv)["unread"], 3);
    let (_v, w) = s.visitor_with(Some(&token), None).await;
    assert_eq!((&w["read_seq"], &w["seen_seq"]), (&json!(2), &json!(4)));
}

#[tokio::test]
async fn the_visitors_seen_clamps_moves_forward_only_and_reaches_the_agents() {
    let (s, [ann, _, cy], mut visitor, _, conv) = team().await;
    let (mut a, _) = s.agent(&ann).await;
    let (mut c, _) = s.agent(&cy).await;
    visitor.send(json!({"type":"seen","seq":2})).await;
    let u = until(&mut a, &conv, "visitor_seen_seq", 2).await;
    assert_eq!(u["unread"], 3, "the visitor's seen is not the agent's read");
    for seq in [2, 1, 0] {
        visitor.send(json!({"type":"seen","seq":seq})).await;
    }
    a.expect_silence(300, &[]).await;
    visitor.send(json!({"type":"seen","seq":1000})).await;
    until(&mut a, &conv, "visitor_seen_seq", 3).await; // clamped to the last
    visitor.send(json!({"type":"seen","seq":1000})).await;
    a.expect_silence(300, &[]).await;
    c.expect_silence(0, &[]).await;
    visitor.send(json!({"type":"seen","seq":"3"})).await;
    visitor.expect_error("bad_frame").await;

    // Before a conversation there is nothing to see: ignored, nothing stored.
    let (mut newcomer, _) = s.visitor().await;
    newcomer.send(json!({"type":"seen","seq":5})).await;
    newcomer.expect_silence(300, &[]).await;
    a.expect_silence(0, &[]).await;
}

#[tokio::test]
async fn mark_read_and_seen_survive_kill_9_of_the_real_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let admin = server.admin_token();
    let (mut v, w) = server.visitor(None).await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let conv = v.say("one").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.say("two").await;
    let (mut a, _) = server.agent(&admin).await;
    a.reply(&conv, "Hi").await;
    // Each answer means durable: kill at once after the last.
    mark_read(&mut a, &conv, 1, 1).await;
    v.send(json!({"type":"seen","seq":3})).await;
    until(&mut a, &conv, "visitor_seen_seq", 3).await;
    server.kill9().await;

    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (_a, ready) = server.agent(&admin).await;
    let summary = listed(&ready, &conv);
    assert_eq!(
        (&summary["unread"], &summary["visitor_seen_seq"]),
        (&json!(1), &json!(3))
    );
    let (_v, w) = server.visitor(Some(&token)).await;
    assert_eq!((&w["read_seq"], &w["seen_seq"]), (&json!(1), &json!(3)));
    server.kill9().await;
}

/// A visitor with an email whose tab is open writes; two replies follow. The store is
/// then told the replies missed them (as when they leave between a reply's store and
/// its delivery: too short a window to hit from outside, so the test makes the store's
/// call itself, as `followup::a_reply_stored_as_seen_that_reached_no_connection_is_
/// followed_up` does), which arms a follow-up for both. The visitor, still there, says
/// they saw `seen` of them, and leaves. Returns the server, the sink, the replies' seqs
/// and the conversation.
async fn replies_pending_then_seen(
    seen: impl Fn(u64, u64) -> u64,
) -> (TestServer, SmtpSink, [u64; 2], ConversationId) {
    let sink = SmtpSink::start();
    let s = TestServer::start_with(mail_to(sink.port)).await;
    s.set_chatflow(chatflow(1)).await;
    let (mut agent, _) = s.admin().await;
    let (mut v, w) = s.visitor().await;
    let conv = v.say("Do you ship to Norway?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    v.expect_skipping("email_captured").await;
    let first = agent.reply(&conv, "First: yes we do.").await["seq"]
        .as_u64()
        .expect("seq");
    let second = agent.reply(&conv, "Second: in 3 days.").await["seq"]
        .as_u64()
        .expect("seq");

    let id = ConversationId::parse(&conv).expect("uuid");
    let news = FollowUpNews::Missed {
        seq: first,
        delay: 1500,
        now: s.app.now(),
    };
    let offline = Box::new(|_: &VisitorKey| false);
    let (due, kind) = s
        .app
        .store
        .follow_up_event(id, news, offline)
        .await
        .expect("stored")
        .expect("a follow-up is armed");
    s.app.deadlines.schedule(due, kind, id);

    v.send(json!({"type":"seen","seq":seen(first, second)}))
        .await;
    updated(&mut agent, &conv).await;
    drop(v);
    let key = VisitorKey {
        visitor: VisitorId::parse(w["visitor_id"].as_str().expect("id")).expect("uuid"),
        inbox: "default".into(),
    };
    let until = tokio::time::Instant::now() + WAIT;
    while s.app.hub.visitor_online(&key) {
        assert!(
            tokio::time::Instant::now() < until,
            "the visitor never left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (s, sink, [first, second], id)
}

#[tokio::test]
async fn a_follow_up_mails_only_the_replies_the_visitor_has_not_seen() {
    let (_s, sink, _, _) = replies_pending_then_seen(|first, _| first).await;
    let got = sink.wait_for(1, WAIT).await;
    let text = got[0].text();
    assert!(text.contains("Second: in 3 days."), "{text}");
    assert!(
        !text.contains("First: yes we do."),
        "a seen reply was mailed: {text}"
    );
}

#[tokio::test]
async fn a_follow_up_for_replies_the_visitor_has_all_seen_is_cancelled() {
    let (s, sink, [_, second], id) = replies_pending_then_seen(|_, second| second).await;
    let c = s
        .app
        .store
        .conversation(id)
        .expect("store")
        .expect("conversation");
    assert_eq!((c.follow_up_due, c.seen_seq), (None, second));
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(sink.messages().is_empty(), "every reply was seen");
    assert!(s.app.outbox.outbox().expect("outbox").is_empty());
}

#[tokio::test]
async fn a_flood_of_mark_read_and_seen_that_move_nothing_writes_nothing() {
    let (s, [ann, _, _], mut visitor, _, conv) = team().await;
    let (mut a, _) = s.agent(&ann).await;
    mark_read(&mut a, &conv, 3, 0).await;
    visitor.send(json!({"type":"seen","seq":3})).await;
    until(&mut a, &conv, "visitor_seen_seq", 3).await;
    let flushes = || {
        s.app
            .writer
            .stats()
            .flushes
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = flushes();
    for seq in 0..200u64 {
        a.send(json!({"type":"mark_read","conversation_id":conv,"seq":seq % 5}))
            .await;
        visitor.send(json!({"type":"seen","seq":seq % 5})).await;
    }
    // Every mark_read is answered; the seen frames, after the last, are all handled
    // once the history that follows them is.
    for _ in 0..200 {
        assert_eq!(updated(&mut a, &conv).await["unread"], 0);
    }
    visitor.send(json!({"type":"history"})).await;
    visitor.expect_skipping("history").await;
    assert_eq!(
        flushes(),
        before,
        "a cursor that does not move is never written"
    );
    a.expect_silence(300, &[]).await;
}

#[tokio::test]
async fn an_agent_asking_for_changes_only_still_hears_their_unread_move() {
    let (s, [ann, _, _], mut visitor, _, conv) = team().await;
    let mut lean = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("agent connects");
    lean.send(json!({"type":"auth","token":ann,"summaries":"changes"}))
        .await;
    assert_eq!(listed(&lean.expect("ready").await, &conv)["unread"], 3);
    // A visitor's message is a `message` frame only: the client counts it.
    visitor.say("four").await;
    lean.expect("message").await;
    lean.expect_silence(300, &[]).await;
    mark_read(&mut lean, &conv, 4, 0).await;
    // Their seen, a change the message frame does not carry, comes as a summary.
    visitor.send(json!({"type":"seen","seq":4})).await;
    until(&mut lean, &conv, "visitor_seen_seq", 4).await;
}

#[tokio::test]
async fn mark_read_below_the_last_message_is_rate_limited_and_reading_to_the_end_is_not() {
    let s = TestServer::start_with(|c| {
        c.limits.count_reads_per_connection =
            frontdesk::config::Rate::new(2, Duration::from_secs(60))
    })
    .await;
    let (mut visitor, _) = s.visitor().await;
    let conv = visitor.say("one").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    for text in ["two", "three", "four", "five"] {
        visitor.say(text).await;
    }
    let (mut admin, _) = s.admin().await;
    // Each of these counts the messages after its seq: two are allowed.
    mark_read(&mut admin, &conv, 1, 4).await;
    mark_read(&mut admin, &conv, 2, 3).await;
    admin
        .send(json!({"type":"mark_read","conversation_id":conv,"seq":3}))
        .await;
    let refused = admin.expect_skipping("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(opened_unread(&mut admin, &conv).await, 3, "nothing moved");
    // Reading to the last message counts nothing and is never refused.
    mark_read(&mut admin, &conv, 5, 0).await;
    assert_eq!(opened_unread(&mut admin, &conv).await, 0);
}
