//! Runs `kstreams-registry` processes against the test broker, and talks HTTP to them.
//!
//! The broker comes from `KSTREAMS_BOOTSTRAP` (default `127.0.0.1:9092`, as `scripts/kafka start`
//! runs it). Each test uses a topic of its own, so tests run side by side on one broker.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The test broker.
pub fn bootstrap() -> String {
    std::env::var("KSTREAMS_BOOTSTRAP").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "127.0.0.1:9092".into())
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("_schemas-{prefix}-{}-{nanos}", std::process::id())
}

/// A registry process.
pub struct RegistryProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub topic: String,
}

impl RegistryProcess {
    /// Starts a registry on `topic` (a free port), and waits until `/health` says UP.
    pub fn start(topic: &str) -> RegistryProcess {
        Self::start_with(topic, &[])
    }

    /// As [`start`](Self::start), with extra command-line arguments.
    pub fn start_with(topic: &str, args: &[&str]) -> RegistryProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kstreams-registry"))
            .args(["--listen", "127.0.0.1:0", "--bootstrap-servers", &bootstrap(), "--topic", topic])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run kstreams-registry");
        let stdout = child.stdout.take().expect("registry stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("kstreams-registry: serving on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "kstreams-registry did not start within 60 s; is a broker running at {}? (scripts/kafka start)",
                    bootstrap()
                );
            }
        };
        let process = RegistryProcess { child, url, topic: topic.to_string() };
        process.wait_healthy(Duration::from_secs(60));
        process
    }

    /// Waits until `/health` answers 200.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = get(&format!("{}/health", self.url));
            if status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "registry at {} not healthy after {timeout:?}: {status} {body}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> (u16, String) {
    let mut response = response.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().unwrap_or_default();
    (status, body)
}

/// `GET url` → (status, body).
pub fn get(url: &str) -> (u16, String) {
    answer(agent().get(url).call(), url)
}

/// `DELETE url` → (status, body).
pub fn delete(url: &str) -> (u16, String) {
    answer(agent().delete(url).call(), url)
}

/// `POST url` with a JSON body in Confluent's content type → (status, body).
pub fn post(url: &str, body: &str) -> (u16, String) {
    answer(agent().post(url).header("Content-Type", "application/vnd.schemaregistry.v1+json").send(body), url)
}

/// `PUT url` with a JSON body → (status, body).
pub fn put(url: &str, body: &str) -> (u16, String) {
    answer(agent().put(url).header("Content-Type", "application/vnd.schemaregistry.v1+json").send(body), url)
}

/// Parses a JSON body.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The body of a registration of `schema` (an Avro schema in JSON).
pub fn register_body(schema: &str) -> String {
    serde_json::json!({ "schema": schema }).to_string()
}

/// Registers `schema` under `subject`; the id, or panics with the registry's answer.
pub fn register(url: &str, subject: &str, schema: &str) -> u32 {
    let (status, body) = post(&format!("{url}/subjects/{subject}/versions"), &register_body(schema));
    assert_eq!(status, 200, "registering under {subject}: {body}");
    json(&body)["id"].as_u64().expect("an id") as u32
}

/// A record schema named `name` with one int field per entry of `fields`.
pub fn record_schema(name: &str, fields: &[&str]) -> String {
    let fields: Vec<serde_json::Value> =
        fields.iter().map(|f| serde_json::json!({ "name": f, "type": "int" })).collect();
    serde_json::json!({ "type": "record", "name": name, "fields": fields }).to_string()
}
