//! Small file helpers for the data directory: owner-only (0700 directories, 0600
//! files) whatever the process umask, and tightening what an older or hand-made data
//! directory left readable to others. Nothing here follows a symlink.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Options that create a file readable by its owner only (0600).
pub fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Writes a secret file readable by its owner only (0600), durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `dir` and any missing parent as 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Takes every permission of group and others off `dir` and everything under it
/// (symlinks are left alone, not followed). Returns how many entries it changed.
#[cfg(unix)]
pub fn tighten(dir: &Path) -> std::io::Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    let mut changed = 0;
    let mode = meta.permissions().mode();
    if !meta.file_type().is_symlink() && mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        changed += 1;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            changed += tighten(&entry?.path())?;
        }
    }
    Ok(changed)
}

#[cfg(not(unix))]
pub fn tighten(_dir: &Path) -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn mode(p: &Path) -> std::io::Result<u32> {
        Ok(std::fs::symlink_metadata(p)?.permissions().mode() & 0o777)
    }

    #[test]
    fn loose_entries_are_tightened_and_symlinks_left_alone() -> R {
        let root = tempfile::tempdir()?;
        let outside = tempfile::NamedTempFile::new()?;
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o644))?;
        let dir = root.path().join("data");
        std::fs::create_dir(&dir)?;
        std::fs::create_dir(dir.join("sub"))?;
        std::fs::write(dir.join("sub/file"), b"x")?;
        for (p, m) in [(&dir, 0o755), (&dir.join("sub"), 0o775)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))?;
        }
        std::fs::set_permissions(dir.join("sub/file"), std::fs::Permissions::from_mode(0o664))?;
        std::os::unix::fs::symlink(outside.path(), dir.join("link"))?;
        assert_eq!(tighten(&dir)?, 3);
        assert_eq!(mode(&dir)?, 0o700);
        assert_eq!(mode(&dir.join("sub"))?, 0o700);
        assert_eq!(mode(&dir.join("sub/file"))?, 0o600);
        assert_eq!(
            mode(outside.path())?,
            0o644,
            "a symlink's target is not touched"
        );
        assert_eq!(tighten(&dir)?, 0);
        Ok(())
    }

    #[test]
    fn private_dirs_and_files_ignore_the_umask() -> R {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("a/b");
        create_private_dir(&dir)?;
        write_private(&dir.join("secret"), b"s")?;
        assert_eq!(mode(&root.path().join("a"))?, 0o700);
        assert_eq!(mode(&dir)?, 0o700);
        assert_eq!(mode(&dir.join("secret"))? & 0o077, 0);
        Ok(())
    }
}
