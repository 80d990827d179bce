//! A store's serdes, kept with the topology so that queries read typed values, and their JSON forms
//! for the HTTP endpoint.

use std::any::Any;

use serde_json::Value as Json;

use crate::header::Headers;
use crate::record::Data;
use crate::serde::SharedSerde;

/// A store's key and value serdes.
pub(crate) struct StoreSerdes<K, V> {
    pub key: SharedSerde<K>,
    pub value: SharedSerde<V>,
}

/// A store's serdes without their types: typed views downcast them, the HTTP endpoint goes through
/// JSON.
pub(crate) trait ErasedStoreSerdes: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    /// The key's bytes from the text of a URL: JSON (`42`, `"a b"`, `{"id":1}`) or, failing that, a
    /// JSON string of the whole text.
    fn key_from_text(&self, topic: &str, text: &str) -> Result<Vec<u8>, String>;
    /// The JSON form of a stored key.
    fn key_to_json(&self, topic: &str, bytes: &[u8]) -> Result<Json, String>;
    /// The JSON form of a stored value.
    fn value_to_json(&self, topic: &str, bytes: &[u8]) -> Result<Json, String>;
}

impl<K: Data, V: Data> ErasedStoreSerdes for StoreSerdes<K, V> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn key_from_text(&self, topic: &str, text: &str) -> Result<Vec<u8>, String> {
        let parsed = serde_json::from_str::<Json>(text).ok().and_then(|json| self.key.parse_json(&json));
        let key = parsed
            .or_else(|| self.key.parse_json(&Json::String(text.to_string())))
            .ok_or_else(|| format!("`{text}` is not a key of this store (its key serde has no JSON form for it)"))?;
        self.key
            .serialize(topic, &Headers::new(), &key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the key `{text}` serializes to null"))
    }

    fn key_to_json(&self, topic: &str, bytes: &[u8]) -> Result<Json, String> {
        let key = self.key.deserialize(topic, &Headers::new(), Some(bytes)).map_err(|e| e.to_string())?;
        self.key.to_json(&key).ok_or_else(|| "the key serde has no JSON form".to_string())
    }

    fn value_to_json(&self, topic: &str, bytes: &[u8]) -> Result<Json, String> {
        let value = self.value.deserialize(topic, &Headers::new(), Some(bytes)).map_err(|e| e.to_string())?;
        self.value.to_json(&value).ok_or_else(|| "the value serde has no JSON form".to_string())
    }
}
