//! A Schema Registry client (Confluent's REST API) for the Avro serdes: registers writer schemas,
//! looks ids up, fetches schemas by id, and caches all of it.
//!
//! It speaks to any registry with Confluent's API: kstreams' own (`kstreams-registry`, started by
//! `scripts/kafka start` on 127.0.0.1:8081) or Confluent's. Calls block (the serdes run on stream
//! threads) and are bounded by a timeout; ids and schemas are immutable in a registry, so once
//! known they are cached for good and the registry is asked only for what is new.
//!
//! ```no_run
//! use std::sync::Arc;
//! use apache_avro::Schema;
//! use kstreams_streams::serde::registry::SchemaRegistryClient;
//! let registry = Arc::new(SchemaRegistryClient::new("http://127.0.0.1:8081").unwrap());
//! let schema = Schema::parse_str(r#"{"type":"record","name":"Sale","fields":[{"name":"qty","type":"int"}]}"#).unwrap();
//! let id = registry.register("sales-value", &schema).unwrap();
//! assert_eq!(registry.register("sales-value", &schema).unwrap(), id); // from the cache
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::avro::{SchemaLookup, SchemaLookupError};

/// How long one call to the registry may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a registry call can fail with.
///
/// ```
/// use kstreams_streams::serde::registry::RegistryClientError;
/// let refused = RegistryClientError::Refused {
///     url: "http://r".into(), status: 409, error_code: 409, message: "incompatible: field 'qty'".into(),
/// };
/// assert!(refused.is_incompatible());
/// assert_eq!(refused.error_code(), Some(409));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryClientError {
    /// The registry answered with an error (Confluent's `error_code` and message).
    #[error("the schema registry at {url} refused the request ({status}, error code {error_code}): {message}")]
    Refused {
        /// The registry's base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Confluent's error code (40401 subject not found, 40403 schema not found, 409 incompatible, …).
        error_code: u32,
        /// The registry's message.
        message: String,
    },
    /// No registry answered.
    #[error("the schema registry at {url} cannot be reached: {detail}; check schema.registry.url and that the registry runs (scripts/kafka start starts one on 127.0.0.1:8081)")]
    Unreachable {
        /// The registry's base URL(s).
        url: String,
        /// What failed.
        detail: String,
    },
    /// The answer is not what Confluent's API returns.
    #[error("the schema registry at {url} sent an unexpected answer: {detail}")]
    BadAnswer {
        /// The registry's base URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// A setting is missing or wrong.
    #[error("schema registry setting `{setting}`: {detail}")]
    Config {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl RegistryClientError {
    /// Confluent's error code, when the registry answered with one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            RegistryClientError::Refused { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }

    /// Whether the registry refused a schema as incompatible with the subject's earlier versions.
    pub fn is_incompatible(&self) -> bool {
        matches!(self, RegistryClientError::Refused { status: 409, .. })
    }

    /// The registry's own message, or this error's text.
    pub fn message(&self) -> String {
        match self {
            RegistryClientError::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// A registered schema, as `GET /subjects/{subject}/versions/{version}` returns it.
#[derive(Debug, Clone)]
pub struct RegisteredSchema {
    /// The subject.
    pub subject: String,
    /// The version in the subject.
    pub version: u32,
    /// The global id.
    pub id: u32,
    /// The schema.
    pub schema: Arc<Schema>,
}

/// A blocking, caching client of a Schema Registry. Share it (`Arc`) between serdes: the caches
/// are shared too.
pub struct SchemaRegistryClient {
    urls: Vec<String>,
    agent: ureq::Agent,
    basic_auth: Option<String>,
    by_id: RwLock<HashMap<u32, Arc<Schema>>>,
    /// (subject, schema's JSON) → id.
    ids: RwLock<HashMap<(String, String), u32>>,
}

impl std::fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistryClient").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl SchemaRegistryClient {
    /// A client of the registry at `url` (several may be given, comma-separated: each is tried in
    /// turn when one cannot be reached, as Confluent's client does).
    pub fn new(url: &str) -> Result<Self, RegistryClientError> {
        Self::with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// As [`new`](Self::new), with a timeout per call.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, RegistryClientError> {
        let urls: Vec<String> =
            url.split(',').map(|u| u.trim().trim_end_matches('/').to_string()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            return Err(RegistryClientError::Config {
                setting: "schema.registry.url",
                detail: "is empty; give the registry's URL, e.g. http://127.0.0.1:8081".into(),
            });
        }
        if let Some(bad) = urls.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(RegistryClientError::Config {
                setting: "schema.registry.url",
                detail: format!("`{bad}` is not an http:// or https:// URL"),
            });
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .user_agent("kstreams-schema-registry-client")
            .build()
            .into();
        Ok(SchemaRegistryClient {
            urls,
            agent,
            basic_auth: None,
            by_id: RwLock::new(HashMap::new()),
            ids: RwLock::new(HashMap::new()),
        })
    }

    /// A client from Confluent's client settings: `schema.registry.url` (required) and
    /// `basic.auth.user.info` (`user:password`, with `basic.auth.credentials.source=USER_INFO`).
    ///
    /// ```
    /// use kstreams_streams::serde::registry::SchemaRegistryClient;
    /// let props = [("schema.registry.url", "http://127.0.0.1:8081")];
    /// let client = SchemaRegistryClient::from_props(props).unwrap();
    /// assert_eq!(client.urls(), ["http://127.0.0.1:8081"]);
    /// assert!(SchemaRegistryClient::from_props([("x", "y")]).unwrap_err().to_string().contains("schema.registry.url"));
    /// ```
    pub fn from_props<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, RegistryClientError> {
        let props: BTreeMap<String, String> =
            props.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
        let url = props.get("schema.registry.url").ok_or(RegistryClientError::Config {
            setting: "schema.registry.url",
            detail: "is required: the registry's URL, e.g. http://127.0.0.1:8081".into(),
        })?;
        let mut client = Self::new(url)?;
        match (props.get("basic.auth.credentials.source").map(String::as_str), props.get("basic.auth.user.info")) {
            (None | Some("USER_INFO"), Some(info)) => {
                if !info.contains(':') {
                    return Err(RegistryClientError::Config {
                        setting: "basic.auth.user.info",
                        detail: "takes user:password".into(),
                    });
                }
                client.basic_auth = Some(format!("Basic {}", BASE64.encode(info.as_bytes())));
            }
            (Some(other), _) if other != "USER_INFO" => {
                return Err(RegistryClientError::Config {
                    setting: "basic.auth.credentials.source",
                    detail: format!("`{other}` is not supported; use USER_INFO with basic.auth.user.info"),
                });
            }
            _ => {}
        }
        Ok(client)
    }

    /// The registry URLs, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Registers `schema` under `subject` (or finds it there) and returns its id. Cached: the
    /// registry is asked once per subject and schema.
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryClientError> {
        self.cached_id(subject, schema, |client, text| {
            let body = json!({ "schema": text }).to_string();
            let answer = client.call("POST", &format!("/subjects/{}/versions", path(subject)), Some(&body))?;
            client.id_in(&answer)
        })
    }

    /// The id of `schema` under `subject`, without registering it (`POST /subjects/{subject}`);
    /// a [`Refused`](RegistryClientError::Refused) 40401/40403 if it is not there.
    pub fn id_of(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryClientError> {
        self.cached_id(subject, schema, |client, text| {
            let body = json!({ "schema": text }).to_string();
            let answer = client.call("POST", &format!("/subjects/{}", path(subject)), Some(&body))?;
            client.id_in(&answer)
        })
    }

    /// The newest version of `subject`.
    pub fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryClientError> {
        let answer = self.call("GET", &format!("/subjects/{}/versions/latest", path(subject)), None)?;
        let field = |name: &str| answer.get(name).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
        let (Some(version), Some(id)) = (field("version"), field("id")) else {
            return Err(self.bad_answer(format!("no version or id in {answer}")));
        };
        let schema = self.schema_from(&answer)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).entry(id).or_insert_with(|| Arc::clone(&schema));
        Ok(RegisteredSchema { subject: subject.to_string(), version, id, schema })
    }

    /// The versions of `subject`, oldest first.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryClientError> {
        let answer = self.call("GET", &format!("/subjects/{}/versions", path(subject)), None)?;
        answer
            .as_array()
            .map(|versions| versions.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect())
            .ok_or_else(|| self.bad_answer(format!("not a list of versions: {answer}")))
    }

    /// The schema with `id`. Cached for good (ids are immutable).
    pub fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryClientError> {
        if let Some(schema) = self.by_id.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(Arc::clone(schema));
        }
        let answer = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        let schema = self.schema_from(&answer)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    /// Whether `schema` may be registered under `subject` by the subject's compatibility rule;
    /// the registry's reasons when not.
    pub fn check_compatibility(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<(bool, Vec<String>), RegistryClientError> {
        let body = json!({ "schema": schema_text(schema) }).to_string();
        let answer = self.call(
            "POST",
            &format!("/compatibility/subjects/{}/versions/latest?verbose=true", path(subject)),
            Some(&body),
        )?;
        let compatible = answer
            .get("is_compatible")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.bad_answer(format!("no is_compatible in {answer}")))?;
        let messages = answer
            .get("messages")
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok((compatible, messages))
    }

    /// Sets the compatibility level (`BACKWARD`, `FULL`, `NONE`, …) of `subject`, or the global one.
    pub fn set_compatibility(&self, subject: Option<&str>, level: &str) -> Result<(), RegistryClientError> {
        let route = match subject {
            Some(s) => format!("/config/{}", path(s)),
            None => "/config".to_string(),
        };
        self.call("PUT", &route, Some(&json!({ "compatibility": level }).to_string())).map(|_| ())
    }

    fn cached_id(
        &self,
        subject: &str,
        schema: &Schema,
        ask: impl Fn(&Self, &str) -> Result<u32, RegistryClientError>,
    ) -> Result<u32, RegistryClientError> {
        let text = schema_text(schema);
        let key = (subject.to_string(), text);
        if let Some(id) = self.ids.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(*id);
        }
        let id = ask(self, &key.1)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).entry(id).or_insert_with(|| Arc::new(schema.clone()));
        self.ids.write().unwrap_or_else(|p| p.into_inner()).insert(key, id);
        Ok(id)
    }

    fn id_in(&self, answer: &Value) -> Result<u32, RegistryClientError> {
        answer
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| self.bad_answer(format!("no schema id in {answer}")))
    }

    fn schema_from(&self, answer: &Value) -> Result<Arc<Schema>, RegistryClientError> {
        if let Some(kind) = answer.get("schemaType").and_then(Value::as_str) {
            if !kind.eq_ignore_ascii_case("AVRO") {
                return Err(self.bad_answer(format!("the schema is {kind}, not Avro")));
            }
        }
        let text = answer
            .get("schema")
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad_answer(format!("no schema in {answer}")))?;
        Schema::parse_str(text)
            .map(Arc::new)
            .map_err(|e| self.bad_answer(format!("the registry's schema does not parse as Avro: {e}")))
    }

    fn bad_answer(&self, detail: String) -> RegistryClientError {
        RegistryClientError::BadAnswer { url: self.urls.join(","), detail }
    }

    /// One call, trying each URL until one answers; the answer's JSON, or the registry's error.
    fn call(&self, method: &str, route: &str, body: Option<&str>) -> Result<Value, RegistryClientError> {
        let mut unreachable = Vec::new();
        for base in &self.urls {
            let url = format!("{base}{route}");
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
                .header("Content-Type", "application/vnd.schemaregistry.v1+json");
            let request = match &self.basic_auth {
                Some(auth) => request.header("Authorization", auth),
                None => request,
            };
            let request = request
                .body(body.unwrap_or_default().to_string())
                .map_err(|e| self.bad_answer(format!("cannot build the request to {url}: {e}")))?;
            let mut response = match self.agent.run(request) {
                Ok(response) => response,
                Err(e) => {
                    unreachable.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| self.bad_answer(format!("reading the answer of {url}: {e}")))?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if (200..300).contains(&status) {
                return Ok(value);
            }
            let error_code =
                value.get("error_code").and_then(Value::as_u64).map(|c| c as u32).unwrap_or(u32::from(status));
            let message = value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or(value.to_string());
            return Err(RegistryClientError::Refused { url: base.clone(), status, error_code, message });
        }
        Err(RegistryClientError::Unreachable { url: self.urls.join(","), detail: unreachable.join("; ") })
    }
}

impl SchemaLookup for SchemaRegistryClient {
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, SchemaLookupError> {
        self.schema(id).map_err(|e| match e {
            RegistryClientError::Refused { status: 404, .. } => SchemaLookupError::UnknownId { id },
            other => SchemaLookupError::Unavailable { detail: other.to_string() },
        })
    }
}

/// The schema's JSON text, as sent to the registry.
fn schema_text(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap_or_else(|_| schema.canonical_form())
}

/// A subject as a path segment (percent-encoded).
fn path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded() {
        assert_eq!(path("orders-value"), "orders-value");
        assert_eq!(path("a b/c:d"), "a%20b%2Fc%3Ad");
    }

    #[test]
    fn basic_auth_goes_in_a_header() {
        let client = SchemaRegistryClient::from_props([
            ("schema.registry.url", "http://r:8081"),
            ("basic.auth.user.info", "user:pass"),
        ])
        .unwrap();
        assert_eq!(client.basic_auth.as_deref(), Some("Basic dXNlcjpwYXNz"));
        let err =
            SchemaRegistryClient::from_props([("schema.registry.url", "http://r"), ("basic.auth.user.info", "x")]);
        assert!(err.unwrap_err().to_string().contains("basic.auth.user.info"));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let err = SchemaRegistryClient::new("localhost:8081").unwrap_err();
        assert!(err.to_string().contains("schema.registry.url"), "{err}");
        let err = SchemaRegistryClient::from_props([
            ("schema.registry.url", "http://r:8081"),
            ("basic.auth.credentials.source", "SASL_INHERIT"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("basic.auth.credentials.source"), "{err}");
    }

    #[test]
    fn an_unreachable_registry_is_a_lookup_error_not_a_panic() {
        // Port 9 (discard) on loopback: nothing listens there.
        let client = SchemaRegistryClient::with_timeout("http://127.0.0.1:9", Duration::from_secs(2)).unwrap();
        let err = client.schema_by_id(1).unwrap_err();
        assert!(matches!(err, SchemaLookupError::Unavailable { .. }), "{err:?}");
        let err = client.register("s", &Schema::String).unwrap_err();
        assert!(matches!(err, RegistryClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
