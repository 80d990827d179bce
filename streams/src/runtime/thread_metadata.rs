//! What each local stream thread runs, as Kafka Streams' `KafkaStreams::metadataForLocalThreads`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::task::TaskId;

/// The tasks of one stream thread of this instance.
///
/// ```no_run
/// # use kstreams_streams::runtime::KafkaStreams;
/// # fn f(app: &KafkaStreams) {
/// for thread in app.metadata_for_local_threads() {
///     println!("{}: active {:?}, standby {:?}", thread.thread_name, thread.active_tasks, thread.standby_tasks);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadMetadata {
    /// `<application.id>-StreamThread-<n>`.
    pub thread_name: String,
    /// Tasks running on the thread.
    pub active_tasks: BTreeSet<TaskId>,
    /// Standby tasks the thread keeps warm.
    pub standby_tasks: BTreeSet<TaskId>,
}

/// Where a thread's task manager publishes its tasks.
pub(crate) type ThreadMetadataSlot = Arc<Mutex<ThreadMetadata>>;
