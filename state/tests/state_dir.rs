//! State directory locking, checkpoints and recovery from damage.

use kstreams_state::checkpoint::CHECKPOINT_FILE;
use kstreams_state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams_state::store::KeyValueBytesStore;
use kstreams_state::{Checkpoint, StateDirectory, StateError};

#[test]
fn second_user_of_a_state_dir_gets_locked_error_with_pid() {
    let root = tempfile::tempdir().unwrap();
    let first = StateDirectory::open(root.path(), "app").unwrap();
    match StateDirectory::open(root.path(), "app") {
        Err(StateError::Locked { path, holder }) => {
            assert_eq!(path, root.path().join("app"));
            assert_eq!(holder, std::process::id().to_string());
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // Another application in the same state.dir is independent.
    let other = StateDirectory::open(root.path(), "other-app").unwrap();
    drop(other);
    drop(first);
    // Released on drop.
    StateDirectory::open(root.path(), "app").unwrap();
}

#[test]
fn task_dirs_are_created_and_listed() {
    let root = tempfile::tempdir().unwrap();
    let dir = StateDirectory::open(root.path(), "app").unwrap();
    let t = dir.task_dir("1_0").unwrap();
    dir.task_dir("0_3").unwrap();
    assert!(t.is_dir());
    assert_eq!(dir.task_ids().unwrap(), vec!["0_3".to_string(), "1_0".to_string()]);
    dir.wipe_task("1_0").unwrap();
    assert_eq!(dir.task_ids().unwrap(), vec!["0_3".to_string()]);
}

#[test]
fn corrupt_checkpoint_wipes_the_task_stores() {
    let root = tempfile::tempdir().unwrap();
    let dir = StateDirectory::open(root.path(), "app").unwrap();
    let task = dir.task_dir("0_0").unwrap();
    let store_path = task.join("rocksdb").join("counts");
    {
        let mut s = RocksDbKeyValueStore::open("counts", &store_path, &RocksDbResources::shared_default()).unwrap();
        s.put(b"k", Some(b"v")).unwrap();
    }
    let mut cp = Checkpoint::default();
    cp.set("app-counts-changelog", 0, 17);
    cp.write(&task).unwrap();
    assert_eq!(dir.load_checkpoint(&task).unwrap().get("app-counts-changelog", 0), Some(17));
    assert!(store_path.exists(), "a valid checkpoint leaves stores alone");

    std::fs::write(task.join(CHECKPOINT_FILE), b"0\n1\nnot a valid line at all\n").unwrap();
    let cp = dir.load_checkpoint(&task).unwrap();
    assert!(cp.is_empty());
    assert!(!store_path.exists(), "stores of a corrupt checkpoint are wiped");
    assert!(!task.join(CHECKPOINT_FILE).exists());
}

#[test]
fn half_created_store_folder_is_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("s");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("000001.sst"), b"junk").unwrap();
    let s = RocksDbKeyValueStore::open("s", &path, &RocksDbResources::shared_default()).unwrap();
    assert!(s.was_fresh());
    assert!(!path.join("000001.sst").exists());
    assert_eq!(s.get(b"k").unwrap(), None);
}
