//! `POST /api/uploads`: the size limit (at it kept, past it 413 with nothing left), the
//! type from the bytes whatever the name, a forged name sanitised, who may upload (a
//! visitor by token under the inbox's origins, an agent of the inbox), an upload cut
//! midway leaves no file, and the rates (429).

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::http::{request, Response};
use crate::support::{Connect, TestServer};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

/// Every file under the attachments directory (temps included).
fn files(data: &Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("attachments"), &mut out);
    out
}

/// One POST of `body` with these request headers.
async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    request(
        addr,
        Connect::default().headers(headers),
        "POST",
        path,
        body,
    )
    .await
}

async fn visitor_token(s: &TestServer) -> String {
    let (_c, w) = s.visitor().await;
    w["visitor_token"].as_str().expect("a token").to_string()
}

async fn upload(s: &TestServer, token: &str, name: &str, body: &[u8]) -> Response {
    post(
        s.addr,
        "/api/uploads?inbox=default",
        &[("X-Visitor-Token", token), ("X-Filename", name)],
        body,
    )
    .await
}

fn json(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {:?}", r.body))
}

#[tokio::test]
async fn at_the_limit_is_stored_and_past_it_413_leaves_nothing() {
    let s = TestServer::start_with(|c| c.limits.max_upload_bytes = 64).await;
    let token = visitor_token(&s).await;
    let mut at = PDF.to_vec();
    at.resize(64, b'x');
    let r = upload(&s, &token, "at.pdf", &at).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let j = json(&r);
    assert_eq!(j["size"], 64);
    assert_eq!(j["type"], "application/pdf");
    let id = j["id"].as_str().expect("id");
    assert_eq!(id.len(), 64);
    let stored = s
        .data_dir()
        .join("attachments")
        .join(&id[..2])
        .join(&id[2..]);
    assert_eq!(std::fs::read(&stored).expect("stored"), at);
    assert_eq!(files(s.data_dir()).len(), 1);

    at.push(b'y');
    let r = upload(&s, &token, "over.pdf", &at).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(files(s.data_dir()).len(), 1, "nothing left past the limit");
}

#[tokio::test]
async fn the_type_comes_from_the_bytes_and_a_forged_name_is_sanitised() {
    let s = TestServer::start().await;
    let token = visitor_token(&s).await;
    let j = json(&upload(&s, &token, "shot.png", PDF).await);
    assert_eq!(j["type"], "application/pdf", "a .png name with PDF bytes");
    assert_eq!(j["name"], "shot.png");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let j = json(&upload(&s, &token, "logo.svg", svg).await);
    assert_eq!(j["type"], "application/octet-stream");
    let j = json(&upload(&s, &token, "../../etc/passwd", PNG).await);
    assert_eq!(j["name"], "passwd");
    assert_eq!(j["type"], "image/png");
    let r = post(
        s.addr,
        "/api/uploads?inbox=default&name=..%2F..%2Fa%0Ab.txt",
        &[("X-Visitor-Token", &token)],
        b"text",
    )
    .await;
    assert_eq!(json(&r)["name"], "ab.txt");
}

#[tokio::test]
async fn only_a_visitor_under_the_inbox_origins_or_its_agent_may_upload() {
    let s = TestServer::start().await;
    let r = post(s.addr, "/api/uploads?inbox=default", &[], PNG).await;
    assert_eq!(r.status, 401);
    let r = upload(&s, "forged", "a.png", PNG).await;
    assert_eq!(r.status, 401);
    let r = post(s.addr, "/api/uploads?inbox=nope", &[], PNG).await;
    assert_eq!(r.status, 404);

    s.create_inbox("shop", &["https://shop.example"]).await;
    let token = visitor_token(&s).await;
    let from = |origin: &'static str| {
        let token = token.clone();
        let addr = s.addr;
        async move {
            post(
                addr,
                "/api/uploads?inbox=shop",
                &[("X-Visitor-Token", &token), ("Origin", origin)],
                PNG,
            )
            .await
        }
    };
    assert_eq!(from("https://evil.example").await.status, 403);
    assert_eq!(from("https://shop.example").await.status, 201);

    let bearer = format!("Bearer {}", s.admin_token);
    let r = post(
        s.addr,
        "/api/uploads?inbox=default",
        &[("Authorization", &bearer)],
        PDF,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        s.addr,
        "/api/uploads?inbox=shop",
        &[("Authorization", &bearer)],
        PDF,
    )
    .await;
    assert_eq!(r.status, 401, "the admin is no member of shop");
    let r = crate::support::http::get(s.addr, "/api/uploads?inbox=default").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn an_upload_cut_midway_leaves_no_file() {
    let s = TestServer::start().await;
    let token = visitor_token(&s).await;
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    let h = format!(
        "POST /api/uploads?inbox=default HTTP/1.1\r\nHost: {}\r\nX-Visitor-Token: {token}\r\n\
         Content-Length: 100000\r\nConnection: close\r\n\r\n",
        s.addr
    );
    sock.write_all(h.as_bytes()).await.expect("head");
    sock.write_all(&[7u8; 30_000])
        .await
        .expect("part of the body");
    sock.flush().await.expect("flush");
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    while files(s.data_dir()).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(files(s.data_dir()).len(), 1, "the temp file while it comes");
    drop(sock);
    while !files(s.data_dir()).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(files(s.data_dir()).is_empty(), "{:?}", files(s.data_dir()));
}

#[tokio::test]
async fn uploads_past_the_visitors_rate_are_429() {
    let s = TestServer::start_with(|c| {
        c.limits.uploads_per_uploader =
            frontdesk::config::Rate::new(3, std::time::Duration::from_secs(60));
    })
    .await;
    let token = visitor_token(&s).await;
    for i in 0..3 {
        assert_eq!(
            upload(&s, &token, "a.pdf", format!("{i}").as_bytes())
                .await
                .status,
            201
        );
    }
    let r = upload(&s, &token, "a.pdf", b"again").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let other = visitor_token(&s).await;
    assert_eq!(upload(&s, &other, "a.pdf", b"other").await.status, 201);
}

#[tokio::test]
async fn messages_naming_attachments_are_refused_until_they_are_recorded() {
    let s = TestServer::start().await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let id = json(&upload(&s, &token, "a.png", PNG).await)["id"].clone();
    c.send(serde_json::json!({"type":"send","client_msg_id":"m1","text":"see","attachments":[id]}))
        .await;
    let e = c.expect_error("bad_frame").await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("attachments")),
        "{e}"
    );
    c.send(serde_json::json!({"type":"send","client_msg_id":"m2","text":"hi","attachments":[]}))
        .await;
    c.expect("ack").await;
}
