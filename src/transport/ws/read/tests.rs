use std::task::Poll;

use tokio::net::TcpStream;

use super::super::frame::{CLOSE_INVALID, OP_CLOSE, OP_CONTINUE, OP_PING, OP_PONG, OP_TEXT};
use super::super::testing::{client_frame, on_frame, pair, pair_with};
use super::super::WsSocket;
use super::*;

#[tokio::test]
async fn fragmented_text_fails_at_the_fragment_that_breaks_it() {
    let (mut ws, _client) = pair().await;
    // A character cut in two by the fragmenting is not an error.
    assert_eq!(on_frame(&mut ws, false, OP_TEXT, b"caf\xC3".to_vec()), None);
    assert_eq!(
        on_frame(&mut ws, true, OP_CONTINUE, b"\xA9!".to_vec()),
        Some(Received::Text("café!".into()))
    );
    // An invalid byte fails at its fragment, before the message ends.
    assert_eq!(on_frame(&mut ws, false, OP_TEXT, b"ok ".to_vec()), None);
    match on_frame(&mut ws, false, OP_CONTINUE, b"\xFF more".to_vec()) {
        Some(Received::Violation { code, .. }) => assert_eq!(code, CLOSE_INVALID),
        other => panic!("not failed at the bad fragment: {other:?}"),
    }
}

/// The next message or event, if one comes within 300 ms.
async fn receive(ws: &mut WsSocket) -> Result<Received, tokio::time::error::Elapsed> {
    let next = std::future::poll_fn(|cx| ws.poll_receive(cx));
    tokio::time::timeout(std::time::Duration::from_millis(300), next).await
}

#[tokio::test]
async fn text_that_is_not_utf8_fails_before_its_frame_is_whole() {
    use tokio::io::AsyncWriteExt;
    // A character cut by the chop waits for the rest of its frame.
    let (mut ws, mut client) = pair().await;
    let f = client_frame(true, OP_TEXT, "café au lait".as_bytes());
    let cut = 2 + 4 + 4; // header, mask, "caf" and the first byte of "é"
    client.write_all(&f[..cut]).await.expect("write");
    assert!(receive(&mut ws).await.is_err(), "nothing yet");
    client.write_all(&f[cut..]).await.expect("write");
    assert_eq!(
        receive(&mut ws).await.ok(),
        Some(Received::Text("café au lait".into()))
    );
    // A byte that can never be UTF-8 fails as it arrives, in a first frame and in
    // a continuation, while the peer holds back the rest.
    for opening in [None, Some(client_frame(false, OP_TEXT, b"ok "))] {
        let (mut ws, mut client) = pair().await;
        let opcode = if opening.is_some() {
            OP_CONTINUE
        } else {
            OP_TEXT
        };
        if let Some(o) = &opening {
            client.write_all(o).await.expect("write");
        }
        let f = client_frame(true, opcode, b"hello \xFF and the rest of a long frame");
        client.write_all(&f[..f.len() - 10]).await.expect("write");
        match receive(&mut ws).await {
            Ok(Received::Violation { code, .. }) => assert_eq!(code, CLOSE_INVALID),
            other => panic!("not failed before the frame was whole: {other:?}"),
        }
    }
}

/// Byte by byte, with a read between bytes: each read checks only what it brought
/// (the cursor follows the bytes, a cut character waits for the rest), and the
/// message is the same as if the frame had come whole.
#[tokio::test]
async fn a_text_frame_chopped_byte_by_byte_is_checked_as_it_comes() {
    use tokio::io::AsyncWriteExt;
    let (mut ws, mut client) = pair().await;
    // "café au lait, 日本" in two fragments that cut the "é" in two.
    let opening = client_frame(false, OP_TEXT, b"caf\xC3");
    let mut tail = vec![0xA9];
    tail.extend_from_slice(" au lait, 日本".as_bytes());
    let rest = client_frame(true, OP_CONTINUE, &tail);
    client.write_all(&opening).await.expect("write");
    let mut most_checked = 0;
    let mut got = None;
    for b in &rest {
        client.write_all(&[*b]).await.expect("write");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let polled = std::future::poll_fn(|cx| Poll::Ready(ws.poll_receive(cx))).await;
        if let Poll::Ready(r) = polled {
            got = Some(r);
            break;
        }
        // The payload so far, never more (the carried byte of "é" is kept apart).
        let arrived = ws.read.pending.len().saturating_sub(2 + 4);
        assert!(ws.read.utf8.checked <= arrived);
        most_checked = most_checked.max(ws.read.utf8.checked);
    }
    let got = match got {
        Some(r) => r,
        None => receive(&mut ws).await.expect("the message"),
    };
    assert_eq!(got, Received::Text("café au lait, 日本".into()));
    assert!(most_checked > 10, "checked as it came: {most_checked}");
}

/// Frames split at every byte and pipelined many to a read come out whole, in order,
/// with fragments joined, pings answered in between, and nothing kept once done.
#[tokio::test]
async fn messages_survive_any_split_and_nothing_is_kept_between_them() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut ws, mut client) = pair().await;
    let mut bytes = client_frame(false, OP_TEXT, "héllo ".as_bytes());
    bytes.extend(client_frame(true, OP_PING, b"p"));
    bytes.extend(client_frame(true, OP_CONTINUE, "wörld".as_bytes()));
    for i in 0..50 {
        bytes.extend(client_frame(true, OP_TEXT, format!("m{i}").as_bytes()));
    }
    let writer = tokio::spawn(async move {
        // One byte at a time for the first frames, then all the rest at once.
        for b in &bytes[..40] {
            client.write_all(&[*b]).await.expect("write");
            client.flush().await.expect("flush");
            tokio::task::yield_now().await;
        }
        client.write_all(&bytes[40..]).await.expect("write");
        client
    });
    let mut got = Vec::new();
    while got.len() < 52 {
        got.push(std::future::poll_fn(|cx| ws.poll_receive(cx)).await);
    }
    assert_eq!(
        got[0],
        Received::Alive,
        "the ping comes between the fragments"
    );
    assert_eq!(got[1], Received::Text("héllo wörld".into()));
    for (i, r) in got[2..].iter().enumerate() {
        assert_eq!(*r, Received::Text(format!("m{i}")));
    }
    assert!(ws.read.pending.is_empty() && ws.read.pending.capacity() == 0);
    assert!(ws.read.partial.is_none());
    // The pong went out, unmasked, with the ping's payload.
    let mut client = writer.await.expect("writer");
    std::future::poll_fn(|cx| ws.poll_write_out(cx))
        .await
        .expect("flush");
    assert_eq!(ws.write.capacity(), 0, "the write queue is given back");
    let mut pong = [0u8; 3];
    client.read_exact(&mut pong).await.expect("pong");
    assert_eq!(pong, [0x80 | OP_PONG, 1, b'p']);
}

const DEADLINE: std::time::Duration = std::time::Duration::from_millis(400);

/// A socket whose messages must be finished within `deadline`.
async fn pair_with_deadline(deadline: std::time::Duration) -> (WsSocket, TcpStream) {
    let limits = Limits {
        message_deadline: deadline,
        ..Limits::default()
    };
    pair_with(&limits).await
}

/// Until `ws` ends the connection, `step` sends the peer's next bytes every 50 ms:
/// what it received meanwhile, and when it ended.
async fn keep_sending(
    ws: &mut WsSocket,
    client: &mut TcpStream,
    mut step: impl FnMut(usize) -> Vec<u8>,
) -> (Vec<Received>, std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    for i in 0.. {
        let bytes = step(i);
        client.write_all(&bytes).await.expect("write");
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        loop {
            let next = std::future::poll_fn(|cx| ws.poll_receive(cx));
            let Ok(r) = tokio::time::timeout_at(until, next).await else {
                break;
            };
            let ended = matches!(r, Received::Violation { .. } | Received::Closed);
            got.push(r);
            if ended {
                return (got, started.elapsed());
            }
        }
        assert!(i < 200, "never closed");
    }
    unreachable!()
}

#[tokio::test]
async fn a_message_left_unfinished_is_closed_at_its_deadline_though_pings_keep_coming() {
    let (mut ws, mut client) = pair_with_deadline(DEADLINE).await;
    let (got, after) = keep_sending(&mut ws, &mut client, |i| {
        if i == 0 {
            client_frame(false, OP_TEXT, b"the start of a message ")
        } else {
            client_frame(true, OP_PING, b"still here")
        }
    })
    .await;
    let (last, pings) = got.split_last().expect("something");
    assert!(pings.iter().all(|r| *r == Received::Alive), "{got:?}");
    assert!(pings.len() >= 3, "pings were answered meanwhile: {got:?}");
    match last {
        Received::Violation { code, .. } => assert_eq!(*code, 1008),
        other => panic!("not closed with 1008: {other:?}"),
    }
    assert!(after >= DEADLINE, "closed after {after:?}");
    assert!(ws.read.deadline.timer.is_none() && ws.read.partial.is_none());
}

#[tokio::test]
async fn a_frame_trickled_byte_by_byte_is_closed_at_its_deadline() {
    let (mut ws, mut client) = pair_with_deadline(DEADLINE).await;
    let frame = client_frame(true, OP_TEXT, &[b'a'; 1000]);
    let (got, after) = keep_sending(&mut ws, &mut client, |i| vec![frame[i]]).await;
    assert!(
        matches!(got[..], [Received::Violation { code: 1008, .. }]),
        "{got:?}"
    );
    assert!(after >= DEADLINE);
}

/// Each message has the deadline from its own first fragment: messages that take
/// most of it each, one after the other, all arrive.
#[tokio::test]
async fn messages_finished_in_time_arrive_and_each_starts_its_own_deadline() {
    let deadline = std::time::Duration::from_secs(1);
    let (mut ws, mut client) = pair_with_deadline(deadline).await;
    // Per message: an opening, three continuations and pings, the end: 250 ms,
    // eight of them in a row: twice the deadline.
    let (got, after) = keep_sending(&mut ws, &mut client, |i| match (i % 5, i) {
        (_, 40) => client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()),
        (0, _) => client_frame(false, OP_TEXT, b"part"),
        (4, _) => client_frame(true, OP_CONTINUE, b"!"),
        (_, _) if i % 2 == 0 => client_frame(true, OP_PING, b""),
        _ => client_frame(false, OP_CONTINUE, b" part"),
    })
    .await;
    let texts = got
        .iter()
        .filter(|r| matches!(r, Received::Text(_)))
        .count();
    assert_eq!(texts, 8, "{got:?}");
    assert_eq!(got.last(), Some(&Received::Closed), "{got:?}");
    assert!(after > deadline);
    assert!(ws.read.deadline.timer.is_none());
}
