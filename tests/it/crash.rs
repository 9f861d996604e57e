//! Durability against the real binary: SIGKILL right after acks loses nothing acked.

use std::collections::HashMap;

use serde_json::json;

use crate::support::{BinaryServer, Client};

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
        let mut c = Client::connect(&server.ws_url("/ws/visitor?inbox=default"))
            .await
            .expect("connect");
        c.send(json!({"type":"hello","visitor_token":token})).await;
        let w = c.expect("welcome").await;
        let got: Vec<String> = w["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(&got, texts, "acked messages lost or changed after SIGKILL");
        let seqs: Vec<u64> = w["messages"]
            .as_array()
            .expect("m")
            .iter()
            .filter_map(|m| m["seq"].as_u64())
            .collect();
        assert_eq!(seqs, (1..=15).collect::<Vec<u64>>());
    }
    server.kill9().await;
}
