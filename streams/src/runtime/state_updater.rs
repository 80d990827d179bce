//! Creating tasks, and restoring their stores, beside the stream thread (Kafka Streams'
//! `StateUpdater`).
//!
//! A task that arrives with a long changelog to replay would stop its thread's other tasks for as
//! long as the replay takes if it were restored on the thread. Instead the stream thread hands a new
//! task (its committed input offsets already read) to its updater, keeps that task's input
//! partitions paused and goes on processing the tasks it runs; an updater thread opens the task's
//! stores, restores them from their changelogs with its own restore consumer, initializes the task
//! and hands it back, and the stream thread starts running it. The task is no part of the thread's
//! commits until then. Each task being created has an updater thread (up to [`MAX_THREADS`] per
//! stream thread), so a task with a long changelog does not hold up one with a short one, as
//! Kafka Streams' updater restores all its tasks' changelogs together.
//!
//! A task that moves away, or a thread that stops, interrupts its restoration: the store keeps
//! what it restored (committed at the offset it reached), so the next owner on this instance resumes
//! from there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use kstreams_state::{Restorer, StateError, TaskStateManager};

use crate::error::{catch_panics, Result, StreamsError};
use crate::runtime::collector::KProducer;
use crate::runtime::task_manager::TaskFactory;
use crate::task::{StreamTask, TaskId};

/// The most updater threads a stream thread uses (each with a restore consumer); more tasks wait.
const MAX_THREADS: usize = 4;

/// A task for the updater to create.
struct Job {
    id: TaskId,
    /// Each input topic's partition time, from the committed offsets.
    times: Vec<(String, i64)>,
    producer: Arc<KProducer>,
    stop: Arc<AtomicBool>,
}

/// A task the updater finished with.
pub(crate) struct Restored {
    pub id: TaskId,
    /// The task and its state manager, or why it could not be created
    /// ([`is_interrupted`] when it was given up).
    pub result: Result<(StreamTask, TaskStateManager)>,
}

/// Whether `error` says a restoration was interrupted on request.
pub(crate) fn is_interrupted(error: &StreamsError) -> bool {
    matches!(error, StreamsError::State(StateError::RestoreInterrupted { .. }))
}

/// Makes a restore consumer for one updater thread.
pub(crate) type MakeRestorer = Box<dyn Fn() -> Result<Restorer> + Send>;

/// A stream thread's updater: the tasks it is creating, and the threads that create them.
pub(crate) struct StateUpdater {
    name: String,
    factory: Arc<TaskFactory>,
    make_restorer: MakeRestorer,
    jobs: Option<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    finished: Sender<Restored>,
    done: Receiver<Restored>,
    workers: Vec<JoinHandle<()>>,
    /// Tasks handed over and not yet back, with the flag that interrupts each.
    pending: BTreeMap<TaskId, Arc<AtomicBool>>,
}

impl StateUpdater {
    /// An updater whose threads (`name`-1, -2, …) create tasks with `factory` and restore their
    /// stores with restorers from `make_restorer`. Threads start when tasks come.
    pub fn new(name: String, factory: Arc<TaskFactory>, make_restorer: MakeRestorer) -> StateUpdater {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (finished, done) = mpsc::channel::<Restored>();
        StateUpdater {
            name,
            factory,
            make_restorer,
            jobs: Some(jobs),
            queue: Arc::new(Mutex::new(queue)),
            finished,
            done,
            workers: Vec::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Starts one more updater thread, with its own restore consumer.
    fn spawn_worker(&mut self) -> Result<()> {
        let mut restorer = (self.make_restorer)()?;
        let (factory, queue, finished) = (self.factory.clone(), self.queue.clone(), self.finished.clone());
        let worker = std::thread::Builder::new()
            .name(format!("{}-{}", self.name, self.workers.len() + 1))
            .spawn(move || loop {
                // One thread takes the next job at a time; the channel ends when the updater stops.
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let result = create(&factory, &mut restorer, &job);
                if finished.send(Restored { id: job.id, result }).is_err() {
                    return;
                }
            })
            .map_err(|e| StreamsError::IllegalState(format!("starting a state updater thread: {e}")))?;
        self.workers.push(worker);
        Ok(())
    }

    /// Hands `id` over to be created and restored; `times` are its inputs' partition times.
    pub fn add(&mut self, id: TaskId, times: Vec<(String, i64)>, producer: Arc<KProducer>) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let job = Job { id, times, producer, stop: stop.clone() };
        // A thread per task being created, up to MAX_THREADS: a long restoration does not hold up
        // the tasks that come after it.
        if self.workers.len() <= self.pending.len() && self.workers.len() < MAX_THREADS {
            self.spawn_worker()?;
        }
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(StreamsError::IllegalState("the state updater thread has stopped".into()));
        }
        self.pending.insert(id, stop);
        Ok(())
    }

    /// Whether `id` is being created.
    pub fn contains(&self, id: &TaskId) -> bool {
        self.pending.contains_key(id)
    }

    /// The tasks being created.
    pub fn ids(&self) -> impl Iterator<Item = &TaskId> + '_ {
        self.pending.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Gives `id` up: its restoration stops at the next batch, and it comes back interrupted (or
    /// created, if it was done already).
    pub fn interrupt(&self, id: &TaskId) {
        if let Some(stop) = self.pending.get(id) {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// The tasks the updater finished with since the last call.
    pub fn finished(&mut self) -> Vec<Restored> {
        let out: Vec<Restored> = self.done.try_iter().collect();
        for restored in &out {
            self.pending.remove(&restored.id);
        }
        out
    }

    /// Interrupts every task, waits for the updater thread to end, and returns what it finished.
    pub fn stop(&mut self) -> Vec<Restored> {
        for stop in self.pending.values() {
            stop.store(true, Ordering::Relaxed);
        }
        self.jobs = None;
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                tracing::warn!("a state updater thread panicked");
            }
        }
        self.finished()
    }
}

/// Creates `job`'s task, unless it was given up before it started.
fn create(factory: &TaskFactory, restorer: &mut Restorer, job: &Job) -> Result<(StreamTask, TaskStateManager)> {
    if job.stop.load(Ordering::Relaxed) {
        return Err(StreamsError::State(StateError::RestoreInterrupted {
            topic: String::new(),
            partition: job.id.partition,
            position: -1,
        }));
    }
    restorer.interrupt_when(job.stop.clone());
    // A panic in a store or in a processor's `init` fails the task instead of ending the thread
    // silently.
    catch_panics(|| factory.create_task(job.id, &job.times, &job.producer, restorer))
}

impl Drop for StateUpdater {
    fn drop(&mut self) {
        self.stop();
    }
}
