//! What a table update carries downstream: the new value and the old one.

/// An update of a table row: `new` is `None` for a delete, `old` is `None` for an insert.
///
/// ```
/// use kstreams_streams::dsl::Change;
/// let c = Change { new: Some(2), old: Some(1) };
/// assert_eq!(c.map(|v| v * 10), Change { new: Some(20), old: Some(10) });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<V> {
    /// The value after the update.
    pub new: Option<V>,
    /// The value before the update.
    pub old: Option<V>,
}

impl<V> Change<V> {
    /// Applies `f` to both sides.
    pub fn map<W>(self, mut f: impl FnMut(V) -> W) -> Change<W> {
        Change { new: self.new.map(&mut f), old: self.old.map(f) }
    }
}
