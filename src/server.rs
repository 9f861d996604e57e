//! The server: bind, accept, and shut down cleanly.
//!
//! `Server::bind` opens the data directory and the listener (so tests bind port 0 and
//! read the address); `Server::run` accepts until the shutdown future resolves, then
//! stops accepting, tells every connection to close with 1001, waits for them to end,
//! and flushes the store before returning.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{App, FirstStart, OpenError};
use crate::capture;
use crate::config::Config;
use crate::store::Batch;
use crate::transport::http::{handle, Active, Transport};
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
        let transport = Transport {
            app: app.clone(),
            limiter: Arc::new(Limiter::default()),
            active: active.clone(),
        };
        let deadlines = tokio::spawn(capture::run_deadlines(app.clone()));
        let departures = tokio::spawn(crate::session::visitor::run_departures(app.clone()));
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    serve_connection(transport.clone(), stream, peer);
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
        // Everything queued before this point is on disk once this returns.
        if let Err(e) = app.writer.write(|_| Ok((Batch::default(), ()))).await {
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

fn serve_connection(t: Transport, stream: tokio::net::TcpStream, peer: SocketAddr) {
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
    });
}
