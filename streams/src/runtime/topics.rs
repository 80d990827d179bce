//! Internal topics: partition counts are derived from the source topics and the topics are created
//! at start through the admin API, as Kafka Streams does.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;

use crate::error::{Result, StreamsError};
use crate::runtime::config::ValidConfig;
use crate::runtime::connection::ConnectionCtx;
use crate::topology::Topology;

/// Reads the metadata; a consumer (without a group), because polling it serves librdkafka's error
/// events, where authentication and TLS failures are told.
type Probe = BaseConsumer<ConnectionCtx>;

/// How long the metadata may take to come back at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster's metadata (of `topic` only, or of every topic the client may see). Asked in short
/// slices: a client that the brokers refuse (wrong credentials, an untrusted
/// certificate) fails as soon as librdkafka says so, with its reason.
fn metadata(probe: &Probe, bootstrap: &str, topic: Option<&str>) -> Result<Metadata> {
    let deadline = Instant::now() + METADATA_TIMEOUT;
    loop {
        let result = probe.fetch_metadata(topic, Duration::from_millis(250));
        // Serves the error events (nothing is assigned: no record comes).
        let _ = probe.poll(Duration::ZERO);
        if let Some(cause) = probe.context().refused() {
            return Err(StreamsError::Refused { bootstrap: bootstrap.to_string(), cause });
        }
        match result {
            Ok(metadata) => return Ok(metadata),
            Err(e) if Instant::now() < deadline && StreamsError::Kafka(e.clone()).waits_for_broker() => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Partition counts of the topics in `names`, from the cluster's metadata (missing topics are absent).
fn partition_counts(probe: &Probe, bootstrap: &str, names: &[String]) -> Result<HashMap<String, i32>> {
    let metadata = metadata(probe, bootstrap, None)?;
    let wanted: HashSet<&String> = names.iter().collect();
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && wanted.contains(&t.name().to_string()) && !t.partitions().is_empty())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// Checks the source topics (global stores' topics included) exist, derives every internal topic's
/// partition count, creates the internal topics that do not exist yet, and returns the partition
/// count of every topic by its full name.
pub(crate) fn prepare(topology: &Topology, config: &ValidConfig) -> Result<HashMap<String, i32>> {
    let probe: Probe = config.client_config("admin.").create_with_context(ConnectionCtx::default())?;
    let bootstrap = config.bootstrap_servers.as_str();
    let additional = i64::try_from(config.windowstore_changelog_additional_retention.as_millis()).unwrap_or(i64::MAX);
    let internal: HashMap<String, crate::topology::InternalTopic> =
        topology.internal_topics_with(additional).into_iter().map(|t| (t.name.clone(), t)).collect();
    let external: Vec<String> = topology
        .subtopologies()
        .iter()
        .flat_map(|s| s.source_topics.iter())
        .filter(|t| !internal.contains_key(*t))
        .cloned()
        .chain(topology.global.iter().map(|g| g.topic.clone()))
        .collect();
    let known = partition_counts(&probe, bootstrap, &external)?;
    let missing: Vec<&String> = external.iter().filter(|t| !known.contains_key(*t)).collect();
    // A topic the application may not describe is left out of the metadata of all topics: asked by
    // name, the broker says why.
    for topic in &missing {
        let asked = metadata(&probe, bootstrap, Some(topic))?;
        if let Some(error) = asked.topics().iter().find_map(|t| t.error()) {
            let code = RDKafkaErrorCode::from(error);
            if code == RDKafkaErrorCode::TopicAuthorizationFailed {
                return Err(StreamsError::Refused {
                    bootstrap: bootstrap.to_string(),
                    cause: format!(
                        "not authorized to describe topic `{topic}` ({code}): grant the application's principal \
                         READ and DESCRIBE on it"
                    ),
                });
            }
        }
    }
    if !missing.is_empty() {
        return Err(StreamsError::Topology(format!(
            "source topics {missing:?} do not exist: create them before starting the application"
        )));
    }
    let counts = topology.resolve_partition_counts(&known)?;
    let full = |name: &str| format!("{}-{name}", config.application_id);
    let internal_full: Vec<String> = internal.keys().map(|n| full(n)).collect();
    let existing = partition_counts(&probe, bootstrap, &internal_full)?;
    let mut to_create = Vec::new();
    for (name, topic) in &internal {
        let Some(&partitions) = counts.get(name) else {
            return Err(StreamsError::Topology(format!(
                "cannot derive the partition count of internal topic `{name}`"
            )));
        };
        let real = full(name);
        match existing.get(&real) {
            Some(&n) if n != partitions => {
                return Err(StreamsError::Topology(format!(
                    "internal topic `{real}` has {n} partitions but the topology needs {partitions}; \
                     reset the application (delete its internal topics) after changing partition counts"
                )))
            }
            Some(_) => {}
            None => to_create.push((real, partitions, topic.configs.clone())),
        }
    }
    if !to_create.is_empty() {
        let admin: AdminClient<DefaultClientContext> = config.client_config("admin.").create()?;
        let new_topics: Vec<NewTopic<'_>> = to_create
            .iter()
            .map(|(name, partitions, configs)| {
                configs.iter().fold(
                    NewTopic::new(name, *partitions, TopicReplication::Fixed(config.replication_factor)),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the admin runtime: {e}")))?;
        let results = runtime.block_on(
            admin.create_topics(&new_topics, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))),
        )?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = %name, "created internal topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(StreamsError::IllegalState(format!("cannot create internal topic `{name}`: {code}")))
                }
            }
        }
        // Wait until the new topics show up in metadata, so the first produce finds them.
        let names: Vec<String> = to_create.iter().map(|(n, _, _)| n.clone()).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while partition_counts(&probe, bootstrap, &names)?.len() < names.len() {
            if Instant::now() > deadline {
                return Err(StreamsError::IllegalState(format!(
                    "internal topics {names:?} did not appear within 30 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(counts.into_iter().map(|(t, n)| if internal.contains_key(&t) { (full(&t), n) } else { (t, n) }).collect())
}
