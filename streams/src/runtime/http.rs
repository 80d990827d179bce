//! The application's built-in HTTP server (axum): metrics, health and interactive queries.
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text format |
//! | `GET /health` | `{"state": "RUNNING"}`; 200 while running or rebalancing, 503 otherwise |
//! | `GET /metadata` | what every instance hosts (needs `application.server`) |
//! | `GET /stores/<store>/keys/<key>` | the key's value (key-value store), windows (window store; `?from=&to=` in ms) or sessions (session store), from this instance or forwarded to the one that hosts the key |
//!
//! Keys are given as JSON (`42`, `"a b"`, `{"id":1}`) or, when the text is not JSON the key serde
//! understands, as a string. Answers are JSON: `{"store", "key", "partition", "host", "value"}`
//! (or `"windows"`, `"sessions"`); 404 for a key without a value or an unknown store; 503 with
//! `"retryable": true` and a `Retry-After` header while the key's partition is restoring or moving.
//! Values need a serde with a JSON form (strings, numbers, JSON, Avro, bincode of serde types).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

use kstreams_state::layers::SharedStore;
use kstreams_state::StoreKind;

use crate::error::{Result, StreamsError};
use crate::query::local::LocalCopy;
use crate::query::{QueryContext, StoreInfo};
use crate::runtime::metrics::StreamsMetrics;
use crate::runtime::State;

/// The header that marks a query forwarded by another instance: it is answered locally or not at all.
const FORWARDED: &str = "x-kstreams-forwarded";

#[derive(Clone)]
struct Served {
    metrics: StreamsMetrics,
    query: Arc<QueryContext>,
    agent: ureq::Agent,
}

pub(crate) struct HttpServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `address` (named `setting` in errors) and serves until dropped.
    pub(crate) fn start(
        address: &str,
        setting: &'static str,
        metrics: StreamsMetrics,
        query: Arc<QueryContext>,
    ) -> Result<HttpServer> {
        let bad = |e: String| StreamsError::config(setting, e);
        // Bound here, so that a taken port fails `start` with the setting's name.
        let listener = std::net::TcpListener::bind(address)
            .map_err(|e| bad(format!("cannot listen on `{address}`: {e} (give a local address and a free port)")))?;
        let address = listener.local_addr().map_err(|e| bad(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the HTTP server's runtime: {e}")))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .timeout_connect(Some(Duration::from_secs(2)))
            .build()
            .into();
        let served = Served { metrics, query, agent };
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics_route))
            .route("/health", axum::routing::get(health))
            .route("/metadata", axum::routing::get(metadata))
            .route("/stores/{store}/keys/{key}", axum::routing::get(key_route))
            .with_state(served);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("kstreams-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let served = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => axum::serve(listener, app)
                            .with_graceful_shutdown(async move {
                                let _ = stopped.await;
                            })
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = served {
                        tracing::warn!(error = %e, "the HTTP server stopped");
                    }
                });
            })
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the HTTP server thread: {e}")))?;
        tracing::info!(%address, "serving /metrics, /health and /stores over HTTP");
        Ok(HttpServer { address, shutdown: Some(shutdown), handle: Some(handle) })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

async fn metrics_route(AxumState(s): AxumState<Served>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Created => "CREATED",
        State::Rebalancing => "REBALANCING",
        State::Running => "RUNNING",
        State::PendingShutdown => "PENDING_SHUTDOWN",
        State::NotRunning => "NOT_RUNNING",
        State::Error => "ERROR",
    }
}

async fn health(AxumState(s): AxumState<Served>) -> Response {
    let state = (s.query.state)();
    let status = match state {
        State::Running | State::Rebalancing => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, json_body(json!({ "state": state_name(state) }))).into_response()
}

async fn metadata(AxumState(s): AxumState<Served>) -> Response {
    let query = s.query.clone();
    let answer = tokio::task::spawn_blocking(move || query.all_metadata()).await;
    match answer {
        Ok(Ok(all)) => {
            let hosts: Vec<Json> = all
                .into_iter()
                .map(|m| {
                    json!({
                        "host": m.host_info.to_string(),
                        "stores": m.state_store_names,
                        "partitions": m.topic_partitions.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            (StatusCode::OK, json_body(json!({ "instances": hosts }))).into_response()
        }
        Ok(Err(e)) => error_response(&e),
        Err(e) => internal(&format!("the metadata lookup failed: {e}")),
    }
}

#[derive(serde::Deserialize)]
struct TimeRange {
    from: Option<i64>,
    to: Option<i64>,
}

async fn key_route(
    AxumState(s): AxumState<Served>,
    Path((store, key)): Path<(String, String)>,
    Query(range): Query<TimeRange>,
    headers: HeaderMap,
) -> Response {
    let forwarded = headers.contains_key(FORWARDED);
    match tokio::task::spawn_blocking(move || answer_key(&s, &store, &key, &range, forwarded)).await {
        Ok(response) => response,
        Err(e) => internal(&format!("the query failed: {e}")),
    }
}

/// Answers a key query here, or forwards it to the instance that hosts the key.
fn answer_key(s: &Served, store: &str, key_text: &str, range: &TimeRange, forwarded: bool) -> Response {
    let ctx = &s.query;
    let info = match ctx.info(store) {
        Ok(info) => info,
        Err(e) => return json_error(StatusCode::NOT_FOUND, "unknown_store", &e.to_string(), false),
    };
    if let Err(e) = ctx.check_running(store) {
        return error_response(&e);
    }
    let topic = info.source_topics.first().cloned().unwrap_or_default();
    let key = match info.serdes.key_from_text(&topic, key_text) {
        Ok(k) => k,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_key", &e, false),
    };
    if info.global {
        return match ctx.local.global(store) {
            Some(copy) => read_local(ctx, info, store, &key, key_text, -1, &copy, range),
            None => retry_later(store, "the global store is still restoring"),
        };
    }
    let partition = ctx.partition_of(info, &key);
    match ctx.local.get(store, partition) {
        Some(LocalCopy::Active(copy)) => read_local(ctx, info, store, &key, key_text, partition, &copy, range),
        Some(LocalCopy::Restoring) => {
            retry_later(store, &format!("partition {partition} is restoring on this instance"))
        }
        // The HTTP endpoint answers with the active copy only: a standby here forwards too.
        None | Some(LocalCopy::Standby(_)) if forwarded => {
            retry_later(store, &format!("partition {partition} is not (or no longer) hosted here"))
        }
        None | Some(LocalCopy::Standby(_)) => forward(s, store, &key, key_text, range),
    }
}

#[allow(clippy::too_many_arguments)]
fn read_local(
    ctx: &QueryContext,
    info: &StoreInfo,
    store: &str,
    key: &[u8],
    key_text: &str,
    partition: i32,
    copy: &SharedStore,
    range: &TimeRange,
) -> Response {
    let topic = &info.changelog_topic;
    let key_json = info.serdes.key_to_json(topic, key).unwrap_or_else(|_| Json::String(key_text.to_string()));
    let mut body = json!({
        "store": store,
        "key": key_json,
        "partition": partition,
        "host": ctx.endpoint.as_ref().map(|h| h.to_string()),
    });
    let to_json = |bytes: &[u8]| info.serdes.value_to_json(topic, bytes);
    let closed = || retry_later(store, "its task closed while it was read (the partition is moving)");
    let read: std::result::Result<Option<(&str, Json)>, String> = match &info.kind {
        StoreKind::KeyValue => match copy.key_value(|s| s.get(key)) {
            Some(Ok(Some(v))) => to_json(&v).map(|j| Some(("value", j))),
            Some(Ok(None)) => Ok(None),
            Some(Err(kstreams_state::StateError::Closed(_))) => return closed(),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the local copy is not a key-value store".into()),
        },
        StoreKind::Window { window_size_ms, .. } => {
            let (from, to) = (range.from.unwrap_or(i64::MIN), range.to.unwrap_or(i64::MAX));
            match copy.window(|s| s.fetch_range(key, from, to)) {
                Some(Ok(windows)) => windows
                    .into_iter()
                    .map(|(start, v)| {
                        to_json(&v)
                            .map(|value| json!({"start": start, "end": start.saturating_add(*window_size_ms), "value": value}))
                    })
                    .collect::<std::result::Result<Vec<Json>, String>>()
                    .map(|w| (!w.is_empty()).then_some(("windows", Json::Array(w)))),
                Some(Err(kstreams_state::StateError::Closed(_))) => return closed(),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the local copy is not a window store".into()),
            }
        }
        StoreKind::Session { .. } => match copy.session(|s| s.fetch(key)) {
            Some(Ok(sessions)) => sessions
                .into_iter()
                .map(|(w, v)| to_json(&v).map(|value| json!({"start": w.start, "end": w.end, "value": value})))
                .collect::<std::result::Result<Vec<Json>, String>>()
                .map(|w| (!w.is_empty()).then_some(("sessions", Json::Array(w)))),
            Some(Err(kstreams_state::StateError::Closed(_))) => return closed(),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the local copy is not a session store".into()),
        },
    };
    match read {
        Ok(Some((field, value))) => {
            body[field] = value;
            (StatusCode::OK, json_body(body)).into_response()
        }
        Ok(None) => {
            body["error"] = json!("not_found");
            body["message"] = json!(format!("no value for key `{key_text}` in store `{store}`"));
            (StatusCode::NOT_FOUND, json_body(body)).into_response()
        }
        Err(e) => internal(&format!("reading store `{store}`: {e}")),
    }
}

/// Sends the query to the instance that hosts the key and relays its answer.
fn forward(s: &Served, store: &str, key: &[u8], key_text: &str, range: &TimeRange) -> Response {
    let owner = match s.query.metadata_for_key_bytes(store, key) {
        Ok(owner) => owner,
        Err(e) => return error_response(&e),
    };
    if s.query.endpoint.as_ref() == Some(&owner.active_host) {
        // The group says here, the tasks are not here yet.
        return retry_later(store, &format!("partition {} is being assigned to this instance", owner.partition));
    }
    let mut url = format!(
        "http://{}/stores/{}/keys/{}",
        owner.active_host,
        percent_encoding::utf8_percent_encode(store, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(key_text, percent_encoding::NON_ALPHANUMERIC)
    );
    let params: Vec<String> = [("from", range.from), ("to", range.to)]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name}={v}")))
        .collect();
    if !params.is_empty() {
        url = format!("{url}?{}", params.join("&"));
    }
    let relayed = s.agent.get(&url).header(FORWARDED, "1").call().and_then(|mut response| {
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string()?;
        Ok((status, text))
    });
    match relayed {
        Ok((status, text)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            }
            response
        }
        Err(e) => {
            if let Some(d) = &s.query.discovery {
                d.invalidate();
            }
            retry_later(store, &format!("the instance hosting the key ({}) did not answer: {e}", owner.active_host))
        }
    }
}

/// A JSON answer.
fn json_body(value: Json) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], value.to_string())
}

fn json_error(status: StatusCode, error: &str, message: &str, retryable: bool) -> Response {
    let mut response =
        (status, json_body(json!({ "error": error, "message": message, "retryable": retryable }))).into_response();
    if retryable {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    response
}

fn retry_later(store: &str, reason: &str) -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        &format!("store `{store}` cannot answer now: {reason}; retry"),
        true,
    )
}

fn internal(message: &str) -> Response {
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", message, false)
}

fn error_response(e: &StreamsError) -> Response {
    match e {
        StreamsError::InvalidStateStore { retryable: true, .. } => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e.to_string(), true)
        }
        StreamsError::InvalidStateStore { .. } => {
            json_error(StatusCode::NOT_FOUND, "unavailable", &e.to_string(), false)
        }
        StreamsError::Kafka(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "kafka", &e.to_string(), true),
        other => internal(&other.to_string()),
    }
}
