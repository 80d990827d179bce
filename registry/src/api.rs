//! Confluent's Schema Registry REST API over the [`KafkaStore`], on axum.
//!
//! Requests take JSON bodies of any of Confluent's content types
//! (`application/vnd.schemaregistry.v1+json`, `application/vnd.schemaregistry+json`,
//! `application/json`); responses are `application/vnd.schemaregistry.v1+json`, and errors are
//! `{"error_code": 40401, "message": "…"}` with Confluent's codes ([`RegistryError`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, Request, State as AxumState};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::metrics::Metrics;
use crate::schema::ParsedSchema;
use crate::state::{Found, Plan, State, VersionRef};
use crate::store::{Change, KafkaStore};

/// The content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The header on a request one instance forwards to the leader (it is never forwarded again).
pub const FORWARDED_HEADER: &str = "x-kstreams-registry-forwarded";

/// What the handlers share.
pub struct Api {
    store: Arc<KafkaStore>,
    metrics: Metrics,
    /// Forwards writes to the leader.
    forwarder: ureq::Agent,
}

impl Api {
    /// The API over `store`, counting requests in `metrics`.
    pub fn new(store: Arc<KafkaStore>, metrics: Metrics) -> Arc<Api> {
        let forwarder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .timeout_connect(Some(std::time::Duration::from_secs(3)))
            .build()
            .into();
        Arc::new(Api { store, metrics, forwarder })
    }

    /// Refreshes the gauges from the state.
    fn observe(&self) {
        if let Ok(state) = self.store.read() {
            self.metrics.schemas.set(state.schema_count() as i64);
            self.metrics.subjects.set(state.subjects(false).len() as i64);
        }
        if let Some(position) = self.store.position() {
            self.metrics.position.set(position);
        }
    }
}

/// The router: every endpoint, `/health`, `/metrics`, and Confluent-style 404/405 answers.
/// Request bodies over `max_body_bytes` get a 413.
pub fn router(api: Arc<Api>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(list_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(referenced_by))
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/schemas/ids/{id}/schema", get(get_schema_text))
        .route("/schemas/ids/{id}/versions", get(get_schema_versions))
        .route("/schemas/types", get(|| async { ok(json!(["AVRO"])) }))
        .route("/compatibility/subjects/{subject}/versions", post(check_all))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(check_version))
        .route("/config", get(get_global_config).put(put_global_config))
        .route("/config/{subject}", get(get_subject_config).put(put_subject_config).delete(delete_subject_config))
        .route("/mode", get(get_mode).put(put_mode))
        .route("/mode/{subject}", get(get_mode).put(put_mode))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { RegistryError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { RegistryError::MethodNotAllowed.into_response() })
        .layer(middleware::from_fn_with_state(Arc::clone(&api), count_requests))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(max_body_bytes, refuse_oversized))
        .with_state(api)
}

/// How much of an oversized body is read (and dropped) before the 413.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// Answers a body that announces more than `max` bytes with a 413 once the body has been read and
/// dropped (up to [`DRAIN_BYTES`]). Answering first and closing the connection while the client
/// still sends gives the client a broken pipe instead of the answer.
async fn refuse_oversized(AxumState(max): AxumState<usize>, request: Request, next: Next) -> Response {
    let announced =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        let _ = axum::body::to_bytes(request.into_body(), DRAIN_BYTES).await;
        return RegistryError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

type Shared = AxumState<Arc<Api>>;
type Answer = Result<Response, RegistryError>;

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error_code": self.error_code(), "message": self.to_string() });
        with_type(status, body.to_string())
    }
}

fn with_type(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn ok(body: Value) -> Response {
    with_type(StatusCode::OK, body.to_string())
}

/// Counts every request by route and status, and times it.
async fn count_requests(AxumState(api): Shared, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    api.metrics.latency.with_label_values(&[route.as_str(), method.as_str()]).observe(started.elapsed().as_secs_f64());
    api.metrics.requests.with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()]).inc();
    response
}

// --- request bodies and query flags ----------------------------------------------------------

#[derive(Deserialize)]
struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

#[derive(Deserialize)]
struct ModeRequest {
    mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Flags {
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    permanent: bool,
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    default_to_global: bool,
}

/// A body that could not be read: over the size limit (413), or broken (400).
fn rejected(rejection: BytesRejection) -> RegistryError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => RegistryError::PayloadTooLarge,
        _ => RegistryError::BadRequest(rejection.body_text()),
    }
}

/// Parses a JSON body: broken JSON is a 400, the wrong shape a 422.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            RegistryError::UnprocessableEntity(format!("Unprocessable request body: {e}"))
        }
        _ => RegistryError::BadRequest(format!("Malformed JSON request body: {e}")),
    })
}

fn schema_of(request: &SchemaRequest) -> Result<ParsedSchema, RegistryError> {
    if !request.references.is_empty() {
        return Err(RegistryError::InvalidSchema(
            "Invalid schema: schema references are not supported by this registry; inline the referenced types".into(),
        ));
    }
    let text = request.schema.as_deref().ok_or_else(|| RegistryError::InvalidSchema("Empty schema".into()))?;
    ParsedSchema::parse_typed(request.schema_type.as_deref(), text)
}

fn version_json(found: &Found) -> Value {
    json!({ "subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema.text() })
}

fn parse_id(id: &str) -> Result<u32, RegistryError> {
    id.parse().map_err(|_| RegistryError::schema_id_not_found(0)).and_then(|id: u32| {
        if id == 0 {
            Err(RegistryError::schema_id_not_found(0))
        } else {
            Ok(id)
        }
    })
}

/// Where a write request came from, to forward it to the leader as it came.
struct Origin {
    method: Method,
    path_and_query: String,
    forwarded: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin {
            method: parts.method.clone(),
            path_and_query: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
            forwarded: parts.headers.contains_key(FORWARDED_HEADER),
        })
    }
}

/// A change's result: answered here, or the leader's response to the forwarded request.
enum Written<T> {
    Here(T),
    AtLeader(Response),
}

impl<T> Written<T> {
    fn respond(self, answer: impl FnOnce(T) -> Value) -> Response {
        match self {
            Written::Here(value) => ok(answer(value)),
            Written::AtLeader(response) => response,
        }
    }
}

/// Runs a change on a blocking thread (it waits on Kafka); when another instance leads, forwards
/// the request there, and takes over if the leader cannot be reached.
async fn change<T: Send + 'static>(
    api: &Arc<Api>,
    origin: Origin,
    body: Bytes,
    plan: impl Fn(&State) -> Result<Plan<T>, RegistryError> + Send + Sync + 'static,
) -> Result<Written<T>, RegistryError> {
    let api_ = Arc::clone(api);
    let written = tokio::task::spawn_blocking(move || {
        let store = &api_.store;
        match store.change(!origin.forwarded, &plan)? {
            Change::Done(answer) => Ok(Written::Here(answer)),
            Change::Forward(leader) => match forward(&api_.forwarder, &leader, &origin, &body) {
                Ok(response) => {
                    // Read the leader's write back, so this instance answers reads of it at once.
                    let _ = store.catch_up();
                    Ok(Written::AtLeader(response))
                }
                Err(reason) => {
                    tracing::warn!(%leader, %reason, "the leader cannot be reached; taking over the writes");
                    match store.change(false, &plan)? {
                        Change::Done(answer) => Ok(Written::Here(answer)),
                        Change::Forward(_) => Err(RegistryError::Store("no leader to write through".into())),
                    }
                }
            },
        }
    })
    .await
    .map_err(|e| RegistryError::Store(format!("the write task failed: {e}")))?;
    api.observe();
    written
}

/// Sends the request to the leader; its response, or why it could not be reached.
fn forward(agent: &ureq::Agent, leader: &str, origin: &Origin, body: &[u8]) -> Result<Response, String> {
    let request = ureq::http::Request::builder()
        .method(origin.method.as_str())
        .uri(format!("{leader}{}", origin.path_and_query))
        .header("Content-Type", CONTENT_TYPE)
        .header(FORWARDED_HEADER, "true")
        .body(body.to_vec())
        .map_err(|e| e.to_string())?;
    let mut response = agent.run(request).map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok(with_type(status, text))
}

// --- subjects and versions -------------------------------------------------------------------

async fn list_subjects(AxumState(api): Shared, Query(flags): Query<Flags>) -> Answer {
    Ok(ok(json!(api.store.read()?.subjects(flags.deleted))))
}

async fn list_versions(AxumState(api): Shared, Path(subject): Path<String>, Query(flags): Query<Flags>) -> Answer {
    Ok(ok(json!(api.store.read()?.versions(&subject, flags.deleted)?)))
}

async fn get_version(
    AxumState(api): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
) -> Answer {
    let version: VersionRef = version.parse()?;
    Ok(ok(version_json(&api.store.read()?.version(&subject, version, flags.deleted)?)))
}

async fn get_version_schema(
    AxumState(api): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
) -> Answer {
    let version: VersionRef = version.parse()?;
    let found = api.store.read()?.version(&subject, version, flags.deleted)?;
    Ok(with_type(StatusCode::OK, found.schema.text().to_string()))
}

async fn referenced_by(AxumState(api): Shared, Path((subject, version)): Path<(String, String)>) -> Answer {
    let version: VersionRef = version.parse()?;
    api.store.read()?.version(&subject, version, true)?;
    Ok(ok(json!([])))
}

async fn register(
    AxumState(api): Shared,
    Path(subject): Path<String>,
    origin: Origin,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let bytes = bytes.map_err(rejected)?;
    let schema = schema_of(&parse(&bytes)?)?;
    let written = change(&api, origin, bytes, move |state| state.plan_register(&subject, &schema)).await?;
    Ok(written.respond(|id| json!({ "id": id })))
}

async fn lookup(
    AxumState(api): Shared,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let schema = schema_of(&parse(&bytes.map_err(rejected)?)?)?;
    Ok(ok(version_json(&api.store.read()?.lookup(&subject, &schema, flags.deleted)?)))
}

async fn delete_subject(
    AxumState(api): Shared,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
    origin: Origin,
) -> Answer {
    let written =
        change(&api, origin, Bytes::new(), move |state| state.plan_delete_subject(&subject, flags.permanent)).await?;
    Ok(written.respond(|versions| json!(versions)))
}

async fn delete_version(
    AxumState(api): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
    origin: Origin,
) -> Answer {
    let version: VersionRef = version.parse()?;
    let written =
        change(&api, origin, Bytes::new(), move |state| state.plan_delete_version(&subject, version, flags.permanent))
            .await?;
    Ok(written.respond(|deleted| json!(deleted)))
}

// --- schemas by id ---------------------------------------------------------------------------

async fn get_schema(AxumState(api): Shared, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id)?;
    Ok(ok(json!({ "schema": api.store.read()?.schema_by_id(id)?.text() })))
}

async fn get_schema_text(AxumState(api): Shared, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id)?;
    Ok(with_type(StatusCode::OK, api.store.read()?.schema_by_id(id)?.text().to_string()))
}

async fn get_schema_versions(AxumState(api): Shared, Path(id): Path<String>, Query(flags): Query<Flags>) -> Answer {
    let id = parse_id(&id)?;
    let versions = api.store.read()?.versions_of_id(id, flags.deleted)?;
    Ok(ok(Value::Array(versions.into_iter().map(|(s, v)| json!({ "subject": s, "version": v })).collect())))
}

// --- compatibility ---------------------------------------------------------------------------

async fn check_version(
    AxumState(api): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let version: VersionRef = version.parse()?;
    check(&api, &subject, version, flags.verbose, bytes)
}

async fn check_all(
    AxumState(api): Shared,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    check(&api, &subject, VersionRef::Latest, flags.verbose, bytes)
}

fn check(api: &Api, subject: &str, version: VersionRef, verbose: bool, bytes: Result<Bytes, BytesRejection>) -> Answer {
    let schema = schema_of(&parse(&bytes.map_err(rejected)?)?)?;
    let problems = api.store.read()?.compatibility(subject, version, &schema)?;
    let mut answer = json!({ "is_compatible": problems.is_empty() });
    if verbose {
        answer["messages"] = json!(problems);
    }
    Ok(ok(answer))
}

// --- config and mode -------------------------------------------------------------------------

fn level_of(bytes: &[u8]) -> Result<CompatibilityLevel, RegistryError> {
    let request: ConfigRequest = parse(bytes)?;
    request.compatibility.or(request.compatibility_level).ok_or(RegistryError::InvalidCompatibilityLevel)?.parse()
}

async fn get_global_config(AxumState(api): Shared) -> Answer {
    Ok(ok(json!({ "compatibilityLevel": api.store.read()?.level(None).as_str() })))
}

async fn put_global_config(AxumState(api): Shared, origin: Origin, bytes: Result<Bytes, BytesRejection>) -> Answer {
    let bytes = bytes.map_err(rejected)?;
    let level = level_of(&bytes)?;
    let written = change(&api, origin, bytes, move |state| Ok(state.plan_set_level(None, level))).await?;
    Ok(written.respond(|level| json!({ "compatibility": level.as_str() })))
}

async fn get_subject_config(AxumState(api): Shared, Path(subject): Path<String>, Query(flags): Query<Flags>) -> Answer {
    let state = api.store.read()?;
    let level = match state.subject_level(&subject) {
        Some(level) => level,
        None if flags.default_to_global => state.level(None),
        None => return Err(RegistryError::SubjectCompatibilityNotConfigured(subject)),
    };
    Ok(ok(json!({ "compatibilityLevel": level.as_str() })))
}

async fn put_subject_config(
    AxumState(api): Shared,
    Path(subject): Path<String>,
    origin: Origin,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let bytes = bytes.map_err(rejected)?;
    let level = level_of(&bytes)?;
    let written = change(&api, origin, bytes, move |state| Ok(state.plan_set_level(Some(&subject), level))).await?;
    Ok(written.respond(|level| json!({ "compatibility": level.as_str() })))
}

async fn delete_subject_config(AxumState(api): Shared, Path(subject): Path<String>, origin: Origin) -> Answer {
    let written = change(&api, origin, Bytes::new(), move |state| state.plan_delete_level(&subject)).await?;
    Ok(written.respond(|previous| json!({ "compatibilityLevel": previous.as_str() })))
}

async fn get_mode(AxumState(api): Shared) -> Answer {
    drop(api.store.read()?);
    Ok(ok(json!({ "mode": "READWRITE" })))
}

async fn put_mode(method: Method, bytes: Result<Bytes, BytesRejection>) -> Answer {
    let request: ModeRequest = parse(&bytes.map_err(rejected)?)?;
    match request.mode.as_deref() {
        Some(mode) if mode.eq_ignore_ascii_case("READWRITE") && method == Method::PUT => {
            Ok(ok(json!({ "mode": "READWRITE" })))
        }
        _ => Err(RegistryError::InvalidMode),
    }
}

// --- health and metrics ----------------------------------------------------------------------

async fn health(AxumState(api): Shared) -> Response {
    let position = api.store.position();
    match api.store.read() {
        Ok(_) => ok(json!({ "status": "UP", "position": position })),
        Err(e) => with_type(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "DOWN", "reason": e.to_string(), "position": position }).to_string(),
        ),
    }
}

async fn metrics(AxumState(api): Shared) -> Response {
    api.observe();
    let mut response = (StatusCode::OK, api.metrics.encode()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
