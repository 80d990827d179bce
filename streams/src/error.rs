//! The errors of building and running a topology.

use crate::serde::SerdeError;
use kstreams_state::StateError;

/// Result of a kstreams operation.
///
/// ```
/// use kstreams_streams::dsl::StreamsBuilder;
/// fn build() -> kstreams_streams::Result<kstreams_streams::topology::Topology> {
///     StreamsBuilder::new().build()
/// }
/// assert!(build().is_err(), "an empty topology does not validate");
/// ```
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

/// A boxed error from user code.
///
/// ```
/// use kstreams_streams::error::BoxError;
/// let e: BoxError = "not a number".into();
/// assert_eq!(e.to_string(), "not a number");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, and what to do about it.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::StreamsError;
/// let builder = StreamsBuilder::new();
/// // A value type with no default serde, and none given.
/// builder.stream::<String, std::time::Duration>("in", Consumed::default()).to("out", Produced::default());
/// let err = builder.build().err().unwrap();
/// assert!(matches!(err, StreamsError::Topology(ref why) if why.contains("no serde")));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// A configuration setting is missing or invalid.
    #[error("invalid setting `{setting}`: {reason}")]
    Config {
        /// The setting's name, as in Kafka Streams (`application.id`, …).
        setting: String,
        /// Why it is invalid and what is expected.
        reason: String,
    },
    /// The topology is malformed (unknown parent, duplicate name, type mismatch, …).
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A record could not be deserialized.
    #[error("cannot deserialize the {part} of the record at {topic}-{partition}@{offset}: {source}")]
    Deserialization {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
        /// "key" or "value".
        part: &'static str,
        /// The serde's error.
        #[source]
        source: Box<SerdeError>,
    },
    /// A record could not be serialized for a topic or store.
    #[error("cannot serialize for `{target}`: {source}")]
    Serialization {
        /// The topic or store.
        target: String,
        /// The serde's error.
        #[source]
        source: Box<SerdeError>,
    },
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The Kafka client failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A processor received a record of a type it does not take (a topology wiring mistake).
    #[error("processor `{node}` expects {expected} but received a record of another type; check the serdes and the parents wired to it")]
    TypeMismatch {
        /// The processor.
        node: String,
        /// The type it expects.
        expected: &'static str,
    },
    /// A processor accessed a store it is not connected to, or a store of another kind.
    #[error("processor `{node}` cannot use store `{store}`: {reason}")]
    StoreAccess {
        /// The processor.
        node: String,
        /// The store.
        store: String,
        /// Why.
        reason: String,
    },
    /// User code in a processor failed.
    #[error("processor `{node}` failed: {source}")]
    Processing {
        /// The processor.
        node: String,
        /// The user's error.
        #[source]
        source: BoxError,
    },
    /// Processing a record failed: a processor's error ([`StreamsError::Processing`]; a panic in
    /// user code is one, with a [`UserPanic`] as its source) with the task and the record.
    #[error("task {task} failed on the record at {topic}-{partition}@{offset}: {source}")]
    Record {
        /// The task (`<sub-topology>_<partition>`).
        task: String,
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What failed.
        #[source]
        source: Box<StreamsError>,
    },
    /// A call to the Kafka client did not come back in time (the client is replaced).
    #[error("{what} timed out")]
    Timeout {
        /// What was asked.
        what: String,
    },
    /// The brokers refused the application: its credentials (SASL), their certificate (TLS: the
    /// truststore does not trust it) or a missing ACL. Retrying does not help; the message says
    /// which setting or ACL to fix.
    #[error("the brokers at {bootstrap} refused the application: {cause}")]
    Refused {
        /// `bootstrap.servers`.
        bootstrap: String,
        /// librdkafka's or the broker's reason.
        cause: String,
    },
    /// The broker did not take a record that a task produced (to an output topic or a changelog).
    #[error("producing to `{topic}` failed: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// Why the record was not delivered.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// An interactive query cannot read the store now (Kafka Streams' `InvalidStateStoreException`):
    /// retryable while the store restores or its partition moves (ask again, and ask the metadata
    /// again), final for an unknown store, a wrong type or a key hosted by another instance.
    #[error("store `{store}` cannot be queried: {reason}{}", if *retryable { " (retry shortly)" } else { "" })]
    InvalidStateStore {
        /// The store.
        store: String,
        /// Why.
        reason: String,
        /// Whether the same query may succeed soon.
        retryable: bool,
    },
    /// The application is not in a state that allows the call.
    #[error("{0}")]
    IllegalState(String),
}

impl StreamsError {
    /// An error from user processing code, attributed to a processor later by the runtime.
    pub fn processing(source: impl Into<BoxError>) -> Self {
        StreamsError::Processing { node: String::new(), source: source.into() }
    }

    /// Whether the same call may succeed if retried shortly: a store that is restoring or moving
    /// between instances ([`StreamsError::InvalidStateStore`] with `retryable`).
    ///
    /// ```
    /// use kstreams_streams::StreamsError;
    /// let moving = StreamsError::InvalidStateStore { store: "counts".into(), reason: "restoring".into(), retryable: true };
    /// assert!(moving.is_retryable());
    /// assert!(!StreamsError::IllegalState("closed".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, StreamsError::InvalidStateStore { retryable: true, .. })
    }

    /// Whether the error comes from the broker being unreachable or busy (a timeout, a lost
    /// connection, a coordinator or partition leader that moved, a transaction that must be
    /// aborted): the same work may succeed once the broker is back. Stream threads wait such errors
    /// out for up to `task.timeout.ms` before they fail.
    ///
    /// ```
    /// use kstreams_streams::StreamsError;
    /// use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    /// let timed_out = StreamsError::Kafka(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
    /// assert!(timed_out.waits_for_broker());
    /// let denied = StreamsError::Kafka(KafkaError::Flush(RDKafkaErrorCode::TopicAuthorizationFailed));
    /// assert!(!denied.waits_for_broker());
    /// ```
    pub fn waits_for_broker(&self) -> bool {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
        let kafka = match self {
            StreamsError::Kafka(e) | StreamsError::Delivery { source: e, .. } => e,
            StreamsError::Timeout { .. } => return true,
            _ => return false,
        };
        if let KafkaError::Transaction(t) = kafka {
            if t.is_retriable() || t.txn_requires_abort() {
                return true;
            }
        }
        kafka.rdkafka_error_code().is_some_and(|code| {
            matches!(
                code,
                C::OperationTimedOut
                    | C::MessageTimedOut
                    | C::RequestTimedOut
                    | C::BrokerTransportFailure
                    | C::AllBrokersDown
                    | C::NetworkException
                    | C::NotCoordinator
                    | C::CoordinatorNotAvailable
                    | C::CoordinatorLoadInProgress
                    | C::LeaderNotAvailable
                    | C::NotLeaderForPartition
                    | C::NotEnoughReplicas
                    | C::NotEnoughReplicasAfterAppend
                    | C::UnstableOffsetCommit
                    | C::ConcurrentTransactions
                    | C::InvalidProducerEpoch
            )
        })
    }

    /// A configuration error naming `setting`.
    pub fn config(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        StreamsError::Config { setting: setting.into(), reason: reason.into() }
    }
}

/// User code panicked: the source of the [`StreamsError::Processing`] error that the panic became.
///
/// ```
/// use kstreams_streams::error::UserPanic;
/// use kstreams_streams::StreamsError;
/// fn is_panic(e: &StreamsError) -> bool {
///     let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
///     while let Some(s) = source {
///         if s.is::<UserPanic>() {
///             return true;
///         }
///         source = s.source();
///     }
///     false
/// }
/// let e = StreamsError::processing(UserPanic { message: "boom".into() });
/// assert!(is_panic(&e));
/// assert_eq!(e.to_string(), "processor `` failed: panicked: boom");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("panicked: {message}")]
pub struct UserPanic {
    /// The panic's message.
    pub message: String,
}

/// Runs user code (a processor's `process`, `init`, `punctuate`, …): a panic becomes a
/// [`StreamsError::Processing`] error, which the runtime handles like any other processing error
/// (`processing.exception.handler`, then the uncaught-exception handler), instead of unwinding
/// through the stream thread.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(StreamsError::processing(UserPanic { message: panic_message(&*panic) })))
}

/// The message a panic carried (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
