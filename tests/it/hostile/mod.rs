//! Hostile input on the wire. Seeded random text frames (`texts`) before and after
//! hello / auth each get an error with a known code and a short message, or a known
//! frame; frames that break RFC 6455 or the size limit close with the documented code;
//! and the server carries on serving. Frames sent with the upgrade request are not
//! lost, and a client's close is answered. The seed is `FRONTDESK_SEED` (see
//! `support::seed`).

mod texts;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use widget_protocol::Role;

use crate::support::raw::{
    client_frame, close_code, Raw, FIN, MASK, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING,
    OP_PONG, OP_TEXT,
};
use crate::support::{seed, Client, Closed, Connect, Next, TestServer, WAIT};

use texts::{excerpt, hostile_text};

/// Every frame type the server sends.
const SERVER_TYPES: [&str; 13] = [
    "welcome",
    "ack",
    "message",
    "email_prompt",
    "email_captured",
    "history",
    "error",
    "ready",
    "conversation",
    "conversation_updated",
    "contact_lookup",
    "visitor_assigned",
    "chatflow",
];
/// Pushed to a connection on the server's own account, not as an answer.
const UNSOLICITED: [&str; 3] = ["message", "conversation_updated", "email_prompt"];
/// Reads the answer to one frame: the next frame that is not pushed unsolicited. It
/// must be a known server frame; an error must have a known code and a short message
/// (nothing of a giant input echoed back). A close is returned as is.
async fn answer(raw: &mut Raw, codes: &[&str], sent: &str) -> Option<Value> {
    loop {
        match raw.next().await {
            Next::Closed(code) => {
                panic!("closed ({code:?}) after {}", excerpt(sent))
            }
            Next::Frame(f) => {
                let kind = f["type"].as_str().unwrap_or_default();
                assert!(SERVER_TYPES.contains(&kind), "unknown frame {f}");
                if UNSOLICITED.contains(&kind) {
                    continue;
                }
                if kind == "error" {
                    let code = f["code"].as_str().unwrap_or_default();
                    assert!(codes.contains(&code), "unknown error code in {f}");
                    let len = f["message"].as_str().map(str::len).unwrap_or(usize::MAX);
                    assert!(
                        len <= 500,
                        "an error message of {len} bytes for {}",
                        excerpt(sent)
                    );
                }
                return Some(f);
            }
        }
    }
}

/// A frame that fails the connection, and the close codes that may answer it.
fn closers() -> Vec<(&'static str, Vec<u8>, &'static [u16])> {
    let big = vec![b'a'; 70_000];
    let mut over_in_fragments = client_frame(OP_TEXT, &vec![b'a'; 40_000], true);
    over_in_fragments.extend(client_frame(OP_CONTINUATION, &vec![b'a'; 40_000], true));
    over_in_fragments.extend(client_frame(FIN, b"a", true));
    let mut huge_header = vec![FIN | OP_TEXT, 0x80 | 127];
    huge_header.extend((1u64 << 40).to_be_bytes());
    huge_header.extend(MASK);
    let mut split_char = client_frame(OP_TEXT, &[0xe6, 0x97], true);
    split_char.extend(client_frame(FIN, &[0x41], true));
    let mut close_bad_code = 999u16.to_be_bytes().to_vec();
    close_bad_code.extend(b"bye");
    let mut close_bad_reason = 1000u16.to_be_bytes().to_vec();
    close_bad_reason.extend([0xff, 0xfe]);
    vec![
        (
            "invalid UTF-8 text",
            client_frame(FIN | OP_TEXT, &[0x7b, 0xff, 0xfe, 0x7d], true),
            &[1007],
        ),
        (
            "text cut inside a character",
            client_frame(FIN | OP_TEXT, b"{\"a\":\"\xe6\x97\"}", true),
            &[1007],
        ),
        ("UTF-8 broken across fragments", split_char, &[1007]),
        (
            "a 70 000 byte text",
            client_frame(FIN | OP_TEXT, &big, true),
            &[1009],
        ),
        (
            "a 70 000 byte binary",
            client_frame(FIN | OP_BINARY, &big, true),
            &[1009],
        ),
        ("80 000 bytes in fragments", over_in_fragments, &[1009]),
        ("a header claiming 1 TiB", huge_header, &[1009]),
        (
            "reserved bit 1",
            client_frame(FIN | 0x40 | OP_TEXT, b"{}", true),
            &[1002],
        ),
        (
            "reserved opcode 3",
            client_frame(FIN | 0x3, b"{}", true),
            &[1002],
        ),
        (
            "reserved control opcode 11",
            client_frame(FIN | 0xb, b"", true),
            &[1002],
        ),
        (
            "an unmasked frame",
            client_frame(FIN | OP_TEXT, b"{}", false),
            &[1002],
        ),
        (
            "a continuation without a start",
            client_frame(FIN, b"{}", true),
            &[1002],
        ),
        (
            "a new message inside a fragmented one",
            [
                client_frame(OP_TEXT, b"{", true),
                client_frame(FIN | OP_TEXT, b"{}", true),
            ]
            .concat(),
            &[1002],
        ),
        (
            "a 126 byte ping",
            client_frame(FIN | OP_PING, &[0u8; 126], true),
            &[1002],
        ),
        (
            "a fragmented ping",
            client_frame(OP_PING, b"x", true),
            &[1002],
        ),
        (
            "a close with code 999",
            client_frame(FIN | OP_CLOSE, &close_bad_code, true),
            &[1002],
        ),
        (
            "a close with a broken reason",
            client_frame(FIN | OP_CLOSE, &close_bad_reason, true),
            &[1002, 1007],
        ),
        (
            "a 1 byte close",
            client_frame(FIN | OP_CLOSE, b"x", true),
            &[1002],
        ),
    ]
}

#[tokio::test]
async fn hostile_frames_get_an_error_or_a_documented_close_and_the_server_carries_on() {
    let (mut rng, _replay) =
        seed::rng("hostile_frames_get_an_error_or_a_documented_close_and_the_server_carries_on");
    let s = TestServer::start().await;
    let agent_token = s.create_agent("Tess", &["default"], Role::Agent).await;
    let (mut v, _) = s.visitor().await;
    let conv = v.say("a real conversation").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();

    let mut frames = before_hello(&s, &mut rng, &conv).await;
    frames += after_hello(&s, &mut rng, &conv, &agent_token).await;
    frames += protocol_violations(&s).await;
    eprintln!("{frames} hostile frames");
    assert!(frames >= 3_500);

    // The server still serves, the first visitor's connection included.
    let m = v.say("still here").await;
    assert_eq!(m["text"], "still here");
    let (mut w, _) = s.visitor().await;
    w.say("new here").await;
    let (_a, ready) = s.agent(&agent_token).await;
    assert!(ready["conversations"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
}

/// Every error code the protocol defines.
fn error_codes() -> Vec<&'static str> {
    widget_protocol::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect()
}

/// Hostile texts before hello / auth, one at a time, since an agent's bad token closes
/// (4001): each gets an error, or a welcome when it was a valid enough hello. The
/// number of frames sent.
async fn before_hello(s: &TestServer, rng: &mut StdRng, conv: &str) -> usize {
    let codes = error_codes();
    let mut frames = 0;
    for (path, first) in [
        ("/ws/visitor?inbox=default", "hello"),
        ("/ws/agent", "auth"),
    ] {
        let mut raw = Raw::upgrade(s.addr, path, Connect::default()).await;
        for _ in 0..150 {
            let text = hostile_text(rng, conv);
            raw.send_text(&text).await;
            frames += 1;
            match raw.next().await {
                Next::Frame(f) => {
                    assert!(
                        SERVER_TYPES.contains(&f["type"].as_str().unwrap_or_default()),
                        "{f}"
                    );
                    if f["type"] == "error" {
                        assert!(
                            codes.contains(&f["code"].as_str().unwrap_or_default()),
                            "{f}"
                        );
                    } else {
                        // The hostile frame was a valid enough hello: start over.
                        assert_eq!(f["type"], "welcome", "{f} before {first}");
                        raw = Raw::upgrade(s.addr, path, Connect::default()).await;
                    }
                }
                Next::Closed(Closed::Code(4001)) if first == "auth" => {
                    raw = Raw::upgrade(s.addr, path, Connect::default()).await;
                }
                Next::Closed(code) => {
                    panic!("closed ({code:?}) before {first} after {}", excerpt(&text))
                }
            }
        }
    }
    frames
}

/// Hostile texts and binary frames after hello / auth, in pipelined batches: each gets
/// its answer (see [`answer`]), a binary frame a `bad_frame` error. The number of
/// frames sent.
async fn after_hello(s: &TestServer, rng: &mut StdRng, conv: &str, agent_token: &str) -> usize {
    let codes = error_codes();
    let mut frames = 0;
    for (path, hello) in [
        ("/ws/visitor?inbox=default", json!({"type":"hello"})),
        ("/ws/agent", json!({"type":"auth","token":agent_token})),
    ] {
        let mut raw = Raw::upgrade(s.addr, path, Connect::default()).await;
        raw.send_json(hello).await;
        answer(&mut raw, &codes, "hello").await;
        for _ in 0..100 {
            let mut sent = Vec::new();
            for _ in 0..16 {
                if rng.gen_range(0..12) == 0 {
                    let bytes: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect();
                    raw.send_bytes(&client_frame(FIN | OP_BINARY, &bytes, true))
                        .await
                        .expect("send binary");
                    sent.push("(binary)".to_string());
                } else {
                    let text = hostile_text(rng, conv);
                    raw.send_text(&text).await;
                    sent.push(text);
                }
            }
            frames += sent.len();
            for text in &sent {
                let f = answer(&mut raw, &codes, text).await.expect("an answer");
                if text == "(binary)" {
                    assert_eq!(f["code"], "bad_frame", "binary got {f}");
                }
            }
        }
    }
    frames
}

/// Frames that break the WebSocket protocol or the size limit: each closes its
/// connection with the code RFC 6455 and our protocol document give. The number of
/// frames sent.
async fn protocol_violations(s: &TestServer) -> usize {
    let mut frames = 0;
    for path in ["/ws/visitor?inbox=default", "/ws/agent"] {
        for (what, bytes, expected) in closers() {
            let mut raw = Raw::upgrade(s.addr, path, Connect::default()).await;
            raw.send_bytes(&bytes).await.expect("send");
            frames += 1;
            let frames_back = raw.read_until_eof(WAIT).await;
            let code = frames_back
                .iter()
                .find(|(op, _)| *op == OP_CLOSE)
                .and_then(|(_, p)| close_code(p));
            assert!(
                code.is_some_and(|c| expected.contains(&c)),
                "{what} on {path}: closed with {code:?}, expected one of {expected:?}"
            );
        }
    }
    frames
}

/// A client may send frames right behind its upgrade request, before the 101 arrives:
/// the server reads them with the request and must not lose them.
#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let s = TestServer::start().await;
    let mut early = client_frame(FIN | OP_PING, b"early", true);
    early.extend(client_frame(
        FIN | OP_TEXT,
        json!({"type":"hello"}).to_string().as_bytes(),
        true,
    ));
    let mut raw = Raw::try_upgrade(
        s.addr,
        "/ws/visitor?inbox=default",
        Connect::default(),
        &early,
    )
    .await
    .expect("upgraded");
    let pong = tokio::time::timeout(WAIT, raw.read_frame())
        .await
        .expect("a pong in time");
    assert_eq!(
        pong,
        Some((OP_PONG, b"early".to_vec())),
        "the ping is answered first"
    );
    match raw.next().await {
        Next::Frame(f) => assert_eq!(f["type"], "welcome", "{f}"),
        Next::Closed(code) => panic!("closed ({code:?}) instead of a welcome"),
    }
    raw.send_json(json!({"type":"send","client_msg_id":"c1","text":"hi"}))
        .await;
    match raw.next().await {
        Next::Frame(f) => {
            assert_eq!(f["type"], "ack", "{f}");
            assert_eq!(f["message"]["text"], "hi");
        }
        Next::Closed(code) => panic!("closed ({code:?}) instead of an ack"),
    }
}

/// RFC 6455: the endpoint that receives a close frame answers with one. Without the
/// answer a browser reports an unclean close (1006) every time a tab closes the chat.
#[tokio::test]
async fn a_close_from_the_client_is_answered() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let s = TestServer::start().await;
    let (visitor, _) = s.visitor().await;
    let (agent, _) = s.admin().await;
    let before_hello = Client::connect(&s.ws_url("/ws/visitor"))
        .await
        .expect("connect");
    for (what, mut ws) in [
        ("visitor", visitor),
        ("agent", agent),
        ("before hello", before_hello),
    ] {
        ws.close(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })
        .await;
        match ws.next_message().await {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Normal, "{what}"),
            other => panic!("{what}: the close was not answered: {other:?}"),
        }
    }
}
