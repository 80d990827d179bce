//! The Processor API: a hand-built topology with a state store and punctuations, run through the
//! topology test driver exactly like a DSL topology.

use std::time::Duration;

use kstreams_streams::error::Result;
use kstreams_streams::processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
use kstreams_streams::record::Record;
use kstreams_streams::serde::Serdes;
use kstreams_streams::store::Stores;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::topology::Topology;

/// Sums values per key in a store; every 100 ms of stream time emits the sums; every second of wall
/// clock emits how many keys it holds.
#[derive(Default)]
struct Summer {
    stream_schedule: Option<ScheduleId>,
}

impl Processor<String, i64, String, i64> for Summer {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        self.stream_schedule = Some(ctx.schedule(Duration::from_millis(100), PunctuationType::StreamTime)?);
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime)?;
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, record: Record<String, i64>) -> Result<()> {
        let store = ctx.key_value_store::<String, i64>("sums")?;
        let sum = store.get(&record.key)?.unwrap_or(0) + record.value;
        store.put(&record.key, &sum)
    }

    fn punctuate(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, schedule: ScheduleId, ts: i64) -> Result<()> {
        let entries = ctx.key_value_store::<String, i64>("sums")?.all()?;
        if Some(schedule) == self.stream_schedule {
            for (k, v) in entries {
                ctx.forward(Record::new(k, v, ts))?;
            }
        } else {
            ctx.forward(Record::new("keys".to_string(), entries.len() as i64, ts))?;
        }
        Ok(())
    }
}

fn topology() -> Topology {
    let mut t = Topology::new();
    t.add_source("src", &["numbers"], Serdes::string(), Serdes::i64())
        .unwrap()
        .add_processor("summer", Summer::default, &["src"])
        .unwrap()
        .add_state_store(Stores::key_value("sums", Serdes::string(), Serdes::i64()).in_memory(), &["summer"])
        .unwrap()
        .add_sink("sink", "sums-out", Serdes::string(), Serdes::i64(), &["summer"])
        .unwrap();
    t
}

#[test]
fn stream_time_punctuation_fires_as_records_advance_time() {
    let d = TopologyTestDriver::new(topology(), TestDriverConfig::new("papi")).unwrap();
    let input = d.input_topic("numbers", Serdes::string(), Serdes::i64());
    let out = d.output_topic("sums-out", Serdes::string(), Serdes::i64());
    input.pipe("a".into(), 1, 0).unwrap(); // first record: punctuates at stream time 0 (after processing)
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![("a".to_string(), 1, 0)]);
    input.pipe("a".into(), 2, 50).unwrap(); // next punctuation at 100: none yet
    assert!(out.is_empty());
    input.pipe("b".into(), 5, 250).unwrap(); // stream time 250: one punctuation (missed ones skipped)
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![("a".to_string(), 3, 250), ("b".to_string(), 5, 250)]);
    input.pipe("b".into(), 1, 260).unwrap(); // next is at 300
    assert!(out.is_empty());
}

#[test]
fn wall_clock_punctuation_fires_without_records() {
    let d = TopologyTestDriver::new(topology(), TestDriverConfig::new("papi").wall_clock_ms(10_000)).unwrap();
    let input = d.input_topic("numbers", Serdes::string(), Serdes::i64());
    let out = d.output_topic("sums-out", Serdes::string(), Serdes::i64());
    input.pipe("a".into(), 1, 0).unwrap();
    out.read_key_values().unwrap();
    d.advance_wall_clock_time(Duration::from_millis(999)).unwrap();
    assert!(out.is_empty());
    d.advance_wall_clock_time(Duration::from_millis(1)).unwrap();
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![("keys".to_string(), 1, 11_000)]);
}

#[test]
fn a_processor_cannot_use_a_store_it_is_not_connected_to() {
    struct Sneaky;
    impl Processor<String, i64> for Sneaky {
        fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, i64>) -> Result<()> {
            ctx.key_value_store::<String, i64>("sums")?;
            ctx.forward(r)
        }
    }
    let mut t = topology();
    t.add_processor("sneaky", || Sneaky, &["src"]).unwrap();
    let d = TopologyTestDriver::new(t, TestDriverConfig::new("papi")).unwrap();
    let err = d.input_topic("numbers", Serdes::string(), Serdes::i64()).pipe("a".into(), 1, 0).unwrap_err().to_string();
    assert!(err.contains("`sneaky` cannot use store `sums`"), "{err}");
}

#[test]
fn wiring_mistakes_fail_when_the_topology_is_built() {
    let mut t = Topology::new();
    t.add_source("src", &["numbers"], Serdes::string(), Serdes::i64()).unwrap();
    let err = t.add_processor("p", Summer::default, &["missing"]).err().unwrap().to_string();
    assert!(err.contains("parent `missing` of `p` does not exist"), "{err}");
    // A sink expecting strings under a source of i64 values: a type mismatch caught by validate().
    t.add_sink("sink", "out", Serdes::string(), Serdes::string(), &["src"]).unwrap();
    let err = t.validate().unwrap_err().to_string();
    assert!(err.contains("`src` forwards") && err.contains("its child `sink` takes"), "{err}");
}
