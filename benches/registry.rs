//! Schema Registry throughput on the real broker: registrations per second (each one a Kafka
//! transaction on the `_schemas` topic, read back before it is answered), schema lookups by id over
//! HTTP (served from the registry's memory), and the Avro serde's own cache (no HTTP at all).
//!
//! `scripts/kafka start && cargo bench --bench registry` (about 30 s). It starts a registry in this
//! process on a topic of its own; clients are threads with blocking HTTP connections, so on a
//! 2-core machine clients and server share the cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apache_avro::AvroSchema;
use kstreams::header::Headers;
use kstreams::serde::avro::AvroSerdeConfig;
use kstreams::serde::registry::SchemaRegistryClient;
use kstreams::serde::Serdes;
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{BlockingRegistry, RegistryConfig};

const RUN: Duration = Duration::from_secs(5);

#[derive(AvroSchema, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Sale {
    store: String,
    product: String,
    quantity: i32,
    unit_price: f64,
    at: i64,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn schema(n: u64) -> String {
    serde_json::json!({ "type": "record", "name": format!("R{n}"), "fields": [{ "name": "a", "type": "int" }] })
        .to_string()
}

/// Runs `op` from `clients` threads for [`RUN`]; operations per second.
fn throughput(clients: usize, op: impl Fn(u64, u64) + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients as u64)
        .map(|client| {
            let (op, stop, done) = (Arc::clone(&op), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(client, i);
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a client failed");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let bootstrap = std::env::var("KSTREAMS_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let store = StoreConfig::new(&bootstrap).topic(format!("_schemas-bench-{nanos}"));
    let registry = BlockingRegistry::start(RegistryConfig::new(store).listen("127.0.0.1:0".parse().unwrap()))
        .unwrap_or_else(|e| panic!("cannot start the registry (is a broker running at {bootstrap}?): {e}"));
    let url = registry.url().to_string();
    println!("registry on {url}, broker {bootstrap}, {RUN:?} per measurement\n");
    println!("| measurement | clients | per second |");
    println!("|---|---|---|");

    for clients in [1, 8] {
        let base = url.clone();
        let rate = throughput(clients, move |client, i| {
            let n = client * 1_000_000 + i + clients as u64 * 100_000_000;
            let body = serde_json::json!({ "schema": schema(n) }).to_string();
            let mut response = agent()
                .post(&format!("{base}/subjects/bench-{n}/versions"))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .send(&body)
                .expect("register");
            assert_eq!(response.status(), 200, "{}", response.body_mut().read_to_string().unwrap_or_default());
        });
        println!("| registrations (a new schema each) | {clients} | {rate:.0} |");
    }

    // Lookups of ids that exist, over HTTP, one keep-alive connection per client.
    let ids: u64 = {
        let body = agent().get(&format!("{url}/subjects")).call().unwrap().body_mut().read_to_string().unwrap();
        serde_json::from_str::<Vec<String>>(&body).unwrap().len() as u64
    };
    for clients in [1, 8] {
        let base = url.clone();
        let rate = throughput(clients, move |client, i| {
            thread_local!(static AGENT: ureq::Agent = agent());
            let id = 1 + (client * 7919 + i) % ids;
            let status = AGENT.with(|a| a.get(&format!("{base}/schemas/ids/{id}")).call().expect("lookup").status());
            assert_eq!(status, 200);
        });
        println!("| GET /schemas/ids/{{id}} (from the registry's memory) | {clients} | {rate:.0} |");
    }

    // The serde side: once an id is known, decoding asks nobody.
    let avro = AvroSerdeConfig::new(Arc::new(SchemaRegistryClient::new(&url).unwrap()));
    let serde = Serdes::avro_registry::<Sale>(&avro, false);
    let sale = Sale { store: "seoul-042".into(), product: "sku-000123".into(), quantity: 3, unit_price: 12.5, at: 1 };
    let headers = Headers::new();
    let bytes = serde.serialize("bench-sales", &headers, &sale).unwrap().unwrap();
    let client = avro.client().clone();
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let rate = throughput(1, move |_, _| {
        std::hint::black_box(client.schema(id).unwrap());
    });
    println!("| client cache: schema by id (no HTTP) | 1 | {rate:.0} |");
    let rate = throughput(1, move |_, _| {
        std::hint::black_box(serde.deserialize("bench-sales", &headers, Some(&bytes)).unwrap());
    });
    println!("| serde: decode a Sale written with a registry id | 1 | {rate:.0} |");
}
