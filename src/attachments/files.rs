//! Where an attachment's bytes live: `data_dir/attachments/ab/cdef…` (the id's first two
//! hex digits, then the rest), written through a temp file in `data_dir/attachments/tmp`
//! that is synced, renamed into place and its directory synced, so a file that has a
//! path is complete and durable. An upload that stops midway (too big, the client gone,
//! a disk error) removes its temp file when it is dropped; temps left by a crash are
//! removed at start (`Files::open`).
//!
//! No message can refer to an upload yet, so every stored file is unreferenced:
//! `Files::sweep` removes those whose mtime is older than
//! `Limits::unreferenced_upload_ttl`, at start and hourly (`run_sweeps`, started by the
//! server beside the deadlines), so the upload endpoint cannot fill the disk. The slice
//! that lets messages carry attachments must make the sweep skip files a message refers
//! to.
//!
//! This module owns only the bytes on disk: who uploaded a file and which messages refer
//! to it are the store's; it never reads a whole file into memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{AttachmentId, Kind, SNIFF_BYTES};
use crate::fsutil;

/// Why an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("attachment storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The attachments directory.
#[derive(Clone, Debug)]
pub struct Files {
    root: PathBuf,
}

/// A file once it is durable under its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub id: AttachmentId,
    pub size: u64,
    pub kind: Kind,
}

impl Files {
    /// Creates the directories (0700) and removes temps an earlier run left behind.
    pub fn open(data_dir: &Path) -> std::io::Result<Files> {
        let root = data_dir.join("attachments");
        fsutil::create_private_dir(&root.join("tmp"))?;
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let path = entry?.path();
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "stale upload not removed");
            }
        }
        Ok(Files { root })
    }

    /// The path of a stored file (which may not exist).
    pub fn path(&self, id: &AttachmentId) -> PathBuf {
        let (dir, rest) = id.as_str().split_at(2);
        self.root.join(dir).join(rest)
    }

    /// Whether a file is stored under `id`.
    pub fn exists(&self, id: &AttachmentId) -> bool {
        self.path(id).is_file()
    }

    /// Starts an upload of at most `limit` bytes.
    pub async fn begin(&self, limit: u64) -> Result<Upload, UploadError> {
        let temp = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let file = tokio::fs::File::from_std(
            fsutil::private_options()
                .write(true)
                .create_new(true)
                .open(&temp)?,
        );
        Ok(Upload {
            files: self.clone(),
            temp: Some(temp),
            file: Some(file),
            hash: Sha256::new(),
            head: Vec::with_capacity(SNIFF_BYTES),
            size: 0,
            limit,
        })
    }

    /// Removes every stored file last modified more than `older_than` ago (temps are
    /// not looked at: an upload under way is in `tmp`); returns how many went. A file
    /// that cannot be read or removed is logged and left.
    pub fn sweep(&self, older_than: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now().checked_sub(older_than);
        let mut removed = 0;
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?.path();
            if !dir.is_dir() || dir.file_name().is_some_and(|n| n == "tmp") {
                continue;
            }
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let old = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .map(|at| cutoff.is_some_and(|c| at < c));
                match old {
                    Ok(true) => match std::fs::remove_file(&path) {
                        Ok(()) => removed += 1,
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "old upload not removed")
                        }
                    },
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "upload's age unknown")
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Removes a stored file (the sweep of files no message refers to).
    pub fn remove(&self, id: &AttachmentId) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Sweeps `files` at once and then every `SWEEP_EVERY` until shutdown.
pub async fn run_sweeps(files: Files, ttl: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = every.tick() => {}
        }
        let f = files.clone();
        match tokio::task::spawn_blocking(move || f.sweep(ttl)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(removed = n, "unreferenced uploads swept"),
            Ok(Err(e)) => tracing::warn!(error = %e, "upload sweep failed"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
        }
    }
}

/// How often stored uploads are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// An upload under way: chunks are hashed and written as they come; dropped before
/// `finish`, its temp file is removed.
pub struct Upload {
    files: Files,
    temp: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    hash: Sha256,
    head: Vec<u8>,
    size: u64,
    limit: u64,
}

impl Upload {
    /// Writes the next chunk; past the limit the upload fails (and leaves nothing).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        let want = SNIFF_BYTES.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..want]);
        self.hash.update(chunk);
        match self.file.as_mut() {
            Some(f) => Ok(f.write_all(chunk).await?),
            None => Err(UploadError::Io(std::io::Error::other(
                "upload already finished",
            ))),
        }
    }

    /// Syncs the file, renames it to its content address and syncs the directory. The
    /// same bytes uploaded twice are one file.
    pub async fn finish(mut self) -> Result<Stored, UploadError> {
        if self.size == 0 {
            return Err(UploadError::Empty);
        }
        let (Some(mut file), Some(temp)) = (self.file.take(), self.temp.clone()) else {
            return Err(UploadError::Io(std::io::Error::other(
                "upload already finished",
            )));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let id = AttachmentId::from_digest(&self.hash.clone().finalize());
        let dest = self.files.path(&id);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let dir = dest
                .parent()
                .ok_or_else(|| std::io::Error::other("no parent"))?;
            fsutil::create_private_dir(dir)?;
            std::fs::rename(&temp, &dest)?;
            std::fs::File::open(dir)?.sync_all()?;
            if let Some(root) = dir.parent() {
                std::fs::File::open(root)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        self.temp = None;
        Ok(Stored {
            id,
            size: self.size,
            kind: Kind::sniff(&self.head),
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            drop(self.file.take());
            if let Err(e) = std::fs::remove_file(&temp) {
                tracing::warn!(path = %temp.display(), error = %e, "unfinished upload not removed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn temps(dir: &Path) -> std::io::Result<usize> {
        Ok(std::fs::read_dir(dir.join("attachments/tmp"))?.count())
    }

    #[tokio::test]
    async fn a_finished_upload_is_content_addressed() -> R {
        let dir = tempfile::tempdir()?;
        let files = Files::open(dir.path())?;
        let mut up = files.begin(100).await?;
        up.write(b"%PDF-1.4 ").await?;
        up.write(b"rest").await?;
        let stored = up.finish().await?;
        assert_eq!(stored.kind, Kind::Pdf);
        assert_eq!(stored.size, 13);
        let expect = AttachmentId::from_digest(&Sha256::digest(b"%PDF-1.4 rest"));
        assert_eq!(stored.id, expect);
        assert_eq!(std::fs::read(files.path(&stored.id))?, b"%PDF-1.4 rest");
        assert!(files
            .path(&stored.id)
            .starts_with(dir.path().join("attachments").join(&expect.as_str()[..2])));
        assert_eq!(temps(dir.path())?, 0);
        let mut again = files.begin(100).await?;
        again.write(b"%PDF-1.4 rest").await?;
        assert_eq!(again.finish().await?.id, expect, "same bytes, same file");
        Ok(())
    }

    #[tokio::test]
    async fn at_the_limit_is_kept_and_past_it_nothing_is_left() -> R {
        let dir = tempfile::tempdir()?;
        let files = Files::open(dir.path())?;
        let mut up = files.begin(4).await?;
        up.write(b"abcd").await?;
        assert_eq!(up.finish().await?.size, 4);
        let mut up = files.begin(4).await?;
        up.write(b"abc").await?;
        assert!(matches!(
            up.write(b"de").await,
            Err(UploadError::TooLarge { limit: 4 })
        ));
        drop(up);
        assert_eq!(temps(dir.path())?, 0);
        let mut cut = files.begin(4).await?;
        cut.write(b"ab").await?;
        drop(cut);
        assert_eq!(
            temps(dir.path())?,
            0,
            "an upload dropped midway leaves nothing"
        );
        assert!(matches!(
            files.begin(4).await?.finish().await,
            Err(UploadError::Empty)
        ));
        assert_eq!(temps(dir.path())?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn the_sweep_removes_only_files_older_than_the_ttl() -> R {
        let dir = tempfile::tempdir()?;
        let files = Files::open(dir.path())?;
        let store = |bytes: &'static [u8]| {
            let files = files.clone();
            async move {
                let mut up = files.begin(100).await?;
                up.write(bytes).await?;
                up.finish().await
            }
        };
        let old = store(b"old bytes").await?;
        let new = store(b"new bytes").await?;
        let under_way = files.begin(100).await?;
        let day = Duration::from_secs(24 * 3600);
        std::fs::File::options()
            .write(true)
            .open(files.path(&old.id))?
            .set_modified(SystemTime::now() - day - Duration::from_secs(60))?;
        assert_eq!(files.sweep(day)?, 1);
        assert!(!files.exists(&old.id), "older than the ttl: gone");
        assert!(files.exists(&new.id), "younger: kept");
        assert_eq!(temps(dir.path())?, 1, "an upload under way is not swept");
        drop(under_way);
        assert_eq!(files.sweep(day)?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn stale_temps_are_removed_at_start() -> R {
        let dir = tempfile::tempdir()?;
        Files::open(dir.path())?;
        std::fs::write(dir.path().join("attachments/tmp/left"), b"half")?;
        Files::open(dir.path())?;
        assert_eq!(temps(dir.path())?, 0);
        Ok(())
    }
}
