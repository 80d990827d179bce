//! What a processor sees of its task: forwarding, stores, time, punctuation.

use std::marker::PhantomData;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::record::{Data, RawRecord, Record, RecordMetadata};
use crate::store::{KeyValueStore, SessionStore, WindowStore};
use crate::task::core::TaskCore;
use crate::task::TaskId;

/// Which clock drives a punctuation.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
/// use kstreams_streams::record::Record;
/// /// Forwards a heartbeat every 10 s of wall-clock time.
/// struct Heartbeat;
/// impl Processor<String, String> for Heartbeat {
///     fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<()> {
///         ctx.schedule(Duration::from_secs(10), PunctuationType::WallClockTime)?;
///         Ok(())
///     }
///     fn process(&mut self, _: &mut ProcessorContext<'_, String, String>, _: Record<String, String>) -> Result<()> {
///         Ok(())
///     }
///     fn punctuate(&mut self, ctx: &mut ProcessorContext<'_, String, String>, _: ScheduleId, now: i64) -> Result<()> {
///         ctx.forward(Record::new("heartbeat".into(), now.to_string(), now))
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// Fires as stream time (the largest record timestamp a task has seen) advances; never without
    /// new records.
    StreamTime,
    /// Fires as the wall clock advances, records or not.
    WallClockTime,
}

/// Identifies a scheduled punctuation, to tell schedules apart in
/// [`Processor::punctuate`](super::Processor::punctuate) or to cancel one.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
/// use kstreams_streams::record::Record;
/// /// Punctuates once, then cancels its schedule.
/// struct Once(Option<ScheduleId>);
/// impl Processor<String, String> for Once {
///     fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<()> {
///         self.0 = Some(ctx.schedule(Duration::from_secs(1), PunctuationType::StreamTime)?);
///         Ok(())
///     }
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> Result<()> {
///         ctx.forward(r)
///     }
///     fn punctuate(&mut self, ctx: &mut ProcessorContext<'_, String, String>, id: ScheduleId, _: i64) -> Result<()> {
///         if self.0 == Some(id) {
///             ctx.cancel(id);
///         }
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduleId(pub(crate) u64);

/// The processor's window onto its task, typed by what the processor forwards.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// /// Counts records per key in the store `counts` and forwards the new count.
/// struct Counter;
/// impl Processor<String, String, String, i64> for Counter {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, record: Record<String, String>) -> Result<()> {
///         let store = ctx.key_value_store::<String, i64>("counts")?;
///         let count = store.get(&record.key)?.unwrap_or(0) + 1;
///         store.put(&record.key, &count)?;
///         ctx.forward(record.with_value(count))
///     }
/// }
/// ```
pub struct ProcessorContext<'a, KOut, VOut> {
    pub(crate) core: &'a mut TaskCore,
    pub(crate) node: usize,
    pub(crate) _out: PhantomData<fn(KOut, VOut)>,
}

impl<'a, KOut: Data, VOut: Data> ProcessorContext<'a, KOut, VOut> {
    pub(crate) fn new(core: &'a mut TaskCore, node: usize) -> Self {
        ProcessorContext { core, node, _out: PhantomData }
    }

    /// Sends `record` to every child of this processor.
    pub fn forward(&mut self, record: Record<KOut, VOut>) -> Result<()> {
        self.core.forward(self.node, RawRecord::from_typed(record), None)
    }

    /// Sends `record` to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<KOut, VOut>) -> Result<()> {
        self.core.forward(self.node, RawRecord::from_typed(record), Some(child))
    }
}

impl<KOut, VOut> ProcessorContext<'_, KOut, VOut> {
    /// The key-value store `name`: one connected to this processor, or a **global store**
    /// ([`StreamsBuilder::global_table`](crate::dsl::StreamsBuilder::global_table),
    /// [`Topology::add_global_store`](crate::topology::Topology::add_global_store)), which every
    /// processor may read without being connected to it. A global store is read-only here: it holds
    /// every partition of its topic and changes only as its topic does; writes fail with
    /// [`StateError::ReadOnly`](kstreams_state::error::StateError::ReadOnly).
    ///
    /// ```
    /// use kstreams_streams::processor::{Processor, ProcessorContext};
    /// use kstreams_streams::record::Record;
    ///
    /// /// Replaces a country code by the country's name, from the global store `countries`.
    /// struct CountryName;
    /// impl Processor<String, String> for CountryName {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> kstreams_streams::Result<()> {
    ///         let name = ctx.key_value_store::<String, String>("countries")?.get(&r.value)?;
    ///         ctx.forward(r.with_value(name.unwrap_or_else(|| "unknown".into())))
    ///     }
    /// }
    /// ```
    pub fn key_value_store<K: Data, V: Data>(&mut self, name: &str) -> Result<&mut KeyValueStore<K, V>> {
        self.core.store::<KeyValueStore<K, V>>(self.node, name, "a key-value store")
    }

    /// The window store `name`, which must be connected to this processor.
    pub fn window_store<K: Data, V: Data>(&mut self, name: &str) -> Result<&mut WindowStore<K, V>> {
        self.core.store::<WindowStore<K, V>>(self.node, name, "a window store")
    }

    /// The session store `name`, which must be connected to this processor.
    pub fn session_store<K: Data, V: Data>(&mut self, name: &str) -> Result<&mut SessionStore<K, V>> {
        self.core.store::<SessionStore<K, V>>(self.node, name, "a session store")
    }

    /// Schedules [`Processor::punctuate`](super::Processor::punctuate) every `interval` of stream time
    /// or wall-clock time.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> Result<ScheduleId> {
        let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if ms < 1 {
            return Err(StreamsError::IllegalState(format!(
                "processor `{}`: a punctuation interval must be at least 1 ms",
                self.core.node_name(self.node)
            )));
        }
        Ok(self.core.schedule(self.node, ms, kind))
    }

    /// Cancels a schedule made by this processor.
    pub fn cancel(&mut self, schedule: ScheduleId) {
        self.core.cancel(schedule);
    }

    /// Topic, partition and offset of the record being processed (`None` inside a punctuation).
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.core.record_metadata.as_ref()
    }

    /// The task's stream time: the largest timestamp it has processed (`i64::MIN` before the first).
    pub fn current_stream_time_ms(&self) -> i64 {
        self.core.stream_time
    }

    /// The wall-clock time of the task, in milliseconds (the driver's clock in tests).
    pub fn current_system_time_ms(&self) -> i64 {
        self.core.wall_clock_ms
    }

    /// The task this processor runs in.
    pub fn task_id(&self) -> TaskId {
        self.core.task_id
    }

    /// `application.id`.
    pub fn application_id(&self) -> &str {
        &self.core.application_id
    }

    /// This processor's name.
    pub fn name(&self) -> &str {
        self.core.node_name(self.node)
    }

    /// Asks the runtime to commit the task soon.
    pub fn commit(&mut self) {
        self.core.commit_requested = true;
    }

    /// Counts a record this processor drops on purpose (late, null key, …) in the task's
    /// `dropped-records` metric and logs it at debug level with `reason`.
    pub fn record_dropped(&mut self, reason: &str) {
        self.core.record_dropped(self.node, reason);
    }
}
