//! Origins: an inbox with an origin list takes visitors only from those pages (others
//! are closed with 4003 right after the upgrade, as the contract says), and the agent
//! endpoint only from its own origin and the configured ones (no cross-site WebSocket
//! hijacking: HTTP 403, before any upgrade).

use serde_json::json;

use widget_protocol::close;

use crate::support::{refusal, Client, Closed, Connect, TestServer};

#[tokio::test]
async fn an_inbox_with_origins_accepts_visitors_only_from_them() {
    let s = TestServer::start().await;
    s.create_inbox("shop", &["https://shop.example"]).await;
    let shop = s.ws_url("/ws/visitor?inbox=shop");
    for bad in [
        Some("https://evil.example"),
        Some("http://shop.example"),
        Some("https://shop.example.evil.example"),
        Some("https://shop.example:8443"),
        Some("null"),
        None,
    ] {
        // The upgrade completes and closes with 4003 at once, which a page can read.
        let mut ws = Client::open(&shop, Connect::default().origin(bad))
            .await
            .unwrap_or_else(|e| panic!("origin {bad:?}: the upgrade failed: {e}"));
        ws.send(json!({"type":"hello"})).await;
        match ws.expect_closed().await {
            Closed::Code(code) => assert_eq!(code, close::ORIGIN_NOT_ALLOWED, "origin {bad:?}"),
            Closed::Abrupt => panic!("origin {bad:?}: closed without 4003"),
        }
    }
    // Nothing was made for them: no visitor minted, no conversation.
    let (_admin, ready) = s.admin().await;
    assert_eq!(ready["conversations"], json!([]));
    let mut ws = Client::open(&shop, Connect::default().origin("https://shop.example"))
        .await
        .expect("the shop's own page connects");
    ws.send(json!({"type":"hello"})).await;
    ws.expect_skipping("welcome").await;
    assert_eq!(ws.say("from the shop").await["seq"], 1);
    // An inbox without origins takes any page.
    let mut any = Client::open(
        &s.ws_url("/ws/visitor"),
        Connect::default().origin("https://evil.example"),
    )
    .await
    .expect("the default inbox has no origin list");
    any.send(json!({"type":"hello"})).await;
    any.expect_skipping("welcome").await;
}

#[tokio::test]
async fn the_agent_endpoint_accepts_only_its_own_and_configured_origins() {
    use clap::Parser;
    use frontdesk::cli::{Cli, Command};
    // `--agent-origin` is validated and normalized once, by the command line.
    let parse = |origin: &str| {
        let cli = Cli::try_parse_from(["frontdesk", "serve", "--agent-origin", origin])
            .expect("arguments parse");
        match cli.command {
            Command::Serve(args) => args.into_config(),
            _ => unreachable!("serve"),
        }
    };
    let config = parse("https://Inbox.Example/").expect("a valid origin");
    assert_eq!(config.agent_origins, ["https://inbox.example"]);
    for bad in [
        "inbox.example",
        "ftp://inbox.example",
        "https://inbox.example/path",
    ] {
        assert!(parse(bad).is_err(), "{bad} was accepted");
    }

    let s = TestServer::start_with(|c| c.agent_origins = config.agent_origins).await;
    s.create_inbox("shop", &["https://shop.example"]).await;
    let agent = s.ws_url("/ws/agent");
    // Cross-site WebSocket hijacking: a foreign page's socket is refused.
    for bad in [
        "https://evil.example",
        "https://shop.example",
        "null",
        "http://127.0.0.1",
    ] {
        assert_eq!(
            refusal(Client::open(&agent, Connect::default().origin(bad)).await).0,
            403,
            "origin {bad}"
        );
    }
    let own = format!("http://{}", s.addr);
    for good in [Some(own.as_str()), Some("https://inbox.example"), None] {
        let mut ws = Client::open(&agent, Connect::default().origin(good))
            .await
            .unwrap_or_else(|e| panic!("origin {good:?} refused: {e}"));
        ws.send(json!({"type":"auth","token":s.admin_token})).await;
        ws.expect_skipping("ready").await;
    }
}
