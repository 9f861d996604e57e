//! What one connection may make the server hold: frames that carry a list are cut to a
//! byte budget (and paged), a connection's queue is bounded in bytes and in frames (a
//! reader that stops is dropped and recovers, while others keep up), a frame bigger
//! than the write buffer still goes out, and a message must be finished within a
//! deadline.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::raw::{texts_of, Raw};
use crate::support::{seqs, Client, Closed, Connect, TestServer, WAIT};

/// The list-frame budget these tests run with: a few dozen of their messages.
const BUDGET: usize = 64 * 1024;

/// A long message: 3000 characters of two-byte UTF-8 and a marker.
fn long_text(i: usize) -> String {
    format!("{i} {}", "é".repeat(3000))
}

/// A raw frame, checked to be within the budget, and its JSON.
fn within_budget(raw: &str) -> Value {
    assert!(
        raw.len() <= BUDGET,
        "a frame of {} bytes, over the {BUDGET}-byte budget",
        raw.len()
    );
    serde_json::from_str(raw).expect("json")
}

/// The frames `history` answers with, paging back from `before` until `floor` (a seq
/// the client holds) or the start: every seq, newest page first.
async fn page_back(c: &mut Client, mut before: u64, floor: u64) -> Vec<u64> {
    let mut got = Vec::new();
    while before > floor + 1 {
        c.send(json!({"type":"history","before":before,"limit":200}))
            .await;
        let raw = c.next_raw().await.expect("history");
        let h = within_budget(&raw);
        assert_eq!(h["type"], "history", "{h}");
        let page = seqs(&h);
        assert!(!page.is_empty(), "an empty page with more to come: {h}");
        assert!(page.windows(2).all(|w| w[1] == w[0] + 1), "a gap: {page:?}");
        assert_eq!(
            *page.last().expect("last"),
            before - 1,
            "a gap before {before}"
        );
        got.extend(page.iter().rev());
        before = page[0];
        if h["has_more"] == false {
            assert_eq!(before, 1, "no more, yet seq {before} is not the first");
            break;
        }
    }
    got
}

#[tokio::test]
async fn a_replay_over_the_budget_is_paged_newest_first_and_the_rest_comes_with_history() {
    let s = TestServer::start_with(|c| {
        c.limits.max_list_frame_bytes = BUDGET;
        c.limits.rate_count = 0;
    })
    .await;
    let (mut v, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let mut last = 0;
    for i in 0..60 {
        last = v.say(&long_text(i)).await["seq"].as_u64().expect("seq");
    }
    // Far more than fits: 60 messages of about 6 KB.
    assert!(last >= 60);
    drop(v);

    // A resume that held seq 5: the welcome carries the newest that fit.
    let mut c = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("connects");
    c.send(json!({"type":"hello","visitor_token":token,"resume_after":5}))
        .await;
    let welcome = within_budget(&c.next_raw().await.expect("welcome"));
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["has_more"], true, "the rest is there");
    let newest = seqs(&welcome);
    assert_eq!(
        *newest.last().expect("some messages"),
        last,
        "the newest kept"
    );
    assert!(newest.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(newest[0] > 6, "cut: {} messages", newest.len());
    // Paging back down to what it held fills the gap exactly once.
    let older = page_back(&mut c, newest[0], 5).await;
    let all: Vec<u64> = older
        .iter()
        .copied()
        .chain(newest.iter().copied())
        .collect();
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a message twice");
    assert!(distinct.is_superset(&(6..=last).collect()), "a gap");

    // `history` for the newest page, asking for far more than fits.
    c.send(json!({"type":"history","before":null,"limit":200}))
        .await;
    let h = within_budget(&c.next_raw().await.expect("history"));
    assert_eq!(h["has_more"], true);
    let page = seqs(&h);
    assert_eq!(*page.last().expect("messages"), last);
    let rest = page_back(&mut c, page[0], 0).await;
    let mut every: Vec<u64> = rest.into_iter().chain(page).collect();
    every.sort_unstable();
    assert_eq!(every, (1..=last).collect::<Vec<_>>(), "every message once");

    // An agent's `open` is cut the same way.
    let (mut agent, ready) = s.admin().await;
    let conv = ready["conversations"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string();
    agent
        .send(json!({"type":"open","conversation_id":conv,"limit":200}))
        .await;
    let raw = loop {
        let raw = agent.next_raw().await.expect("conversation");
        if raw.starts_with(r#"{"type":"conversation""#) {
            break raw;
        }
    };
    let opened = within_budget(&raw);
    assert_eq!(opened["has_more"], true);
    assert_eq!(*seqs(&opened).last().expect("messages"), last);
}

#[tokio::test]
async fn ready_lists_the_newest_conversations_that_fit() {
    let s = TestServer::start_with(|c| {
        c.limits.max_list_frame_bytes = BUDGET;
        // Forty visitors from one address start a conversation each.
        c.limits.new_conversations_per_address.count = 0;
    })
    .await;
    // Each summary carries a 2000-character page URL: 40 of them are over the budget.
    for i in 0..40 {
        let mut c = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
            .await
            .expect("connects");
        let url = format!("https://shop.example/{i}/{}", "p".repeat(2000));
        c.send(json!({"type":"hello","page":{"url":url,"title":"t"}}))
            .await;
        c.expect("welcome").await;
        c.say(&format!("visitor {i}")).await;
    }
    let mut c = Client::connect(&s.ws_url("/ws/agent"))
        .await
        .expect("agent");
    c.send(json!({"type":"auth","token":s.admin_token})).await;
    let ready = within_budget(&c.next_raw().await.expect("ready"));
    let listed = ready["conversations"].as_array().expect("conversations");
    assert!(
        !listed.is_empty() && listed.len() < 40,
        "{} listed",
        listed.len()
    );
    let pages: Vec<&str> = listed
        .iter()
        .map(|c| c["visitor"]["page"]["url"].as_str().expect("page"))
        .collect();
    assert!(
        pages[0].starts_with("https://shop.example/39/"),
        "newest first"
    );
}

#[tokio::test]
async fn a_connection_that_stops_reading_is_closed_when_its_queue_passes_its_bytes() {
    let s = TestServer::start_with(|c| {
        c.limits.visitor_queue_bytes = 64 * 1024;
        c.limits.max_write_buffer_bytes = 16 * 1024;
        c.limits.rate_count = 0;
    })
    .await;
    let (mut reader, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let conv = reader.say("hello").await["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    // A second tab of the same visitor that reads its welcome and then nothing more.
    let url = s.ws_url("/ws/visitor?inbox=default");
    let mut silent = Client::open(&url, Connect::default().rcvbuf(4096))
        .await
        .expect("upgrade");
    silent
        .send(json!({"type":"hello","visitor_token":token}))
        .await;
    silent.expect("welcome").await;
    // The reading tab takes every reply as it comes.
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let reading = tokio::spawn(async move {
        while let Some(f) = reader.next().await {
            if f["type"] == "message"
                && got_tx
                    .send(f["message"]["seq"].as_u64().unwrap_or(0))
                    .is_err()
            {
                return;
            }
        }
    });
    let (mut agent, _) = s.admin().await;
    let text = "x".repeat(3900);
    let mut sent = Vec::new();
    // Far below the frame count (4096), a few hundred KB: only bytes can stop it.
    while s.app.hub.slow_dropped() == 0 {
        assert!(sent.len() < 4000, "the silent tab was never dropped");
        sent.push(
            agent.reply(&conv, &text).await["seq"]
                .as_u64()
                .expect("seq"),
        );
    }
    eprintln!("dropped after {} replies", sent.len());
    assert_eq!(silent.expect_closed().await, Closed::Code(4029));
    for seq in &sent {
        let got = tokio::time::timeout(Duration::from_secs(10), got_rx.recv())
            .await
            .expect("the reading tab got every reply")
            .expect("reader alive");
        assert_eq!(got, *seq);
    }
    reading.abort();
}

/// A visitor socket after `hello` and `welcome`, that sends the first fragment of a
/// message and `rest` (the rest of it, or nothing) after `pause`.
async fn fragment(s: &TestServer, rest: bool, pause: Duration) -> Client {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;
    let (mut c, _) = s.visitor().await;
    let id = uuid::Uuid::new_v4();
    let text =
        json!({"type":"send","client_msg_id":id.to_string(),"text":"in two parts"}).to_string();
    let (first, second) = text.split_at(10);
    let opening = Frame::message(first.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
    c.send_raw(Message::Frame(opening)).await;
    if rest {
        tokio::time::sleep(pause).await;
        let end = Frame::message(
            second.as_bytes().to_vec(),
            OpCode::Data(Data::Continue),
            true,
        );
        c.send_raw(Message::Frame(end)).await;
    }
    c
}

#[tokio::test]
async fn a_message_left_unfinished_is_closed_with_1008_though_the_client_answers_pings() {
    let s = TestServer::start_with(|c| {
        c.limits.message_deadline = Duration::from_millis(1500);
        c.limits.heartbeat = Duration::from_millis(200);
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut unfinished = fragment(&s, false, Duration::ZERO).await;
    // Reading answers every ping: without the deadline the heartbeat keeps it open.
    let closed = tokio::time::timeout(Duration::from_secs(10), unfinished.expect_closed())
        .await
        .expect("closed at the deadline");
    assert_eq!(closed, Closed::Code(1008));
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // One finished in time is a message like any other.
    let mut finished = fragment(&s, true, Duration::from_millis(300)).await;
    assert_eq!(
        finished.expect_skipping("ack").await["message"]["text"],
        "in two parts"
    );
}

#[tokio::test]
async fn a_reader_that_stops_is_dropped_and_recovers_while_others_keep_up() {
    let s = TestServer::start_with(|c| {
        c.limits.outbound_queue = 16;
        c.limits.max_write_buffer_bytes = 16 * 1024;
        c.limits.rate_count = 1_000_000;
        c.limits.send_per_address.count = 0;
        // The whole replay in one welcome (paging a long one is tested above), however
        // many messages the flood got in before the silent readers were cut off.
        c.limits.max_list_frame_bytes = 64 * 1024 * 1024;
        c.limits.max_history = 2000;
    })
    .await;
    let (mut talker, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    // Two clients that never read, with small receive windows: an agent, and a second
    // tab of the talking visitor.
    let mut slow_agent = Raw::upgrade(s.addr, "/ws/agent", Connect::default().rcvbuf(4096)).await;
    slow_agent
        .send_json(json!({"type":"auth","token":s.admin_token}))
        .await;
    let mut slow_tab = Raw::upgrade(
        s.addr,
        "/ws/visitor?inbox=default",
        Connect::default().rcvbuf(4096),
    )
    .await;
    slow_tab
        .send_json(json!({"type":"hello","visitor_token":token}))
        .await;
    // A reader that keeps up: every message it gets, and when.
    let (mut fast, _) = s.admin().await;
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let reader = tokio::spawn(async move {
        while let Some(f) = fast.next().await {
            if f["type"] == "message" {
                let seq = f["message"]["seq"].as_u64().expect("seq");
                if got_tx.send((seq, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    let gone = |s: &TestServer| {
        s.app.metrics.agent_connections.load(Ordering::Relaxed) == 1
            && s.app.metrics.visitor_connections.load(Ordering::Relaxed) == 1
    };
    // Flood in pipelined batches until both silent readers are gone. A batch is two
    // frames per message for an agent (the message and the summary), so a batch of 4
    // fills half the fast reader's 16-frame queue; while it keeps taking frames it may
    // fall four queues behind (a scheduling hiccup of the shared test machine), the
    // silent ones are cut off once they hold that much or took nothing for a second.
    const BATCH: u64 = 4;
    let text = "x".repeat(3000);
    let mut acked_at: Vec<Instant> = vec![Instant::now()]; // seq 0 unused
    let mut n = 0u64;
    while !gone(&s) {
        assert!(n < 3000, "the silent readers were never dropped");
        for i in 0..BATCH {
            talker
                .send(json!({"type":"send","client_msg_id":format!("f{}", n + i),"text":text}))
                .await;
        }
        for _ in 0..BATCH {
            talker.expect_skipping("ack").await;
            acked_at.push(Instant::now());
        }
        n += BATCH;
    }
    eprintln!("slow readers dropped after {n} messages");
    assert!(s.app.metrics.slow_consumers_dropped.load(Ordering::Relaxed) >= 2);
    // The one that kept reading got every message, in order, never far behind.
    let mut worst = Duration::ZERO;
    for seq in 1..=n {
        let (got, at) = tokio::time::timeout(WAIT, got_rx.recv())
            .await
            .expect("the fast reader got every message")
            .expect("reader alive");
        assert_eq!(got, seq);
        worst = worst.max(at.saturating_duration_since(acked_at[seq as usize]));
    }
    assert!(
        worst < Duration::from_secs(1),
        "the fast reader lagged {worst:?}"
    );
    reader.abort();

    // The silent ones were cut off: after what their buffers held, the connection ends.
    let agent_frames = slow_agent.read_until_eof(WAIT).await;
    let tab_frames = slow_tab.read_until_eof(WAIT).await;
    let tab_seen = texts_of(&tab_frames)
        .iter()
        .filter(|f| f["type"] == "message")
        .filter_map(|f| f["message"]["seq"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        tab_seen < n,
        "the slow tab got everything ({tab_seen} of {n})"
    );
    assert!(
        texts_of(&agent_frames).len() < 2 * n as usize,
        "the slow agent got everything"
    );
    // Both recover: the tab resumes after the last message it has, the agent reloads.
    let mut back = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("reconnect");
    back.send(json!({"type":"hello","visitor_token":token,"resume_after":tab_seen}))
        .await;
    let w = back.expect("welcome").await;
    assert_eq!(seqs(&w), (tab_seen + 1..=n).collect::<Vec<_>>());
    let (_agent, ready) = s.admin().await;
    assert_eq!(ready["conversations"][0]["last_message"]["seq"], n);
}

/// The write buffer bounds what the server holds for a connection, not the size of a
/// frame: a welcome or history page of long messages (here 50 × 4000 three-byte
/// characters, ~600 KB) is bigger than the 256 KiB buffer and must still arrive.
#[tokio::test]
async fn frames_bigger_than_the_write_buffer_still_arrive() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_count = 1_000;
        // Lists of them bigger than the buffer, too (the default cuts them at 512 KiB).
        c.limits.max_list_frame_bytes = 1024 * 1024;
    })
    .await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let long = "日".repeat(4000);
    let mut conv = String::new();
    for _ in 0..60 {
        conv = c.say(&long).await["conversation_id"]
            .as_str()
            .expect("id")
            .to_string();
    }
    let (mut again, w) = s.visitor_with(Some(&token), None).await;
    assert_eq!(w["messages"].as_array().map(Vec::len), Some(50));
    again
        .send(json!({"type":"history","before":61,"limit":200}))
        .await;
    assert_eq!(
        again.expect("history").await["messages"]
            .as_array()
            .map(Vec::len),
        Some(60)
    );
    let (mut agent, _) = s.admin().await;
    agent
        .send(json!({"type":"open","conversation_id":conv,"limit":200}))
        .await;
    let open = agent.expect_skipping("conversation").await;
    assert_eq!(open["messages"].as_array().map(Vec::len), Some(60));
}
