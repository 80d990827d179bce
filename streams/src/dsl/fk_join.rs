//! Foreign-key table-table joins: [`KTable::join_foreign_key`] and
//! [`KTable::left_join_foreign_key`], built as Kafka Streams builds them (KIP-213), so that the two
//! tables need not be co-partitioned.
//!
//! ```text
//!  left table (K, V) ──▶ subscription-registration-processor: on a change, (FK, subscription of K)
//!        │                 ──▶ <name>-subscription-registration-topic   (partitioned like the right table)
//!        │                       ──▶ subscription-receive: stores (FK, K) in <name>-subscription-store,
//!        │                           looks FK up in the right table, answers (K, response)
//!        │  right table (FK, VO) ──▶ foreign-join-subscription: on a change, answers every K
//!        │                           subscribed to FK (a prefix scan of the subscription store)
//!        │                 ◀── <name>-subscription-response-topic   (to the left record's partition)
//!        └─ subscription-response-resolver: joins the response with the left table's *current*
//!           value ──▶ result table (K, VR), materialized
//! ```
//!
//! A subscription carries a 128-bit murmur3 hash of the left value it was sent for; a response whose
//! hash no longer matches the left table's current value is stale (the left row changed or moved to
//! another foreign key meanwhile) and is dropped, as in Kafka Streams. The internal topics and the
//! subscription store use Kafka Streams' byte layouts (`SubscriptionWrapper`,
//! `SubscriptionResponseWrapper`, `CombinedKey`).
//!
//! Where this differs from Kafka Streams (3.9):
//! - Rows whose foreign key becomes null, or was null, follow KAFKA-16407/KAFKA-16434 (Kafka 4.1): an
//!   inner join deletes the result of a row losing its foreign key and subscribes a row gaining one.
//! - In a left join, a row moving to another foreign key is answered by the new key only; Kafka also
//!   has the old key answer with no value, which can overtake the new key's answer when the two keys
//!   live on different partitions and leave `(row, null)` as the final result. A deleted left-join
//!   row gets one tombstone, not two.
//! - Results computed on the left side's behalf carry the left record's timestamp; Kafka takes the
//!   later of it and the right row's timestamp, which this crate's key-value stores do not keep.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::config::Materialized;
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::{configure, KTable};
use crate::dsl::ops::{Emit, Stateless};
use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::partitioner::default_partition;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serde, SerdeError, Serdes, SharedSerde};
use crate::store::Stores;
use crate::topology::StreamPartitioner;

/// Kafka Streams' `Murmur3.hash128` (MurmurHash3 x64 128-bit) with its seed, as it hashes left values
/// in foreign-key joins.
const MURMUR3_SEED: i32 = 104_729;

/// MurmurHash3 x64 128-bit, bit for bit Kafka Streams' `Murmur3.hash128(data, 0, len, seed)`.
fn murmur3_128(data: &[u8], seed: i32) -> [i64; 2] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    fn fmix64(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    // Java widens the int seed to a long, sign and all.
    let mut h1 = i64::from(seed) as u64;
    let mut h2 = h1;
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = le(&block[..8]).wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);
        let k2 = le(&block[8..]).wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    if tail.len() > 8 {
        h2 ^= le(&tail[8..]).wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= le(&tail[..tail.len().min(8)]).wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    [h1 as i64, h2 as i64]
}

type Hash = [i64; 2];

/// The hash of a left value, as subscriptions carry it.
fn value_hash<V: Data>(serde: &SharedSerde<V>, topic: &str, value: &V) -> Result<Hash> {
    let bytes = serde
        .serialize(topic, &Headers::new(), value)
        .map_err(|source| StreamsError::Serialization { target: topic.to_string(), source: Box::new(source) })?;
    Ok(murmur3_128(&bytes.unwrap_or_default(), MURMUR3_SEED))
}

/// What the right side does with a subscription (Kafka's `SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instruction {
    /// Unsubscribe; the left row moved to another foreign key, which answers instead.
    DeleteKeyNoPropagate = 0,
    /// Unsubscribe and answer with no foreign value (the left row was deleted).
    DeleteKeyAndPropagate = 1,
    /// Subscribe and answer, with no foreign value if there is none (an update that may undo an
    /// earlier result).
    PropagateNullIfNoFkValAvailable = 2,
    /// Subscribe and answer only if there is a foreign value (a new left row of an inner join).
    PropagateOnlyIfFkValAvailable = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Instruction::DeleteKeyNoPropagate,
            1 => Instruction::DeleteKeyAndPropagate,
            2 => Instruction::PropagateNullIfNoFkValAvailable,
            3 => Instruction::PropagateOnlyIfFkValAvailable,
            _ => return None,
        })
    }
}

/// A left row's subscription to a foreign key (Kafka's `SubscriptionWrapper`, version 1).
#[derive(Debug, Clone, PartialEq)]
struct Subscription<K> {
    /// The hash of the left value it was sent for; `None` for a deleted row.
    hash: Option<Hash>,
    instruction: Instruction,
    primary_key: K,
    /// The partition of the left row, where the response must go (`None` in version 0 data).
    primary_partition: Option<i32>,
}

const SUBSCRIPTION_VERSION: u8 = 1;
const HASH_NULL: u8 = 0x80;

fn read_hash(bytes: &[u8]) -> Hash {
    let mut h = [0i64; 2];
    for (i, chunk) in bytes.chunks_exact(8).take(2).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        h[i] = i64::from_be_bytes(b);
    }
    h
}

/// `{1 bit hash-is-null, 7 bits version}{instruction}{16-byte hash, if any}{primary key}{4-byte
/// primary partition}`, as Kafka's `SubscriptionWrapperSerde` writes version 1.
struct SubscriptionSerde<K> {
    primary_key: SharedSerde<K>,
}

impl<K: Data> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: &Subscription<K>,
    ) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        let pk = self.primary_key.serialize(topic, headers, &data.primary_key)?.unwrap_or_default();
        let mut out = Vec::with_capacity(2 + 16 + pk.len() + 4);
        match &data.hash {
            Some(h) => {
                out.push(SUBSCRIPTION_VERSION);
                out.push(data.instruction as u8);
                out.extend_from_slice(&h[0].to_be_bytes());
                out.extend_from_slice(&h[1].to_be_bytes());
            }
            None => {
                out.push(SUBSCRIPTION_VERSION | HASH_NULL);
                out.push(data.instruction as u8);
            }
        }
        out.extend_from_slice(&pk);
        out.extend_from_slice(&data.primary_partition.unwrap_or(-1).to_be_bytes());
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: Option<&[u8]>,
    ) -> std::result::Result<Subscription<K>, SerdeError> {
        const SERDE: &str = "foreign-key subscription";
        let bytes = data.ok_or_else(|| SerdeError::null(topic, SERDE))?;
        let short = || SerdeError::malformed(topic, SERDE, format!("{} bytes is too short", bytes.len()));
        let (&[flags, instruction], rest) = bytes.split_first_chunk::<2>().ok_or_else(short)?;
        let version = flags & 0x7f;
        if version > SUBSCRIPTION_VERSION {
            return Err(SerdeError::malformed(topic, SERDE, format!("unsupported version {version}")));
        }
        let instruction = Instruction::from_byte(instruction)
            .ok_or_else(|| SerdeError::malformed(topic, SERDE, format!("unknown instruction {instruction}")))?;
        let (hash, rest) = if flags & HASH_NULL != 0 {
            (None, rest)
        } else {
            let (h, rest) = rest.split_first_chunk::<16>().ok_or_else(short)?;
            (Some(read_hash(h)), rest)
        };
        let (pk, primary_partition) = if version > 0 {
            let (pk, partition) = rest.split_last_chunk::<4>().ok_or_else(short)?;
            (pk, Some(i32::from_be_bytes(*partition)))
        } else {
            (rest, None)
        };
        Ok(Subscription {
            hash,
            instruction,
            primary_key: self.primary_key.deserialize(topic, headers, Some(pk))?,
            primary_partition,
        })
    }
}

/// The right side's answer to a subscription (Kafka's `SubscriptionResponseWrapper`).
#[derive(Debug, Clone, PartialEq)]
struct Response<VO> {
    /// The hash of the subscription being answered.
    hash: Option<Hash>,
    /// The foreign value, or `None` when the foreign key has none.
    foreign_value: Option<VO>,
    /// Where the response goes; not written to the topic.
    primary_partition: Option<i32>,
}

/// Set (besides the version) when a foreign value is present but serialized to zero bytes, which
/// Kafka's layout would read as no value.
const EMPTY_VALUE: u8 = 0x40;

/// `{1 bit hash-is-null, 7 bits version 0}{16-byte hash, if any}{foreign value, if any}`, as Kafka's
/// `SubscriptionResponseWrapperSerde` writes it.
struct ResponseSerde<VO> {
    foreign_value: SharedSerde<VO>,
}

impl<VO: Data> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: &Response<VO>,
    ) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        let value = match &data.foreign_value {
            Some(v) => Some(self.foreign_value.serialize(topic, headers, v)?.unwrap_or_default()),
            None => None,
        };
        let mut flags = if data.hash.is_some() { 0 } else { HASH_NULL };
        if value.as_ref().is_some_and(Vec::is_empty) {
            flags |= EMPTY_VALUE;
        }
        let mut out = vec![flags];
        if let Some(h) = &data.hash {
            out.extend_from_slice(&h[0].to_be_bytes());
            out.extend_from_slice(&h[1].to_be_bytes());
        }
        out.extend(value.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: Option<&[u8]>,
    ) -> std::result::Result<Response<VO>, SerdeError> {
        const SERDE: &str = "foreign-key response";
        let bytes = data.ok_or_else(|| SerdeError::null(topic, SERDE))?;
        let short = || SerdeError::malformed(topic, SERDE, format!("{} bytes is too short", bytes.len()));
        let (&flags, rest) = bytes.split_first().ok_or_else(short)?;
        if flags & 0x3f != 0 {
            return Err(SerdeError::malformed(topic, SERDE, format!("unsupported version {}", flags & 0x3f)));
        }
        let (hash, rest) = if flags & HASH_NULL != 0 {
            (None, rest)
        } else {
            let (h, rest) = rest.split_first_chunk::<16>().ok_or_else(short)?;
            (Some(read_hash(h)), rest)
        };
        let foreign_value = if rest.is_empty() && flags & EMPTY_VALUE == 0 {
            None
        } else {
            Some(self.foreign_value.deserialize(topic, headers, Some(rest))?)
        };
        Ok(Response { hash, foreign_value, primary_partition: None })
    }
}

/// The key of the subscription store: foreign key, then primary key.
#[derive(Debug, Clone, PartialEq)]
struct CombinedKey<KO, K> {
    foreign_key: KO,
    primary_key: K,
}

/// `{4-byte foreign key length}{foreign key}{primary key}`, as Kafka's `CombinedKeySchema`; the
/// length prefix keeps one foreign key's subscriptions together, and apart from longer keys that
/// start with the same bytes.
struct CombinedKeySerde<KO, K> {
    foreign_key: SharedSerde<KO>,
    primary_key: SharedSerde<K>,
}

fn length_prefixed(topic: &str, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, SerdeError> {
    let len = i32::try_from(bytes.len())
        .map_err(|_| SerdeError::encode(topic, "foreign-key subscription key", "foreign key longer than 2 GiB"))?;
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend(bytes);
    Ok(out)
}

impl<KO: Data, K: Data> Serde<CombinedKey<KO, K>> for CombinedKeySerde<KO, K> {
    fn serialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: &CombinedKey<KO, K>,
    ) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        let fk = self.foreign_key.serialize(topic, headers, &data.foreign_key)?.unwrap_or_default();
        let mut out = length_prefixed(topic, fk)?;
        out.extend(self.primary_key.serialize(topic, headers, &data.primary_key)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: Option<&[u8]>,
    ) -> std::result::Result<CombinedKey<KO, K>, SerdeError> {
        const SERDE: &str = "foreign-key subscription key";
        let bytes = data.ok_or_else(|| SerdeError::null(topic, SERDE))?;
        let malformed = || SerdeError::malformed(topic, SERDE, format!("{} bytes is too short", bytes.len()));
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(malformed)?;
        let len = usize::try_from(i32::from_be_bytes(*len)).map_err(|_| malformed())?;
        let (fk, pk) = rest.split_at_checked(len).ok_or_else(malformed)?;
        Ok(CombinedKey {
            foreign_key: self.foreign_key.deserialize(topic, headers, Some(fk))?,
            primary_key: self.primary_key.deserialize(topic, headers, Some(pk))?,
        })
    }
}

/// The prefix of one foreign key's entries in the subscription store.
struct ForeignKeyPrefixSerde<KO> {
    foreign_key: SharedSerde<KO>,
}

impl<KO: Data> Serde<KO> for ForeignKeyPrefixSerde<KO> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &KO) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        let fk = self.foreign_key.serialize(topic, headers, data)?.unwrap_or_default();
        Ok(Some(length_prefixed(topic, fk)?))
    }

    fn deserialize(&self, topic: &str, _: &Headers, _: Option<&[u8]>) -> std::result::Result<KO, SerdeError> {
        Err(SerdeError::malformed(topic, "foreign-key prefix", "a prefix is only written"))
    }
}

type Extractor<V, KO> = Arc<dyn Fn(&V) -> Option<KO> + Send + Sync>;
/// Joins the left value with the foreign value; `None` where the join has no row.
type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

/// On a left row change, subscribes to its new foreign key and unsubscribes from the old one
/// (Kafka's `SubscriptionSendProcessorSupplier`).
struct SubscriptionSend<K, V, KO> {
    extractor: Extractor<V, KO>,
    foreign_key_serde: SharedSerde<KO>,
    value_serde: SharedSerde<V>,
    /// Names the serdes are told (Kafka's pseudo topics `<registration topic>-fk` / `-vh`).
    fk_topic: String,
    hash_topic: String,
    left_join: bool,
    _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data, KO: Data> SubscriptionSend<K, V, KO> {
    fn fk_bytes(&self, fk: Option<&KO>) -> Result<Option<Vec<u8>>> {
        match fk {
            Some(fk) => self.foreign_key_serde.serialize(&self.fk_topic, &Headers::new(), fk).map_err(|source| {
                StreamsError::Serialization { target: self.fk_topic.clone(), source: Box::new(source) }
            }),
            None => Ok(None),
        }
    }

    fn send(
        &self,
        ctx: &mut ProcessorContext<'_, Option<KO>, Subscription<K>>,
        r: &Record<K, Change<V>>,
        hash: Option<Hash>,
        foreign_key: Option<KO>,
        instruction: Instruction,
    ) -> Result<()> {
        let primary_partition = Some(ctx.task_id().partition);
        ctx.forward(Record {
            key: foreign_key,
            value: Subscription { hash, instruction, primary_key: r.key.clone(), primary_partition },
            timestamp: r.timestamp,
            headers: r.headers.clone(),
        })
    }

    fn skip_null_foreign_key(ctx: &mut ProcessorContext<'_, Option<KO>, Subscription<K>>) {
        tracing::warn!(processor = %ctx.name(), "skipping record due to null foreign key");
        ctx.record_dropped("null foreign key in an inner foreign-key join");
    }
}

impl<K: Data, V: Data, KO: Data> Processor<K, Change<V>, Option<KO>, Subscription<K>> for SubscriptionSend<K, V, KO> {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Option<KO>, Subscription<K>>,
        r: Record<K, Change<V>>,
    ) -> Result<()> {
        use Instruction::*;
        let hash = r.value.new.as_ref().map(|v| value_hash(&self.value_serde, &self.hash_topic, v)).transpose()?;
        let new_fk = r.value.new.as_ref().and_then(|v| (self.extractor)(v));
        let old_fk = r.value.old.as_ref().and_then(|v| (self.extractor)(v));
        if self.left_join {
            // A row without a foreign key subscribes under a null key: the right side answers it with
            // no value, from whichever partition it lands on.
            if r.value.old.is_none() && r.value.new.is_none() {
                return Ok(());
            }
            if r.value.old.is_some()
                && old_fk.is_some()
                && self.fk_bytes(new_fk.as_ref())? != self.fk_bytes(old_fk.as_ref())?
            {
                if r.value.new.is_none() {
                    // Deleted: the old foreign key answers with the tombstone.
                    return self.send(ctx, &r, hash, old_fk, DeleteKeyAndPropagate);
                }
                // Moved: only the new foreign key answers, as in Kafka Streams 4.3.
                self.send(ctx, &r, hash, old_fk, DeleteKeyNoPropagate)?;
            }
            self.send(ctx, &r, hash, new_fk, PropagateNullIfNoFkValAvailable)
        } else if r.value.old.is_some() {
            // As Kafka Streams since KAFKA-16407/16434: a row whose foreign key was null had no
            // subscription (and no result), and a row whose foreign key becomes null loses its result.
            match (old_fk, new_fk) {
                (Some(old_fk), _) if r.value.new.is_none() => {
                    self.send(ctx, &r, hash, Some(old_fk), DeleteKeyAndPropagate)
                }
                (Some(old_fk), None) => self.send(ctx, &r, hash, Some(old_fk), DeleteKeyAndPropagate),
                (Some(old_fk), Some(new_fk)) => {
                    if self.fk_bytes(Some(&new_fk))? != self.fk_bytes(Some(&old_fk))? {
                        // Moved to another foreign key: unsubscribe there; the new one answers (with
                        // no value if it has none, to undo the old result).
                        self.send(ctx, &r, hash, Some(old_fk), DeleteKeyNoPropagate)?;
                        self.send(ctx, &r, hash, Some(new_fk), PropagateNullIfNoFkValAvailable)
                    } else {
                        // Same foreign key: without a right row there was no result to undo.
                        self.send(ctx, &r, hash, Some(new_fk), PropagateOnlyIfFkValAvailable)
                    }
                }
                (None, Some(new_fk)) => self.send(ctx, &r, hash, Some(new_fk), PropagateOnlyIfFkValAvailable),
                (None, None) if r.value.new.is_none() => Ok(()),
                (None, None) => {
                    Self::skip_null_foreign_key(ctx);
                    Ok(())
                }
            }
        } else if r.value.new.is_some() {
            match new_fk {
                Some(fk) => self.send(ctx, &r, hash, Some(fk), PropagateOnlyIfFkValAvailable),
                None => {
                    Self::skip_null_foreign_key(ctx);
                    Ok(())
                }
            }
        } else {
            Ok(())
        }
    }
}

/// On the right side: records or removes a subscription and answers it with the foreign value
/// (Kafka's `SubscriptionReceiveProcessorSupplier` and `SubscriptionJoinProcessorSupplier`).
struct SubscriptionReceive<K, KO, VO> {
    subscription_store: String,
    foreign_store: String,
    _t: PhantomData<fn(K, KO, VO)>,
}

impl<K: Data, KO: Data, VO: Data> Processor<Option<KO>, Subscription<K>, K, Response<VO>>
    for SubscriptionReceive<K, KO, VO>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Response<VO>>,
        r: Record<Option<KO>, Subscription<K>>,
    ) -> Result<()> {
        use Instruction::*;
        let subscription = r.value;
        let foreign_value = match r.key {
            // A left-join row without a foreign key: answered with no value, nothing to store.
            None if subscription.instruction == PropagateNullIfNoFkValAvailable => None,
            None => {
                tracing::warn!(processor = %ctx.name(), "skipping subscription due to null foreign key");
                ctx.record_dropped("null foreign key in a foreign-key join subscription");
                return Ok(());
            }
            Some(foreign_key) => {
                let foreign_value =
                    ctx.key_value_store::<KO, VO>(&self.foreign_store)?.get_with_timestamp(&foreign_key)?;
                let key = CombinedKey { foreign_key, primary_key: subscription.primary_key.clone() };
                let store = ctx.key_value_store::<CombinedKey<KO, K>, Subscription<K>>(&self.subscription_store)?;
                match subscription.instruction {
                    DeleteKeyAndPropagate | DeleteKeyNoPropagate => {
                        store.delete(&key)?;
                    }
                    PropagateNullIfNoFkValAvailable | PropagateOnlyIfFkValAvailable => {
                        store.put(&key, &subscription)?
                    }
                }
                foreign_value
            }
        };
        // As Kafka Streams: the response carries the later of the subscription's and the right
        // row's timestamps.
        let timestamp = foreign_value.as_ref().map_or(r.timestamp, |f| f.timestamp.max(r.timestamp));
        let foreign_value = foreign_value.map(|f| f.value);
        let foreign_value = match subscription.instruction {
            DeleteKeyNoPropagate => return Ok(()),
            PropagateOnlyIfFkValAvailable if foreign_value.is_none() => return Ok(()),
            DeleteKeyAndPropagate => None,
            _ => foreign_value,
        };
        ctx.forward(Record {
            key: subscription.primary_key,
            value: Response {
                hash: subscription.hash,
                foreign_value,
                primary_partition: subscription.primary_partition,
            },
            timestamp,
            headers: r.headers,
        })
    }
}

/// On a right row change, answers every left row subscribed to its key (Kafka's
/// `ForeignTableJoinProcessorSupplier`).
struct ForeignTableJoin<K, KO, VO> {
    subscription_store: String,
    prefix_serde: SharedSerde<KO>,
    _t: PhantomData<fn(K, VO)>,
}

impl<K: Data, KO: Data, VO: Data> Processor<KO, Change<VO>, K, Response<VO>> for ForeignTableJoin<K, KO, VO> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Response<VO>>, r: Record<KO, Change<VO>>) -> Result<()> {
        let subscribers = ctx
            .key_value_store::<CombinedKey<KO, K>, Subscription<K>>(&self.subscription_store)?
            .prefix_scan(&r.key, &self.prefix_serde)?;
        for (key, subscription) in subscribers {
            ctx.forward(Record {
                key: key.primary_key,
                value: Response {
                    hash: subscription.hash,
                    foreign_value: r.value.new.clone(),
                    primary_partition: subscription.primary_partition,
                },
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// Back on the left side: joins a response with the left row's current value, dropping stale
/// responses (Kafka's `ResponseJoinProcessorSupplier`).
struct ResponseResolver<K, V, VO, VR> {
    left_store: String,
    value_serde: SharedSerde<V>,
    hash_topic: String,
    joiner: FkJoiner<V, VO, VR>,
    _t: PhantomData<fn(K, VO)>,
}

impl<K: Data, V: Data, VO: Data, VR: Data> Processor<K, Response<VO>, K, Option<VR>>
    for ResponseResolver<K, V, VO, VR>
{
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Option<VR>>, r: Record<K, Response<VO>>) -> Result<()> {
        let current = ctx.key_value_store::<K, V>(&self.left_store)?.get(&r.key)?;
        let current_hash = current.as_ref().map(|v| value_hash(&self.value_serde, &self.hash_topic, v)).transpose()?;
        if current_hash != r.value.hash {
            tracing::trace!(processor = %ctx.name(), "dropping a foreign-key join response for an outdated left value");
            ctx.record_dropped("stale foreign-key join response (the left row changed since)");
            return Ok(());
        }
        let result = current.and_then(|v| (self.joiner)(&v, r.value.foreign_value.as_ref()));
        ctx.forward(Record { key: r.key, value: result, timestamp: r.timestamp, headers: r.headers })
    }
}

/// The join result table: upserts or deletes each result and forwards the change. As Kafka's
/// `KTableSource`, it forwards a delete even when the row did not exist: whether an earlier foreign
/// key had produced a row cannot be known where the delete is decided.
struct ResultTable<K, VR> {
    store: String,
    _t: PhantomData<fn(K, VR)>,
}

impl<K: Data, VR: Data> Processor<K, Option<VR>, K, Change<VR>> for ResultTable<K, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VR>>, r: Record<K, Option<VR>>) -> Result<()> {
        let store = ctx.key_value_store::<K, VR>(&self.store)?;
        let old = match &r.value {
            Some(v) => {
                let old = store.get(&r.key)?;
                store.put(&r.key, v)?;
                old
            }
            None => store.delete(&r.key)?,
        };
        ctx.forward(Record {
            key: r.key,
            value: Change { new: r.value, old },
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }
}

/// Sends each response to the partition of the left row that subscribed (falling back to the
/// default partitioner over the key).
struct ToPrimaryPartition<K> {
    key_serde: SharedSerde<K>,
}

impl<K: Data, VO: Data> StreamPartitioner<K, Response<VO>> for ToPrimaryPartition<K> {
    fn partition(&self, topic: &str, key: &K, value: &Response<VO>, num_partitions: i32) -> Option<i32> {
        match value.primary_partition {
            Some(p) if (0..num_partitions).contains(&p) => Some(p),
            _ => match self.key_serde.serialize(topic, &Headers::new(), key) {
                Ok(Some(bytes)) => Some(default_partition(&bytes, num_partitions)),
                _ => None,
            },
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Joins each row with the row of `other` whose key `foreign_key_extractor` extracts from the
    /// value (Kafka Streams' foreign-key `KTable.join`). The result is keyed by this table's key and
    /// holds `joiner(value, other value)` while both rows exist; `None` from the extractor means no
    /// foreign key: the row has no result (a new row without one is counted as a dropped record).
    ///
    /// The tables need not be co-partitioned: subscriptions travel to `other`'s partitions through
    /// `<name>-subscription-registration-topic` and results come back through
    /// `<name>-subscription-response-topic`, where `<name>` is the store name of `materialized` (or
    /// a generated `KTABLE-FK-JOIN-…` name). The subscription store is `<name>-subscription-store`.
    ///
    /// Updates on either side re-emit the affected rows. A row moving to another foreign key loses
    /// its old result: the new key's row replaces it, or a tombstone is emitted if there is none. A
    /// deleted row on either side emits a tombstone. As in Kafka Streams, such tombstones are emitted
    /// even when no earlier result existed, and responses computed for a left value that changed
    /// meanwhile are dropped (and counted as dropped records).
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
    ///
    /// let b = StreamsBuilder::new();
    /// // order id -> "customer id:amount"; customer id -> name
    /// let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
    /// let customers =
    ///     b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
    /// orders
    ///     .join_foreign_key(
    ///         &customers,
    ///         |order: &String| order.split_once(':').map(|(customer, _)| customer.to_string()),
    ///         |order: &String, name: &String| format!("{order} by {name}"),
    ///         Materialized::as_("orders-with-names"),
    ///     )
    ///     .to_stream()
    ///     .to("enriched", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    /// // The tables need not be co-partitioned.
    /// let config = TestDriverConfig::new("shop").partitions("orders", 3).partitions("customers", 2);
    /// let d = TopologyTestDriver::new(b.build().unwrap(), config).unwrap();
    /// let customers = d.input_topic("customers", Serdes::string(), Serdes::nullable(Serdes::string()));
    /// let orders = d.input_topic("orders", Serdes::string(), Serdes::nullable(Serdes::string()));
    /// let out = d.output_topic("enriched", Serdes::string(), Serdes::nullable(Serdes::string()));
    /// customers.pipe("c1".into(), Some("Ada".into()), 1).unwrap();
    /// orders.pipe("o1".into(), Some("c1:10".into()), 2).unwrap();
    /// assert_eq!(out.read_key_values().unwrap(), vec![("o1".to_string(), Some("c1:10 by Ada".to_string()))]);
    /// customers.pipe("c1".into(), None, 3).unwrap(); // the customer leaves: the order's row goes
    /// assert_eq!(out.read_key_values().unwrap(), vec![("o1".to_string(), None)]);
    /// ```
    pub fn join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let joiner: FkJoiner<V, VO, VR> = Arc::new(move |v, o| o.map(|o| joiner(v, o)));
        self.foreign_key_join(other, Arc::new(foreign_key_extractor), joiner, false, materialized)
    }

    /// Like [`join_foreign_key`](Self::join_foreign_key), but every row of this table has a result:
    /// `joiner(value, None)` while its foreign key is `None` or has no row in `other` (Kafka Streams'
    /// foreign-key `KTable.leftJoin`).
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let b = StreamsBuilder::new();
    /// let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
    /// let customers =
    ///     b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
    /// let with_names = orders.left_join_foreign_key(
    ///     &customers,
    ///     |order: &String| order.split_once(':').map(|(customer, _)| customer.to_string()),
    ///     |order: &String, name: Option<&String>| format!("{order} by {}", name.map_or("?", String::as_str)),
    ///     Materialized::as_("orders-with-names"),
    /// );
    /// # let _ = with_names;
    /// let topology = b.build().unwrap();
    /// assert!(topology.is_internal_topic("orders-with-names-subscription-registration-topic"));
    /// assert!(topology.is_internal_topic("orders-with-names-subscription-response-topic"));
    /// ```
    pub fn left_join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let joiner: FkJoiner<V, VO, VR> = Arc::new(move |v, o| Some(joiner(v, o)));
        self.foreign_key_join(other, Arc::new(foreign_key_extractor), joiner, true, materialized)
    }

    fn foreign_key_join<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        extractor: Extractor<V, KO>,
        joiner: FkJoiner<V, VO, VR>,
        left_join: bool,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let left_store = self.materialized_store();
        let right_store = other.materialized_store();
        let builder = self.builder.clone();
        let mut inner = builder.borrow_mut();
        let name = match &materialized.store_name {
            Some(s) => s.clone(),
            None => inner.new_name("KTABLE-FK-JOIN-"),
        };
        let result_store = match &materialized.store_name {
            Some(s) => s.clone(),
            None => inner.new_store_name("KTABLE-FK-JOIN-OUTPUT-STATE-STORE-"),
        };
        let registration_topic = format!("{name}-subscription-registration-topic");
        let response_topic = format!("{name}-subscription-response-topic");
        let subscription_store = format!("{name}-subscription-store");
        let what = |part: &str| format!("{part} of foreign-key join `{name}`");
        let key_serde = inner.serde(None, self.key_serde.as_ref(), &what("key of the left table"));
        let value_serde = inner.serde(None, self.value_serde.as_ref(), &what("value of the left table"));
        let fk_serde = inner.serde(None, other.key_serde.as_ref(), &what("key of the right table"));
        let foreign_value_serde = inner.serde(None, other.value_serde.as_ref(), &what("value of the right table"));
        let result_key_serde = inner.serde(materialized.key_serde.clone(), Some(&key_serde), &what("result key"));
        let result_value_serde = inner.serde(materialized.value_serde.clone(), None, &what("result value"));

        // Left side: subscribe.
        let send = format!("{name}-subscription-registration-processor");
        let (fk_topic, hash_topic) = (format!("{registration_topic}-fk"), format!("{registration_topic}-vh"));
        let supplier = {
            let (extractor, fk_serde, value_serde) = (extractor, fk_serde.clone(), value_serde.clone());
            let (fk_topic, hash_topic) = (fk_topic.clone(), hash_topic.clone());
            move || SubscriptionSend::<K, V, KO> {
                extractor: extractor.clone(),
                foreign_key_serde: fk_serde.clone(),
                value_serde: value_serde.clone(),
                fk_topic: fk_topic.clone(),
                hash_topic: hash_topic.clone(),
                left_join,
                _k: PhantomData,
            }
        };
        let result = inner.topology.add_processor(&send, supplier, &[&self.node]).map(|_| ());
        inner.check(result);
        drop(inner);
        let subscriptions = KStream::<Option<KO>, Subscription<K>>::new(builder.clone(), send, None, None, false)
            .through_internal_topic(
                &registration_topic,
                Serdes::nullable(fk_serde.clone()),
                Arc::new(SubscriptionSerde { primary_key: key_serde.clone() }),
                None,
                None,
                false,
            );

        // Right side: keep subscriptions, answer them, and answer again on right updates.
        let mut inner = builder.borrow_mut();
        let receive = format!("{name}-subscription-receive");
        let foreign_join = format!("{name}-foreign-join-subscription");
        let responses = format!("{name}-subscription-response-merge");
        let mut subscription_store_builder = Stores::key_value(
            &subscription_store,
            Arc::new(CombinedKeySerde { foreign_key: fk_serde.clone(), primary_key: key_serde.clone() }),
            Arc::new(SubscriptionSerde { primary_key: key_serde.clone() }),
        );
        if materialized.backend == kstreams_state::Backend::InMemory {
            subscription_store_builder = subscription_store_builder.in_memory();
        }
        let prefix_serde: SharedSerde<KO> = Arc::new(ForeignKeyPrefixSerde { foreign_key: fk_serde.clone() });
        let (sub_store, right) = (subscription_store.clone(), right_store.clone());
        let sub_store2 = subscription_store.clone();
        let result = inner
            .topology
            .add_processor(
                &receive,
                move || SubscriptionReceive::<K, KO, VO> {
                    subscription_store: sub_store.clone(),
                    foreign_store: right.clone(),
                    _t: PhantomData,
                },
                &[&subscriptions.node],
            )
            .and_then(|t| {
                t.add_processor(
                    &foreign_join,
                    move || ForeignTableJoin::<K, KO, VO> {
                        subscription_store: sub_store2.clone(),
                        prefix_serde: prefix_serde.clone(),
                        _t: PhantomData,
                    },
                    &[&other.node],
                )
            })
            .and_then(|t| t.add_state_store(subscription_store_builder, &[&receive, &foreign_join]))
            .and_then(|t| t.connect_processor_and_state_stores(&receive, &[&right_store]))
            .and_then(|t| {
                t.add_processor(
                    &responses,
                    Stateless::<K, Response<VO>, K, Response<VO>>::supplier(Emit::One),
                    &[&receive, &foreign_join],
                )
            })
            .map(|_| ());
        inner.check(result);
        // The subscription topic must be partitioned like the right table.
        let topics = [vec![registration_topic.clone()], other.source_topics(&inner)].concat();
        inner.topology.require_copartitioned(topics);
        drop(inner);
        let partitioner: Arc<dyn StreamPartitioner<K, Response<VO>>> =
            Arc::new(ToPrimaryPartition { key_serde: key_serde.clone() });
        let responses = KStream::<K, Response<VO>>::new(builder.clone(), responses, None, None, false)
            .through_internal_topic(
                &response_topic,
                key_serde.clone(),
                Arc::new(ResponseSerde { foreign_value: foreign_value_serde }),
                None,
                Some(partitioner),
                false,
            );

        // Left side again: resolve responses against the current left value, into the result table.
        let mut inner = builder.borrow_mut();
        let resolver = format!("{name}-subscription-response-resolver");
        let result_node = format!("{name}-result");
        let (left, store) = (left_store.clone(), result_store.clone());
        let result_store_builder = configure(
            Stores::timestamped_key_value(&result_store, result_key_serde.clone(), result_value_serde.clone()),
            &materialized,
        );
        let result = inner
            .topology
            .add_processor(
                &resolver,
                move || ResponseResolver::<K, V, VO, VR> {
                    left_store: left.clone(),
                    value_serde: value_serde.clone(),
                    hash_topic: hash_topic.clone(),
                    joiner: joiner.clone(),
                    _t: PhantomData,
                },
                &[&responses.node],
            )
            .and_then(|t| t.connect_processor_and_state_stores(&resolver, &[&left_store]))
            .and_then(|t| {
                t.add_processor(
                    &result_node,
                    move || ResultTable::<K, VR> { store: store.clone(), _t: PhantomData },
                    &[&resolver],
                )
            })
            .and_then(|t| t.add_state_store(result_store_builder, &[&result_node]))
            .map(|_| ());
        inner.check(result);
        // The response topic must be partitioned like the left table.
        let topics = [vec![response_topic], self.source_topics(&inner)].concat();
        inner.topology.require_copartitioned(topics);
        drop(inner);
        KTable::new(builder, result_node, Some(result_store), Some(result_key_serde), Some(result_value_serde))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_kafka_test_vectors() {
        // Kafka's Murmur3Test.testMurmur3_128, seed 123.
        let cases: [(&[u8], [i64; 2]); 6] = [
            (b"21", [5857341059704281894, -5288187638297930763]),
            (b"foobar", [-351361463397418609, 8959716011862540668]),
            (b"a-little-bit-long-string", [8836256500583638442, -198172363548498523]),
            (b"a-little-bit-longer-string", [1838346159335108511, 8794688210320490705]),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", [-4024021876037397259, -1482317706335141238]),
            (b"abc", [1489494923063836066, -5440978547625122829]),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur3_128(data, 123), expected, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn subscription_round_trips_in_kafkas_layout() {
        let serde = SubscriptionSerde { primary_key: Serdes::string() };
        let h = Headers::new();
        let s = Subscription {
            hash: Some([1, -2]),
            instruction: Instruction::PropagateNullIfNoFkValAvailable,
            primary_key: "pk".to_string(),
            primary_partition: Some(3),
        };
        let bytes = serde.serialize("t", &h, &s).unwrap().unwrap();
        let mut expected = vec![1u8, 2];
        expected.extend_from_slice(&1i64.to_be_bytes());
        expected.extend_from_slice(&(-2i64).to_be_bytes());
        expected.extend_from_slice(b"pk");
        expected.extend_from_slice(&3i32.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(serde.deserialize("t", &h, Some(&bytes)).unwrap(), s);
        let deleted = Subscription { hash: None, instruction: Instruction::DeleteKeyAndPropagate, ..s };
        let bytes = serde.serialize("t", &h, &deleted).unwrap().unwrap();
        assert_eq!(&bytes[..2], &[0x81, 1]);
        assert_eq!(serde.deserialize("t", &h, Some(&bytes)).unwrap(), deleted);
        // Version 0 has no partition; unknown versions and instructions are errors.
        let v0 = [0x80u8, 0, b'p', b'k'];
        let read = serde.deserialize("t", &h, Some(&v0)).unwrap();
        assert_eq!((read.primary_key.as_str(), read.primary_partition), ("pk", None));
        assert!(serde.deserialize("t", &h, Some(&[0x82, 0, 0, 0, 0, 0])).is_err());
        assert!(serde.deserialize("t", &h, Some(&[0x81, 9, 0, 0, 0, 0])).is_err());
        assert!(serde.deserialize("t", &h, Some(&[1])).is_err());
    }

    #[test]
    fn responses_tell_a_missing_value_from_an_empty_one() {
        let serde = ResponseSerde { foreign_value: Serdes::string() };
        let h = Headers::new();
        for value in [None, Some(String::new()), Some("v".to_string())] {
            let r = Response { hash: Some([7, 8]), foreign_value: value.clone(), primary_partition: None };
            let bytes = serde.serialize("t", &h, &r).unwrap().unwrap();
            assert_eq!(serde.deserialize("t", &h, Some(&bytes)).unwrap(), r);
        }
        // Kafka's layout for a value without hash: the flag byte, then the value.
        let r = Response { hash: None, foreign_value: Some("v".to_string()), primary_partition: None };
        assert_eq!(serde.serialize("t", &h, &r).unwrap().unwrap(), vec![0x80, b'v']);
    }

    #[test]
    fn combined_keys_group_by_foreign_key() {
        let serde = CombinedKeySerde { foreign_key: Serdes::string(), primary_key: Serdes::string() };
        let h = Headers::new();
        let key = CombinedKey { foreign_key: "fk".to_string(), primary_key: "pk".to_string() };
        let bytes = serde.serialize("t", &h, &key).unwrap().unwrap();
        assert_eq!(bytes, [0, 0, 0, 2, b'f', b'k', b'p', b'k']);
        assert_eq!(serde.deserialize("t", &h, Some(&bytes)).unwrap(), key);
        let prefix = ForeignKeyPrefixSerde { foreign_key: Serdes::string() };
        assert_eq!(prefix.serialize("t", &h, &"fk".to_string()).unwrap().unwrap(), [0, 0, 0, 2, b'f', b'k']);
        assert!(serde.deserialize("t", &h, Some(&[0, 0, 0, 9, b'f'])).is_err());
    }
}
