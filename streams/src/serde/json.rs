//! JSON through serde_json.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};
use crate::header::Headers;

/// Any `T: Serialize + DeserializeOwned` as JSON text (UTF-8), readable by Jackson-based Java serdes.
///
/// Build it with [`Serdes::json`](super::Serdes::json). A Kafka null is rejected; use
/// `Serdes::nullable(Serdes::json::<T>())` when values may be tombstones.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Serdes};
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Order { id: u32, item: String }
///
/// let serde = Serdes::json::<Order>();
/// let order = Order { id: 7, item: "tea".into() };
/// let bytes = serde.serialize("orders", &Headers::new(), &order).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&br#"{"id":7,"item":"tea"}"#[..]));
/// assert_eq!(serde.deserialize("orders", &Headers::new(), bytes.as_deref()).unwrap(), order);
/// ```
pub struct JsonSerde<T> {
    _type: PhantomData<fn() -> T>,
}

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> Self {
        JsonSerde { _type: PhantomData }
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for JsonSerde<T> {
    fn to_json(&self, data: &T) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<T> {
        super::from_json_value(json)
    }
    fn serialize(&self, topic: &str, _headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        serde_json::to_vec(data).map(Some).map_err(|e| {
            SerdeError::encode(
                topic,
                "json",
                format!(
                    "{} cannot be written as JSON ({e}); JSON object keys must be strings, so use a map keyed by strings or another serde",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "json"))?;
        serde_json::from_slice(bytes).map_err(|e| {
            SerdeError::malformed(
                topic,
                "json",
                format!(
                    "not a JSON {} ({e}); check that the producer writes this type as JSON, or read the topic with Serdes::bytes()",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::serde::Serdes;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Reading {
        sensor: String,
        value: f64,
        tags: Vec<String>,
    }

    #[test]
    fn round_trips_and_writes_plain_json() {
        let serde = Serdes::json::<Reading>();
        let r = Reading { sensor: "s1".into(), value: 1.5, tags: vec!["a".into()] };
        let bytes = serde.serialize("t", &Headers::new(), &r).unwrap().unwrap();
        assert_eq!(bytes, br#"{"sensor":"s1","value":1.5,"tags":["a"]}"#);
        assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), r);
    }

    #[test]
    fn bad_json_null_and_unencodable_values_are_errors() {
        let serde = Serdes::json::<Reading>();
        let err = serde.deserialize("t", &Headers::new(), Some(br#"{"sensor":"s1"}"#)).unwrap_err();
        assert!(matches!(&err, SerdeError::Malformed { serde: "json", .. }), "{err:?}");
        assert!(err.to_string().contains("Reading"), "{err}");
        assert!(matches!(serde.deserialize("t", &Headers::new(), Some(b"\xff")), Err(SerdeError::Malformed { .. })));
        assert!(matches!(serde.deserialize("t", &Headers::new(), None), Err(SerdeError::Null { serde: "json", .. })));
        let map = Serdes::json::<HashMap<(u8, u8), u8>>();
        let value = HashMap::from([((1, 2), 3)]);
        assert!(matches!(map.serialize("t", &Headers::new(), &value), Err(SerdeError::Encode { serde: "json", .. })));
    }
}
