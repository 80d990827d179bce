//! The hub's Kafka side: creating the topics, writing a generated [`Plan`] as the shop's systems
//! would, starting application instances, and reading the results back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use apache_avro::Schema;
use kstreams::header::Headers;
use kstreams::runtime::{KafkaStreams, StreamsConfig};
use kstreams::serde::avro::{wire_format, AvroSerdeConfig};
use kstreams::serde::registry::{RegistryClientError, SchemaRegistryClient};
use kstreams::serde::{Serdes, SharedSerde};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers as _, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::calendar::{Month, DAY_MS};
use crate::cdc::CdcTopics;
use crate::generator::{Breakage, PosVersion, Record, Upload};
use crate::model::{pos_schemas, AutoOrder, Forecast, MonthlySales, PosSale, WebAvailability};
use crate::topology::{build, build_on_databases, RetailSettings, Topics};

/// Errors of the hub's plumbing, with what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Kafka refused or could not be reached.
    #[error("{what}: {source}; is the broker running? (scripts/kafka start)")]
    Kafka {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The Schema Registry refused or could not be reached.
    #[error("{0}")]
    Registry(#[from] RegistryClientError),
    /// The application failed.
    #[error("the application: {0}")]
    App(#[from] kstreams::StreamsError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn kafka(what: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> HubError {
    let what = what.into();
    move |source| HubError::Kafka { what, source }
}

/// Where the hub runs.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// The Schema Registry's URL.
    pub registry_url: String,
    /// The application's settings (topics and partitions included).
    pub settings: RetailSettings,
    /// With the shop's databases (`scripts/hub`): the Debezium topics the application reads.
    pub cdc: Option<CdcTopics>,
}

impl Hub {
    /// The hub on `bootstrap` and `registry_url`, with the default topics and settings.
    pub fn new(bootstrap: impl Into<String>, registry_url: impl Into<String>) -> Self {
        Hub {
            bootstrap: bootstrap.into(),
            registry_url: registry_url.into(),
            settings: RetailSettings::default(),
            cdc: None,
        }
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    /// The Avro settings of the POS serdes.
    pub fn avro(&self) -> Result<AvroSerdeConfig, HubError> {
        Ok(AvroSerdeConfig::from_props([("schema.registry.url", self.registry_url.as_str())])?)
    }

    /// Deletes the hub's topics and the application's internal topics (a clean run), then creates
    /// the topics: the two sales feeds (and the Debezium topics, with the databases) with one
    /// partition (see [`crate::topology`]), the others with [`RetailSettings::partitions`]; the
    /// catalog and inventory compacted.
    pub fn reset_topics(&self, application_id: &str) -> Result<(), HubError> {
        let admin: AdminClient<DefaultClientContext> = self.client().create().map_err(kafka("admin client"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HubError::Other(e.to_string()))?;
        let topics = &self.settings.topics;
        let mut all: Vec<&str> = topics.all().to_vec();
        if let Some(cdc) = &self.cdc {
            all.extend([cdc.sale_lines.as_str(), cdc.order_lines.as_str(), cdc.stock.as_str()]);
        }
        let metadata =
            admin.inner().fetch_metadata(None, Duration::from_secs(10)).map_err(kafka("reading the topic list"))?;
        let prefix = format!("{application_id}-");
        let stale: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|name| all.contains(&name.as_str()) || name.starts_with(&prefix))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        runtime.block_on(async {
            if !stale.is_empty() {
                let names: Vec<&str> = stale.iter().map(String::as_str).collect();
                for result in admin.delete_topics(&names, &options).await.map_err(kafka("deleting topics"))? {
                    if let Err((topic, code)) = result {
                        if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                            return Err(HubError::Other(format!("cannot delete topic {topic}: {code}")));
                        }
                    }
                }
            }
            let compacted = [topics.catalog.as_str(), topics.inventory.as_str()];
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let new: Vec<NewTopic<'_>> = all
                    .iter()
                    .map(|t| {
                        // Records carry event times, years old in a replay of history: the broker's
                        // time-based retention would delete them at once, so it is off.
                        let topic = NewTopic::new(t, self.partitions_of(t), TopicReplication::Fixed(1))
                            .set("retention.ms", "-1");
                        if compacted.contains(t) {
                            topic.set("cleanup.policy", "compact")
                        } else {
                            topic
                        }
                    })
                    .collect();
                let mut pending = false;
                for result in admin.create_topics(&new, &options).await.map_err(kafka("creating topics"))? {
                    match result {
                        Ok(_) => {}
                        // A deleted topic takes a moment to go; try again.
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => pending = true,
                        Err((topic, code)) => {
                            return Err(HubError::Other(format!("cannot create topic {topic}: {code}")))
                        }
                    }
                }
                if !pending {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(HubError::Other("old topics were not deleted within 60 s".into()));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })?;
        // Wait until the new topics are in the metadata with all their partitions.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metadata =
                admin.inner().fetch_metadata(None, Duration::from_secs(10)).map_err(kafka("reading the topic list"))?;
            let ready = all.iter().all(|name| {
                metadata
                    .topics()
                    .iter()
                    .any(|t| t.name() == *name && t.partitions().len() == self.partitions_of(name) as usize)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HubError::Other("the topics did not appear in the metadata within 30 s".into()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Partitions of `topic`: one for the sales feeds and the Debezium topics,
    /// [`RetailSettings::partitions`] otherwise.
    pub fn partitions_of(&self, topic: &str) -> i32 {
        let topics = &self.settings.topics;
        let cdc =
            self.cdc.as_ref().is_some_and(|c| [&c.sale_lines, &c.order_lines, &c.stock].contains(&&topic.to_string()));
        if topic == topics.pos_sales || topic == topics.web_sales || cdc {
            1
        } else {
            self.settings.partitions
        }
    }

    /// The application's configuration: exactly-once, dead letters to the hub's topic, and two
    /// settings for replaying years of history at full speed:
    /// - `max.task.idle.ms=5000`: the task that merges the two sales feeds waits up to 5 s for a
    ///   feed that has run empty rather than racing ahead in event time on the other (see
    ///   [`crate::topology`]); 30 s with the shop's databases, where each feed comes from its own
    ///   Debezium connector and one can lag the other by seconds while history is replayed (seconds
    ///   in which the other feed moves months ahead);
    /// - `windowstore.changelog.additional.retention.ms` of ten years: the monthly windows'
    ///   changelog records carry event times years old, which the broker's time-based retention
    ///   would otherwise delete at once.
    pub fn streams_config(&self, application_id: &str, state_dir: &std::path::Path) -> StreamsConfig {
        StreamsConfig::new()
            .set("application.id", application_id)
            .set("bootstrap.servers", &self.bootstrap)
            .set("processing.guarantee", "exactly_once_v2")
            .set("max.task.idle.ms", if self.cdc.is_some() { "30000" } else { "5000" })
            .set("windowstore.changelog.additional.retention.ms", (10 * 365 * DAY_MS).to_string())
            .set("state.dir", state_dir.to_string_lossy())
            .set("default.deserialization.exception.handler", "dead_letter_queue")
            .set("errors.dead.letter.queue.topic.name", &self.settings.topics.dead_letters)
    }

    /// An application instance (not started).
    pub fn app(&self, config: StreamsConfig) -> Result<KafkaStreams, HubError> {
        let pos: SharedSerde<PosSale> = Serdes::avro_registry::<PosSale>(&self.avro()?, false);
        let topology = build(&self.settings, pos)?;
        Ok(KafkaStreams::new(topology, config)?)
    }

    /// An application instance on the shop's databases (not started): it reads Debezium's
    /// change events from `cdc` instead of the shop's Kafka feeds (see
    /// [`build_on_databases`]).
    pub fn app_on_databases(&self, config: StreamsConfig, cdc: &CdcTopics) -> Result<KafkaStreams, HubError> {
        let topology = build_on_databases(&self.settings, cdc)?;
        Ok(KafkaStreams::new(topology, config)?)
    }
}

/// What happened to the POS schema while producing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaEvents {
    /// The POS schema versions the tills wrote (1, 2) and their registry ids, in order.
    pub registered: Vec<(u32, u32)>,
    /// The registry's answer to v3.
    pub v3_refusal: Option<String>,
}

/// What [`Producer::write`] reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteEvent {
    /// Records written so far.
    Written(usize),
    /// The tills started writing a version of the POS schema (in the month of trading shown).
    Registered {
        /// The schema version (1, 2).
        version: u32,
        /// The schema id.
        id: u32,
        /// The month being uploaded.
        month: Month,
    },
    /// The registry refused v3.
    Refused {
        /// The registry's message.
        message: String,
        /// The month being uploaded.
        month: Month,
    },
}

/// Writes a plan's records, as the shop's systems would.
pub struct Producer {
    hub: Hub,
    producer: ThreadedProducer<DefaultProducerContext>,
    v1: SharedSerde<Value>,
    v2: SharedSerde<Value>,
    registry: Arc<SchemaRegistryClient>,
    /// The id of the last v1 record written (for truncated records).
    v1_id: Option<u32>,
    /// Events of the POS schema.
    pub schema_events: SchemaEvents,
}

impl Producer {
    /// A producer for `hub`.
    pub fn new(hub: &Hub) -> Result<Self, HubError> {
        let producer: ThreadedProducer<DefaultProducerContext> = hub
            .client()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "200000")
            .create()
            .map_err(kafka("creating the producer"))?;
        let avro = hub.avro()?;
        let schema = |text: &str| Schema::parse_str(text).map(Arc::new).map_err(|e| HubError::Other(e.to_string()));
        Ok(Producer {
            v1: Serdes::avro_generic_registry(schema(pos_schemas::V1)?, &avro, false),
            v2: Serdes::avro_generic_registry(schema(pos_schemas::V2)?, &avro, false),
            registry: Arc::clone(avro.client()),
            hub: hub.clone(),
            producer,
            v1_id: None,
            schema_events: SchemaEvents::default(),
        })
    }

    /// Writes `uploads` (a [`Plan`]'s, or part of them) and waits until the broker has them all;
    /// tells `events` how far it got (every few thousand records) and what happened to the POS
    /// schema. Returns how many were written.
    pub fn write(&mut self, uploads: &[Upload], mut events: impl FnMut(WriteEvent)) -> Result<usize, HubError> {
        for (i, upload) in uploads.iter().enumerate() {
            let (registered, refused) = (self.schema_events.registered.len(), self.schema_events.v3_refusal.is_some());
            self.send(&upload.record, upload.at)?;
            if let Some((version, id)) = self.schema_events.registered.get(registered) {
                events(WriteEvent::Registered { version: *version, id: *id, month: Month::from_millis(upload.at) });
            }
            if let (false, Some(message)) = (refused, &self.schema_events.v3_refusal) {
                events(WriteEvent::Refused { message: message.clone(), month: Month::from_millis(upload.at) });
            }
            if i % 2_000 == 0 {
                events(WriteEvent::Written(i));
            }
        }
        self.producer.flush(Duration::from_secs(60)).map_err(kafka("flushing the records"))?;
        events(WriteEvent::Written(uploads.len()));
        Ok(uploads.len())
    }

    /// Writes one record with Kafka timestamp `at`.
    pub fn send(&mut self, record: &Record, at: i64) -> Result<(), HubError> {
        let topics = self.hub.settings.topics.clone();
        let headers = Headers::new();
        let (topic, key, value): (&str, String, Option<Vec<u8>>) = match record {
            Record::Catalog { key, product } => (&topics.catalog, key.clone(), Some(json(product))),
            Record::Inventory { key, level } => (&topics.inventory, key.clone(), level.as_ref().map(json)),
            Record::Web { order } => (&topics.web_sales, order.order_id.clone(), Some(json(order))),
            Record::Pos { sale, version } => {
                let (serde, value) = match version {
                    PosVersion::V1 => (&self.v1, pos_value(sale, false)),
                    PosVersion::V2 => (&self.v2, pos_value(sale, true)),
                };
                let bytes = serde
                    .serialize(&topics.pos_sales, &headers, &value)
                    .map_err(|e| HubError::Other(format!("encoding a POS sale: {e}")))?;
                if let Some(bytes) = &bytes {
                    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                    self.note_id(*version, id);
                }
                (&topics.pos_sales, sale.store.clone(), bytes)
            }
            Record::MalformedPos { store, breakage } => {
                let bytes = match (breakage, self.v1_id) {
                    (Breakage::TruncatedAvro, Some(id)) => wire_format(id, &[0x0a, b'r', b'1']),
                    _ => format!("POS;{store};SKU-0001;1;1290;{at}").into_bytes(),
                };
                (&topics.pos_sales, store.clone(), Some(bytes))
            }
            Record::MalformedWeb { order_id, breakage } => {
                let text = match breakage {
                    Breakage::BadDateTime => format!(
                        r#"{{"order_id":"{order_id}","ordered_at":"yesterday 7pm","status":"PAID","lines":[{{"product_id":"W-1001","qty":1,"price":"12.90"}}]}}"#
                    ),
                    _ => format!(r#"{{"order_id":"{order_id}","ordered_at":"2025-0"#),
                };
                (&topics.web_sales, order_id.clone(), Some(text.into_bytes()))
            }
            Record::TryPosV3 => {
                let v3 = Schema::parse_str(pos_schemas::V3_BREAKING).map_err(|e| HubError::Other(e.to_string()))?;
                let subject = format!("{}-value", topics.pos_sales);
                match self.registry.register(&subject, &v3) {
                    Ok(id) => {
                        return Err(HubError::Other(format!(
                            "the registry accepted an incompatible v3 of the POS schema (id {id}); is subject {subject} set to NONE?"
                        )))
                    }
                    Err(e) if e.is_incompatible() => self.schema_events.v3_refusal = Some(e.message()),
                    Err(e) => return Err(e.into()),
                }
                return Ok(());
            }
        };
        let mut out = BaseRecord::<str, [u8]>::to(topic).key(key.as_str()).timestamp(at);
        if let Some(value) = &value {
            out = out.payload(value.as_slice());
        }
        loop {
            match self.producer.send(out) {
                Ok(()) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    out = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(kafka(format!("producing to {topic}"))(e)),
            }
        }
    }

    fn note_id(&mut self, version: PosVersion, id: u32) {
        if version == PosVersion::V1 {
            self.v1_id = Some(id);
        }
        if !self.schema_events.registered.iter().any(|(_, known)| *known == id) {
            let number = match version {
                PosVersion::V1 => 1,
                PosVersion::V2 => 2,
            };
            self.schema_events.registered.push((number, id));
        }
    }
}

/// JSON bytes of a value (the records here always serialize).
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A POS sale as a generic Avro record of v1 (`with_promo: false`) or v2.
pub fn pos_value(sale: &PosSale, with_promo: bool) -> Value {
    let mut fields = vec![
        ("receipt".to_string(), Value::String(sale.receipt.clone())),
        ("store".to_string(), Value::String(sale.store.clone())),
        ("till".to_string(), Value::Int(sale.till)),
        ("sku".to_string(), Value::String(sale.sku.clone())),
        ("quantity".to_string(), Value::Int(sale.quantity)),
        ("unit_price_cents".to_string(), Value::Long(sale.unit_price_cents)),
        ("sold_at".to_string(), Value::Long(sale.sold_at)),
    ];
    if with_promo {
        let promo = match &sale.promo_code {
            Some(code) => Value::Union(1, Box::new(Value::String(code.clone()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        fields.push(("promo_code".to_string(), promo));
    }
    Value::Record(fields)
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// The key, as text.
    pub key: String,
    /// The value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, as text.
    pub headers: BTreeMap<String, String>,
    /// Partition and offset.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Reads `topic` (read_committed) from the beginning to its current end.
pub fn read_topic(bootstrap: &str, topic: &str) -> Result<Vec<ReadRecord>, HubError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "retail-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(kafka("creating a reader"))?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(kafka("reading metadata"))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) =
            consumer.fetch_watermarks(topic, *p, Duration::from_secs(10)).map_err(kafka("reading end offsets"))?;
        if high > low {
            ends.insert(*p, high);
            assignment.add_partition_offset(topic, *p, Offset::Beginning).map_err(kafka("assigning"))?;
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment).map_err(kafka("assigning"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = consumer
            .position()
            .map(|list| {
                ends.iter().all(|(p, end)| {
                    matches!(list.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *end)
                })
            })
            .unwrap_or(false);
        if done {
            return Ok(records);
        }
        if Instant::now() > deadline {
            return Err(HubError::Other(format!("reading {topic} to its end took over 60 s")));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.map_err(kafka(format!("reading {topic}")))?;
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for Header { key, value } in h.iter() {
                    headers.insert(
                        key.to_string(),
                        value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default(),
                    );
                }
            }
            records.push(ReadRecord {
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
                partition: m.partition(),
                offset: m.offset(),
            });
        }
    }
}

/// Every record of `topic`, by partition then offset, with its value parsed as `T` (`None`: a
/// tombstone). Collected into a map, the last value of each key wins, as in a compacted topic.
/// Keys and values written with Kafka Connect schemas (for the JDBC sink) are read too.
fn records_of<T: serde::Serialize + serde::de::DeserializeOwned + 'static>(
    bootstrap: &str,
    topic: &str,
) -> Result<Vec<(String, Option<T>)>, HubError> {
    let mut records = read_topic(bootstrap, topic)?;
    records.sort_by_key(|r| (r.partition, r.offset));
    let (keys, values) = (Serdes::connect_json::<serde_json::Value>(), Serdes::connect_json::<T>());
    records
        .into_iter()
        .map(|r| {
            let at =
                |e: &dyn std::fmt::Display| HubError::Other(format!("{topic} at {}:{}: {e}", r.partition, r.offset));
            let none = Headers::default();
            let value = r
                .value
                .as_deref()
                .map(|v| values.deserialize(topic, &none, Some(v)))
                .transpose()
                .map_err(|e| at(&e))?;
            // A key with a schema is `{"schema":…,"payload":"SKU-0001"}`: its payload is the key.
            let key = match keys.deserialize(topic, &none, Some(r.key.as_bytes())) {
                Ok(serde_json::Value::String(key)) => key,
                _ => r.key,
            };
            Ok((key, value))
        })
        .collect()
}

/// A dead letter, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its key.
    pub key: String,
    /// Why: `retail.reason` for records the application refused, `unreadable` for records that
    /// could not be deserialized.
    pub reason: String,
    /// The topic it came from.
    pub topic: String,
    /// The error message.
    pub message: String,
}

/// Everything the application wrote.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Final monthly sales by (SKU, month).
    pub monthly: BTreeMap<(String, Month), MonthlySales>,
    /// How many monthly records there were (equal to `monthly.len()` when each month is final once).
    pub monthly_records: usize,
    /// Forecasts by SKU, in the order they were made.
    pub forecasts: BTreeMap<String, Vec<Forecast>>,
    /// The current order proposal by SKU (`None`: withdrawn).
    pub orders: BTreeMap<String, Option<AutoOrder>>,
    /// The web shop's view by web product id.
    pub web_inventory: BTreeMap<String, Option<WebAvailability>>,
    /// Dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

impl Outputs {
    /// Reads every output topic.
    pub fn read(hub: &Hub) -> Result<Outputs, HubError> {
        let topics: &Topics = &hub.settings.topics;
        let mut out = Outputs::default();
        for m in records_of::<MonthlySales>(&hub.bootstrap, &topics.sales_monthly)?.into_iter().filter_map(|(_, m)| m) {
            out.monthly_records += 1;
            out.monthly.insert((m.sku.clone(), m.month), m);
        }
        for f in records_of::<Forecast>(&hub.bootstrap, &topics.sales_forecast)?.into_iter().filter_map(|(_, f)| f) {
            out.forecasts.entry(f.sku.clone()).or_default().push(f);
        }
        out.orders = records_of(&hub.bootstrap, &topics.auto_orders)?.into_iter().collect();
        out.web_inventory = records_of(&hub.bootstrap, &topics.web_inventory)?.into_iter().collect();
        for r in read_topic(&hub.bootstrap, &topics.dead_letters)? {
            let header = |name: &str| r.headers.get(name).cloned().unwrap_or_default();
            out.dead_letters.push(DeadLetter {
                key: r.key.clone(),
                reason: r.headers.get("retail.reason").cloned().unwrap_or_else(|| "unreadable".into()),
                topic: header("__streams.errors.topic"),
                message: header("__streams.errors.message"),
            });
        }
        Ok(out)
    }
}
