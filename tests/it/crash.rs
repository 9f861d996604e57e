//! Durability against the real binary: stopped by SIGTERM while visitors send, killed by
//! SIGKILL right after acks, and killed again and again under load, it keeps every
//! acked message, once, and nothing it did not ack but the one message in flight.
//!
//! The crash loop runs `FRONTDESK_CRASH_CYCLES` cycles (20) and takes its pauses from
//! `FRONTDESK_SEED` (see `support::seed`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::support::{seed, seqs, BinaryServer, Client, Closed, Next};

/// A new visitor after `hello` and `welcome`; its token.
async fn visitor(server: &BinaryServer) -> (Client, String) {
    let (c, w) = server.visitor(None).await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    (c, token)
}

/// Every message of a visitor's conversation: the welcome's page, then `history`
/// backwards until there is no more.
async fn all_messages(server: &BinaryServer, token: &str) -> Vec<Value> {
    let (mut c, w) = server.visitor(Some(token)).await;
    let mut all: Vec<Value> = w["messages"].as_array().cloned().unwrap_or_default();
    let mut more = w["has_more"] == true;
    while more {
        let before = all.first().and_then(|m| m["seq"].as_u64()).expect("a seq");
        c.send(json!({"type":"history","before":before,"limit":200}))
            .await;
        let h = c.expect_skipping("history").await;
        let mut page = h["messages"].as_array().cloned().unwrap_or_default();
        page.extend(all);
        all = page;
        more = h["has_more"] == true;
    }
    all
}

#[tokio::test]
async fn sigkill_right_after_acks_loses_nothing_acked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let url = server.ws_url("/ws/visitor?inbox=default");

    // Several visitors send concurrently; we kill the moment the last acks arrive.
    let mut tasks = Vec::new();
    for v in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&url).await.expect("connect");
            c.send(json!({"type":"hello"})).await;
            let w = c.expect("welcome").await;
            let token = w["visitor_token"].as_str().expect("token").to_string();
            let mut acked = Vec::new();
            for i in 0..15 {
                let text = format!("v{v} m{i}");
                acked.push(
                    c.say(&text).await["text"]
                        .as_str()
                        .expect("text")
                        .to_string(),
                );
            }
            (token, acked)
        }));
    }
    let mut acked: HashMap<String, Vec<String>> = HashMap::new();
    for t in tasks {
        let (token, texts) = t.await.expect("sender");
        acked.insert(token, texts);
    }
    server.kill9().await;

    let server = BinaryServer::spawn(dir.path(), &[]).await;
    for (token, texts) in &acked {
        let (_c, w) = server.visitor(Some(token)).await;
        let got: Vec<String> = w["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(&got, texts, "acked messages lost or changed after SIGKILL");
        assert_eq!(seqs(&w), (1..=15).collect::<Vec<u64>>());
    }
    server.kill9().await;
}

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_exits_0_in_time_and_keeps_every_ack() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let (mut agent, _) = server.agent(&server.admin_token()).await;
    // Visitors who chatted and now idle.
    let mut idle = Vec::new();
    for i in 0..5 {
        let (mut ws, token) = visitor(&server).await;
        let mut acked = Vec::new();
        for j in 0..3 {
            acked.push(ws.say(&format!("idle {i} says {j}")).await);
        }
        idle.push((ws, token, acked));
    }
    // Visitors still sending when the signal comes.
    let mut senders = Vec::new();
    for i in 0..3 {
        let (mut ws, token) = visitor(&server).await;
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for j in 0.. {
                let id = format!("busy-{i}-{j}");
                ws.send(
                    json!({"type":"send","client_msg_id":id,"text":format!("busy {i} says {j}")}),
                )
                .await;
                loop {
                    match ws.next_event().await {
                        Next::Frame(f) if f["type"] == "ack" => {
                            acked.push(f["message"].clone());
                            break;
                        }
                        Next::Frame(f) if f["type"] == "error" => {
                            assert_eq!(f["code"], "rate_limited", "{f}");
                            break;
                        }
                        Next::Frame(_) => continue,
                        Next::Closed(code) => return (token, acked, code),
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            unreachable!("the loop ends when the connection closes")
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let status = server.terminate().await;
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?} to exit");

    assert_eq!(agent.expect_closed().await, Closed::Code(1001), "the agent");
    let mut expected: Vec<(String, Vec<Value>)> = Vec::new();
    for (mut ws, token, acked) in idle {
        assert_eq!(
            ws.expect_closed().await,
            Closed::Code(1001),
            "an idle visitor"
        );
        expected.push((token, acked));
    }
    for s in senders {
        let (token, acked, code) = s.await.expect("sender");
        assert_eq!(code, Closed::Code(1001), "a visitor that was sending");
        assert!(!acked.is_empty());
        expected.push((token, acked));
    }

    // Everything acked is there after a restart, once.
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    for (token, acked) in expected {
        let stored = all_messages(&server, &token).await;
        for a in acked {
            let n = stored.iter().filter(|m| m["id"] == a["id"]).count();
            assert_eq!(n, 1, "acked message {a} is stored {n} times");
            assert!(stored.contains(&a), "{a} is stored differently");
        }
    }
    server.kill9().await;
}

/// One visitor sending for the whole loop: what was acked, and what was in flight
/// when the server died (sent again, with the same client_msg_id, after the restart).
#[derive(Default)]
struct Sender {
    n: usize,
    token: Option<String>,
    acked: Vec<Value>,
    in_flight: Option<(String, String)>,
    sent: usize,
    /// Messages sent again after a crash because their ack never came.
    resent: usize,
}

/// Connects and sends until the connection dies; gives the state back.
async fn send_until_killed(url: String, mut me: Sender) -> Sender {
    let Ok(mut ws) = Client::connect(&url).await else {
        return me;
    };
    if ws
        .try_send(json!({"type":"hello","visitor_token":me.token}))
        .await
        .is_err()
    {
        return me;
    }
    let welcome = loop {
        match ws.next_event().await {
            Next::Frame(f) if f["type"] == "welcome" => break f,
            Next::Frame(_) => continue,
            Next::Closed(_) => return me,
        }
    };
    me.token = welcome["visitor_token"].as_str().map(str::to_string);
    if me.in_flight.is_some() {
        me.resent += 1;
    }
    loop {
        let (id, text) = me.in_flight.clone().unwrap_or_else(|| {
            me.sent += 1;
            (
                uuid::Uuid::new_v4().to_string(),
                format!("sender {} message {}", me.n, me.sent),
            )
        });
        me.in_flight = Some((id.clone(), text.clone()));
        let frame = json!({"type":"send","client_msg_id":id,"text":text});
        if ws.try_send(frame).await.is_err() {
            return me;
        }
        loop {
            match ws.next_event().await {
                Next::Frame(f) if f["type"] == "ack" && f["client_msg_id"] == id.as_str() => {
                    assert_eq!(f["message"]["text"], text.as_str());
                    me.acked.push(f["message"].clone());
                    me.in_flight = None;
                    break;
                }
                Next::Frame(f) if f["type"] == "error" => {
                    // Over the rate limit: not stored; wait for the next life.
                    assert_eq!(f["code"], "rate_limited", "{f}");
                    me.in_flight = None;
                    me.sent -= 1;
                    return me;
                }
                Next::Frame(_) => continue,
                Next::Closed(_) => return me,
            }
        }
    }
}

#[tokio::test]
async fn sigkill_again_and_again_loses_and_duplicates_no_acked_message() {
    let cycles: usize = std::env::var("FRONTDESK_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let (mut rng, _replay) =
        seed::rng("sigkill_again_and_again_loses_and_duplicates_no_acked_message");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut senders: Vec<Sender> = (0..4)
        .map(|n| Sender {
            n,
            ..Default::default()
        })
        .collect();
    let started = Instant::now();
    for _ in 0..cycles {
        let server = BinaryServer::spawn(dir.path(), &[]).await;
        let tasks: Vec<_> = senders
            .drain(..)
            .map(|s| {
                let url = server.ws_url("/ws/visitor?inbox=default");
                tokio::spawn(send_until_killed(url, s))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..400))).await;
        server.kill9().await;
        for t in tasks {
            senders.push(t.await.expect("sender"));
        }
    }
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let mut acked_total = 0;
    for s in &senders {
        let token = s.token.as_deref().expect("the sender got a token");
        let stored = all_messages(&server, token).await;
        let seqs: Vec<u64> = stored.iter().filter_map(|m| m["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as u64).collect::<Vec<_>>(),
            "seqs have gaps"
        );
        let mut texts = HashSet::new();
        for m in &stored {
            let t = m["text"].as_str().expect("text");
            assert!(texts.insert(t), "sender {} has {t:?} twice", s.n);
            assert!(
                t.starts_with(&format!("sender {} message ", s.n)),
                "a stranger's {t:?}"
            );
        }
        for a in &s.acked {
            let same: Vec<&Value> = stored.iter().filter(|m| m["id"] == a["id"]).collect();
            assert_eq!(same, [a], "acked {a} is not stored exactly once as acked");
        }
        // Whatever was stored but never acked can only be the one in flight at the end.
        let unacked: Vec<&Value> = stored
            .iter()
            .filter(|m| !s.acked.iter().any(|a| a["id"] == m["id"]))
            .collect();
        assert!(unacked.len() <= 1, "stored but never acked: {unacked:?}");
        if let Some(m) = unacked.first() {
            assert_eq!(
                Some(m["text"].as_str().unwrap_or_default()),
                s.in_flight.as_ref().map(|(_, t)| t.as_str())
            );
        }
        acked_total += s.acked.len();
    }
    let resent: usize = senders.iter().map(|s| s.resent).sum();
    eprintln!(
        "{cycles} SIGKILL cycles, {acked_total} acked messages, {resent} sent again after a crash, {:?}",
        started.elapsed()
    );
    assert!(
        acked_total >= cycles,
        "too little was sent to prove anything"
    );
    server.kill9().await;
}
