//! Visitor isolation: a visitor never receives another visitor's data, nor contact data
//! they did not type, and an agent nothing of an inbox it does not work in. One test
//! types someone else's email and reads every way a visitor can; the other is a
//! property: a random run of visitors, agents and strangers (forged or borrowed
//! identities) whose every received frame is searched for what is not theirs. Its seed
//! is `FRONTDESK_SEED` (see `support::seed`).

mod checks;
mod world;

use serde_json::{json, Value};

use crate::support::{seed, Client, TestServer};

use checks::Owned;
use world::World;

/// Texts of frames that must not hold any of `needles`.
fn assert_none_of(who: &str, frames: &[String], needles: &[(String, String)]) {
    for f in frames {
        for (what, needle) in needles {
            assert!(
                !f.contains(needle.as_str()),
                "{who} received {what} ({needle}) in {}",
                &f[..f.len().min(600)]
            );
        }
    }
}

#[tokio::test]
async fn typing_someone_elses_email_shows_nothing_of_theirs() {
    let s = TestServer::start().await;
    let (mut a, wa) = s.visitor().await;
    let a_token = wa["visitor_token"].as_str().expect("token").to_string();
    let a_id = wa["visitor_id"].as_str().expect("id").to_string();
    let a_msg = a.say("my order 4711 is late").await;
    let a_conv = a_msg["conversation_id"].as_str().expect("id").to_string();
    a.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    a.expect("email_captured").await;
    let (mut agent, _) = s.admin().await;
    agent
        .reply(&a_conv, "your refund of 99 EUR is on its way")
        .await;
    a.expect_skipping("message").await;

    // Someone else types A's email, in another browser and on a fresh device, then
    // reads every way a visitor can read.
    let mut seen: Vec<Value> = Vec::new();
    let (mut b, wb) = s.visitor().await;
    seen.push(wb.clone());
    let b_token = wb["visitor_token"].as_str().expect("token").to_string();
    b.send(json!({"type":"submit_email","email":"ADA@example.com"}))
        .await;
    let captured = b.expect("email_captured").await;
    assert_eq!(
        captured["email"].as_str().map(str::to_lowercase).as_deref(),
        Some("ada@example.com")
    );
    seen.push(captured);
    let b_msg = b.say("hi, it is me").await;
    assert_eq!(b_msg["seq"], 1, "B starts their own conversation");
    assert_ne!(b_msg["conversation_id"], a_conv.as_str());
    seen.push(b_msg);
    let cookie = b.cookie_pair();
    drop(b);
    for (token, cookie) in [
        (Some(b_token.as_str()), None),
        (None, Some(cookie.as_str())),
    ] {
        let (mut c, w) = s.visitor_with(token, cookie).await;
        seen.push(w);
        c.send(json!({"type":"history","before":1_000_000,"limit":200}))
            .await;
        seen.push(c.expect("history").await);
        let mut r = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
            .await
            .expect("connect");
        r.send(json!({"type":"hello","visitor_token":b_token,"resume_after":1}))
            .await;
        seen.push(r.expect("welcome").await);
    }
    let (mut fresh, w) = s.visitor().await;
    let fresh_token = w["visitor_token"].as_str().expect("token").to_string();
    fresh
        .send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    seen.push(fresh.expect("email_captured").await);
    drop(fresh);
    let (mut again, w) = s.visitor_with(Some(&fresh_token), None).await;
    assert_eq!(w["conversation_id"], Value::Null);
    seen.push(w);
    again
        .send(json!({"type":"history","before":1_000_000,"limit":200}))
        .await;
    seen.push(again.expect("history").await);

    let frames: Vec<String> = seen.iter().map(Value::to_string).collect();
    let needles = [
        ("A's conversation id", a_conv.clone()),
        ("A's visitor id", a_id.clone()),
        ("A's token", a_token.clone()),
        ("A's message", "order 4711".to_string()),
        ("the reply to A", "refund of 99".to_string()),
    ];
    assert_none_of(
        "a visitor who typed A's email",
        &frames,
        &needles.map(|(w, n)| (w.to_string(), n)),
    );
    // A heard nothing of it, and still has everything.
    a.expect_silence(200, &[]).await;
    let (_a2, w) = s.visitor_with(Some(&a_token), None).await;
    assert_eq!(w["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(w["email"], "ada@example.com");
}

#[tokio::test]
async fn visitors_and_agents_never_see_what_is_not_theirs() {
    let (mut rng, _replay) = seed::rng("visitors_and_agents_never_see_what_is_not_theirs");
    let s = TestServer::start_with(|c| c.limits.rate_count = 1_000_000).await;
    s.create_inbox("shop", &[]).await;
    let mut world = World::start(&s, &mut rng).await;
    for n in 0..400 {
        world.step(&mut rng, n).await;
    }
    world.everyone_reads_again().await;
    eprintln!("operations: {:?}", world.ops);

    let owned = Owned::of(&world);
    for i in 0..world.visitors.len() {
        owned.check_visitor(i);
    }
    for g in 0..world.agents.len() {
        owned.check_agent(g);
    }
    owned.check_strangers();
    drop(owned);
    for t in world.stranger_tabs {
        t.close();
    }
}
