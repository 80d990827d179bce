//! Proof that the broker and librdkafka do what kstreams' exactly-once processing needs:
//! consume→transform→produce in transactions with offsets committed through the transaction, and
//! aborted transactions hidden from read_committed readers (and only from them).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use support::{
    await_stable, committed_offsets, create_topics, high_watermarks, key_value_multiset, read_to_end, require_broker,
    send, transactional_producer, unique_group, unique_name, unique_topic, unstable_partitions, Isolation, Outgoing,
    TopicSpec, WAIT_TIMEOUT,
};

const N: usize = 1000;
const BATCH: usize = 300;

/// a. Consume N keyed records, write their uppercased values in a few transactions that also carry
/// the consumer's offsets; a read_committed reader then sees each output exactly once and the
/// group's committed offsets are the input's end offsets.
#[test]
fn consume_transform_produce_in_transactions() {
    require_broker();
    let input = unique_topic("ctp-in");
    let output = unique_topic("ctp-out");
    let group = unique_group("ctp");
    let topics = create_topics(&[TopicSpec::new(&input, 3), TopicSpec::new(&output, 3)]).expect("create topics");

    support::produce_keyed(&input, (0..N).map(|i| (format!("key-{i}"), format!("value-{i}")))).expect("produce input");
    let input_ends = high_watermarks(&input).expect("input watermarks");
    assert_eq!(input_ends.values().sum::<i64>(), N as i64, "{input_ends:?}");
    assert!(input_ends.values().all(|&end| end > 0), "the input should spread over all 3 partitions: {input_ends:?}");

    let consumer: BaseConsumer = support::consumer_config(&group, Isolation::ReadCommitted).create().expect("consumer");
    consumer.subscribe(&[&input]).expect("subscribe");
    let producer = transactional_producer(&unique_name("ctp-txn")).expect("producer");

    let started = Instant::now();
    let mut processed = 0usize;
    let mut transactions = 0usize;
    while processed < N {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {processed}/{N} records processed in {:?}",
            started.elapsed()
        );
        // Collect a batch: (partition, offset, key, value).
        let mut batch = Vec::new();
        let batch_started = Instant::now();
        while batch.len() < BATCH && batch_started.elapsed() < Duration::from_secs(2) {
            match consumer.poll(Duration::from_millis(100)) {
                None => {
                    if !batch.is_empty() {
                        break;
                    }
                }
                Some(Ok(m)) => batch.push((
                    m.partition(),
                    m.offset(),
                    m.key().expect("key").to_vec(),
                    String::from_utf8(m.payload().expect("value").to_vec()).expect("utf-8"),
                )),
                Some(Err(e)) => panic!("consumer error: {e}"),
            }
        }
        if batch.is_empty() {
            continue;
        }

        producer.begin_transaction().expect("begin_transaction");
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        for (partition, offset, key, value) in &batch {
            let upper = value.to_uppercase();
            send(
                &producer,
                &output,
                &Outgoing { key: Some(key), value: Some(upper.as_bytes()), ..Outgoing::default() },
            )
            .expect("send");
            let next = next_offsets.entry(*partition).or_insert(0);
            *next = (*next).max(offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &next_offsets {
            offsets.add_partition_offset(&input, *partition, Offset::Offset(*next)).expect("offset");
        }
        let metadata = consumer.group_metadata().expect("group metadata");
        producer.send_offsets_to_transaction(&offsets, &metadata, WAIT_TIMEOUT).expect("send_offsets_to_transaction");
        producer.commit_transaction(WAIT_TIMEOUT).expect("commit_transaction");
        assert!(producer.context().failures().is_empty(), "{:?}", producer.context().failures());
        processed += batch.len();
        transactions += 1;
    }
    assert_eq!(processed, N, "no input record may be processed twice");
    assert!(transactions >= 3, "expected several transactions, got {transactions}");
    drop(consumer);
    drop(producer);

    await_stable(&output, Duration::from_secs(15)).expect("output stable");
    let expected: BTreeMap<(String, String), usize> =
        (0..N).map(|i| ((format!("key-{i}"), format!("VALUE-{i}")), 1)).collect();
    let seen = read_to_end(&output, Isolation::ReadCommitted).expect("read output");
    assert_eq!(seen.len(), N);
    assert_eq!(
        key_value_multiset(&seen),
        expected,
        "read_committed output must hold every transformed record exactly once"
    );
    // Transaction markers take offsets: the output's end is beyond its record count.
    let output_ends = high_watermarks(&output).expect("output watermarks");
    assert!(output_ends.values().sum::<i64>() > N as i64, "commit markers should take offsets: {output_ends:?}");

    let committed = committed_offsets(&group, &input).expect("committed offsets");
    let expected_committed: BTreeMap<i32, Option<i64>> = input_ends.iter().map(|(p, end)| (*p, Some(*end))).collect();
    assert_eq!(committed, expected_committed, "committed offsets must equal the input's end offsets");

    support::delete_groups(&[&group]).expect("delete group");
    topics.delete().expect("delete topics");
}

/// Checks that a reader with `isolation` sees exactly `committed` on `topic` (as a multiset of
/// (key, value)); returns what it saw otherwise.
fn sees_only_committed(
    topic: &str,
    isolation: Isolation,
    committed: &BTreeMap<(String, String), usize>,
) -> Result<(), String> {
    let records = read_to_end(topic, isolation).map_err(|e| e.to_string())?;
    let seen = key_value_multiset(&records);
    if &seen == committed {
        Ok(())
    } else {
        Err(format!("{} reader saw {} records: {seen:?}", isolation.as_config(), records.len()))
    }
}

/// b. An aborted transaction followed by a committed one: read_committed readers see only the
/// committed records; read_uncommitted readers also see the aborted ones (so the check would catch
/// a wrong isolation level). Also: an open transaction keeps the LSO below the high watermark.
#[test]
fn aborted_transaction_is_invisible_to_read_committed_only() {
    require_broker();
    let topic = unique_topic("abort");
    let topics = create_topics(&[TopicSpec::new(&topic, 2)]).expect("create topic");
    let producer = transactional_producer(&unique_name("abort-txn")).expect("producer");

    let write = |prefix: &str| {
        for i in 0..20 {
            let key = format!("key-{i}");
            let value = format!("{prefix}-{i}");
            send(
                &producer,
                &topic,
                &Outgoing {
                    partition: Some(i % 2),
                    key: Some(key.as_bytes()),
                    value: Some(value.as_bytes()),
                    headers: &[("origin", prefix.as_bytes())],
                    timestamp: None,
                },
            )
            .expect("send");
        }
    };

    producer.begin_transaction().expect("begin aborted txn");
    write("aborted");
    producer.flush(WAIT_TIMEOUT).expect("flush");
    assert!(producer.context().failures().is_empty());
    // While the transaction is open, LSO < high watermark on both partitions.
    let open = unstable_partitions(&topic).expect("lso/hw");
    assert_eq!(open.len(), 2, "an open transaction must hold the LSO below the high watermark: {open:?}");
    producer.abort_transaction(WAIT_TIMEOUT).expect("abort_transaction");

    producer.begin_transaction().expect("begin committed txn");
    write("committed");
    producer.commit_transaction(WAIT_TIMEOUT).expect("commit_transaction");
    assert!(producer.context().failures().is_empty());
    drop(producer);
    await_stable(&topic, Duration::from_secs(15)).expect("LSO reaches the high watermark");

    let committed: BTreeMap<(String, String), usize> =
        (0..20).map(|i| ((format!("key-{i}"), format!("committed-{i}")), 1)).collect();
    let aborted: BTreeMap<(String, String), usize> =
        (0..20).map(|i| ((format!("key-{i}"), format!("aborted-{i}")), 1)).collect();

    // The core check, both directions.
    sees_only_committed(&topic, Isolation::ReadCommitted, &committed)
        .expect("read_committed must see only the committed records");
    assert!(
        sees_only_committed(&topic, Isolation::ReadUncommitted, &committed).is_err(),
        "read_uncommitted must see more than the committed records"
    );

    let uncommitted = read_to_end(&topic, Isolation::ReadUncommitted).expect("read uncommitted");
    let mut everything = committed.clone();
    everything.extend(aborted);
    assert_eq!(key_value_multiset(&uncommitted), everything);

    // Headers survive, offsets are not contiguous (markers), committed records come after the
    // aborted ones and their abort marker.
    let records = read_to_end(&topic, Isolation::ReadCommitted).expect("read committed");
    for r in &records {
        assert_eq!(r.headers, vec![("origin".to_string(), Some(b"committed".to_vec()))]);
        assert!(r.offset >= 11, "10 aborted records + abort marker precede: {r:?}");
    }
    let ends = high_watermarks(&topic).expect("watermarks");
    assert_eq!(
        ends.values().copied().collect::<Vec<_>>(),
        vec![22, 22],
        "10 aborted + abort marker + 10 committed + commit marker per partition"
    );

    topics.delete().expect("delete topic");
}
