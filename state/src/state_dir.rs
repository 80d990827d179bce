//! The state directory: `<state.dir>/<application.id>/<task id>/`, locked by one process at a time.
//!
//! Layout, as in Kafka Streams:
//!
//! ```text
//! <state.dir>/<application.id>/.lock             held (flock) by the process using the folder
//! <state.dir>/<application.id>/<task id>/.checkpoint
//! <state.dir>/<application.id>/<task id>/rocksdb/<store>/
//! ```
//!
//! A second process (or a second [`StateDirectory`] in the same process) opening the same folder
//! gets [`StateError::Locked`] naming the holder's pid, instead of two processes writing one RocksDB.
//! The lock is released when the [`StateDirectory`] is dropped or the process dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::checkpoint::Checkpoint;
use crate::error::{StateError, StateResult};

/// The lock file's name in the application folder.
pub const LOCK_FILE: &str = ".lock";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// The locked state folder of one application in one process.
///
/// ```
/// use kstreams_state::{StateDirectory, StateError};
///
/// let root = tempfile::tempdir().unwrap();
/// let dir = StateDirectory::open(root.path(), "app").unwrap();
/// let task = dir.task_dir("0_1").unwrap();
/// assert!(task.ends_with("app/0_1"));
/// assert!(matches!(StateDirectory::open(root.path(), "app"), Err(StateError::Locked { .. })));
/// ```
#[derive(Debug)]
pub struct StateDirectory {
    app_dir: PathBuf,
    lock: File,
}

impl StateDirectory {
    /// Creates `<state_dir>/<application_id>` if needed and locks it for this process.
    pub fn open(state_dir: impl AsRef<Path>, application_id: &str) -> StateResult<StateDirectory> {
        let app_dir = state_dir.as_ref().join(application_id);
        std::fs::create_dir_all(&app_dir).map_err(io_err(&app_dir))?;
        let lock_path = app_dir.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        if !lock.try_lock_exclusive().map_err(io_err(&lock_path))? {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StateError::Locked {
                path: app_dir,
                holder: if holder.is_empty() { "unknown".into() } else { holder.to_string() },
            });
        }
        lock.set_len(0).map_err(io_err(&lock_path))?;
        lock.seek(SeekFrom::Start(0)).map_err(io_err(&lock_path))?;
        write!(lock, "{}", std::process::id()).map_err(io_err(&lock_path))?;
        lock.sync_all().map_err(io_err(&lock_path))?;
        tracing::debug!(path = %app_dir.display(), "locked state directory");
        Ok(StateDirectory { app_dir, lock })
    }

    /// `<state.dir>/<application.id>`.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// The folder of task `task_id`, created if missing.
    pub fn task_dir(&self, task_id: &str) -> StateResult<PathBuf> {
        let dir = self.app_dir.join(task_id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(dir)
    }

    /// The ids of the task folders present (tasks that ran here before).
    pub fn task_ids(&self) -> StateResult<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.app_dir).map_err(io_err(&self.app_dir))? {
            let entry = entry.map_err(io_err(&self.app_dir))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Deletes everything of task `task_id` (stores and checkpoint).
    pub fn wipe_task(&self, task_id: &str) -> StateResult<()> {
        let dir = self.app_dir.join(task_id);
        crate::rocksdb::wipe(&dir)
    }

    /// Reads the checkpoint of `task_dir`. A corrupt checkpoint cannot be trusted, nor can the stores
    /// it describes: they are wiped (with a `warn!` saying why) and an empty checkpoint is returned,
    /// so every store is rebuilt from its changelog.
    pub fn load_checkpoint(&self, task_dir: &Path) -> StateResult<Checkpoint> {
        load_checkpoint(task_dir)
    }
}

/// See [`StateDirectory::load_checkpoint`].
pub fn load_checkpoint(task_dir: &Path) -> StateResult<Checkpoint> {
    match Checkpoint::read(task_dir) {
        Ok(cp) => Ok(cp.unwrap_or_default()),
        Err(StateError::Corrupt { detail, .. }) => {
            tracing::warn!(task_dir = %task_dir.display(), reason = %detail,
                "corrupt checkpoint; wiping the task's stores to rebuild them from their changelogs");
            crate::rocksdb::wipe(&task_dir.join("rocksdb"))?;
            Checkpoint::delete(task_dir)?;
            Ok(Checkpoint::default())
        }
        Err(e) => Err(e),
    }
}

impl Drop for StateDirectory {
    fn drop(&mut self) {
        if let Err(e) = FileExt::unlock(&self.lock) {
            tracing::warn!(path = %self.app_dir.display(), error = %e, "unlocking the state directory failed");
        }
    }
}
