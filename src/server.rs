//! The server: bind, accept, and shut down cleanly.
//!
//! `Server::bind` opens the data directory and the listener (so tests bind port 0 and
//! read the address); `Server::run` accepts until the shutdown future resolves, then
//! stops accepting, tells every connection to close with 1001, waits for them to end,
//! and flushes the store before returning.
//!
//! Every accepted socket takes a slot under the connection caps before hyper reads a
//! byte of it; one over a cap is answered with a one-line 503/429 and closed at once.
//! Accept failures (out of descriptors and the like) and refusals are logged at most
//! once per [`LOG_EVERY`], with how many there were.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::app::{App, FirstStart, OpenError};
use crate::capture;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::transport::http::{handle, refusal, Active, Transport, RETRY_AFTER_SECS};
use crate::transport::limiter::{Refused, Slot};
use crate::transport::Limiter;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: the port is in use by another program")]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Open(#[from] OpenError),
}

pub struct Server {
    app: App,
    listener: TcpListener,
    writer_thread: std::thread::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    first: FirstStart,
}

/// How long connections get to close after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

impl Server {
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        Self::bind_with_clock(config, Arc::new(crate::clock::SystemClock)).await
    }

    /// As [`Server::bind`], with the time from `clock` (tests move it by days).
    pub async fn bind_with_clock(
        config: Config,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<Server, ServeError> {
        let addr = config.listen;
        // Listen first: a port in use should not cost opening the store.
        let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => ServeError::PortInUse { addr },
            _ => ServeError::Listen {
                addr,
                reason: e.to_string(),
            },
        })?;
        let (shutdown, rx) = watch::channel(false);
        let (app, writer_thread, first) = App::open_with_clock(config, rx, clock).await?;
        Ok(Server {
            app,
            listener,
            writer_thread,
            shutdown,
            first,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.app.config.listen)
    }

    /// The first admin's token when this start created it.
    pub fn admin_token(&self) -> Option<&str> {
        self.first.admin_token.as_deref()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    pub async fn run(self, signal: impl Future<Output = ()>) -> Result<Closing, ServeError> {
        let Server {
            app,
            listener,
            writer_thread,
            shutdown,
            ..
        } = self;
        let active = Arc::new(Active::default());
        let caps = match crate::fdlimit::current() {
            Ok((soft, _)) => crate::fdlimit::caps(&app.config.limits, soft),
            Err(e) => {
                tracing::warn!(error = %e, "assuming the usual limit of 1024 descriptors");
                crate::fdlimit::caps(&app.config.limits, 1024)
            }
        };
        tracing::info!(
            sockets = caps.sockets,
            websockets = caps.websockets,
            per_address = caps.per_address,
            trusted_proxies = app.config.trusted_proxies.len(),
            "connection caps"
        );
        let transport = Transport {
            app: app.clone(),
            limiter: Arc::new(Limiter::new(caps)),
            active: active.clone(),
        };
        let mut failures = LogEvery::new(LOG_EVERY);
        let mut refusals = LogEvery::new(LOG_EVERY);
        let closing = Arc::new(AtomicUsize::new(0));
        let deadlines = tokio::spawn(capture::run_deadlines(app.clone()));
        let departures = tokio::spawn(crate::session::visitor::run_departures(app.clone()));
        let sweeps = tokio::spawn(crate::attachments::files::run_sweeps(
            app.files.clone(),
            app.config.limits.unreferenced_upload_ttl,
            app.shutdown.clone(),
        ));
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            if let Some(n) = failures.hit(Instant::now()) {
                                tracing::warn!(error = %e, failures = n, "accept failed (logged once per {LOG_EVERY:?})");
                            }
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let key = (!crate::transport::proxy::is_trusted_proxy(&app.config, peer.ip())).then_some(peer.ip());
                    match transport.limiter.accept(key) {
                        Ok(slot) => {
                            let _ = stream.set_nodelay(true);
                            serve_connection(transport.clone(), stream, peer, slot);
                        }
                        Err(refused) => {
                            Metrics::inc(&app.metrics.connections_refused);
                            if let Some(n) = refusals.hit(Instant::now()) {
                                tracing::warn!(%peer, ?refused, refused_sockets = n, "sockets over the connection caps closed at accept (logged once per {LOG_EVERY:?})");
                            }
                            refuse(stream, refused, &closing);
                        }
                    }
                }
            }
        }
        tracing::info!("shutting down: closing connections");
        drop(listener);
        let _ = shutdown.send(true);
        drop(transport);
        if tokio::time::timeout(DRAIN_TIMEOUT, active.idle())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        let _ = deadlines.await;
        let _ = departures.await;
        let _ = sweeps.await;
        // Everything queued before this point is on disk once this returns.
        if let Err(e) = app.store.sync().await {
            tracing::error!(error = %e, "final flush failed");
        }
        // The writer thread ends by itself once the last handle to the app is gone.
        Ok(Closing(writer_thread))
    }
}

/// The store, still closing after [`Server::run`] returned: its writer thread finishes
/// (flushing the engine, emptying the log, releasing the data directory) once the last
/// handle to the app is dropped.
#[must_use = "wait for the store to close before the process exits"]
pub struct Closing(std::thread::JoinHandle<()>);

impl Closing {
    /// Waits up to `limit` for the store to be closed; false if it was not.
    pub fn wait(self, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while !self.0.is_finished() {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.join();
        true
    }
}

/// How often accept failures, and sockets refused at accept, are logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The pause after a failed accept, so a process out of descriptors does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Refused sockets at most kept open at once while their answer drains; past that a
/// refused socket is simply closed.
const MAX_CLOSING: usize = 64;

/// How long a refused socket is kept open for the client to read its answer.
const CLOSING_FOR: Duration = Duration::from_secs(1);

/// Counts events and says when to log them: the first at once, then at most once per
/// interval, with how many there were since the last line.
#[derive(Debug)]
pub struct LogEvery {
    interval: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl LogEvery {
    pub fn new(interval: Duration) -> Self {
        LogEvery {
            interval,
            last: None,
            unlogged: 0,
        }
    }

    /// One more event at `now`; `Some(count)` when a line is due, with the number of
    /// events it stands for (this one included).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Answers a socket over a cap with one status line, written without waiting, and closes
/// it. While few are closing, the socket stays open a moment (its request read and
/// dropped), so the client reads the answer rather than a reset.
fn refuse(stream: TcpStream, refused: Refused, closing: &Arc<AtomicUsize>) {
    let (status, text) = refusal(refused);
    let answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: {RETRY_AFTER_SECS}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        text.len() + 1,
    );
    if stream.try_write(answer.as_bytes()).is_err() {
        return;
    }
    if closing.fetch_add(1, Ordering::AcqRel) >= MAX_CLOSING {
        closing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let closing = closing.clone();
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(CLOSING_FOR, async {
            let _ = stream.shutdown().await;
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
        closing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Serves one socket over HTTP; `slot` holds its place under the caps until hyper is
/// done with it (closed, or upgraded: a WebSocket then holds a slot of its own).
fn serve_connection(t: Transport, stream: TcpStream, peer: SocketAddr, slot: Slot) {
    let handshake_timeout = t.app.config.limits.handshake_timeout;
    let mut stop = t.app.shutdown.clone();
    let service = service_fn(move |req| handle(t.clone(), peer, req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::spawn(async move {
        // A plain HTTP connection (keep-alive) is dropped at shutdown; an upgraded one
        // has already left hyper and closes through its session.
        tokio::select! {
            r = conn => if let Err(e) = r {
                tracing::debug!(error = %e, "http connection ended with an error");
            },
            _ = stop.wait_for(|s| *s) => {}
        }
        drop(slot);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_logged_once_per_interval_with_their_count() {
        let mut log = LogEvery::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(log.hit(at(0)), Some(1), "the first at once");
        // A failure every 50 ms for ten seconds: not one line each.
        let lines: Vec<u64> = (1..200).filter_map(|i| log.hit(at(i * 50))).collect();
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(
            log.hit(at(10_000)),
            Some(200),
            "then one line for all of them"
        );
        assert_eq!(log.hit(at(10_050)), None);
        assert_eq!(
            log.hit(at(60_000)),
            Some(2),
            "a quiet spell: the next at once"
        );
    }
}
