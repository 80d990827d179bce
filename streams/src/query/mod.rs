//! Interactive queries: reading a running application's state stores, on this instance or on the one
//! that hosts a key.
//!
//! As in Kafka Streams, an instance answers for the partitions its tasks own: [`KafkaStreams::store`]
//! gives a read-only view over every local copy of a store, and [`KafkaStreams::query_metadata_for_key`]
//! names the instance (its `application.server`) that hosts a key, so that a query can go there. The
//! built-in HTTP server (see the `runtime` module) does both: `GET /stores/<store>/keys/<key>` answers
//! from any instance, forwarding to the owner.
//!
//! Reads see what the task has written (committed or newer). While a store is restoring, or its
//! partition is moving between instances, a read fails with a retryable
//! [`StreamsError::InvalidStateStore`] (Kafka Streams' `InvalidStateStoreException`): retry after a
//! moment, asking the metadata again.
//!
//! ```no_run
//! use kstreams_streams::query::{QueryableStoreTypes, StoreQueryParameters};
//! use kstreams_streams::runtime::KafkaStreams;
//! use kstreams_streams::serde::Serdes;
//! # fn f(app: &KafkaStreams) -> kstreams_streams::Result<()> {
//! let counts = app.store(StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>()))?;
//! match counts.get(&"apple".to_string()) {
//!     Ok(count) => println!("apple: {count:?}"),
//!     Err(e) if e.is_retryable() => println!("try again: {e}"),
//!     Err(e) => return Err(e),
//! }
//! let owner = app.query_metadata_for_key("counts", &"apple".to_string(), &Serdes::string())?;
//! println!("apple lives on {} (partition {})", owner.active_host, owner.partition);
//! # Ok(()) }
//! ```
//!
//! [`KafkaStreams::store`]: crate::runtime::KafkaStreams::store
//! [`KafkaStreams::query_metadata_for_key`]: crate::runtime::KafkaStreams::query_metadata_for_key

pub(crate) mod codec;
pub(crate) mod discovery;
pub(crate) mod local;
mod views;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kstreams_state::StoreKind;

pub use views::{
    KeyValueType, QueryableStoreType, QueryableStoreTypes, ReadOnlyKeyValueStore, ReadOnlySessionStore,
    ReadOnlyWindowStore, SessionType, StoreQueryParameters, WindowType,
};

use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::partitioner::default_partition;
use crate::record::Data;
use crate::runtime::State;
use crate::serde::SharedSerde;
use codec::ErasedStoreSerdes;
use discovery::Discovery;
use local::LocalStores;

/// An instance's endpoint: its `application.server`, as Kafka Streams' `HostInfo`.
///
/// ```
/// use kstreams_streams::query::HostInfo;
/// let host = HostInfo::parse("127.0.0.1:7070").unwrap();
/// assert_eq!((host.host.as_str(), host.port), ("127.0.0.1", 7070));
/// assert_eq!(host.to_string(), "127.0.0.1:7070");
/// assert!(HostInfo::parse("no-port").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostInfo {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostInfo {
    /// An endpoint.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostInfo { host: host.into(), port }
    }

    /// Reads `host:port`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("`{text}` is not host:port"))?;
        let port: u16 = port.parse().map_err(|_| format!("`{text}`: the port is not a number from 0 to 65535"))?;
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        Ok(HostInfo::new(host, port))
    }
}

impl std::fmt::Display for HostInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where a key of a store lives, as Kafka Streams' `KeyQueryMetadata`.
///
/// ```
/// use kstreams_streams::query::{HostInfo, KeyQueryMetadata};
/// let m = KeyQueryMetadata { active_host: HostInfo::new("10.0.0.1", 7070), standby_hosts: vec![], partition: 3 };
/// assert_eq!(m.partition, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    /// The instance whose active task holds the key.
    pub active_host: HostInfo,
    /// Instances that keep standby copies of the key's partition.
    pub standby_hosts: Vec<HostInfo>,
    /// The key's partition (= the task's partition).
    pub partition: i32,
}

/// What one instance hosts, as Kafka Streams' `StreamsMetadata`.
///
/// ```
/// use std::collections::BTreeSet;
/// use kstreams_streams::query::{HostInfo, StreamsMetadata};
/// let m = StreamsMetadata {
///     host_info: HostInfo::new("10.0.0.1", 7070),
///     state_store_names: BTreeSet::from(["counts".to_string()]),
///     topic_partitions: BTreeSet::from([("words".to_string(), 0)]),
/// };
/// assert!(m.state_store_names.contains("counts"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsMetadata {
    /// The instance's `application.server`.
    pub host_info: HostInfo,
    /// The stores its active tasks hold.
    pub state_store_names: BTreeSet<String>,
    /// The input partitions assigned to it.
    pub topic_partitions: BTreeSet<(String, i32)>,
}

/// What queries need to know of one store of the topology.
pub(crate) struct StoreInfo {
    pub kind: StoreKind,
    /// `<application.id>-<store>-changelog`: what its serdes are told.
    pub changelog_topic: String,
    /// Its sub-topology's source topics (full names): a key's partition is theirs.
    pub source_topics: Vec<String>,
    /// How many partitions (tasks) the store has.
    pub partitions: i32,
    pub serdes: Arc<dyn ErasedStoreSerdes>,
    /// A global store: every instance holds all of it.
    pub global: bool,
}

/// Everything a query reads: the topology's stores, the local copies, the group's assignment.
pub(crate) struct QueryContext {
    pub stores: HashMap<String, StoreInfo>,
    pub local: Arc<LocalStores>,
    /// The group's assignment; `None` without `application.server` (no instance can be found).
    pub discovery: Option<Discovery>,
    /// This instance's `application.server`.
    pub endpoint: Option<HostInfo>,
    pub state: Arc<dyn Fn() -> State + Send + Sync>,
}

impl QueryContext {
    pub fn info(&self, store: &str) -> Result<&StoreInfo> {
        self.stores.get(store).ok_or_else(|| {
            let mut known: Vec<&str> = self.stores.keys().map(String::as_str).collect();
            known.sort_unstable();
            StreamsError::InvalidStateStore {
                store: store.to_string(),
                reason: format!("the topology has no store of that name (its stores: {})", known.join(", ")),
                retryable: false,
            }
        })
    }

    /// Fails with a retryable error unless the application is running or rebalancing.
    pub fn check_running(&self, store: &str) -> Result<State> {
        let state = (self.state)();
        match state {
            State::Running | State::Rebalancing => Ok(state),
            State::Created => Err(unavailable(store, "the application has not started yet", true)),
            // Its tasks are moving to the other instances: asking again finds them there.
            State::PendingShutdown => Err(unavailable(store, "this instance is shutting down", true)),
            other => Err(unavailable(store, &format!("the application is {other:?}"), false)),
        }
    }

    /// The partition of `key` in `store`.
    pub fn partition_of(&self, info: &StoreInfo, key_bytes: &[u8]) -> i32 {
        default_partition(key_bytes, info.partitions)
    }

    /// Who hosts the key whose serialized form is `key_bytes`.
    pub fn metadata_for_key_bytes(&self, store: &str, key_bytes: &[u8]) -> Result<KeyQueryMetadata> {
        let info = self.info(store)?;
        self.check_running(store)?;
        if info.global {
            // Every instance holds a global store: ask this one (as Kafka Streams answers).
            let active_host = self.endpoint.clone().ok_or_else(|| no_endpoint(store))?;
            return Ok(KeyQueryMetadata { active_host, standby_hosts: Vec::new(), partition: -1 });
        }
        let partition = self.partition_of(info, key_bytes);
        let discovery = self.discovery.as_ref().ok_or_else(|| no_endpoint(store))?;
        let view = discovery.view()?;
        if !view.stable {
            return Err(unavailable(store, &format!("the group is rebalancing ({})", view.state), true));
        }
        let Some((active, standbys)) = info.source_topics.iter().find_map(|t| view.hosts(t, partition)) else {
            return Err(unavailable(store, &format!("no instance owns partition {partition} right now"), true));
        };
        let standby_hosts = standbys.iter().filter_map(|m| m.endpoint.clone()).collect();
        match active.endpoint.clone() {
            Some(active_host) => Ok(KeyQueryMetadata { active_host, standby_hosts, partition }),
            None => Err(unavailable(
                store,
                &format!("partition {partition} is owned by an instance without `application.server`"),
                false,
            )),
        }
    }

    /// What every instance hosts.
    pub fn all_metadata(&self) -> Result<Vec<StreamsMetadata>> {
        let discovery = self.discovery.as_ref().ok_or_else(|| no_endpoint("*"))?;
        let view = discovery.view()?;
        if !view.stable {
            return Err(unavailable("*", &format!("the group is rebalancing ({})", view.state), true));
        }
        let mut by_host: std::collections::BTreeMap<HostInfo, StreamsMetadata> = Default::default();
        for (task, member) in &view.placement.active {
            let Some(host) = &member.endpoint else { continue };
            let entry = by_host.entry(host.clone()).or_insert_with(|| StreamsMetadata {
                host_info: host.clone(),
                state_store_names: BTreeSet::new(),
                topic_partitions: BTreeSet::new(),
            });
            for (topic, partition) in view.layout.tasks.get(task).into_iter().flatten() {
                entry.topic_partitions.insert((topic.clone(), *partition));
                for (name, info) in &self.stores {
                    if info.source_topics.contains(topic) {
                        entry.state_store_names.insert(name.clone());
                    }
                }
            }
        }
        Ok(by_host.into_values().collect())
    }
}

fn unavailable(store: &str, reason: &str, retryable: bool) -> StreamsError {
    StreamsError::InvalidStateStore { store: store.to_string(), reason: reason.to_string(), retryable }
}

fn no_endpoint(store: &str) -> StreamsError {
    unavailable(
        store,
        "instances can only be found with `application.server` set (host:port of this instance's HTTP server)",
        false,
    )
}

/// Serializes `key` as the store's input topic sees it, for partitioning.
pub(crate) fn key_bytes<K: Data>(info: &StoreInfo, store: &str, key: &K, serde: &SharedSerde<K>) -> Result<Vec<u8>> {
    let topic = info.source_topics.first().map(String::as_str).unwrap_or(store);
    serde
        .serialize(topic, &Headers::new(), key)
        .map_err(|source| StreamsError::Serialization { target: topic.to_string(), source: Box::new(source) })?
        .ok_or_else(|| unavailable(store, "the key serializes to null, which no partition holds", false))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use kstreams_state::layers::SharedStore;
    use kstreams_state::memory::InMemoryKeyValueStore;
    use kstreams_state::StoreHandle;

    use super::codec::StoreSerdes;
    use super::*;
    use crate::serde::Serdes;

    /// Two partitions of `counts`; this instance holds partition `held` (active) and, if given,
    /// `restoring`.
    fn context(held: i32, restoring: Option<i32>, state: Arc<Mutex<State>>) -> (Arc<QueryContext>, SharedStore) {
        let local = Arc::new(LocalStores::default());
        let names = ["counts".to_string()];
        let (_, shared) = SharedStore::share(StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("counts"))));
        local.activate("counts", held, shared.clone());
        if let Some(p) = restoring {
            local.restoring(&names, p);
        }
        let info = StoreInfo {
            kind: StoreKind::KeyValue,
            changelog_topic: "app-counts-changelog".into(),
            source_topics: vec!["words".into()],
            partitions: 2,
            serdes: Arc::new(StoreSerdes { key: Serdes::string(), value: Serdes::i64() }),
            global: false,
        };
        let ctx = QueryContext {
            stores: HashMap::from([("counts".to_string(), info)]),
            local,
            discovery: None,
            endpoint: None,
            state: Arc::new(move || *state.lock().unwrap()),
        };
        (Arc::new(ctx), shared)
    }

    /// A key of each partition (partitioned as the producer does).
    fn key_of(partition: i32) -> String {
        (0..).map(|i| format!("k{i}")).find(|k| default_partition(k.as_bytes(), 2) == partition).unwrap()
    }

    fn put(shared: &SharedStore, key: &str, count: i64) {
        let SharedStore::KeyValue(s) = shared else { panic!("a key-value store") };
        s.lock().unwrap().put(key.as_bytes(), Some(&count.to_be_bytes())).unwrap();
    }

    fn counts(ctx: &Arc<QueryContext>) -> ReadOnlyKeyValueStore<String, i64> {
        StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
            .open(ctx.clone())
            .unwrap()
    }

    #[test]
    fn a_standby_copy_answers_stale_queries_only() {
        let state = Arc::new(Mutex::new(State::Running));
        let (ctx, active) = context(0, None, state);
        let (_, standby) = SharedStore::share(StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("counts"))));
        ctx.local.standby("counts", 1, standby.clone());
        let (mine, warm) = (key_of(0), key_of(1));
        put(&active, &mine, 3);
        put(&standby, &warm, 7);
        let view = counts(&ctx);
        let refused = view.get(&warm).unwrap_err();
        assert!(!refused.is_retryable() && refused.to_string().contains("standby"), "{refused}");
        assert_eq!(view.all().unwrap(), vec![(mine.clone(), 3)], "a fresh view reads active copies only");
        let stale = StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
            .enable_stale_stores()
            .open(ctx.clone())
            .unwrap();
        assert_eq!(stale.get(&warm).unwrap(), Some(7));
        assert_eq!(stale.approximate_num_entries().unwrap(), 2);
    }

    #[test]
    fn a_key_is_read_from_its_partition_and_only_there() {
        let state = Arc::new(Mutex::new(State::Running));
        let (ctx, shared) = context(0, None, state.clone());
        let (mine, theirs) = (key_of(0), key_of(1));
        put(&shared, &mine, 3);
        let view = counts(&ctx);
        assert_eq!(view.get(&mine).unwrap(), Some(3));
        let elsewhere = view.get(&theirs).unwrap_err();
        assert!(!elsewhere.is_retryable() && elsewhere.to_string().contains("partition 1"), "{elsewhere}");
        // While the group rebalances, a missing partition may be on its way here.
        *state.lock().unwrap() = State::Rebalancing;
        assert!(view.get(&theirs).unwrap_err().is_retryable());
        assert_eq!(view.all().unwrap(), vec![(mine.clone(), 3)]);
        assert_eq!(view.approximate_num_entries().unwrap(), 1);
        // A view limited to the other partition holds nothing of this key.
        let limited = StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
            .with_partition(1)
            .open(ctx.clone())
            .unwrap();
        assert_eq!(limited.get(&mine).unwrap(), None);
    }

    #[test]
    fn restoring_copies_and_stopped_applications_refuse() {
        let state = Arc::new(Mutex::new(State::Running));
        let (ctx, _) = context(0, Some(1), state.clone());
        let view = counts(&ctx);
        let restoring = view.get(&key_of(1)).unwrap_err();
        assert!(restoring.is_retryable() && restoring.to_string().contains("restoring"), "{restoring}");
        assert!(view.all().unwrap_err().is_retryable(), "a scan waits for every local copy");
        let stale = StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
            .enable_stale_stores()
            .open(ctx.clone())
            .unwrap();
        assert_eq!(stale.all().unwrap(), vec![], "stale reads skip the restoring copy");
        *state.lock().unwrap() = State::NotRunning;
        assert!(!view.get(&key_of(0)).unwrap_err().is_retryable());
    }

    #[test]
    fn wrong_names_types_and_shapes_are_final_errors() {
        let (ctx, _) = context(0, None, Arc::new(Mutex::new(State::Running)));
        let unknown = StoreQueryParameters::from_store_name("nope", QueryableStoreTypes::key_value::<String, i64>())
            .open(ctx.clone())
            .err()
            .unwrap();
        assert!(!unknown.is_retryable() && unknown.to_string().contains("counts"), "{unknown}");
        let typed = StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, String>())
            .open(ctx.clone())
            .err()
            .unwrap();
        assert!(typed.to_string().contains("i64") || typed.to_string().contains("String"), "{typed}");
        let shaped =
            StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::window_store::<String, i64>())
                .open(ctx.clone())
                .err()
                .unwrap();
        assert!(shaped.to_string().contains("key-value"), "{shaped}");
        let metadata = ctx.metadata_for_key_bytes("counts", b"k").unwrap_err();
        assert!(metadata.to_string().contains("application.server"), "{metadata}");
    }

    #[test]
    fn keys_come_from_json_or_text() {
        let serdes: Arc<dyn codec::ErasedStoreSerdes> =
            Arc::new(StoreSerdes { key: Serdes::string(), value: Serdes::i64() });
        assert_eq!(serdes.key_from_text("t", "42").unwrap(), b"42", "a number is not a string: the text is");
        assert_eq!(serdes.key_from_text("t", "\"a b\"").unwrap(), b"a b");
        assert_eq!(serdes.value_to_json("t", &7i64.to_be_bytes()).unwrap(), serde_json::json!(7));
        let numbers: Arc<dyn codec::ErasedStoreSerdes> =
            Arc::new(StoreSerdes { key: Serdes::i64(), value: Serdes::string() });
        assert_eq!(numbers.key_from_text("t", "42").unwrap(), 42i64.to_be_bytes());
        assert!(numbers.key_from_text("t", "forty-two").is_err());
    }
}
