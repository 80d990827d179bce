//! Which instance hosts which task: the group's members, read from the group coordinator, and the
//! placement they imply.
//!
//! Each stream thread's consumer carries its instance's process id, its thread index and its
//! `application.server` at the end of its `client.id` (`…#<process>#<thread>@host:port`). The
//! classic protocol's DescribeGroups request (`rd_kafka_list_groups`) returns every member's client
//! id, so one request gives the members, and [`assignor::place`] the tasks each one runs, active and
//! standby: the same computation the stream threads make when a rebalance ends (see
//! [`assignor`](crate::runtime::assignor) for why the assignment is made this way).
//!
//! - While the group rebalances (`PreparingRebalance`, `CompletingRebalance`) metadata requests fail
//!   with a retryable error.
//! - It costs one request to the coordinator, cached for [`MAX_AGE`]; a query that reaches an
//!   instance which no longer holds the partition gets a retryable error there (the instance checks
//!   its own tasks), never another partition's data.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::{Result, StreamsError};
use crate::query::HostInfo;
use crate::runtime::assignor::{self, Placement, TaskLayout, ThreadMember};

/// How long a group description is reused.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(500);

/// What separates a consumer's own client id from its instance's endpoint.
const ENDPOINT_MARK: char = '@';

/// What separates the parts of a member's identity in its client id.
const MEMBER_MARK: char = '#';

/// The `client.id` of a stream thread's consumer, carrying its instance's process id, the thread's
/// index and the instance's endpoint.
pub(crate) fn client_id(base: &str, process: &str, thread: usize, endpoint: Option<&HostInfo>) -> String {
    let id = format!("{base}{MEMBER_MARK}{process}{MEMBER_MARK}{thread}");
    match endpoint {
        Some(e) => format!("{id}{ENDPOINT_MARK}{}:{}", e.host, e.port),
        None => id,
    }
}

/// The stream thread a member's client id names, if it is one.
fn member_of(client_id: &str) -> Option<ThreadMember> {
    let (rest, endpoint) = match client_id.rsplit_once(ENDPOINT_MARK) {
        Some((rest, e)) => (rest, Some(HostInfo::parse(e).ok()?)),
        None => (client_id, None),
    };
    let mut parts = rest.rsplitn(3, MEMBER_MARK);
    let thread = parts.next()?.parse().ok()?;
    let process = parts.next()?.to_string();
    parts.next()?;
    Some(ThreadMember { process, thread, endpoint })
}

/// The group as the coordinator described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// The group's state is `Stable`: its members are those of the generation in force.
    pub stable: bool,
    /// The group's state, as the coordinator names it.
    pub state: String,
    /// Its members that are stream threads.
    pub members: Vec<ThreadMember>,
}

/// Asks the group coordinator for the group's members.
pub(crate) fn describe<C: ClientContext>(client: &Client<C>, group: &str) -> Result<GroupView> {
    let list = client.fetch_group_list(Some(group), Duration::from_secs(5))?;
    let Some(found) = list.groups().iter().find(|g| g.name() == group) else {
        return Err(StreamsError::IllegalState(format!("the coordinator does not know group `{group}`")));
    };
    let mut members: Vec<ThreadMember> = found.members().iter().filter_map(|m| member_of(m.client_id())).collect();
    members.sort();
    Ok(GroupView { stable: found.state() == "Stable", state: found.state().to_string(), members })
}

/// Where the group's tasks run, as of one description of the group.
#[derive(Debug, Clone)]
pub(crate) struct GroupAssignment {
    /// The group is `Stable`: the placement is in force.
    pub stable: bool,
    pub state: String,
    pub placement: Placement,
    pub layout: Arc<TaskLayout>,
}

impl GroupAssignment {
    /// The member running the task that reads `topic`-`partition`, and those holding its standbys.
    pub fn hosts(&self, topic: &str, partition: i32) -> Option<(&ThreadMember, &[ThreadMember])> {
        let task = self.layout.task_of(topic, partition)?;
        let active = self.placement.active.get(&task)?;
        let standbys = self.placement.standby.get(&task).map(Vec::as_slice).unwrap_or(&[]);
        Some((active, standbys))
    }
}

/// Describes the group for queries, and caches the answer.
pub(crate) struct Discovery {
    client: BaseConsumer,
    group: String,
    layout: Arc<TaskLayout>,
    standbys: usize,
    cached: Mutex<Option<(Instant, Arc<GroupAssignment>)>>,
}

impl Discovery {
    /// A client that only sends metadata requests (it joins no group); `standbys` is
    /// `num.standby.replicas`.
    pub fn new(
        mut config: rdkafka::ClientConfig,
        group: &str,
        layout: Arc<TaskLayout>,
        standbys: usize,
    ) -> Result<Self> {
        config.remove("group.id");
        config.remove("group.instance.id");
        let client: BaseConsumer = config.create()?;
        Ok(Discovery { client, group: group.to_string(), layout, standbys, cached: Mutex::new(None) })
    }

    /// The group's assignment, computed at most [`MAX_AGE`] ago.
    pub fn view(&self) -> Result<Arc<GroupAssignment>> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, view)) = cached.as_ref() {
                if at.elapsed() < MAX_AGE {
                    return Ok(view.clone());
                }
            }
        }
        let group = describe(self.client.client(), &self.group)?;
        let placement = assignor::place(&self.layout, &group.members, self.standbys);
        let view = Arc::new(GroupAssignment {
            stable: group.stable,
            state: group.state,
            placement,
            layout: self.layout.clone(),
        });
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), view.clone()));
        }
        Ok(view)
    }

    /// Forgets the cached description: the next [`view`](Self::view) asks the coordinator.
    pub fn invalidate(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_rides_at_the_end_of_the_client_id() {
        let host = HostInfo::new("10.0.0.7", 7070);
        let id = client_id("app-1f-StreamThread-1-consumer", "1f-2a", 0, Some(&host));
        assert_eq!(id, "app-1f-StreamThread-1-consumer#1f-2a#0@10.0.0.7:7070");
        assert_eq!(member_of(&id), Some(ThreadMember { process: "1f-2a".into(), thread: 0, endpoint: Some(host) }));
        let id = client_id("mine", "p", 3, None);
        assert_eq!(member_of(&id), Some(ThreadMember { process: "p".into(), thread: 3, endpoint: None }));
        assert_eq!(member_of("rdkafka"), None, "a consumer that is not a stream thread");
        assert_eq!(member_of("a#b@not-an-endpoint"), None);
    }
}
