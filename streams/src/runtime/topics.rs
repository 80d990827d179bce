//! Internal topics: partition counts are derived from the source topics and the topics are created
//! at start through the admin API, as Kafka Streams does.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::error::{Result, StreamsError};
use crate::runtime::config::ValidConfig;
use crate::topology::Topology;

/// Partition counts of the topics in `names`, from the cluster's metadata (missing topics are absent).
pub(crate) fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    names: &[String],
) -> Result<HashMap<String, i32>> {
    let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(10))?;
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
    let admin: AdminClient<DefaultClientContext> = config.client_config("admin.").create()?;
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
    let known = partition_counts(&admin, &external)?;
    let missing: Vec<&String> = external.iter().filter(|t| !known.contains_key(*t)).collect();
    if !missing.is_empty() {
        return Err(StreamsError::Topology(format!(
            "source topics {missing:?} do not exist: create them before starting the application"
        )));
    }
    let counts = topology.resolve_partition_counts(&known)?;
    let full = |name: &str| format!("{}-{name}", config.application_id);
    let internal_full: Vec<String> = internal.keys().map(|n| full(n)).collect();
    let existing = partition_counts(&admin, &internal_full)?;
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
        while partition_counts(&admin, &names)?.len() < names.len() {
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
