//! `kstreams-registry`: the Schema Registry server.
//!
//! ```text
//! kstreams-registry --bootstrap-servers 127.0.0.1:9092 --listen 127.0.0.1:8081
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{Registry, RegistryConfig, DEFAULT_MAX_BODY_BYTES};

/// A Schema Registry speaking Confluent's REST API, with schemas kept in a compacted Kafka topic.
#[derive(Parser, Debug)]
#[command(name = "kstreams-registry", version)]
struct Args {
    /// Address to serve the REST API, /health and /metrics on.
    #[arg(long, env = "KSTREAMS_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Kafka bootstrap servers (Confluent's kafkastore.bootstrap.servers).
    #[arg(long, env = "KSTREAMS_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    /// The compacted, single-partition topic that holds the schemas (kafkastore.topic).
    #[arg(long, env = "KSTREAMS_REGISTRY_TOPIC", default_value = "_schemas")]
    topic: String,
    /// The URL other instances reach this one at, to forward writes when it leads (default:
    /// http://<listen address>; set it when listening on 0.0.0.0 or behind NAT).
    #[arg(long, env = "KSTREAMS_REGISTRY_ADVERTISED_URL")]
    advertised_url: Option<String>,
    /// Replication factor when creating the topic (default: 3, or the number of brokers if fewer).
    #[arg(long)]
    replication_factor: Option<i32>,
    /// A librdkafka setting for the registry's Kafka clients, as key=value (repeatable), e.g.
    /// security.protocol=SASL_SSL.
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    kafka: Vec<String>,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// How long a write, or the first load of the topic, may take, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let mut store = StoreConfig::new(&args.bootstrap_servers)
        .topic(&args.topic)
        .timeout(Duration::from_secs(args.timeout_secs.max(1)));
    if let Some(url) = &args.advertised_url {
        store = store.advertised_url(url);
    }
    if let Some(factor) = args.replication_factor {
        store = store.replication_factor(factor);
    }
    for setting in &args.kafka {
        let Some((key, value)) = setting.split_once('=') else {
            eprintln!("kstreams-registry: --kafka takes KEY=VALUE, got `{setting}`");
            return ExitCode::from(2);
        };
        store = store.kafka(key.trim(), value.trim());
    }
    let config = RegistryConfig::new(store).listen(args.listen).max_body_bytes(args.max_body_bytes);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kstreams-registry: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let registry = match Registry::start(config).await {
            Ok(registry) => registry,
            Err(e) => {
                eprintln!("kstreams-registry: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("kstreams-registry: serving on http://{}", registry.local_addr());
        registry.run_until(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
