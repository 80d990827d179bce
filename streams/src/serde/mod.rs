//! Serdes: how keys and values become bytes and back.
//!
//! A [`Serde`] turns a `T` into the bytes of a Kafka record (or a store entry) and back. Kafka records
//! may carry a null key or value; a serde sees that as `None`. The plain serdes reject a null with
//! [`SerdeError::Null`]; wrap them in [`Serdes::nullable`] (type `Option<T>`) where nulls are expected.
//!
//! ```
//! use kstreams_streams::header::Headers;
//! use kstreams_streams::serde::{Serde, Serdes};
//!
//! let serde = Serdes::i64();
//! let bytes = serde.serialize("counts", &Headers::new(), &42).unwrap();
//! assert_eq!(bytes.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 0, 42][..]));
//! assert_eq!(serde.deserialize("counts", &Headers::new(), bytes.as_deref()).unwrap(), 42);
//! ```

use std::sync::Arc;

use crate::header::Headers;

/// Converts `T` to and from the bytes of a record key or value.
pub trait Serde<T>: Send + Sync + 'static {
    /// The bytes of `data`, for a record on `topic`; `None` writes a null (a tombstone).
    fn serialize(&self, topic: &str, headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError>;
    /// The `T` in `data`, read from `topic`; `data` is `None` for a null key or value.
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError>;
}

/// A shareable serde, as topologies and stores hold them.
pub type SharedSerde<T> = Arc<dyn Serde<T>>;

/// Why bytes could not become a value, or a value bytes.
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    /// A null key or value reached a serde that does not accept one.
    #[error("null {what} on topic `{topic}`, but its serde ({serde}) does not accept null: use Serdes::nullable(..) for a type that may be null")]
    Null {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// "data".
        what: &'static str,
    },
    /// The bytes do not have the expected layout.
    #[error("malformed {serde} data on topic `{topic}`: {detail}")]
    Malformed {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A value could not be encoded.
    #[error("{serde} could not serialize a value for topic `{topic}`: {detail}")]
    Encode {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// What failed.
        detail: String,
    },
}
