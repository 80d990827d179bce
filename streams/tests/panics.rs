//! Panics in user code (closures, processors, punctuators, serdes) become errors at the processor
//! that panicked, and the task goes on with its next record: the stream thread decides what to do
//! with the error (`processing.exception.handler`, `default.deserialization.exception.handler`).

use std::time::Duration;

use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
use kstreams_streams::error::{Result, UserPanic};
use kstreams_streams::header::Headers;
use kstreams_streams::processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
use kstreams_streams::record::Record;
use kstreams_streams::serde::{Serde, SerdeError, Serdes};
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::StreamsError;

/// Whether `error`, or an error in its chain of sources, is a panic with `message`.
fn is_panic(error: &StreamsError, message: &str) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(s) = source {
        if s.downcast_ref::<UserPanic>().is_some_and(|p| p.message == message) {
            return true;
        }
        source = s.source();
    }
    false
}

#[test]
fn a_panicking_closure_fails_its_record_and_the_next_record_goes_through() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
        .map_values(|v: i64| if v == 7 { panic!("boom on {v}") } else { v * 2 })
        .to("out", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = driver.input_topic("in", Serdes::string(), Serdes::i64());
    let output = driver.output_topic("out", Serdes::string(), Serdes::i64());
    input.pipe("a".into(), 1, 10).unwrap();
    let err = input.pipe("b".into(), 7, 11).unwrap_err();
    assert!(matches!(err, StreamsError::Processing { ref node, .. } if !node.is_empty()), "{err}");
    assert!(is_panic(&err, "boom on 7"), "{err}");
    // The processor that panicked is still in place: the next record is processed.
    input.pipe("c".into(), 3, 12).unwrap();
    assert_eq!(output.read_key_values().unwrap(), vec![("a".to_string(), 2), ("c".to_string(), 6)]);
}

/// A serde that panics on the byte string "panic".
struct Fragile;

impl Serde<String> for Fragile {
    fn serialize(&self, _: &str, _: &Headers, data: &String) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(data.clone().into_bytes()))
    }
    fn deserialize(&self, topic: &str, _: &Headers, data: Option<&[u8]>) -> std::result::Result<String, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::null(topic, "fragile"))?;
        if data == b"panic" {
            panic!("cannot read this");
        }
        Ok(String::from_utf8_lossy(data).into_owned())
    }
}

#[test]
fn a_panicking_serde_fails_the_deserialization_of_its_record() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), std::sync::Arc::new(Fragile)))
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = driver.input_topic("in", Serdes::string(), Serdes::string());
    let output = driver.output_topic("out", Serdes::string(), Serdes::string());
    let err = input.pipe("k".into(), "panic".into(), 1).unwrap_err();
    match &err {
        StreamsError::Deserialization { part, source, .. } => {
            assert_eq!(*part, "value");
            assert!(matches!(**source, SerdeError::Panicked { ref message, .. } if message == "cannot read this"));
        }
        other => panic!("expected a deserialization error, got {other}"),
    }
    input.pipe("k".into(), "fine".into(), 2).unwrap();
    assert_eq!(output.read_key_values().unwrap(), vec![("k".to_string(), "fine".to_string())]);
}

/// Forwards what it receives; its wall-clock punctuator panics.
struct Ticker;

impl Processor<String, i64, String, i64> for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime)?;
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, record: Record<String, i64>) -> Result<()> {
        ctx.forward(record)
    }
    fn punctuate(&mut self, _: &mut ProcessorContext<'_, String, i64>, _: ScheduleId, _: i64) -> Result<()> {
        panic!("tick failed")
    }
}

#[test]
fn a_panicking_punctuator_is_a_processing_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
        .process(|| Ticker, &[])
        .to("out", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = driver.input_topic("in", Serdes::string(), Serdes::i64());
    let output = driver.output_topic("out", Serdes::string(), Serdes::i64());
    let err = driver.advance_wall_clock_time(Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, StreamsError::Processing { .. }) && is_panic(&err, "tick failed"), "{err}");
    input.pipe("a".into(), 1, 10).unwrap();
    assert_eq!(output.read_key_values().unwrap(), vec![("a".to_string(), 1)]);
}
