//! Which instance and thread runs which task, active and standby: a placement that every member
//! of the group computes alike from the group's member list.
//!
//! # How instances learn the assignment (the decision)
//!
//! Kafka Streams runs its own partition assignor inside the classic group protocol; librdkafka has
//! none to plug in. kstreams keeps librdkafka's classic consumer group for what it is good at —
//! membership, liveness (session timeouts, static membership) and generations, which fence the
//! offsets and transactions of a member that was dropped — and ignores the partitions the group
//! leader hands out. After each rebalance every stream thread asks the coordinator for the new
//! generation's members (DescribeGroups: the group is `Stable` once the leader synced, and it cannot
//! move on before this member rejoins), reads each member's process id, thread and endpoint from its
//! `client.id`, and computes the placement below. The placement is a pure function of the member
//! list, so all members agree on it without exchanging anything, and the instances answering
//! interactive queries compute the same one. If the coordinator cannot be asked (or the group moved
//! on already), the thread holds no partitions and asks again every second (taking the group
//! leader's choice instead could overlap with what the others took).
//!
//! Tasks that stay with a thread through a rebalance are suspended, not closed: the thread commits
//! when the rebalance begins and resumes them, stores open and caches warm, when it ends. A member
//! that lost its partitions (dropped from the group) closes its tasks and creates none until its
//! next assignment, so a task never runs on a store that another instance moved past.
//!
//! The placement is rendezvous hashing (highest random weight) of task ids over process ids, with
//! capacities proportional to each process's threads so the load stays balanced:
//!
//! - *State-aware*: process ids live in `state.dir` and survive restarts, so a restarted instance
//!   gets its tasks back, with their stores on disk, whatever member ids the group hands out.
//! - *Moves only what must move*: a process joining takes about its share of tasks from the others;
//!   a process leaving gives its tasks to their next-ranked processes; other tasks stay (and keep
//!   their stores open and caches warm through the rebalance).
//! - *Standbys where failover lands*: a stateful task's first standby goes exactly where the task
//!   would go if its active process failed (the placement computed without that process); further
//!   standbys go to the next-ranked processes. A standby never shares a process with its active.
//!
//! Not chosen: the streams group protocol (KIP-1071), where the broker assigns active, standby and
//! warm-up tasks; it needs a second Kafka client beside librdkafka for the heartbeats and offset
//! commits with member epochs, and no well-kept Rust crate speaks it yet. A compacted topic where
//! instances publish their assignment would duplicate what the coordinator already knows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::query::HostInfo;
use crate::task::TaskId;
use crate::topology::SubTopology;

/// One stream thread of one instance, as the group lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ThreadMember {
    /// The instance's process id (kept in `state.dir`).
    pub process: String,
    /// The thread's index in its instance.
    pub thread: usize,
    /// The instance's `application.server`, when set.
    pub endpoint: Option<HostInfo>,
}

/// The tasks of a topology and the input partitions of each.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskLayout {
    /// Each task's input partitions (full topic names).
    pub tasks: BTreeMap<TaskId, Vec<(String, i32)>>,
    /// Tasks with logged persistent stores: those that get standbys.
    pub stateful: BTreeSet<TaskId>,
    /// The sub-topology reading each topic.
    topic_to_sub: HashMap<String, u32>,
}

impl TaskLayout {
    /// The layout of `subs` whose (full) source topics have `partitions`; `full` turns a source
    /// topic's name into its full name; `stateful(sub)` says whether a sub-topology's tasks get standbys.
    pub fn new(
        subs: &[SubTopology],
        full: impl Fn(&str) -> String,
        partitions: &HashMap<String, i32>,
        stateful: impl Fn(&SubTopology) -> bool,
    ) -> TaskLayout {
        let mut layout = TaskLayout::default();
        for sub in subs {
            let topics: Vec<String> = sub.source_topics.iter().map(|t| full(t)).collect();
            let count = topics.iter().filter_map(|t| partitions.get(t)).copied().max().unwrap_or(0);
            for partition in 0..count {
                let id = TaskId { subtopology: sub.id, partition };
                let inputs = topics
                    .iter()
                    .filter(|t| partitions.get(*t).is_some_and(|&n| partition < n))
                    .map(|t| (t.clone(), partition))
                    .collect();
                layout.tasks.insert(id, inputs);
                if stateful(sub) {
                    layout.stateful.insert(id);
                }
            }
            for t in topics {
                layout.topic_to_sub.insert(t, sub.id);
            }
        }
        layout
    }

    /// The task reading `topic`-`partition`.
    pub fn task_of(&self, topic: &str, partition: i32) -> Option<TaskId> {
        self.topic_to_sub.get(topic).map(|&subtopology| TaskId { subtopology, partition })
    }
}

/// Where every task runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    pub active: BTreeMap<TaskId, ThreadMember>,
    pub standby: BTreeMap<TaskId, Vec<ThreadMember>>,
}

impl Placement {
    /// The tasks `member` runs, active and standby.
    pub fn of(&self, process: &str, thread: usize) -> (BTreeSet<TaskId>, BTreeSet<TaskId>) {
        let mine = |m: &ThreadMember| m.process == process && m.thread == thread;
        let active = self.active.iter().filter(|(_, m)| mine(m)).map(|(t, _)| *t).collect();
        let standby = self.standby.iter().filter(|(_, ms)| ms.iter().any(mine)).map(|(t, _)| *t).collect();
        (active, standby)
    }
}

/// A stable 64-bit hash (FNV-1a, then a finalizer that spreads the bits): every instance and every
/// version of kstreams must rank alike, which the standard library's hashers do not promise.
fn rank(task: TaskId, owner: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}_{}/{owner}", task.subtopology, task.partition).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Owners ordered by their rank for `task`, best first (ties broken by name).
fn ranked<'a>(task: TaskId, owners: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut v: Vec<(u64, &String)> = owners.map(|o| (rank(task, o), o)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    v.into_iter().map(|(_, o)| o).collect()
}

/// Places `tasks` on `owners` (name → weight), each owner taking at most its share of the tasks
/// (rounded up): first every task tries its best-ranked owner, then those left their second, and so
/// on. Stateful tasks are balanced first, then all tasks together.
fn balanced(
    tasks: &BTreeSet<TaskId>,
    stateful: &BTreeSet<TaskId>,
    owners: &BTreeMap<String, usize>,
) -> BTreeMap<TaskId, String> {
    let total_weight: usize = owners.values().sum();
    let mut out = BTreeMap::new();
    if total_weight == 0 {
        return out;
    }
    let share = |n: usize, w: usize| (n * w).div_ceil(total_weight);
    let ranks: BTreeMap<TaskId, Vec<&String>> = tasks.iter().map(|&t| (t, ranked(t, owners.keys()))).collect();
    let first: BTreeSet<TaskId> = tasks.intersection(stateful).copied().collect();
    let mut load: BTreeMap<&String, usize> = owners.keys().map(|o| (o, 0)).collect();
    for (pass, n) in [(&first, first.len()), (tasks, tasks.len())] {
        // `level` indexes every task's own ranking, not one sequence.
        #[allow(clippy::needless_range_loop)]
        for level in 0..owners.len() {
            // Within a level, the tasks that want their owner most go first.
            let mut order: Vec<(u64, TaskId)> =
                pass.iter().filter(|t| !out.contains_key(*t)).map(|&t| (rank(t, ranks[&t][level]), t)).collect();
            order.sort_by(|a, b| b.cmp(a));
            for (_, task) in &order {
                let owner = ranks[task][level];
                if load[owner] < share(n, owners[owner]) {
                    *load.entry(owner).or_default() += 1;
                    out.insert(*task, owner.clone());
                }
            }
        }
    }
    out
}

/// The placement of `layout`'s tasks on `members` with `standbys` standby replicas per stateful
/// task (see the module docs).
pub(crate) fn place(layout: &TaskLayout, members: &[ThreadMember], standbys: usize) -> Placement {
    let mut threads: BTreeMap<String, BTreeMap<usize, ThreadMember>> = BTreeMap::new();
    for m in members {
        threads.entry(m.process.clone()).or_default().insert(m.thread, m.clone());
    }
    let weights: BTreeMap<String, usize> = threads.iter().map(|(p, ts)| (p.clone(), ts.len())).collect();
    let all: BTreeSet<TaskId> = layout.tasks.keys().copied().collect();
    let active_process = balanced(&all, &layout.stateful, &weights);

    // Standbys: first where the task fails over to, then the next-ranked processes.
    let mut standby_process: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    if standbys > 0 && weights.len() > 1 {
        let failover: BTreeMap<&String, BTreeMap<TaskId, String>> = weights
            .keys()
            .map(|gone| {
                let mut rest = weights.clone();
                rest.remove(gone);
                (gone, balanced(&all, &layout.stateful, &rest))
            })
            .collect();
        for &task in &layout.stateful {
            let Some(active) = active_process.get(&task) else { continue };
            let mut chosen: Vec<String> = Vec::new();
            if let Some(next) = failover.get(active).and_then(|f| f.get(&task)) {
                chosen.push(next.clone());
            }
            for p in ranked(task, weights.keys()) {
                if chosen.len() >= standbys {
                    break;
                }
                if p != active && !chosen.contains(p) {
                    chosen.push(p.clone());
                }
            }
            chosen.truncate(standbys);
            standby_process.insert(task, chosen);
        }
    }

    // Within each process, its tasks are balanced over its threads the same way.
    let thread_names = |p: &str| -> BTreeMap<String, usize> {
        threads.get(p).map(|ts| ts.keys().map(|t| (format!("{p}#{t}"), 1)).collect()).unwrap_or_default()
    };
    let member = |p: &str, name: &str| -> Option<ThreadMember> {
        let index: usize = name.rsplit_once('#')?.1.parse().ok()?;
        threads.get(p)?.get(&index).cloned()
    };
    let mut placement = Placement::default();
    for process in weights.keys() {
        let names = thread_names(process);
        let mine: BTreeSet<TaskId> = active_process.iter().filter(|(_, p)| *p == process).map(|(t, _)| *t).collect();
        for (task, name) in balanced(&mine, &layout.stateful, &names) {
            if let Some(m) = member(process, &name) {
                placement.active.insert(task, m);
            }
        }
        let mine: BTreeSet<TaskId> =
            standby_process.iter().filter(|(_, ps)| ps.contains(process)).map(|(t, _)| *t).collect();
        for (task, name) in balanced(&mine, &mine, &names) {
            if let Some(m) = member(process, &name) {
                placement.standby.entry(task).or_default().push(m);
            }
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(subs: u32, partitions: i32) -> TaskLayout {
        let mut l = TaskLayout::default();
        for s in 0..subs {
            for p in 0..partitions {
                let id = TaskId { subtopology: s, partition: p };
                l.tasks.insert(id, vec![(format!("t{s}"), p)]);
                l.stateful.insert(id);
            }
        }
        l
    }

    fn members(processes: &[&str], threads: usize) -> Vec<ThreadMember> {
        processes
            .iter()
            .flat_map(|p| (0..threads).map(move |t| ThreadMember { process: p.to_string(), thread: t, endpoint: None }))
            .collect()
    }

    fn per_process(p: &Placement) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in p.active.values() {
            *out.entry(m.process.clone()).or_default() += 1;
        }
        out
    }

    #[test]
    fn every_task_is_placed_once_and_the_load_is_balanced() {
        let l = layout(2, 6);
        let p = place(&l, &members(&["a", "b", "c"], 1), 0);
        assert_eq!(p.active.len(), 12);
        assert!(per_process(&p).values().all(|&n| n == 4), "{:?}", per_process(&p));
        let p = place(&l, &members(&["a", "b"], 2), 0);
        let mut per_thread: BTreeMap<(String, usize), usize> = BTreeMap::new();
        for m in p.active.values() {
            *per_thread.entry((m.process.clone(), m.thread)).or_default() += 1;
        }
        assert!(per_thread.values().all(|&n| n == 3), "{per_thread:?}");
    }

    #[test]
    fn the_same_members_give_the_same_placement_in_any_order() {
        let l = layout(3, 5);
        let mut ms = members(&["p1", "p2", "p3"], 2);
        let first = place(&l, &ms, 1);
        ms.reverse();
        assert_eq!(place(&l, &ms, 1), first);
    }

    #[test]
    fn a_process_leaving_moves_its_tasks_to_their_standbys_and_few_others() {
        let l = layout(2, 6);
        let (mut others_moved, mut others) = (0, 0);
        for run in 0..50 {
            let names: Vec<String> = (0..3).map(|i| format!("{run:04x}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let before = place(&l, &members(&refs, 1), 1);
            let after = place(&l, &members(&[refs[0], refs[2]], 1), 1);
            for (task, owner) in &before.active {
                if owner.process == refs[1] {
                    let standby = &before.standby[task];
                    assert_eq!(
                        after.active[task].process, standby[0].process,
                        "{task} did not fail over to its standby"
                    );
                } else {
                    others += 1;
                    others_moved += usize::from(after.active[task].process != owner.process);
                }
            }
        }
        eprintln!("{others_moved} of {others} tasks of staying processes moved");
        assert!(others_moved * 10 <= others, "{others_moved} of {others} tasks of staying processes moved");
    }

    #[test]
    fn a_process_joining_takes_about_its_share() {
        let l = layout(2, 6);
        let before = place(&l, &members(&["a", "b"], 1), 0);
        let after = place(&l, &members(&["a", "b", "c"], 1), 0);
        let moved = before.active.iter().filter(|(t, m)| after.active[*t].process != m.process).count();
        assert!(moved <= 6, "{moved} of 12 tasks moved for a third process");
        assert_eq!(per_process(&after).get("c"), Some(&4));
    }

    #[test]
    fn standbys_never_share_a_process_with_their_active() {
        let l = layout(2, 4);
        let p = place(&l, &members(&["a", "b", "c"], 2), 2);
        for (task, active) in &p.active {
            let standbys = &p.standby[task];
            assert_eq!(standbys.len(), 2);
            assert!(standbys.iter().all(|s| s.process != active.process), "{task}: {active:?} {standbys:?}");
            assert_ne!(standbys[0].process, standbys[1].process);
        }
        // One process: nowhere to put a standby.
        let p = place(&l, &members(&["a"], 1), 1);
        assert!(p.standby.is_empty());
    }
}
