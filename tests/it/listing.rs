//! The conversation list: `ready`'s newest page and `next`, `list` with its status and
//! assignee filters and cursor paging, the order by activity, search by contact and by
//! message words, isolation between inboxes, the index across kill -9 and a schema
//! upgrade, and the abuse of `list` (limits, bad cursors and queries, its rate).

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::{json, Value};
use widget_protocol::{CaptureWhen, Role, Status};

use frontdesk::conversations::{AgentReply, FirstMessagePlan, VisitorSend, Workflow};
use frontdesk::ids::{ConversationId, VisitorId};
use frontdesk::store::records::AssigneeRecord;

use crate::support::{BinaryServer, Client, TestServer};

/// A time well before now, so that live messages come after every seeded one.
const T0: i64 = 1_700_000_000_000;

/// Appends a visitor message at `now` in `inbox` (a new conversation for a new
/// visitor); the conversation's id.
async fn seed(s: &TestServer, visitor: VisitorId, inbox: &str, text: &str, now: i64) -> String {
    let appended = s
        .app
        .store
        .append_visitor(VisitorSend {
            visitor,
            inbox: inbox.into(),
            client_msg_id: uuid::Uuid::new_v4().to_string(),
            text: text.into(),
            page: None,
            now,
            plan: FirstMessagePlan {
                when: CaptureWhen::Never,
                delay_ms: 0,
                prompt_text: String::new(),
                away: None,
            },
        })
        .await
        .expect("appended");
    appended.conversation.id.to_string()
}

/// `n` conversations in the default inbox, the i-th at `T0 + i` saying `text(i)`, written
/// concurrently (one log sync for many); their ids, oldest first.
async fn seed_many(s: &TestServer, n: usize, text: impl Fn(usize) -> String) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let made = join_all(chunk.iter().map(|&i| {
            let t = text(i);
            async move { seed(s, VisitorId::generate(), "default", &t, T0 + i as i64).await }
        }))
        .await;
        ids.extend(made);
    }
    ids
}

fn conv_id(id: &str) -> ConversationId {
    ConversationId::parse(id).expect("a conversation id")
}

fn ids(frame: &Value) -> Vec<String> {
    frame["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

/// One `list` and its answer.
async fn list(agent: &mut Client, frame: Value) -> Value {
    let mut frame = frame;
    frame["type"] = json!("list");
    agent.send(frame).await;
    agent.expect_skipping("conversations").await
}

/// Every page of `frame`'s list, following `next`, `limit` at a time; the ids in order.
async fn all_pages(agent: &mut Client, frame: Value, limit: u32) -> Vec<String> {
    let mut got = Vec::new();
    let mut before = Value::Null;
    loop {
        let mut f = frame.clone();
        f["before"] = before;
        f["limit"] = json!(limit);
        let page = list(agent, f).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= limit as usize);
        got.extend(page_ids);
        if page["next"].is_null() {
            return got;
        }
        before = page["next"].clone();
    }
}

async fn query(agent: &mut Client, q: &str) -> Vec<String> {
    ids(&list(agent, json!({"query": q})).await)
}

#[tokio::test]
async fn paging_through_120_conversations_yields_each_once_newest_first() {
    let s = TestServer::start().await;
    let seeded = seed_many(&s, 120, |i| format!("hello {i}")).await;
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    let (mut admin, ready) = s.admin().await;

    let first = ids(&ready);
    assert_eq!(first, newest_first[..50], "ready: the newest page");
    assert!(ready["next"].is_string(), "ready.next for the rest");
    let rest = list(&mut admin, json!({"before": ready["next"]})).await;
    assert_eq!(ids(&rest), newest_first[50..100]);

    let paged = all_pages(&mut admin, json!({}), 50).await;
    assert_eq!(paged, newest_first, "every conversation once, in order");
    let unique: HashSet<_> = paged.iter().collect();
    assert_eq!(unique.len(), 120);
}

#[tokio::test]
async fn a_conversation_with_a_new_message_moves_to_the_top() {
    let s = TestServer::start().await;
    let seeded = seed_many(&s, 5, |i| format!("hi {i}")).await;
    let (mut admin, _) = s.admin().await;
    assert_eq!(query_all(&mut admin).await[0], seeded[4]);

    s.app
        .store
        .append_agent(AgentReply {
            conversation: conv_id(&seeded[1]),
            agent_name: "Admin".into(),
            client_msg_id: "r1".into(),
            text: "an answer".into(),
            now: T0 + 100,
            visitor_online: false,
            follow_up_delay_ms: None,
        })
        .await
        .expect("replied");
    let order = query_all(&mut admin).await;
    assert_eq!(order[0], seeded[1], "the replied one first");
    assert_eq!(order.len(), 5, "and listed once");

    // A real visitor's first message is newer than everything seeded.
    let (mut visitor, _) = s.visitor().await;
    let live = visitor.say("new here").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let order = query_all(&mut admin).await;
    assert_eq!(
        (order[0].as_str(), order[1].as_str()),
        (live.as_str(), seeded[1].as_str())
    );
}

async fn query_all(agent: &mut Client) -> Vec<String> {
    ids(&list(agent, json!({})).await)
}

#[tokio::test]
async fn status_and_assignee_filter_the_list() {
    let s = TestServer::start().await;
    let ann_token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let bob_token = s.create_agent("Bob", &["default"], Role::Agent).await;
    let (mut ann, ready) = s.agent(&ann_token).await;
    let (_bob, bob_ready) = s.agent(&bob_token).await;
    let agent_id = |r: &Value| r["agent"]["id"].as_str().expect("id").to_string();
    let (ann_id, bob_id) = (agent_id(&ready), agent_id(&bob_ready));
    let c = seed_many(&s, 6, |i| format!("m {i}")).await;
    let who = |id: &str, name: &str| AssigneeRecord {
        id: frontdesk::ids::AgentId::parse(id).expect("id"),
        name: name.into(),
    };
    // c0 open/Ann, c1 pending/Ann, c2 pending/Bob, c3 resolved/nobody, c4 open/nobody,
    // c5 resolved/Bob.
    let plan = [
        (Status::Open, Some(who(&ann_id, "Ann"))),
        (Status::Pending, Some(who(&ann_id, "Ann"))),
        (Status::Pending, Some(who(&bob_id, "Bob"))),
        (Status::Resolved, None),
        (Status::Open, None),
        (Status::Resolved, Some(who(&bob_id, "Bob"))),
    ];
    for (id, (status, assignee)) in c.iter().zip(plan) {
        let store = &s.app.store;
        store
            .set_workflow(conv_id(id), Workflow::Status(status))
            .await
            .expect("status");
        store
            .set_workflow(conv_id(id), Workflow::Assign(assignee))
            .await
            .expect("assignee");
    }
    let pick = |idx: &[usize]| idx.iter().rev().map(|&i| c[i].clone()).collect::<Vec<_>>();
    let cases = [
        (json!({"status":"open"}), pick(&[0, 4])),
        (json!({"status":"pending"}), pick(&[1, 2])),
        (json!({"status":"resolved"}), pick(&[3, 5])),
        (json!({"assignee":"me"}), pick(&[0, 1])),
        (json!({"assignee":"none"}), pick(&[3, 4])),
        (json!({"assignee": bob_id}), pick(&[2, 5])),
        (json!({"status":"pending","assignee":"me"}), pick(&[1])),
        (json!({"status":"resolved","assignee":"none"}), pick(&[3])),
        (json!({"status":"open","assignee": bob_id}), pick(&[])),
        (
            json!({"status":null,"assignee":null}),
            pick(&[0, 1, 2, 3, 4, 5]),
        ),
    ];
    for (filter, want) in cases {
        assert_eq!(ids(&list(&mut ann, filter.clone()).await), want, "{filter}");
    }

    // An agent's reply moves a resolved conversation up and leaves it resolved.
    s.app
        .store
        .append_agent(AgentReply {
            conversation: conv_id(&c[3]),
            agent_name: "Ann".into(),
            client_msg_id: "x".into(),
            text: "still resolved".into(),
            now: T0 + 50,
            visitor_online: false,
            follow_up_delay_ms: None,
        })
        .await
        .expect("replied");
    let resolved = ids(&list(&mut ann, json!({"status":"resolved"})).await);
    assert_eq!(
        resolved,
        [c[3].clone(), c[5].clone()],
        "moved up, still resolved"
    );
    // Paging a filter with a small limit sees each match once.
    let mine: Vec<String> = all_pages(&mut ann, json!({"assignee":"me"}), 1).await;
    assert_eq!(mine, pick(&[0, 1]));
}

#[tokio::test]
async fn ready_lists_the_agents_of_the_inboxes_only() {
    let s = TestServer::start().await;
    s.create_inbox("other", &[]).await;
    let ann = s.create_agent("Ann", &["default"], Role::Agent).await;
    let bob = s
        .create_agent("Bob", &["default", "other"], Role::Agent)
        .await;
    s.create_agent("Cy", &["other"], Role::Agent).await;
    let dan = s.create_agent("Dan", &["default"], Role::Agent).await;
    let (_d, dan_ready) = s.agent(&dan).await;
    let dan_id =
        frontdesk::ids::AgentId::parse(dan_ready["agent"]["id"].as_str().expect("id")).expect("id");
    frontdesk::agents::revoke(s.app.admin.as_ref(), dan_id)
        .await
        .expect("revoked");

    let (_a, ready) = s.agent(&ann).await;
    let names: Vec<&str> = ready["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["Admin", "Ann", "Bob"],
        "members, not revoked, by name"
    );
    assert!(ready["agents"][0]["id"].is_string());
    // Bob is also in "other": Ann learns only the inboxes she sees.
    assert_eq!(
        ready["agents"][2]["inboxes"],
        serde_json::json!(["default"])
    );
    // Bob sees both, and whom each may take: Cy only "other"'s conversations.
    let (_b, ready) = s.agent(&bob).await;
    let cy = ready["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "Cy")
        .expect("Cy is listed");
    assert_eq!(cy["inboxes"], serde_json::json!(["other"]));
}

#[tokio::test]
async fn list_shows_nothing_of_another_inbox() {
    let s = TestServer::start().await;
    s.create_inbox("other", &[]).await;
    let cy = s.create_agent("Cy", &["other"], Role::Agent).await;
    seed_many(&s, 3, |_| "secret plans".into()).await;
    let theirs = seed(&s, VisitorId::generate(), "other", "their plans", T0).await;
    let (mut cy, ready) = s.agent(&cy).await;
    assert_eq!(ids(&ready), std::slice::from_ref(&theirs));
    assert_eq!(ready["next"], Value::Null);
    assert_eq!(query_all(&mut cy).await, std::slice::from_ref(&theirs));
    assert!(
        query(&mut cy, "secret").await.is_empty(),
        "a word of another inbox"
    );
    assert_eq!(query(&mut cy, "plans").await, [theirs]);
}

#[tokio::test]
async fn list_abuse_is_refused_or_clamped() {
    let s = TestServer::start_with(|c| {
        c.limits.list_per_connection =
            frontdesk::config::Rate::new(1000, std::time::Duration::from_secs(10))
    })
    .await;
    seed_many(&s, 210, |i| format!("x{i}")).await;
    let (mut admin, _) = s.admin().await;
    let page = list(&mut admin, json!({"limit": 10000})).await;
    assert_eq!(ids(&page).len(), 200, "limit clamps to 200");
    assert!(page["next"].is_string());
    let page = list(&mut admin, json!({"limit": 0})).await;
    assert_eq!(ids(&page).len(), 1);

    let refusals = [
        json!({"query": "a".repeat(500)}),
        json!({"query": (0..30).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")}),
        json!({"before": "garbage"}),
        json!({"before": "1764082700000.not-a-uuid"}),
        json!({"before": format!("-5.{}", uuid::Uuid::new_v4())}),
        json!({"before": format!("99999999999999999999999.{}", uuid::Uuid::new_v4())}),
        json!({"before": format!("{}.{}.1", 5, uuid::Uuid::new_v4())}),
        json!({"assignee": "somebody"}),
    ];
    for frame in refusals {
        let mut f = frame.clone();
        f["type"] = json!("list");
        admin.send(f).await;
        admin.expect_error("bad_frame").await;
    }
    // A well-formed cursor of no conversation is only a place: the list goes on after it.
    let forged = format!("{}.{}", T0 + 100, uuid::Uuid::new_v4());
    assert_eq!(
        ids(&list(&mut admin, json!({"before": forged})).await).len(),
        50
    );
    // Still answering after all that.
    assert_eq!(query_all(&mut admin).await.len(), 50);
}

#[tokio::test]
async fn a_burst_of_lists_is_rate_limited() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    for _ in 0..25 {
        admin.send(json!({"type":"list"})).await;
    }
    let (mut answered, mut limited) = (0, 0);
    for _ in 0..25 {
        let f = admin.next().await.expect("a frame");
        match f["type"].as_str() {
            Some("conversations") => answered += 1,
            Some("error") if f["code"] == "rate_limited" => limited += 1,
            other => panic!("unexpected {other:?}: {f}"),
        }
    }
    assert_eq!((answered, limited), (20, 5));
}

#[tokio::test]
async fn search_finds_contacts_by_name_and_email_and_messages_by_word_prefix() {
    let s = TestServer::start().await;
    let (mut admin, _) = s.admin().await;
    let ada = seed(
        &s,
        VisitorId::generate(),
        "default",
        "Where is my Refund?",
        T0,
    )
    .await;
    let jo = seed(
        &s,
        VisitorId::generate(),
        "default",
        "Grüße aus MÜNCHEN, die Bestellung fehlt",
        T0 + 1,
    )
    .await;
    let other = seed(&s, VisitorId::generate(), "default", "unrelated", T0 + 2).await;
    admin
        .send(json!({"type":"create_contact","conversation_id":ada,
            "email":"Ada.Lovelace@Example.com","first_name":"Ada","last_name":"Lovelace"}))
        .await;
    admin.expect_skipping("visitor_assigned").await;
    admin
        .send(json!({"type":"create_contact","conversation_id":jo,
            "email":"jo@mail.example","first_name":"Jörg","last_name":"Müller"}))
        .await;
    admin.expect_skipping("visitor_assigned").await;

    let one = |id: &String| vec![id.clone()];
    let cases: [(&str, Vec<String>); 17] = [
        ("ada", one(&ada)),
        ("LOVEL", one(&ada)),
        ("ada lovelace", one(&ada)),
        ("ada.lovelace@example.com", one(&ada)),
        ("ada.lovelace@exa", one(&ada)),
        ("example.com", one(&ada)),
        ("refu", one(&ada)),
        ("REFUND", one(&ada)),
        ("und", vec![]),
        ("müller", one(&jo)),
        ("MÜLL", one(&jo)),
        ("grüße münchen", one(&jo)),
        ("jo@mail", one(&jo)),
        ("jö", one(&jo)),
        ("mail", one(&jo)),
        ("ada müller", vec![]),
        ("unrel", one(&other)),
    ];
    for (q, want) in cases {
        assert_eq!(query(&mut admin, q).await, want, "query {q:?}");
    }
    assert_eq!(query(&mut admin, "  ").await.len(), 3, "blank is no query");
}

#[tokio::test]
async fn common_and_rare_words_page_the_same_way() {
    let s = TestServer::start_with(|c| {
        c.limits.list_per_connection =
            frontdesk::config::Rate::new(1000, std::time::Duration::from_secs(10))
    })
    .await;
    // More conversations with "common" than a term's lookup reads: it walks the list.
    let n = 1100;
    let seeded = seed_many(&s, n, |i| {
        let rare = if i % 400 == 7 { " zebrafish" } else { "" };
        let some = if i % 4 == 0 { " quarterly" } else { "" };
        format!("a common question {i}{rare}{some}")
    })
    .await;
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    let (mut admin, _) = s.admin().await;
    let common = all_pages(&mut admin, json!({"query":"comm"}), 200).await;
    assert_eq!(common, newest_first, "each once, newest first");
    let rare: Vec<String> = [807, 407, 7].iter().map(|&i| seeded[i].clone()).collect();
    assert_eq!(
        all_pages(&mut admin, json!({"query":"zebra"}), 2).await,
        rare
    );
    assert_eq!(query(&mut admin, "common zebra").await, rare);
    // Between the two: more candidates than are sorted, fewer than a common word has.
    // (the k-th newest is i = 1099 - k, so i % 4 == 0 is k % 4 == 3)
    let quarter: Vec<String> = newest_first.iter().skip(3).step_by(4).cloned().collect();
    assert_eq!(quarter.len(), 275);
    assert_eq!(
        all_pages(&mut admin, json!({"query":"quarter"}), 50).await,
        quarter
    );
    let zebra_quarter = query(&mut admin, "zebrafish quarterly").await;
    assert!(zebra_quarter.is_empty(), "i % 400 == 7 is never i % 4 == 0");
    assert_eq!(
        query(&mut admin, "question 1099").await,
        [seeded[1099].clone()]
    );

    // With a filter, both ways.
    s.app
        .store
        .set_workflow(conv_id(&seeded[407]), Workflow::Status(Status::Pending))
        .await
        .expect("status");
    let pending = |q: &str| json!({"query": q, "status": "pending"});
    assert_eq!(
        ids(&list(&mut admin, pending("zebra")).await),
        [seeded[407].clone()]
    );
    assert_eq!(
        ids(&list(&mut admin, pending("common")).await),
        [seeded[407].clone()]
    );
}

#[tokio::test]
async fn the_index_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (mut visitor, _) = server.visitor(None).await;
    let conv = visitor.say("Quokka sightings wanted").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let (mut admin, _) = server.agent(&server.admin_token()).await;
    admin
        .send(json!({"type":"set_status","conversation_id":conv,"status":"pending"}))
        .await;
    admin.expect_skipping("conversation_updated").await;
    admin
        .send(json!({"type":"create_contact","conversation_id":conv,
            "email":"wal@example.org","first_name":"Wally","last_name":"Roo"}))
        .await;
    admin.expect_skipping("visitor_assigned").await;
    server.kill9().await;

    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (mut admin, ready) = server.agent(&server.admin_token()).await;
    assert_eq!(ids(&ready), std::slice::from_ref(&conv));
    for q in ["quokka", "wally", "wal@example.org"] {
        let found = ids(&list(&mut admin, json!({"query": q, "status": "pending"})).await);
        assert_eq!(found, std::slice::from_ref(&conv), "{q}");
    }
    assert!(ids(&list(&mut admin, json!({"status": "open"})).await).is_empty());
}

/// A data directory as schema 1 left it: `n` conversations in the default inbox (the
/// i-th updated at `T0 + i`, a visitor's "Need a refund" and an agent's answer), the
/// first one's visitor linked to contact Vera Alt; no list or search index. Their ids,
/// oldest first.
fn write_v1(path: &std::path::Path, n: usize) -> Vec<String> {
    use frontdesk::store::{keys, Batch, Tree};
    let (kv, wal) = frontdesk::store::open(path).expect("store opens");
    let mut b = Batch::default();
    b.put(Tree::Meta, keys::SCHEMA_KEY, 1u32.to_be_bytes().to_vec());
    let contact = frontdesk::ids::ContactId::generate();
    b.put(
        Tree::Contacts,
        keys::id(contact),
        json!({"id":contact,"email":"vera@example.net","first_name":"Vera","last_name":"Alt",
            "source":"agent","created_at":T0})
        .to_string(),
    );
    b.put(
        Tree::ContactEmails,
        keys::contact_email("vera@example.net"),
        keys::id(contact),
    );
    let mut ids = Vec::new();
    for i in 0..n {
        let (conv, visitor) = (ConversationId::generate(), VisitorId::generate());
        let at = T0 + i as i64;
        let message = |seq: u64, kind: &str, text: &str| {
            json!({"id":uuid::Uuid::now_v7(),"conversation_id":conv,"seq":seq,
                "author":{"kind":kind,"name":null},"text":text,"at":at})
        };
        let answer = message(2, "agent", "We are on it");
        for (seq, m) in [
            (1, message(1, "visitor", "Need a refund")),
            (2, answer.clone()),
        ] {
            b.put(Tree::Messages, keys::message(conv, seq), m.to_string());
        }
        b.put(
            Tree::Conversations,
            keys::id(conv),
            json!({"id":conv,"inbox":"default","visitor_id":visitor,"created_at":at,
                "updated_at":at,"last_seq":2,"last_message":answer,"prompt":{"state":"none"},
                "prompt_text":null,"seen_seq":2,"follow_up_due":null})
            .to_string(),
        );
        let linked = (i == 0).then_some(contact);
        b.put(
            Tree::Visitors,
            keys::id(visitor),
            json!({"id":visitor,"created_at":at,"contact_id":linked,"email":null,"page":null})
                .to_string(),
        );
        b.put(
            Tree::ConvByVisitor,
            keys::conv_by_visitor(visitor, "default"),
            keys::id(conv),
        );
        let mut by_inbox = b"default\0".to_vec();
        by_inbox.extend_from_slice(&keys::id(conv));
        b.put(Tree::ConvByInbox, by_inbox, Vec::new());
        ids.push(conv.to_string());
    }
    kv.apply(&b).expect("written");
    kv.flush().expect("flushed");
    drop((kv, wal));
    ids
}

#[tokio::test]
async fn a_schema_1_store_is_upgraded_in_batches_and_after_a_crash_midway() {
    use frontdesk::store::{keys, schema_version, KvStore, Tree, Writer};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let n = 250;
    let seeded = write_v1(&path, n);

    // A first start gets one batch done, then stops as a crash would.
    let (kv, wal) = frontdesk::store::open(&path).expect("store opens");
    assert_eq!(schema_version(kv.as_ref()).expect("version"), 1);
    let (writer, thread) = Writer::start(kv.clone(), wal, Box::new(|_| {}));
    let store = KvStore::new(kv, writer);
    assert!(
        !store.upgrade_steps(1).await.expect("a batch"),
        "more to do"
    );
    drop(store);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("joined")
        .expect("writer ended");

    let s = TestServer::start_in_existing(Some(dir), path).await;
    assert_eq!(schema_version(s.app.kv()).expect("version"), 2);
    assert_eq!(
        s.app
            .kv()
            .get(Tree::Meta, keys::UPGRADE_PROGRESS_KEY)
            .expect("read"),
        None
    );
    let (mut admin, ready) = s.admin().await;
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    assert_eq!(ids(&ready), newest_first[..50]);
    assert_eq!(
        all_pages(&mut admin, json!({}), 200).await,
        newest_first,
        "each once"
    );
    assert_eq!(
        all_pages(&mut admin, json!({"query":"refu"}), 200).await,
        newest_first
    );
    assert_eq!(query(&mut admin, "vera alt").await, [seeded[0].clone()]);
    assert_eq!(
        query(&mut admin, "vera@example.net").await,
        [seeded[0].clone()]
    );
    for id in [&seeded[0], &seeded[n - 1]] {
        let conv = s
            .app
            .store
            .conversation(conv_id(id))
            .expect("read")
            .expect("there");
        assert_eq!(conv.visitor_messages, 1, "the visitor's messages counted");
        assert_eq!(conv.status, Status::Open);
    }
    // New writes keep the index right after the upgrade.
    let (mut visitor, _) = s.visitor().await;
    visitor.say("fresh words").await;
    assert_eq!(query(&mut admin, "fresh").await.len(), 1);
}

#[tokio::test]
async fn every_filter_lists_exactly_what_the_records_say_after_random_changes() {
    use rand::Rng;
    let (mut rng, _replay) = crate::support::seed::rng("listing::every_filter");
    let s = TestServer::start_with(|c| {
        c.limits.list_per_connection =
            frontdesk::config::Rate::new(1000, std::time::Duration::from_secs(10))
    })
    .await;
    let (mut admin, ready) = s.admin().await;
    let admin_id =
        frontdesk::ids::AgentId::parse(ready["agent"]["id"].as_str().expect("id")).expect("id");
    let other = frontdesk::ids::AgentId::generate();
    let visitors: Vec<VisitorId> = (0..12).map(|_| VisitorId::generate()).collect();
    let mut convs = Vec::new();
    for (i, v) in visitors.iter().enumerate() {
        convs.push(seed(&s, *v, "default", "first", T0 + i as i64).await);
    }
    let mut now = T0 + 100;
    for step in 0..200 {
        now += rng.gen_range(0..3);
        let c: &String = crate::support::seed::pick(&mut rng, &convs);
        let c = conv_id(c);
        let store = &s.app.store;
        match rng.gen_range(0..5) {
            0 => {
                let v = *crate::support::seed::pick(&mut rng, &visitors);
                seed(&s, v, "default", "again", now).await;
            }
            1 => {
                let reply = AgentReply {
                    conversation: c,
                    agent_name: "Admin".into(),
                    client_msg_id: format!("r{step}"),
                    text: "ok".into(),
                    now,
                    visitor_online: false,
                    follow_up_delay_ms: None,
                };
                store.append_agent(reply).await.expect("reply");
            }
            2 => {
                let status = *crate::support::seed::pick(
                    &mut rng,
                    &[Status::Open, Status::Pending, Status::Resolved],
                );
                store
                    .set_workflow(c, Workflow::Status(status))
                    .await
                    .expect("status");
            }
            3 => {
                let who = match rng.gen_range(0..3) {
                    0 => None,
                    1 => Some(AssigneeRecord {
                        id: admin_id,
                        name: "Admin".into(),
                    }),
                    _ => Some(AssigneeRecord {
                        id: other,
                        name: "Other".into(),
                    }),
                };
                store
                    .set_workflow(c, Workflow::Assign(who))
                    .await
                    .expect("assign");
            }
            _ => {
                let conv = store.conversation(c).expect("read").expect("exists");
                let cursor = frontdesk::reading::cursor_at(&conv, u64::MAX, store.as_ref())
                    .expect("counted");
                store.mark_read(c, admin_id, cursor).await.expect("read");
            }
        }
    }
    let mut records = Vec::new();
    for id in &convs {
        records.push(
            s.app
                .store
                .conversation(conv_id(id))
                .expect("read")
                .expect("there"),
        );
    }
    records.sort_by_key(|r| std::cmp::Reverse((r.updated_at, r.id)));
    let statuses = [
        None,
        Some(Status::Open),
        Some(Status::Pending),
        Some(Status::Resolved),
    ];
    let assignees = [None, Some("me"), Some("none"), Some("other")];
    for status in statuses {
        for assignee in assignees {
            let want: Vec<String> = records
                .iter()
                .filter(|r| status.is_none_or(|s| r.status == s))
                .filter(|r| {
                    let who = r.assignee.as_ref().map(|a| a.id);
                    match assignee {
                        None => true,
                        Some("me") => who == Some(admin_id),
                        Some("none") => who.is_none(),
                        _ => who == Some(other),
                    }
                })
                .map(|r| r.id.to_string())
                .collect();
            let who = assignee.map(|a| {
                if a == "other" {
                    other.to_string()
                } else {
                    a.into()
                }
            });
            let frame = json!({"status": status, "assignee": who});
            assert_eq!(
                all_pages(&mut admin, frame.clone(), 3).await,
                want,
                "{frame}"
            );
        }
    }
}

#[tokio::test]
async fn a_page_cut_by_bytes_goes_on_exactly_after_its_last_summary() {
    let s = TestServer::start_with(|c| {
        c.limits.max_list_frame_bytes = 16 * 1024;
        c.limits.list_per_connection =
            frontdesk::config::Rate::new(1000, std::time::Duration::from_secs(10))
    })
    .await;
    let seeded = seed_many(&s, 60, |i| format!("{i} {}", "long words ".repeat(100))).await;
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    let (mut admin, ready) = s.admin().await;
    let first = ids(&ready);
    assert!(
        first.len() < 50 && !first.is_empty(),
        "cut by bytes: {}",
        first.len()
    );
    assert_eq!(first, newest_first[..first.len()]);
    let mut got = first;
    let mut before = ready["next"].clone();
    while !before.is_null() {
        let page = list(&mut admin, json!({"before": before, "limit": 200})).await;
        let page_ids = ids(&page);
        assert!(!page_ids.is_empty() && page_ids.len() < 50);
        got.extend(page_ids);
        before = page["next"].clone();
    }
    assert_eq!(got, newest_first, "each once, in order, nothing skipped");
}
