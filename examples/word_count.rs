//! Word count, end to end against a real broker: the "hello world" of Kafka Streams.
//!
//! Creates an input and an output topic, writes a few lines of text, runs the word-count topology
//! with `exactly_once_v2`, reads the counts back with a read_committed consumer until they match the
//! counts computed here, prints them, and exits non-zero if they never do.
//!
//! ```text
//! scripts/kafka start && cargo run --example word_count
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::runtime::{KafkaStreams, StreamsConfig};
use kstreams::serde::Serdes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

const TEXT: &[&str] = &[
    "all streams lead to kafka",
    "hello kafka streams",
    "join kafka summit",
    "streams of records flow through kafka",
    "a table is a stream of changes and a stream is a table of facts",
];

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let bootstrap = std::env::var("KSTREAMS_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let (input, output, app_id) =
        (format!("wordcount-input-{run}"), format!("wordcount-output-{run}"), format!("wordcount-{run}"));

    create_topics(&bootstrap, &[&input, &output])?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
    for line in TEXT {
        producer.send(BaseRecord::<(), str>::to(&input).payload(*line)).map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(10))?;

    // The topology of Kafka's WordCountDemo.
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| line.to_lowercase().split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, word: &String| word.clone(), Default::default())
        .count(Materialized::as_("counts-store"))
        .to_stream()
        .to(&output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    let topology = builder.build()?;
    println!("{}", topology.describe());

    let state_dir = std::env::temp_dir().join(format!("kstreams-wordcount-{run}"));
    let config = StreamsConfig::new()
        .set("application.id", &app_id)
        .set("bootstrap.servers", &bootstrap)
        .set("processing.guarantee", "exactly_once_v2")
        .set("state.dir", state_dir.to_string_lossy());
    let mut app = KafkaStreams::new(topology, config)?;
    app.start()?;

    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for word in TEXT.iter().flat_map(|l| l.split_whitespace()) {
        *expected.entry(word.to_string()).or_default() += 1;
    }
    let counts = read_counts(&bootstrap, &output, &expected, Duration::from_secs(90));
    let state = app.state();
    app.close(Duration::from_secs(30))?;
    let _ = std::fs::remove_dir_all(&state_dir);
    let counts = counts?;

    println!("{:<10} count", "word");
    for (word, count) in &counts {
        println!("{word:<10} {count}");
    }
    if counts != expected {
        return Err(format!(
            "counts differ from the input's: got {counts:?}, expected {expected:?} (app state {state:?})"
        )
        .into());
    }
    println!("word count matches the input: {} distinct words, {} in all", counts.len(), counts.values().sum::<i64>());
    Ok(())
}

fn create_topics(bootstrap: &str, topics: &[&str]) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let new: Vec<NewTopic<'_>> = topics.iter().map(|t| NewTopic::new(t, 3, TopicReplication::Fixed(1))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for result in runtime.block_on(admin.create_topics(&new, &AdminOptions::new()))? {
        result.map_err(|(t, e)| {
            format!("cannot create topic {t}: {e}; is a broker running at {bootstrap}? (scripts/kafka start)")
        })?;
    }
    Ok(())
}

/// Reads the output (read_committed) until the latest count per word equals `expected`.
fn read_counts(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeMap<String, i64>,
    timeout: Duration,
) -> Result<BTreeMap<String, i64>, Error> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && &counts != expected {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message?;
            let word = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
            let count = match message.payload() {
                Some(p) if p.len() == 8 => i64::from_be_bytes(p.try_into()?),
                _ => continue,
            };
            counts.insert(word, count);
        }
    }
    Ok(counts)
}
