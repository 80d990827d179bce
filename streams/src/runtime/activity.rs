//! What each stream thread is doing, so that a `close` that runs out of time can say which step
//! holds a thread up (a transaction commit, a rebalance, a previous owner's open transaction, the
//! consumer leaving the group…).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// A step of a stream thread that can wait on the broker or on other threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    Starting,
    Polling,
    Revoking,
    Assigning,
    CreatingTasks,
    Processing,
    Committing,
    WaitingForBroker,
    ClosingTasks,
    StoppingUpdater,
    ClosingStandbys,
    ClosingClients,
    Stopped,
}

impl Step {
    const ALL: [Step; 13] = [
        Step::Starting,
        Step::Polling,
        Step::Revoking,
        Step::Assigning,
        Step::CreatingTasks,
        Step::Processing,
        Step::Committing,
        Step::WaitingForBroker,
        Step::ClosingTasks,
        Step::StoppingUpdater,
        Step::ClosingStandbys,
        Step::ClosingClients,
        Step::Stopped,
    ];
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Starting => "starting",
            Step::Polling => "polling its consumer",
            Step::Revoking => "committing and suspending its tasks as a rebalance begins",
            Step::Assigning => "reading the group's members for its share of the placement",
            Step::CreatingTasks => {
                "reading its new tasks' committed offsets (a previous owner's transaction may be open)"
            }
            Step::Processing => "processing records",
            Step::Committing => "committing",
            Step::WaitingForBroker => "waiting for the broker (task.timeout.ms)",
            Step::ClosingTasks => "closing its tasks",
            Step::StoppingUpdater => "stopping its state updater (restorations in progress)",
            Step::ClosingStandbys => "closing its standby tasks",
            Step::ClosingClients => "closing its consumer (leaving the group) and producer",
            Step::Stopped => "stopped",
        })
    }
}

/// The current [`Step`] of one stream thread, shared with the application.
#[derive(Debug)]
pub(crate) struct Activity(AtomicU8);

impl Default for Activity {
    fn default() -> Self {
        Activity(AtomicU8::new(Step::Starting as u8))
    }
}

impl Activity {
    pub fn set(&self, step: Step) {
        self.0.store(step as u8, Ordering::Relaxed);
    }

    pub fn get(&self) -> Step {
        let n = self.0.load(Ordering::Relaxed);
        Step::ALL.into_iter().find(|s| *s as u8 == n).unwrap_or(Step::Starting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_reads_back_as_set() {
        let activity = Activity::default();
        assert_eq!(activity.get(), Step::Starting);
        for step in Step::ALL {
            activity.set(step);
            assert_eq!(activity.get(), step);
        }
    }
}
