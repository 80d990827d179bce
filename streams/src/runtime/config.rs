//! [`StreamsConfig`]: the settings of a Kafka Streams application, by Kafka Streams' names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::query::HostInfo;
use crate::runtime::java_security;

/// `at_least_once` or `exactly_once_v2`.
///
/// ```
/// use kstreams_streams::runtime::{ProcessingGuarantee, StreamsConfig};
/// let c = StreamsConfig::new().set("application.id", "app").set("bootstrap.servers", "localhost:9092");
/// assert_eq!(c.validate().unwrap().guarantee, ProcessingGuarantee::AtLeastOnce);
/// let eos = c.set("processing.guarantee", "exactly_once_v2").validate().unwrap();
/// assert_eq!(eos.guarantee, ProcessingGuarantee::ExactlyOnceV2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// Every input's effect is in the output at least once (duplicates after a crash).
    AtLeastOnce,
    /// Every input's effect is in the output exactly once (Kafka transactions).
    ExactlyOnceV2,
}

/// What to do when a processor fails (`processing.exception.handler`) or a record cannot be
/// produced (`default.production.exception.handler`).
///
/// ```
/// use kstreams_streams::runtime::{ExceptionHandler, StreamsConfig};
/// let c = StreamsConfig::new()
///     .set("application.id", "app")
///     .set("bootstrap.servers", "localhost:9092")
///     .set("processing.exception.handler", "log_and_continue")
///     .validate()
///     .unwrap();
/// assert_eq!(c.processing_handler, ExceptionHandler::LogAndContinue);
/// assert_eq!(c.production_handler, ExceptionHandler::LogAndFail);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExceptionHandler {
    /// Log it and stop the stream thread: the default.
    #[default]
    LogAndFail,
    /// Log it, count the record in `dropped-records`, and go on with the next one.
    LogAndContinue,
}

/// What to do with a record that cannot be deserialized (`default.deserialization.exception.handler`).
///
/// ```
/// use kstreams_streams::runtime::{DeserializationHandler, StreamsConfig};
/// let c = StreamsConfig::new()
///     .set("application.id", "app")
///     .set("bootstrap.servers", "localhost:9092")
///     .set("default.deserialization.exception.handler", "dead_letter_queue")
///     .set("errors.dead.letter.queue.topic.name", "app-dlq")
///     .validate()
///     .unwrap();
/// assert_eq!(c.deserialization_handler, DeserializationHandler::DeadLetterQueue { topic: "app-dlq".into() });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeserializationHandler {
    /// Log it and stop the stream thread (the application goes to ERROR): the default.
    LogAndFail,
    /// Log it, count it in `dropped-records`, and go on.
    LogAndContinue,
    /// Write its original bytes to the dead-letter topic, with headers naming topic, partition,
    /// offset and error, and go on.
    DeadLetterQueue {
        /// The dead-letter topic.
        topic: String,
    },
}

/// The settings of an application, keyed as in Kafka Streams. Settings kstreams does not know are
/// passed to librdkafka (for security, SASL, SSL…): unprefixed ones to every client, `consumer.`,
/// `producer.`, `admin.`, `restore.consumer.` and `global.consumer.` (the consumer that restores and
/// updates global stores) prefixed ones to that client only.
///
/// ```
/// use kstreams_streams::runtime::{StreamsConfig, ProcessingGuarantee};
/// let config = StreamsConfig::new()
///     .set("application.id", "word-count")
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .set("processing.guarantee", "exactly_once_v2");
/// let checked = config.validate().unwrap();
/// assert_eq!(checked.guarantee, ProcessingGuarantee::ExactlyOnceV2);
/// assert_eq!(checked.commit_interval.as_millis(), 100); // the exactly-once default
/// assert!(StreamsConfig::new().validate().unwrap_err().to_string().contains("application.id"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct StreamsConfig {
    props: BTreeMap<String, String>,
}

/// A checked configuration.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::runtime::StreamsConfig;
/// let c = StreamsConfig::new()
///     .set("application.id", "app")
///     .set("bootstrap.servers", "localhost:9092")
///     .set("num.stream.threads", "2")
///     .validate()
///     .unwrap();
/// assert_eq!((c.application_id.as_str(), c.num_stream_threads), ("app", 2));
/// assert_eq!(c.commit_interval, Duration::from_secs(30)); // the at-least-once default
/// ```
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// `application.id`: group id, prefix of internal topics and transactional ids.
    pub application_id: String,
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `processing.guarantee`.
    pub guarantee: ProcessingGuarantee,
    /// `num.stream.threads`.
    pub num_stream_threads: usize,
    /// `num.standby.replicas`: warm copies of each stateful task's stores kept on other instances
    /// (default 0).
    pub num_standby_replicas: usize,
    /// `commit.interval.ms` (30 s at least once, 100 ms exactly once, by default).
    pub commit_interval: Duration,
    /// `state.dir`.
    pub state_dir: PathBuf,
    /// `replication.factor` of internal topics (-1: the broker's default).
    pub replication_factor: i32,
    /// `max.task.idle.ms`: how long a task waits for an empty, caught-up input partition (`None`
    /// for -1: it never waits, not even for a partition known to have data on the broker).
    pub max_task_idle: Option<Duration>,
    /// `statestore.cache.max.bytes`.
    pub cache_max_bytes: u64,
    /// `poll.ms`.
    pub poll: Duration,
    /// `repartition.purge.interval.ms` (30 s by default): how often consumed records of repartition
    /// topics are deleted up to the committed offsets.
    pub repartition_purge_interval: Duration,
    /// `windowstore.changelog.additional.retention.ms` (1 day by default): how much longer than
    /// their store the changelogs of window and session stores keep records. The broker deletes
    /// by record timestamp, an event time: an application that processes data older than its
    /// windows' retention (a replay of history) must raise it, or its changelogs lose state.
    pub windowstore_changelog_additional_retention: Duration,
    /// `default.deserialization.exception.handler` (+ `errors.dead.letter.queue.topic.name`).
    pub deserialization_handler: DeserializationHandler,
    /// `processing.exception.handler`: `log_and_fail` (default) or `log_and_continue`.
    pub processing_handler: ExceptionHandler,
    /// `default.production.exception.handler`: `log_and_fail` (default) or `log_and_continue`.
    /// Under exactly-once a failed delivery aborts the transaction whatever this says; records
    /// refused before they are sent (too large for the client) are skipped.
    pub production_handler: ExceptionHandler,
    /// `task.timeout.ms` (Kafka Streams' setting, default 300 s): how long a task waits out a broker
    /// or partition leader that is away before failing; restoring a store from its changelog waits
    /// this long without progress.
    pub task_timeout: Duration,
    /// `group.instance.id` for static membership (suffixed with the thread index).
    pub group_instance_id: Option<String>,
    /// `metrics.http.address` (kstreams' own setting): where the built-in HTTP server listens
    /// (`/metrics`, `/health`, `/stores`), e.g. `0.0.0.0:9464`; port 0 picks a free port. Unset: it
    /// listens on `application.server` if that is set, and otherwise there is no HTTP server.
    pub metrics_http_address: Option<String>,
    /// `application.server` (Kafka Streams' setting): this instance's `host:port` for interactive
    /// queries. Other instances find it in the group's metadata and forward queries to it; kstreams'
    /// built-in HTTP server listens there (unless `metrics.http.address` gives another address).
    pub application_server: Option<HostInfo>,
    /// Settings passed to librdkafka: (client prefix or "", key, value).
    pub passthrough: Vec<(String, String, String)>,
}

const KNOWN: &[&str] = &[
    "application.id",
    "bootstrap.servers",
    "processing.guarantee",
    "num.stream.threads",
    "num.standby.replicas",
    "commit.interval.ms",
    "state.dir",
    "replication.factor",
    "max.task.idle.ms",
    "statestore.cache.max.bytes",
    "poll.ms",
    "default.deserialization.exception.handler",
    "errors.dead.letter.queue.topic.name",
    "group.instance.id",
    "metrics.http.address",
    "application.server",
    "repartition.purge.interval.ms",
    "windowstore.changelog.additional.retention.ms",
    "processing.exception.handler",
    "default.production.exception.handler",
    "task.timeout.ms",
];

/// Kafka Streams settings that kstreams does not take (yet), with what to do instead: set, they fail
/// [`StreamsConfig::validate`] rather than being passed to librdkafka, which does not know them either.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("default.key.serde", "serdes are typed in Rust: give them to Consumed, Produced, Grouped and Materialized"),
    ("default.value.serde", "serdes are typed in Rust: give them to Consumed, Produced, Grouped and Materialized"),
    ("default.timestamp.extractor", "give the extractor to Consumed::with_timestamp_extractor"),
    ("default.dsl.store", "RocksDB stores are the default; choose in-memory ones per store with Materialized"),
    ("dsl.store.suppliers.class", "choose stores per operation with Materialized"),
    ("rocksdb.config.setter", "not supported yet"),
    ("topology.optimization", "not supported yet: repartition topics are not merged"),
    ("acceptable.recovery.lag", "not supported yet: there are no warm-up replicas; use num.standby.replicas"),
    ("max.warmup.replicas", "not supported yet: there are no warm-up replicas; use num.standby.replicas"),
    ("probing.rebalance.interval.ms", "not supported yet: there are no warm-up replicas"),
    ("buffered.records.per.partition", "not supported yet: a partition pauses past 1000 buffered records"),
    ("state.cleanup.delay.ms", "not supported yet: state of tasks that moved away is kept"),
    ("upgrade.from", "not needed: there are no older kstreams protocols to upgrade from"),
    ("built.in.metrics.version", "not needed: the metrics have one version"),
    ("metrics.recording.level", "not supported yet: every metric is recorded"),
    ("cache.max.bytes.buffering", "renamed in Kafka Streams: use statestore.cache.max.bytes"),
    ("rack.aware.assignment.tags", "not supported yet"),
    ("rack.aware.assignment.strategy", "not supported yet"),
    ("default.deserialization.exception.handler.class", "use default.deserialization.exception.handler"),
    ("max.poll.records", "a Java consumer setting; librdkafka fetches by bytes: see fetch.max.bytes"),
    ("key.serializer", "serdes are typed in Rust: give them to Produced"),
    ("value.serializer", "serdes are typed in Rust: give them to Produced"),
    ("key.deserializer", "serdes are typed in Rust: give them to Consumed"),
    ("value.deserializer", "serdes are typed in Rust: give them to Consumed"),
];

const CLIENT_PREFIXES: &[&str] = &["consumer.", "producer.", "admin.", "restore.consumer.", "global.consumer."];

impl StreamsConfig {
    /// No settings.
    pub fn new() -> Self {
        StreamsConfig::default()
    }

    /// Sets `key` to `value`.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.props.insert(key.to_string(), value.into());
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: T, expected: &str) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| StreamsError::config(key, format!("`{v}` is not {expected}"))),
        }
    }

    /// Checks every setting; a missing or invalid one is an error that names it.
    pub fn validate(&self) -> Result<ValidConfig> {
        let required = |key: &str| -> Result<String> {
            match self.get(key).map(str::trim) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(StreamsError::config(key, "is required")),
            }
        };
        let application_id = required("application.id")?;
        if !application_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(StreamsError::config(
                "application.id",
                format!(
                    "`{application_id}` may contain only ASCII letters, digits, '.', '_' and '-' (it names topics)"
                ),
            ));
        }
        let bootstrap_servers = required("bootstrap.servers")?;
        let guarantee = match self.get("processing.guarantee").unwrap_or("at_least_once") {
            "at_least_once" => ProcessingGuarantee::AtLeastOnce,
            "exactly_once_v2" => ProcessingGuarantee::ExactlyOnceV2,
            other => {
                return Err(StreamsError::config(
                    "processing.guarantee",
                    format!("`{other}` is not one of at_least_once, exactly_once_v2"),
                ))
            }
        };
        let default_commit = match guarantee {
            ProcessingGuarantee::AtLeastOnce => 30_000,
            ProcessingGuarantee::ExactlyOnceV2 => 100,
        };
        let num_stream_threads: usize = self.parse("num.stream.threads", 1, "a whole number")?;
        if num_stream_threads == 0 {
            return Err(StreamsError::config("num.stream.threads", "must be at least 1"));
        }
        let num_standby_replicas: usize = self.parse("num.standby.replicas", 0, "a whole number (0 or more)")?;
        let commit_ms: u64 = self.parse("commit.interval.ms", default_commit, "a number of milliseconds")?;
        let state_dir = PathBuf::from(self.get("state.dir").unwrap_or("/tmp/kstreams"));
        let replication_factor: i32 = self.parse("replication.factor", -1, "a whole number")?;
        if replication_factor == 0 || replication_factor < -1 {
            return Err(StreamsError::config("replication.factor", "must be -1 (broker default) or at least 1"));
        }
        let max_task_idle: i64 = self.parse("max.task.idle.ms", 0, "a number of milliseconds, or -1")?;
        let max_task_idle = match max_task_idle {
            -1 => None,
            ms if ms >= 0 => Some(Duration::from_millis(ms.unsigned_abs())),
            _ => return Err(StreamsError::config("max.task.idle.ms", "must be -1 (never wait) or at least 0")),
        };
        let purge_ms: u64 = self.parse("repartition.purge.interval.ms", 30_000, "a number of milliseconds")?;
        let additional_retention_ms: u64 = self.parse(
            "windowstore.changelog.additional.retention.ms",
            kstreams_state::store::CHANGELOG_ADDITIONAL_RETENTION_MS.unsigned_abs(),
            "a number of milliseconds",
        )?;
        let cache_max_bytes: u64 = self.parse("statestore.cache.max.bytes", 10 * 1024 * 1024, "a number of bytes")?;
        let poll_ms: u64 = self.parse("poll.ms", 100, "a number of milliseconds")?;
        let task_timeout_ms: u64 = self.parse("task.timeout.ms", 300_000, "a number of milliseconds")?;
        let deserialization_handler =
            match self.get("default.deserialization.exception.handler").unwrap_or("log_and_fail") {
                "log_and_fail" | "LogAndFailExceptionHandler" => DeserializationHandler::LogAndFail,
                "log_and_continue" | "LogAndContinueExceptionHandler" => DeserializationHandler::LogAndContinue,
                "dead_letter_queue" => match self.get("errors.dead.letter.queue.topic.name") {
                    Some(t) if !t.trim().is_empty() => {
                        DeserializationHandler::DeadLetterQueue { topic: t.trim().to_string() }
                    }
                    _ => {
                        return Err(StreamsError::config(
                            "errors.dead.letter.queue.topic.name",
                            "is required when default.deserialization.exception.handler is dead_letter_queue",
                        ))
                    }
                },
                other => {
                    return Err(StreamsError::config(
                        "default.deserialization.exception.handler",
                        format!("`{other}` is not one of log_and_fail, log_and_continue, dead_letter_queue"),
                    ))
                }
            };
        let handler = |key: &str| -> Result<ExceptionHandler> {
            match self.get(key).map(str::trim) {
                None | Some("log_and_fail") => Ok(ExceptionHandler::LogAndFail),
                Some(v)
                    if v.ends_with("LogAndFailProcessingExceptionHandler")
                        || v.ends_with("DefaultProductionExceptionHandler") =>
                {
                    Ok(ExceptionHandler::LogAndFail)
                }
                Some("log_and_continue") => Ok(ExceptionHandler::LogAndContinue),
                Some(v)
                    if v.ends_with("LogAndContinueProcessingExceptionHandler")
                        || v.ends_with("LogAndContinueProductionExceptionHandler") =>
                {
                    Ok(ExceptionHandler::LogAndContinue)
                }
                Some(other) => {
                    Err(StreamsError::config(key, format!("`{other}` is not one of log_and_fail, log_and_continue")))
                }
            }
        };
        let application_server = match self.get("application.server").map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(HostInfo::parse(v).map_err(|e| {
                StreamsError::config(
                    "application.server",
                    format!("{e}: give this instance's host:port, e.g. 10.0.0.7:7070"),
                )
            })?),
        };
        let processing_handler = handler("processing.exception.handler")?;
        let production_handler = handler("default.production.exception.handler")?;
        // Settings for librdkafka, by client prefix; the Java client's security settings translated.
        let mut by_prefix: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in self.props.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())) {
            let prefix = CLIENT_PREFIXES.iter().find(|p| k.starts_with(*p)).copied().unwrap_or("");
            by_prefix.entry(prefix).or_default().insert(k[prefix.len()..].to_string(), v.clone());
        }
        let mut passthrough = Vec::new();
        for (prefix, settings) in by_prefix {
            for (key, value) in java_security::translate(prefix, settings)? {
                check_client_setting(prefix, &key, &value)?;
                passthrough.push((prefix.to_string(), key, value));
            }
        }
        Ok(ValidConfig {
            application_id,
            bootstrap_servers,
            guarantee,
            num_stream_threads,
            num_standby_replicas,
            commit_interval: Duration::from_millis(commit_ms),
            state_dir,
            replication_factor,
            max_task_idle,
            cache_max_bytes,
            poll: Duration::from_millis(poll_ms.max(1)),
            task_timeout: Duration::from_millis(task_timeout_ms),
            repartition_purge_interval: Duration::from_millis(purge_ms),
            windowstore_changelog_additional_retention: Duration::from_millis(additional_retention_ms),
            deserialization_handler,
            processing_handler,
            production_handler,
            group_instance_id: self.get("group.instance.id").map(str::to_string),
            metrics_http_address: self.get("metrics.http.address").map(str::to_string),
            application_server,
            passthrough,
        })
    }
}

/// Checks a setting that goes to librdkafka (`key` with its client `prefix` removed): a Kafka
/// Streams setting that kstreams does not take is refused with what to do instead, and librdkafka
/// itself checks the rest (an unknown key, a malformed value) now rather than when a client starts.
fn check_client_setting(prefix: &str, key: &str, value: &str) -> Result<()> {
    let full = format!("{prefix}{key}");
    if let Some((_, instead)) = UNSUPPORTED.iter().find(|(k, _)| *k == key || *k == full) {
        return Err(StreamsError::config(
            &full,
            format!("is a Kafka Streams setting kstreams does not take: {instead}"),
        ));
    }
    let mut client = rdkafka::ClientConfig::new();
    client.set(key, value);
    match client.create_native_config() {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) => Err(StreamsError::config(
            &full,
            format!(
                "{description} (settings that are not Kafka Streams ones go to librdkafka: see its CONFIGURATION.md)"
            ),
        )),
        Err(e) => Err(StreamsError::config(&full, e.to_string())),
    }
}

impl ValidConfig {
    /// librdkafka settings for a client: bootstrap servers, the unprefixed pass-through settings, then
    /// those with `prefix`.
    pub(crate) fn client_config(&self, prefix: &str) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (p, k, v) in &self.passthrough {
            if p.is_empty() {
                config.set(k, v);
            }
        }
        for (p, k, v) in &self.passthrough {
            if p == prefix {
                config.set(k, v);
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StreamsConfig {
        StreamsConfig::new().set("application.id", "app").set("bootstrap.servers", "localhost:9092")
    }

    #[test]
    fn settings_for_librdkafka_are_checked_when_validated() {
        // librdkafka's own settings pass, with or without a client prefix.
        let ok = base()
            .set("security.protocol", "plaintext")
            .set("consumer.fetch.wait.max.ms", "10")
            .set("producer.linger.ms", "5")
            .validate()
            .unwrap();
        assert_eq!(ok.passthrough.len(), 3);
        // An unknown key, a malformed value and a Kafka Streams setting kstreams does not take: each
        // error names the setting as the user wrote it.
        for (key, value, says) in [
            ("no.such.setting", "1", "No such configuration property"),
            ("consumer.fetch.wait.max.ms", "soon", "Invalid value"),
            ("producer.enable.idempotence", "maybe", "enable.idempotence"),
            ("topology.optimization", "all", "not supported yet"),
            ("default.key.serde", "org.apache.kafka.common.serialization.Serdes$StringSerde", "typed in Rust"),
            ("consumer.max.poll.records", "500", "fetch.max.bytes"),
        ] {
            let err = base().set(key, value).validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")) && err.contains(says), "{key}: {err}");
        }
    }

    #[test]
    fn window_changelogs_keep_a_day_beyond_their_store_unless_told() {
        let default = base().validate().unwrap();
        assert_eq!(default.windowstore_changelog_additional_retention, Duration::from_secs(86_400));
        let longer = base().set("windowstore.changelog.additional.retention.ms", "31536000000").validate().unwrap();
        assert_eq!(longer.windowstore_changelog_additional_retention.as_secs(), 365 * 86_400);
        let err = base().set("windowstore.changelog.additional.retention.ms", "a year").validate().unwrap_err();
        assert!(err.to_string().contains("windowstore.changelog.additional.retention.ms"), "{err}");
    }
}
