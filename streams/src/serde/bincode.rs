//! bincode 2 through serde, with bincode's standard configuration.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};
use crate::header::Headers;

/// Any `T: Serialize + DeserializeOwned` in bincode 2's standard encoding (variable-length
/// little-endian integers). Compact and fast, but only Rust programs using bincode 2 can read it,
/// and the bytes carry no field names, so changing `T` makes old data unreadable.
///
/// Build it with [`Serdes::bincode`](super::Serdes::bincode).
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Serdes};
///
/// let serde = Serdes::bincode::<(u32, String)>();
/// let bytes = serde.serialize("t", &Headers::new(), &(7, "tea".to_string())).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&[7, 3, b't', b'e', b'a'][..]));
/// assert_eq!(serde.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), (7, "tea".to_string()));
/// ```
pub struct BincodeSerde<T> {
    _type: PhantomData<fn() -> T>,
}

impl<T> BincodeSerde<T> {
    /// A bincode serde for `T`.
    pub fn new() -> Self {
        BincodeSerde { _type: PhantomData }
    }
}

impl<T> Default for BincodeSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for BincodeSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for BincodeSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BincodeSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for BincodeSerde<T> {
    fn to_json(&self, data: &T) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<T> {
        super::from_json_value(json)
    }
    fn serialize(&self, topic: &str, _headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        ::bincode::serde::encode_to_vec(data, ::bincode::config::standard()).map(Some).map_err(|e| {
            SerdeError::encode(
                topic,
                "bincode",
                format!(
                    "{} cannot be written with bincode ({e}); bincode needs sequences of known length and no untagged data, so use Serdes::json() for this type",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "bincode"))?;
        let (value, read) = decode_limited::<T>(bytes).map_err(|e| {
            SerdeError::malformed(
                topic,
                "bincode",
                format!(
                    "not a bincode {} ({e}); the data was written for another type or version of the type",
                    std::any::type_name::<T>()
                ),
            )
        })?;
        if read != bytes.len() {
            return Err(SerdeError::malformed(
                topic,
                "bincode",
                format!(
                    "{} trailing bytes after a {} of {read} bytes; the data was written for another type or version of the type",
                    bytes.len() - read,
                    std::any::type_name::<T>()
                ),
            ));
        }
        Ok(value)
    }
}

/// Decodes with bincode's standard config and an allocation limit no smaller than the input.
///
/// Through serde, bincode allocates only for strings and byte buffers, whose bytes all come from
/// the input; without a limit, a corrupt length prefix makes it allocate that length up front (and
/// abort the process when it cannot). A limit of at least `bytes.len()` never rejects valid data.
fn decode_limited<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), ::bincode::error::DecodeError> {
    use ::bincode::config::standard;
    use ::bincode::serde::decode_from_slice;
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    match bytes.len() {
        0..=65_536 => decode_from_slice(bytes, standard().with_limit::<{ 64 * KIB }>()),
        65_537..=16_777_216 => decode_from_slice(bytes, standard().with_limit::<{ 16 * MIB }>()),
        16_777_217..=268_435_456 => decode_from_slice(bytes, standard().with_limit::<{ 256 * MIB }>()),
        _ => decode_from_slice(bytes, standard()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Event {
        Opened { id: u64 },
        Closed(String),
    }

    #[test]
    fn round_trips_with_the_standard_config() {
        let serde = Serdes::bincode::<Vec<Event>>();
        let events = vec![Event::Opened { id: 300 }, Event::Closed("x".into())];
        let bytes = serde.serialize("t", &Headers::new(), &events).unwrap().unwrap();
        // length 2, variant 0, varint 300 (0xfb 0x2c 0x01), variant 1, string "x"
        assert_eq!(bytes, vec![2, 0, 0xfb, 0x2c, 0x01, 1, 1, b'x']);
        assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), events);
    }

    #[test]
    fn truncated_trailing_and_null_data_are_errors() {
        let serde = Serdes::bincode::<(u32, String)>();
        let bytes = serde.serialize("t", &Headers::new(), &(1, "abc".into())).unwrap().unwrap();
        let err = serde.deserialize("t", &Headers::new(), Some(&bytes[..bytes.len() - 1])).unwrap_err();
        assert!(matches!(err, SerdeError::Malformed { serde: "bincode", .. }), "{err:?}");
        let mut longer = bytes.clone();
        longer.push(0);
        let err = serde.deserialize("t", &Headers::new(), Some(&longer)).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
        assert!(matches!(serde.deserialize("t", &Headers::new(), None), Err(SerdeError::Null { .. })));
        // A huge declared string length must fail, not allocate or panic.
        let huge = [1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(serde.deserialize("t", &Headers::new(), Some(&huge)).is_err());
    }
}
