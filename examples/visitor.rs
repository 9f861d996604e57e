//! A visitor in the terminal: `cargo run --example visitor -- [ws://127.0.0.1:8080] [token-file]`.
//!
//! Connects to the visitor socket, keeps the visitor token in a file (default
//! `./visitor-token`) so a second run is the same visitor and shows the history, and
//! lets a person chat: each line typed is sent, everything the server says is printed.
//! `/email ada@example.com` submits an email; `/history` loads older messages.

use std::path::PathBuf;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use widget_protocol::{decode, encode, AuthorKind, Message, Page, VisitorClient, VisitorServer};

fn show(m: &Message) {
    let who = match m.author.kind {
        AuthorKind::Visitor => "you".to_string(),
        AuthorKind::Agent => m.author.name.clone().unwrap_or_else(|| "agent".into()),
        AuthorKind::System => "system".to_string(),
    };
    println!("[{}] {who}: {}", m.seq, m.text);
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("visitor: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080".into());
    let token_file = PathBuf::from(args.next().unwrap_or_else(|| "visitor-token".into()));
    let token = std::fs::read_to_string(&token_file)
        .ok()
        .map(|t| t.trim().to_string());

    let url = format!("{}/ws/visitor?inbox=default", base.trim_end_matches('/'));
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let (mut tx, mut rx) = ws.split();
    let hello = VisitorClient::Hello {
        visitor_token: token,
        resume_after: None,
        page: Some(Page {
            url: None,
            title: Some("terminal".into()),
        }),
    };
    tx.send(WsMessage::text(encode(&hello)))
        .await
        .map_err(|e| e.to_string())?;

    let mut oldest: Option<u64> = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return Ok(()) };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let frame = if let Some(email) = line.strip_prefix("/email ") {
                    VisitorClient::SubmitEmail { email: email.trim().to_string() }
                } else if line == "/history" {
                    VisitorClient::History { before: oldest, limit: Some(20) }
                } else {
                    VisitorClient::Send { client_msg_id: uuid::Uuid::new_v4().to_string(), text: line.to_string(), attachments: Vec::new() }
                };
                tx.send(WsMessage::text(encode(&frame))).await.map_err(|e| e.to_string())?;
            }
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(f))) => return Err(format!("the server closed the connection: {f:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("the server closed the connection".into()),
                };
                match decode::<VisitorServer>(text.as_str()) {
                    Ok(VisitorServer::Welcome(w)) => {
                        std::fs::write(&token_file, &w.visitor_token)
                            .map_err(|e| format!("cannot write {}: {e}", token_file.display()))?;
                        println!("connected as visitor {} (token kept in {})", w.visitor_id, token_file.display());
                        if w.has_more {
                            println!("(older messages: type /history)");
                        }
                        oldest = w.messages.first().map(|m| m.seq);
                        w.messages.iter().for_each(show);
                        if w.away.active {
                            println!("away: {}", w.away.message.unwrap_or_default());
                        }
                    }
                    Ok(VisitorServer::Ack { message, .. }) | Ok(VisitorServer::Message { message }) => show(&message),
                    Ok(VisitorServer::History { messages, has_more }) => {
                        println!("-- earlier{} --", if has_more { " (more: /history)" } else { "" });
                        if let Some(first) = messages.first() {
                            oldest = Some(first.seq);
                        }
                        messages.iter().for_each(show);
                    }
                    Ok(VisitorServer::EmailPrompt { text }) => println!("{text}  (type /email you@example.com)"),
                    Ok(VisitorServer::EmailCaptured { email }) => println!("thanks, we'll write to {email}"),
                    Ok(VisitorServer::Typing { active: true, name }) => println!("({} is typing…)", name.as_deref().unwrap_or("an agent")),
                    Ok(VisitorServer::Typing { active: false, .. }) | Ok(VisitorServer::Seen { .. }) => {}
                    Ok(VisitorServer::Error(e)) => println!("error {}: {}", e.code.as_str(), e.message),
                    Err(e) => println!("unreadable frame: {e}"),
                }
            }
        }
    }
}
