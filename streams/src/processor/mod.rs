//! The Processor API: processors that take records one at a time, forward records to their children,
//! use state stores and schedule punctuations.
//!
//! The DSL is built on this API, so a [`Topology`](crate::topology::Topology) written by hand runs
//! exactly like one built by the DSL.
//!
//! ```
//! use kstreams_streams::processor::{Processor, ProcessorContext};
//! use kstreams_streams::record::Record;
//! use kstreams_streams::error::Result;
//!
//! /// Forwards each value's length under the same key.
//! struct Length;
//! impl Processor<String, String, String, usize> for Length {
//!     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, usize>, record: Record<String, String>) -> Result<()> {
//!         let len = record.value.len();
//!         ctx.forward(record.with_value(len))
//!     }
//! }
//! ```

mod context;
pub(crate) mod node;

pub use context::{ProcessorContext, PunctuationType, ScheduleId};

use crate::error::Result;
use crate::record::Record;

/// A node of a topology that processes records one at a time.
///
/// `init` runs once when the task starts (before any record), `process` for every record from the
/// parents, `punctuate` for each schedule made with [`ProcessorContext::schedule`], and `close` when
/// the task closes.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// use kstreams_streams::topology::Topology;
/// /// Upper-cases each value.
/// struct Upper;
/// impl Processor<String, String> for Upper {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> Result<()> {
///         let upper = r.value.to_uppercase();
///         ctx.forward(r.with_value(upper))
///     }
/// }
/// let mut topology = Topology::new();
/// topology
///     .add_source("in", &["words"], Serdes::string(), Serdes::string()).unwrap()
///     .add_processor("upper", || Upper, &["in"]).unwrap()
///     .add_sink("out", "upper-words", Serdes::string(), Serdes::string(), &["upper"]).unwrap();
/// let driver = TopologyTestDriver::new(topology, TestDriverConfig::new("app")).unwrap();
/// driver.input_topic("words", Serdes::string(), Serdes::string()).pipe("k".into(), "hi".into(), 1).unwrap();
/// let out = driver.output_topic("upper-words", Serdes::string(), Serdes::string());
/// assert_eq!(out.read_key_values().unwrap(), [("k".to_string(), "HI".to_string())]);
/// ```
pub trait Processor<KIn, VIn, KOut = KIn, VOut = VIn>: Send + 'static {
    /// Prepares the processor: look up stores, schedule punctuations.
    fn init(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record.
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>, record: Record<KIn, VIn>) -> Result<()>;

    /// Called for each due punctuation scheduled by this processor; `timestamp` is the stream time or
    /// wall-clock time that triggered it.
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        schedule: ScheduleId,
        timestamp: i64,
    ) -> Result<()> {
        let _ = (ctx, schedule, timestamp);
        Ok(())
    }

    /// Called when the record cache of a store this processor is connected to flushed (before each
    /// commit) or evicted entries: a processor that writes a cached store forwards its results from
    /// here, taking them with [`KeyValueStore::take_flushed`](crate::store::KeyValueStore::take_flushed),
    /// so that updates of a key between commits reach downstream once, as in Kafka Streams.
    fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Releases resources when the task closes.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Makes a fresh processor for each task: a topology is a blueprint, run once per partition.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext, ProcessorSupplier};
/// use kstreams_streams::record::Record;
/// /// Keeps every n-th record; each task gets its own counter.
/// struct EveryNth { n: u64, seen: u64 }
/// impl Processor<String, String> for EveryNth {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> Result<()> {
///         self.seen += 1;
///         if self.seen % self.n == 0 { ctx.forward(r) } else { Ok(()) }
///     }
/// }
/// // Any `Fn() -> impl Processor` closure is a supplier.
/// let supplier = || EveryNth { n: 3, seen: 0 };
/// let _first: Box<dyn Processor<String, String>> = ProcessorSupplier::<String, String, String, String>::get(&supplier);
/// ```
pub trait ProcessorSupplier<KIn, VIn, KOut, VOut>: Send + Sync + 'static {
    /// A new processor instance.
    fn get(&self) -> Box<dyn Processor<KIn, VIn, KOut, VOut>>;
}

impl<F, P, KIn, VIn, KOut, VOut> ProcessorSupplier<KIn, VIn, KOut, VOut> for F
where
    F: Fn() -> P + Send + Sync + 'static,
    P: Processor<KIn, VIn, KOut, VOut>,
{
    fn get(&self) -> Box<dyn Processor<KIn, VIn, KOut, VOut>> {
        Box::new(self())
    }
}
