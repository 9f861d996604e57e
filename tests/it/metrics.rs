//! Observability: `/metrics` exposes every series with its type, and the counters move
//! with what the server does (frames, errors, acks, group commits, checkpoints, prompts,
//! contacts, follow-ups).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::followup::PROMPT_THEN_FOLLOW_UP;
use crate::support::http::{metric, metrics};
use crate::support::smtp::SmtpSink;
use crate::support::{TestServer, WAIT};

#[tokio::test]
async fn metrics_expose_every_series_and_the_counters_move() {
    let smtp = SmtpSink::start();
    let s = TestServer::start_with(|c| {
        c.mail.smtp_url = Some(smtp.url());
        c.mail.from = Some("Acme Support <support@acme.test>".into());
    })
    .await;
    let series = [
        "frontdesk_connections{kind=\"visitor\"}",
        "frontdesk_connections{kind=\"agent\"}",
        "frontdesk_frames_in_total",
        "frontdesk_frames_out_total",
        "frontdesk_errors_total{code=\"bad_frame\"}",
        "frontdesk_errors_total{code=\"invalid_email\"}",
        "frontdesk_errors_total{code=\"rate_limited\"}",
        "frontdesk_errors_total{code=\"internal\"}",
        "frontdesk_ack_latency_seconds_bucket{le=\"0.01\"}",
        "frontdesk_ack_latency_seconds_bucket{le=\"+Inf\"}",
        "frontdesk_ack_latency_seconds_sum",
        "frontdesk_ack_latency_seconds_count",
        "frontdesk_flush_batch_size_bucket{le=\"1\"}",
        "frontdesk_flush_batch_size_bucket{le=\"+Inf\"}",
        "frontdesk_flush_batch_size_count",
        "frontdesk_store_sync_seconds_bucket{le=\"0.001\"}",
        "frontdesk_store_sync_seconds_bucket{le=\"+Inf\"}",
        "frontdesk_store_sync_seconds_sum",
        "frontdesk_store_sync_seconds_count",
        "frontdesk_prompts_sent_total",
        "frontdesk_contacts_created_total",
        "frontdesk_follow_ups_sent_total",
        "frontdesk_slow_consumers_dropped_total",
        "frontdesk_connections_refused_total",
        "frontdesk_store_flushes_total",
        "frontdesk_store_writes_total",
        "frontdesk_store_checkpoints_total",
    ];
    let before = metrics(s.addr).await;
    for name in series {
        metric(&before, name);
    }
    for t in [
        "# TYPE frontdesk_connections gauge",
        "# TYPE frontdesk_frames_in_total counter",
        "# TYPE frontdesk_errors_total counter",
        "# TYPE frontdesk_ack_latency_seconds histogram",
        "# TYPE frontdesk_flush_batch_size histogram",
        "# TYPE frontdesk_store_sync_seconds histogram",
    ] {
        assert!(before.contains(t), "no {t:?}");
    }

    s.set_chatflow(serde_json::from_str(PROMPT_THEN_FOLLOW_UP).expect("json"))
        .await;
    let (mut agent, _) = s.admin().await;
    let (mut v, _) = s.visitor().await;
    let until = Instant::now() + WAIT;
    loop {
        let m = metrics(s.addr).await;
        if metric(&m, "frontdesk_connections{kind=\"visitor\"}") == 1.0
            && metric(&m, "frontdesk_connections{kind=\"agent\"}") == 1.0
        {
            break;
        }
        assert!(Instant::now() < until, "the gauges never showed 1 and 1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conv = v.say("hello there").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.expect("email_prompt").await;
    v.send_text("not json").await;
    v.expect_error("bad_frame").await;
    v.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    v.expect("email_captured").await;
    drop(v);
    agent.until_presence(&conv, false).await;
    agent.reply(&conv, "we are back").await;
    let until = Instant::now() + WAIT;
    let after = loop {
        let m = metrics(s.addr).await;
        if metric(&m, "frontdesk_follow_ups_sent_total") >= 1.0 {
            break m;
        }
        assert!(Instant::now() < until, "no follow-up was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(smtp.messages().len(), 1);
    let moved = |name: &str| metric(&after, name) - metric(&before, name);
    assert!(moved("frontdesk_frames_in_total") >= 4.0);
    assert!(moved("frontdesk_frames_out_total") >= 6.0);
    assert_eq!(moved("frontdesk_errors_total{code=\"bad_frame\"}"), 1.0);
    assert_eq!(moved("frontdesk_ack_latency_seconds_count"), 2.0);
    assert_eq!(
        moved("frontdesk_ack_latency_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert!(moved("frontdesk_ack_latency_seconds_sum") > 0.0);
    assert!(moved("frontdesk_flush_batch_size_count") >= 1.0);
    assert!(moved("frontdesk_store_flushes_total") >= 1.0);
    // Group commits that wrote are log syncs, timed.
    assert!(moved("frontdesk_store_sync_seconds_count") >= 1.0);
    assert!(moved("frontdesk_store_sync_seconds_sum") > 0.0);
    // Writes spread over more than a checkpoint interval: the engine was flushed and
    // old log segments let go at least once (on the checkpoint thread, so poll).
    let until = Instant::now() + WAIT;
    while metric(&metrics(s.addr).await, "frontdesk_store_checkpoints_total")
        <= metric(&before, "frontdesk_store_checkpoints_total")
    {
        assert!(Instant::now() < until, "no checkpoint was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(moved("frontdesk_prompts_sent_total"), 1.0);
    assert_eq!(moved("frontdesk_contacts_created_total"), 1.0);
    assert_eq!(moved("frontdesk_follow_ups_sent_total"), 1.0);
    assert_eq!(
        metric(&after, "frontdesk_connections{kind=\"visitor\"}"),
        0.0
    );
}
