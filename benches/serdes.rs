//! Serde micro-benchmarks: serialize and deserialize one record value with each built-in serde
//! (Kafka's primitive layouts, String, JSON, bincode, Avro in the Schema Registry wire format) and
//! a time-windowed key in Kafka Streams' layout.
//!
//! `cargo bench --bench serdes`

use std::hint::black_box;
use std::sync::Arc;

use apache_avro::AvroSchema;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kstreams::header::Headers;
use kstreams::serde::avro::InMemorySchemas;
use kstreams::serde::{Serdes, SharedSerde};
use kstreams::windowed::{Window, Windowed};

/// A sale, as the retail example's records look: a few strings and numbers.
#[derive(AvroSchema, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Sale {
    store: String,
    product: String,
    quantity: i32,
    unit_price: f64,
    at: i64,
}

fn sale() -> Sale {
    Sale {
        store: "seoul-042".into(),
        product: "sku-000123".into(),
        quantity: 3,
        unit_price: 12.5,
        at: 1_700_000_000_000,
    }
}

/// Benchmarks a round trip of `value` through `serde`: serialize, and deserialize its bytes.
fn round_trip<T: PartialEq + std::fmt::Debug + 'static>(
    c: &mut Criterion,
    name: &str,
    serde: SharedSerde<T>,
    value: T,
) {
    let headers = Headers::default();
    let bytes = serde.serialize("t", &headers, &value).unwrap();
    assert_eq!(serde.deserialize("t", &headers, bytes.as_deref()).unwrap(), value, "{name} round trip");
    let mut group = c.benchmark_group(format!("serde/{name}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("serialize", |b| b.iter(|| serde.serialize("t", &headers, black_box(&value)).unwrap()));
    group.bench_function("deserialize", |b| {
        b.iter(|| serde.deserialize("t", &headers, black_box(bytes.as_deref())).unwrap())
    });
    group.finish();
}

fn serdes(c: &mut Criterion) {
    round_trip(c, "i64", Serdes::i64(), 1_234_567_890_i64);
    round_trip(c, "string", Serdes::string(), "a line of text of about forty characters".to_string());
    round_trip(c, "bytes_100", Serdes::bytes(), vec![7u8; 100]);
    round_trip(c, "json", Serdes::json::<Sale>(), sale());
    round_trip(c, "bincode", Serdes::bincode::<Sale>(), sale());
    let schemas = Arc::new(InMemorySchemas::new());
    schemas.register(1, Sale::get_schema()).unwrap();
    round_trip(c, "avro", Serdes::avro::<Sale>(1, schemas), sale());
    let key = Windowed::new(42_i64, Window::new(60_000, 70_000));
    round_trip(c, "time_windowed_i64", Serdes::time_windowed(Serdes::i64(), 10_000), key);
}

criterion_group!(benches, serdes);
criterion_main!(benches);
