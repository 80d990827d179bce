//! The `.checkpoint` file of a task: the changelog offset up to which each store's local state is
//! known to be complete.
//!
//! The format is Kafka Streams': a version line (`0`), a count line, then one
//! `<topic> <partition> <offset>` line per changelog partition. The offset is the next changelog
//! offset to restore from. The file is written to a temporary file, synced, and renamed over the old
//! one, so a crash leaves either the old or the new checkpoint, never half of one.
//!
//! ```
//! use kstreams_state::Checkpoint;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut cp = Checkpoint::default();
//! cp.set("app-counts-changelog", 3, 1_234);
//! cp.write(dir.path()).unwrap();
//! let back = Checkpoint::read(dir.path()).unwrap().unwrap();
//! assert_eq!(back.get("app-counts-changelog", 3), Some(1_234));
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{StateError, StateResult};

/// The checkpoint file's name in a task folder.
pub const CHECKPOINT_FILE: &str = ".checkpoint";
const VERSION: &str = "0";

/// Changelog topic-partition → offset to restore from.
///
/// ```
/// use kstreams_state::Checkpoint;
/// let mut c = Checkpoint::default();
/// c.set("app-counts-changelog", 0, 42);
/// let text = c.to_text();
/// assert_eq!(Checkpoint::parse(&text).unwrap().get("app-counts-changelog", 0), Some(42));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    offsets: BTreeMap<(String, i32), i64>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

impl Checkpoint {
    /// The offset checkpointed for `topic`/`partition`.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(&(topic.to_string(), partition)).copied()
    }

    /// Records `offset` for `topic`/`partition`.
    pub fn set(&mut self, topic: &str, partition: i32, offset: i64) {
        self.offsets.insert((topic.to_string(), partition), offset);
    }

    /// Forgets `topic`/`partition` (e.g. its store was wiped).
    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.remove(&(topic.to_string(), partition))
    }

    /// Every entry, ordered by topic and partition.
    pub fn offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.offsets.iter().map(|((t, p), o)| (t.as_str(), *p, *o))
    }

    /// Whether nothing is checkpointed.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Parses the file's text; the error says what is malformed.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(v) if v.trim() == VERSION => {}
            Some(v) => return Err(format!("unknown checkpoint version `{v}`")),
            None => return Err("empty checkpoint file".into()),
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| "missing or malformed entry count".to_string())?;
        let mut offsets = BTreeMap::new();
        for (i, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [topic, partition, offset] = parts.as_slice() else {
                return Err(format!("entry {} `{line}` is not `<topic> <partition> <offset>`", i + 1));
            };
            let partition: i32 = partition.parse().map_err(|_| format!("bad partition in `{line}`"))?;
            let offset: i64 = offset.parse().map_err(|_| format!("bad offset in `{line}`"))?;
            if offset < 0 {
                return Err(format!("negative offset in `{line}`"));
            }
            offsets.insert((topic.to_string(), partition), offset);
        }
        if offsets.len() != count {
            return Err(format!("header says {count} entries, file has {}", offsets.len()));
        }
        Ok(Checkpoint { offsets })
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{VERSION}\n{}\n", self.offsets.len());
        for ((topic, partition), offset) in &self.offsets {
            out.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        out
    }

    /// Reads `<task_dir>/.checkpoint`: `None` if there is none, [`StateError::Corrupt`] if malformed.
    pub fn read(task_dir: &Path) -> StateResult<Option<Checkpoint>> {
        let path = task_dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let text = String::from_utf8(text).map_err(|_| StateError::Corrupt {
            store: path.display().to_string(),
            detail: "checkpoint is not UTF-8".into(),
        })?;
        Checkpoint::parse(&text)
            .map(Some)
            .map_err(|detail| StateError::Corrupt { store: path.display().to_string(), detail })
    }

    /// Writes `<task_dir>/.checkpoint` atomically (temp file, fsync, rename, fsync of the folder).
    pub fn write(&self, task_dir: &Path) -> StateResult<()> {
        std::fs::create_dir_all(task_dir).map_err(io_err(task_dir))?;
        let path = task_dir.join(CHECKPOINT_FILE);
        let tmp = task_dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        {
            let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
            file.write_all(self.to_text().as_bytes()).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(dir) = std::fs::File::open(task_dir) {
            // Makes the rename durable on file systems that need it; not all platforms allow it.
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Deletes the checkpoint file, if any.
    pub fn delete(task_dir: &Path) -> StateResult<()> {
        let path = task_dir.join(CHECKPOINT_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let mut cp = Checkpoint::default();
        cp.set("a-changelog", 0, 10);
        cp.set("b-changelog", 2, 0);
        assert_eq!(Checkpoint::parse(&cp.to_text()), Ok(cp.clone()));
        assert_eq!(cp.to_text(), "0\n2\na-changelog 0 10\nb-changelog 2 0\n");
    }

    #[test]
    fn malformed_text_is_rejected() {
        for bad in ["", "1\n0\n", "0\nx\n", "0\n1\ntopic 0\n", "0\n2\nt 0 5\n", "0\n1\nt p 5\n", "0\n1\nt 0 -3\n"] {
            assert!(Checkpoint::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn write_replaces_and_read_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), None);
        let mut cp = Checkpoint::default();
        cp.set("t", 1, 5);
        cp.write(dir.path()).unwrap();
        cp.set("t", 1, 9);
        cp.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap().and_then(|c| c.get("t", 1)), Some(9));
        assert!(!dir.path().join(".checkpoint.tmp").exists());
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"0\n3\nt 1 9\n").unwrap();
        assert!(matches!(Checkpoint::read(dir.path()), Err(StateError::Corrupt { .. })));
    }
}
