//! A Schema Registry that speaks Confluent's REST API, with every schema kept in a compacted Kafka
//! topic: a drop-in for the clients (serializers, converters, tools) that talk to Confluent's.
//!
//! - [`api`]: the endpoints (`/subjects`, `/schemas/ids`, `/compatibility`, `/config`, `/mode`,
//!   `/health`, `/metrics`) and Confluent's error codes ([`error`]).
//! - [`store`]: the `_schemas` topic, read by every instance to rebuild its [`state`], written by one
//!   instance at a time (a Kafka transaction fences the others), so ids are unique across instances
//!   and restarts.
//! - [`compat`]: compatibility levels and the check, on apache-avro's schema resolution rules.
//!
//! Run it with `kstreams-registry --bootstrap-servers 127.0.0.1:9092 --listen 127.0.0.1:8081`
//! (`scripts/kafka start` does), or in-process:
//!
//! ```no_run
//! # async fn run() -> Result<(), kstreams_registry::error::RegistryError> {
//! use kstreams_registry::{Registry, RegistryConfig};
//! use kstreams_registry::store::StoreConfig;
//! let registry = Registry::start(RegistryConfig::new(StoreConfig::new("127.0.0.1:9092"))).await?;
//! println!("serving on http://{}", registry.local_addr());
//! registry.stop().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod compat;
pub mod error;
pub mod metrics;
pub mod records;
pub mod schema;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use error::RegistryError;
use store::{KafkaStore, StoreConfig};

/// The largest request body taken by default (a schema is at most a Kafka record, ~1 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where the registry listens and keeps its schemas.
///
/// ```
/// use kstreams_registry::RegistryConfig;
/// use kstreams_registry::store::StoreConfig;
/// let config = RegistryConfig::new(StoreConfig::new("127.0.0.1:9092")).listen("127.0.0.1:0".parse().unwrap());
/// assert_eq!(config.listen_addr().port(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    listen: SocketAddr,
    store: StoreConfig,
    max_body_bytes: usize,
}

impl RegistryConfig {
    /// Listens on 127.0.0.1:8081 (Confluent's port) over `store`.
    pub fn new(store: StoreConfig) -> Self {
        RegistryConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            store,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The address to listen on (port 0 picks a free one).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The address it listens on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The largest request body accepted; larger ones get a 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

/// A registry on a runtime of its own, started and stopped from synchronous code: for tests,
/// benchmarks and examples that need a real registry in-process. Dropping it stops it.
///
/// ```no_run
/// use kstreams_registry::{BlockingRegistry, RegistryConfig};
/// use kstreams_registry::store::StoreConfig;
/// let store = StoreConfig::new("127.0.0.1:9092").topic("_schemas-my-test");
/// let registry = BlockingRegistry::start(RegistryConfig::new(store).listen("127.0.0.1:0".parse().unwrap())).unwrap();
/// println!("schema.registry.url={}", registry.url());
/// ```
pub struct BlockingRegistry {
    url: String,
    runtime: tokio::runtime::Runtime,
    registry: Option<Registry>,
}

impl BlockingRegistry {
    /// Starts a registry and waits until it has read its topic.
    pub fn start(config: RegistryConfig) -> Result<BlockingRegistry, RegistryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Store(format!("cannot start a runtime: {e}")))?;
        let timeout = config.store.load_timeout();
        let registry = runtime.block_on(async {
            let registry = Registry::start(config).await?;
            registry.wait_loaded(timeout).await?;
            Ok::<_, RegistryError>(registry)
        })?;
        Ok(BlockingRegistry { url: format!("http://{}", registry.local_addr()), runtime, registry: Some(registry) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for BlockingRegistry {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.take() {
            self.runtime.block_on(registry.stop());
        }
    }
}

/// A running registry.
pub struct Registry {
    addr: SocketAddr,
    store: Arc<KafkaStore>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Registry {
    /// Opens the store (creating the topic if needed), binds the address and serves. Returns once
    /// it listens; requests get a "still loading" error until the topic is read (see
    /// [`wait_loaded`](Self::wait_loaded) and `/health`).
    pub async fn start(config: RegistryConfig) -> Result<Registry, RegistryError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| RegistryError::Store(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener.local_addr().map_err(|e| RegistryError::Store(e.to_string()))?;
        let mut store_config = config.store;
        if store_config.advertised().is_none() {
            // Other instances forward writes here; an unspecified address is not reachable as such.
            let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
            store_config = store_config.advertised_url(format!("http://{host}:{}", addr.port()));
        }
        let store = KafkaStore::open(store_config).await?;
        let metrics = metrics::Metrics::new().map_err(|e| RegistryError::Store(format!("metrics: {e}")))?;
        let app = api::router(api::Api::new(Arc::clone(&store), metrics), config.max_body_bytes);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "schema registry listening");
        Ok(Registry { addr, store, shutdown, server })
    }

    /// The address it serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the schemas topic has been read, for at most `timeout`.
    pub async fn wait_loaded(&self, timeout: Duration) -> Result<(), RegistryError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.wait_loaded(timeout))
            .await
            .map_err(|e| RegistryError::Store(e.to_string()))?
    }

    /// Serves until `signal` completes, then stops.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }

    /// Stops serving (in-flight requests finish) and stops reading the topic.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.server.await;
        let store = self.store;
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
    }
}
