//! Every decoder that reads bytes from a topic either decodes them or returns an error: random and
//! mutated bytes never make one panic. A panic here would be a poison pill (a record that kills the
//! thread on every restart); an error goes to the deserialization handler.
//!
//! `cargo test` runs 512 cases per property with a fixed seed; a longer run (the figure in the
//! README) is `PROPTEST_CASES=1000000 cargo test --release -p kstreams-streams --test decoders`, and
//! `KSTREAMS_PROPTEST_SEED=<n>` picks another seed.

use std::sync::Arc;

use apache_avro::AvroSchema;
use kstreams_streams::header::Headers;
use kstreams_streams::serde::avro::{wire_format, InMemorySchemas};
use kstreams_streams::serde::{Serdes, SharedSerde};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde::{Deserialize, Serialize};

fn config() -> Config {
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map_or(512, |n| n.min(u32::MAX as u64) as u32),
        rng_seed: RngSeed::Fixed(env("KSTREAMS_PROPTEST_SEED").unwrap_or(20261203)),
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct Sale {
    store: String,
    sku: String,
    quantity: i32,
    cents: i64,
    lines: Vec<String>,
    note: Option<String>,
}

fn sale() -> Sale {
    Sale {
        store: "S-01".into(),
        sku: "SKU-0001".into(),
        quantity: 3,
        cents: 1299,
        lines: vec!["a".into(), "b".into()],
        note: Some("gift".into()),
    }
}

/// A serde under test: it is handed `bytes` (or a null) and must not panic.
fn exercise<T: 'static>(serde: &SharedSerde<T>, bytes: Option<&[u8]>) {
    let _ = serde.deserialize("t", &Headers::new(), bytes);
}

/// `valid` with some bytes changed, some cut off and some appended.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        proptest::collection::vec((0..len.max(1), any::<u8>()), 0..4),
        0..=len,
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(flips, cut, tail)| {
            let mut bytes = valid.clone();
            for (at, byte) in flips {
                if at < bytes.len() {
                    bytes[at] = byte;
                }
            }
            bytes.truncate(cut);
            bytes.extend(tail);
            bytes
        })
}

fn avro_schemas() -> Arc<InMemorySchemas> {
    let schemas = InMemorySchemas::new();
    schemas.register(1, Sale::get_schema()).unwrap();
    Arc::new(schemas)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn primitive_serdes_never_panic(bytes in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24))) {
        let b = bytes.as_deref();
        exercise(&Serdes::string(), b);
        exercise(&Serdes::bytes(), b);
        exercise(&Serdes::i16(), b);
        exercise(&Serdes::i32(), b);
        exercise(&Serdes::i64(), b);
        exercise(&Serdes::f32(), b);
        exercise(&Serdes::f64(), b);
        exercise(&Serdes::bool(), b);
        exercise(&Serdes::uuid(), b);
        exercise(&Serdes::unit(), b);
        exercise(&Serdes::nullable(Serdes::i64()), b);
    }

    #[test]
    fn json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        exercise(&Serdes::json::<Sale>(), Some(&bytes));
        exercise(&Serdes::json::<serde_json::Value>(), Some(&bytes));
    }

    #[test]
    fn json_mutations_never_panic(bytes in mutated(serde_json::to_vec(&sale()).unwrap())) {
        exercise(&Serdes::json::<Sale>(), Some(&bytes));
    }

    #[test]
    fn bincode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        exercise(&Serdes::bincode::<Sale>(), Some(&bytes));
    }

    #[test]
    fn bincode_mutations_never_panic(bytes in mutated(
        Serdes::bincode::<Sale>().serialize("t", &Headers::new(), &sale()).unwrap().unwrap()
    )) {
        exercise(&Serdes::bincode::<Sale>(), Some(&bytes));
    }

    /// The wire format with random schema ids (mostly unknown), truncated headers and random bodies.
    #[test]
    fn avro_never_panics(id in prop_oneof![Just(1u32), any::<u32>()], body in proptest::collection::vec(any::<u8>(), 0..48), cut in 0usize..6) {
        let serde = Serdes::avro::<Sale>(1, avro_schemas());
        let mut bytes = wire_format(id, &body);
        if cut < 5 {
            bytes.truncate(cut);
        }
        exercise(&serde, Some(&bytes));
        let generic = Serdes::avro_generic(Arc::new(Sale::get_schema()), 1, avro_schemas());
        exercise(&generic, Some(&bytes));
    }

    #[test]
    fn avro_mutations_never_panic(bytes in mutated(
        Serdes::avro::<Sale>(1, avro_schemas()).serialize("t", &Headers::new(), &sale()).unwrap().unwrap()
    )) {
        exercise(&Serdes::avro::<Sale>(1, avro_schemas()), Some(&bytes));
    }

    /// Windowed keys, with window sizes up to `i64::MAX` (the end is start + size).
    #[test]
    fn windowed_keys_never_panic(
        bytes in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        size in prop_oneof![Just(i64::MAX), Just(1i64), any::<i64>()],
    ) {
        let b = bytes.as_deref();
        exercise(&Serdes::time_windowed(Serdes::string(), size), b);
        exercise(&Serdes::time_windowed(Serdes::i64(), size), b);
        exercise(&Serdes::session_windowed(Serdes::string()), b);
        exercise(&Serdes::session_windowed(Serdes::bytes()), b);
    }
}
