//! Which instance hosts which partition: read from the consumer group itself.
//!
//! # How instances learn the assignment (the decision)
//!
//! Kafka Streams puts each instance's `application.server` and the whole task assignment into the
//! user data of its group protocol, through its own partition assignor. librdkafka has no custom
//! assignor, so kstreams asks the group coordinator instead, with the classic protocol's
//! DescribeGroups request (`rd_kafka_list_groups`): it returns every member's client id and the
//! partitions the group leader assigned to it. Each stream thread's consumer carries its instance's
//! endpoint at the end of its `client.id` (`…@host:port`), so the answer maps partitions to endpoints
//! directly, with no extra topic to write, keep compact and read.
//!
//! - The broker's answer is the assignment in force: it cannot disagree with what the members hold
//!   once the group is `Stable`. While the group rebalances (`PreparingRebalance`,
//!   `CompletingRebalance`) metadata requests fail with a retryable error.
//! - It costs one request to the coordinator, cached for [`MAX_AGE`]; a query that reaches an
//!   instance which no longer holds the partition gets a retryable error there (the instance checks
//!   its own tasks), never another partition's data.
//! - Not chosen: the streams group protocol (KIP-1071), which would also give standby and warm-up
//!   placement, needs a second Kafka client beside librdkafka for the group (no well-kept Rust crate
//!   speaks it yet); a compacted topic of endpoints would duplicate what the coordinator knows and
//!   lag behind it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::{Result, StreamsError};
use crate::query::HostInfo;

/// How long a group description is reused.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(500);

/// What separates a consumer's own client id from its instance's endpoint.
const ENDPOINT_MARK: char = '@';

/// The `client.id` of a stream thread's consumer, carrying its instance's endpoint.
pub(crate) fn client_id(base: &str, endpoint: Option<&HostInfo>) -> String {
    match endpoint {
        Some(e) => format!("{base}{ENDPOINT_MARK}{}:{}", e.host, e.port),
        None => base.to_string(),
    }
}

/// The endpoint at the end of a member's client id, if it carries one.
fn endpoint_of(client_id: &str) -> Option<HostInfo> {
    let (_, endpoint) = client_id.rsplit_once(ENDPOINT_MARK)?;
    HostInfo::parse(endpoint).ok()
}

/// One member of the group, as the coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Its instance's `application.server`, when set.
    pub endpoint: Option<HostInfo>,
    /// The partitions assigned to it.
    pub partitions: Vec<(String, i32)>,
}

/// The group as the coordinator described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// The group's state is `Stable`: the assignment is in force.
    pub stable: bool,
    /// The group's state, as the coordinator names it.
    pub state: String,
    pub members: Vec<Member>,
}

impl GroupView {
    /// The endpoint of the member that owns `topic`-`partition`.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<&Member> {
        self.members.iter().find(|m| m.partitions.iter().any(|(t, p)| t == topic && *p == partition))
    }
}

/// Asks the group coordinator for the group's members and assignment.
pub(crate) struct Discovery {
    client: BaseConsumer,
    group: String,
    cached: Mutex<Option<(Instant, Arc<GroupView>)>>,
}

impl Discovery {
    /// A client that only sends metadata requests (it joins no group).
    pub fn new(mut config: rdkafka::ClientConfig, group: &str) -> Result<Self> {
        config.remove("group.id");
        config.remove("group.instance.id");
        let client: BaseConsumer = config.create()?;
        Ok(Discovery { client, group: group.to_string(), cached: Mutex::new(None) })
    }

    /// The group, described at most [`MAX_AGE`] ago.
    pub fn view(&self) -> Result<Arc<GroupView>> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, view)) = cached.as_ref() {
                if at.elapsed() < MAX_AGE {
                    return Ok(view.clone());
                }
            }
        }
        let list = self.client.client().fetch_group_list(Some(&self.group), Duration::from_secs(5))?;
        let Some(group) = list.groups().iter().find(|g| g.name() == self.group) else {
            return Err(StreamsError::IllegalState(format!("the coordinator does not know group `{}`", self.group)));
        };
        let mut members = Vec::new();
        for m in group.members() {
            let partitions = match m.assignment() {
                Some(bytes) if !bytes.is_empty() => parse_assignment(bytes).map_err(|e| {
                    StreamsError::IllegalState(format!("cannot read the assignment of group member {}: {e}", m.id()))
                })?,
                _ => Vec::new(),
            };
            members.push(Member { endpoint: endpoint_of(m.client_id()), partitions });
        }
        let view = Arc::new(GroupView { stable: group.state() == "Stable", state: group.state().to_string(), members });
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

/// Reads a classic consumer protocol assignment (any version): `int16 version`, an array of
/// `(string topic, array of int32 partition)`, then user data, which is ignored.
fn parse_assignment(bytes: &[u8]) -> std::result::Result<Vec<(String, i32)>, String> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = r.i16()?;
        let topic = String::from_utf8(r.take(usize::try_from(len).map_err(|_| "negative topic length")?)?.to_vec())
            .map_err(|_| "topic name is not UTF-8")?;
        let partitions = r.i32()?;
        for _ in 0..partitions.max(0) {
            out.push((topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated assignment")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn i16(&mut self) -> std::result::Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        match user_data {
            Some(d) => {
                b.extend((d.len() as i32).to_be_bytes());
                b.extend(d);
            }
            None => b.extend((-1i32).to_be_bytes()),
        }
        b
    }

    #[test]
    fn reads_assignments_of_every_version() {
        let bytes = assignment(0, &[("in", &[0, 2]), ("app-rep", &[1])], None);
        assert_eq!(
            parse_assignment(&bytes).unwrap(),
            vec![("in".to_string(), 0), ("in".to_string(), 2), ("app-rep".to_string(), 1)]
        );
        let bytes = assignment(3, &[("in", &[5])], Some(b"xyz"));
        assert_eq!(parse_assignment(&bytes).unwrap(), vec![("in".to_string(), 5)]);
        assert!(parse_assignment(&bytes[..7]).is_err(), "a truncated assignment is an error, not a panic");
    }

    #[test]
    fn endpoints_ride_at_the_end_of_the_client_id() {
        let host = HostInfo::new("10.0.0.7", 7070);
        let id = client_id("app-1f-StreamThread-1", Some(&host));
        assert_eq!(id, "app-1f-StreamThread-1@10.0.0.7:7070");
        assert_eq!(endpoint_of(&id), Some(host));
        assert_eq!(endpoint_of("app-1f-StreamThread-1"), None);
        assert_eq!(client_id("plain", None), "plain");
    }
}
