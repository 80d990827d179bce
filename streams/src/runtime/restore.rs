//! Restoring a task's stores from their changelogs before it processes.

use kstreams_state::StoreContext;

use crate::store::StoreHandle;

use crate::error::{Result, StreamsError};
use crate::runtime::config::ValidConfig;

/// Restores `handle` from `topic`'s `partition` (from its checkpoint to the end); returns the number
/// of changelog records applied.
pub(crate) fn restore_store(
    _config: &ValidConfig,
    _ctx: &StoreContext,
    _handle: &mut StoreHandle,
    topic: &str,
    partition: i32,
) -> Result<u64> {
    Err(StreamsError::IllegalState(format!("restoring {topic}-{partition}: not wired to kstreams-state yet")))
}
