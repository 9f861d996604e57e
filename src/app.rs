//! The shared state of a running server: a cheap clonable handle passed explicitly to
//! every task, never a global.
//!
//! `App::open` is start-up: it takes the data directory's lock, opens the store, starts
//! the writer, loads the token key, the inboxes and the pending deadlines, and makes
//! the default inbox and the first admin on a new data directory.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use fs2::FileExt;
use tokio::sync::watch;
use widget_protocol::Role;

use crate::agents;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::deadlines::Deadlines;
use crate::hub::Hub;
use crate::identity::{Identity, IdentityError};
use crate::inboxes::{Inboxes, DEFAULT_INBOX};
use crate::metrics::Metrics;
use crate::store::api::{Admin, Outbox, SignIns};
use crate::store::{self, Kv, KvStore, Store, StoreError, Writer};
use crate::throttle::Throttles;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {reason}")]
    CreateDir { path: String, reason: String },
    #[error("the data directory {0} is in use by a running frontdesk; stop it first")]
    Locked(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error(transparent)]
    Domain(#[from] crate::error::Error),
}

impl From<StoreError> for OpenError {
    /// The engine's own lock taken means the same as ours: another process (or a store
    /// still closing) has the directory.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(dir) => OpenError::Locked(dir),
            other => OpenError::Store(other),
        }
    }
}

/// The data directory, locked for this process. The store's writer thread holds it and
/// lets go only after the store is closed.
pub struct DataDir {
    _lock: File,
}

impl DataDir {
    /// Creates (if needed, 0700) and locks `dir`. Fails at once if another process
    /// holds it. What is in it is made owner-only (see [`tighten`]).
    pub fn lock(dir: &Path) -> Result<DataDir, OpenError> {
        crate::fsutil::create_private_dir(dir).map_err(|e| OpenError::CreateDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let path = dir.join("lock");
        let file = crate::fsutil::private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| OpenError::CreateDir {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        file.try_lock_exclusive()
            .map_err(|_| OpenError::Locked(dir.display().to_string()))?;
        tighten(dir)?;
        Ok(DataDir { _lock: file })
    }
}

/// Takes group and other permissions off the data directory and everything in it: the
/// store, the log and the secrets are the server's alone. Runs when the directory is
/// locked (a directory made by hand or an older version) and again once the store has
/// opened (the engine creates its own files under the process umask).
pub fn tighten(dir: &Path) -> Result<(), OpenError> {
    let changed = crate::fsutil::tighten(dir).map_err(|e| OpenError::Write {
        path: dir.display().to_string(),
        reason: format!("cannot make it readable by its owner only: {e}"),
    })?;
    if changed > 0 {
        tracing::info!(
            dir = %dir.display(),
            entries = changed,
            "made the data directory readable by its owner only"
        );
    }
    Ok(())
}

pub struct Inner {
    pub config: Config,
    /// What the domain keeps, in its own words: every conversation, message and contact
    /// read and write goes through it.
    pub store: Arc<dyn Store>,
    /// The follow-up emails waiting or sent, and their delivery attempts.
    pub outbox: Arc<dyn Outbox>,
    /// Inboxes and agents.
    pub admin: Arc<dyn Admin>,
    /// Agents' sign-in sessions.
    pub sign_ins: Arc<dyn SignIns>,
    /// The engine and its writer under the store, for the health check and the metrics
    /// only (they watch the engine itself): the domain goes through `store`.
    pub kv: Arc<dyn Kv>,
    pub writer: Writer,
    pub identity: Identity,
    pub hub: Hub,
    pub inboxes: Inboxes,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub deadlines: Deadlines,
    /// The rate limits shared by every connection.
    pub throttle: Throttles,
    /// Attachments' bytes under the data directory.
    pub files: crate::attachments::files::Files,
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Clone)]
pub struct App(Arc<Inner>);

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The file in the data directory that holds the first admin's token (0600).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// What `App::open` made on a new data directory.
#[derive(Debug, Default)]
pub struct FirstStart {
    /// The first admin's token, shown once.
    pub admin_token: Option<String>,
}

/// The store opened for the command-line tools (no server, no sockets).
pub struct Offline {
    pub outbox: Arc<dyn Outbox>,
    pub admin: Arc<dyn Admin>,
    pub inboxes: Inboxes,
    writer_thread: std::thread::JoinHandle<()>,
}

impl Offline {
    pub fn open(dir: &Path) -> Result<Offline, OpenError> {
        let data = DataDir::lock(dir)?;
        let (kv, wal) = store::open(dir)?;
        tighten(dir)?;
        let (writer, writer_thread) = start_writer(data, dir, &kv, wal);
        let backend = Arc::new(KvStore::new(kv, writer));
        // The writer answers from its own thread: no runtime is needed to wait for it.
        futures::executor::block_on(backend.upgrade())?;
        let inboxes = Inboxes::load(backend.clone())?;
        Ok(Offline {
            outbox: backend.clone(),
            admin: backend,
            inboxes,
            writer_thread,
        })
    }

    /// Flushes and stops the writer, then seals the store.
    pub fn close(self) {
        let Offline {
            outbox,
            admin,
            inboxes,
            writer_thread,
        } = self;
        drop((outbox, admin, inboxes));
        let _ = writer_thread.join();
    }
}

/// Starts the store's writer. When it has closed the store and was its last user, it
/// seals it (so the next start is quick); the directory's lock goes last.
fn start_writer(
    data: DataDir,
    dir: &Path,
    kv: &Arc<dyn Kv>,
    wal: store::wal::Wal,
) -> (Writer, std::thread::JoinHandle<()>) {
    let dir = dir.to_path_buf();
    let closed = move |released: bool| {
        if released {
            store::seal(&dir);
        }
        drop(data);
    };
    Writer::start(kv.clone(), wal, Box::new(closed))
}

impl App {
    /// Opens everything for `config`. Returns the app, the writer thread (join it after
    /// dropping every handle) and what a first start created.
    pub async fn open(
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(App, std::thread::JoinHandle<()>, FirstStart), OpenError> {
        Self::open_with_clock(config, shutdown, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(
        config: Config,
        shutdown: watch::Receiver<bool>,
        clock: Arc<dyn Clock>,
    ) -> Result<(App, std::thread::JoinHandle<()>, FirstStart), OpenError> {
        let dir = config.data_dir.clone();
        let data = DataDir::lock(&dir)?;
        let (kv, wal) = store::open(&dir)?;
        tighten(&dir)?;
        let (writer, writer_thread) = start_writer(data, &dir, &kv, wal);
        let identity = Identity::load_or_create(&dir, config.secure_cookie)?
            .with_lifetime(config.token_lifetime);
        let backend = Arc::new(KvStore::new(kv.clone(), writer.clone()));
        backend.upgrade().await?;
        let inboxes = Inboxes::load(backend.clone())?;
        let now = clock.now_ms();
        if inboxes.get(DEFAULT_INBOX).is_none() {
            inboxes
                .create(DEFAULT_INBOX, "Default", Vec::new(), now)
                .await?;
        }
        let mut first = FirstStart::default();
        if !agents::any(backend.as_ref())? {
            let (_, token) = agents::create(
                backend.as_ref(),
                "Admin",
                Role::Admin,
                vec![DEFAULT_INBOX.to_string()],
                now,
            )
            .await?;
            let path = dir.join(ADMIN_TOKEN_FILE);
            crate::fsutil::write_private(&path, format!("{token}\n").as_bytes()).map_err(|e| {
                OpenError::Write {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
            first.admin_token = Some(token);
        }
        let deadlines = Deadlines::new(backend.deadlines()?);
        let limits = &config.limits;
        let hub = Hub::new(limits.presence_grace, limits.throttle_max_keys);
        let throttle = Throttles::new(limits);
        let files = crate::attachments::files::Files::open(&dir).map_err(|e| OpenError::Write {
            path: dir.join("attachments").display().to_string(),
            reason: e.to_string(),
        })?;
        let app = App(Arc::new(Inner {
            config,
            store: backend.clone(),
            outbox: backend.clone(),
            sign_ins: backend.clone(),
            admin: backend,
            kv,
            writer,
            identity,
            hub,
            inboxes,
            clock,
            metrics: Metrics::default(),
            deadlines,
            throttle,
            files,
            shutdown,
        }));
        Ok((app, writer_thread, first))
    }

    pub fn now(&self) -> widget_protocol::Millis {
        self.clock.now_ms()
    }

    pub fn kv(&self) -> &dyn Kv {
        self.kv.as_ref()
    }
}
