//! Schemas as the registry keeps them: parsed once, compared by their normalized text.

use std::sync::Arc;

use apache_avro::Schema;

use crate::error::RegistryError;

/// The schema types the registry accepts. Confluent's API calls Avro `AVRO` and omits the type
/// for it in responses; JSON Schema and Protobuf are not supported yet.
pub const AVRO: &str = "AVRO";

/// A parsed Avro schema and its normalized text.
///
/// The normalized text is the schema as apache-avro writes it back out: whitespace and attribute
/// order no longer matter, while defaults, docs, aliases and custom properties are kept (unlike
/// Avro's Parsing Canonical Form, which drops defaults and so would make an evolution that only adds
/// a default look like no change). Two registrations are the same schema when their normalized
/// texts are equal, as Confluent compares canonical strings.
///
/// ```
/// use kstreams_registry::schema::ParsedSchema;
/// let a = ParsedSchema::parse(r#"{"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}]}"#).unwrap();
/// let b = ParsedSchema::parse(r#"{"fields":[{"type":"int","name":"x"}],"name":"A","type":"record"}"#).unwrap();
/// assert_eq!(a.text(), b.text());
/// ```
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    text: Arc<str>,
    schema: Arc<Schema>,
}

impl ParsedSchema {
    /// Parses `text` as an Avro schema.
    ///
    /// Errors with [`RegistryError::InvalidSchema`] (Confluent's 42201) when it is not one.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        if text.trim().is_empty() {
            return Err(RegistryError::InvalidSchema("Empty schema".into()));
        }
        let schema = Schema::parse_str(text)
            .map_err(|e| RegistryError::InvalidSchema(format!("Invalid schema {}: {e}", abbreviate(text))))?;
        let normalized = serde_json::to_string(&schema)
            .map_err(|e| RegistryError::InvalidSchema(format!("the schema cannot be written back as JSON: {e}")))?;
        Ok(ParsedSchema { text: normalized.into(), schema: Arc::new(schema) })
    }

    /// Parses a registration's `schemaType` (absent means Avro) and schema text.
    pub fn parse_typed(schema_type: Option<&str>, text: &str) -> Result<Self, RegistryError> {
        match schema_type {
            None => Self::parse(text),
            Some(t) if t.eq_ignore_ascii_case(AVRO) => Self::parse(text),
            Some(other) => Err(RegistryError::InvalidSchema(format!(
                "Invalid schema type {other}: this registry stores AVRO schemas only (JSON and PROTOBUF are not supported)"
            ))),
        }
    }

    /// The normalized text, as stored and served.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The shared normalized text.
    pub fn shared_text(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
}

/// `text`, cut to a length that fits an error message.
fn abbreviate(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_text_keeps_defaults_docs_and_aliases() {
        let s = ParsedSchema::parse(
            r#"{"type":"record","name":"Sale","namespace":"retail","doc":"a sale",
                "fields":[{"name":"code","type":["null","string"],"default":null,"aliases":["promo"]},
                          {"name":"qty","type":"int","default":1,"doc":"units"}]}"#,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(s.text()).unwrap();
        assert_eq!(json["fields"][1]["default"], 1);
        assert_eq!(json["fields"][0]["aliases"][0], "promo");
        assert_eq!(json["fields"][1]["doc"], "units");
        assert_eq!(json["doc"], "a sale");
        // Parsing the normalized text again gives the same text.
        assert_eq!(ParsedSchema::parse(s.text()).unwrap().text(), s.text());
    }

    #[test]
    fn a_changed_default_is_another_schema() {
        let a = ParsedSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":1}]}"#);
        let b = ParsedSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":2}]}"#);
        assert_ne!(a.unwrap().text(), b.unwrap().text());
    }

    #[test]
    fn invalid_schemas_are_refused() {
        for bad in ["", "   ", "{", r#"{"type":"record","name":"A"}"#, r#"{"type":"nope"}"#, r#""unknown""#] {
            let err = ParsedSchema::parse(bad).unwrap_err();
            assert!(matches!(err, RegistryError::InvalidSchema(_)), "{bad}: {err:?}");
        }
        assert!(ParsedSchema::parse_typed(Some("PROTOBUF"), r#""string""#).is_err());
        assert!(ParsedSchema::parse_typed(Some("avro"), r#""string""#).is_ok());
    }
}
