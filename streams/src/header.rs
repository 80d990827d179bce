//! Record headers.

/// One record header: a name and an optional value, as in Kafka.
///
/// ```
/// use kstreams_streams::header::Header;
/// let h = Header { key: "trace-id".into(), value: Some(b"42".to_vec()) };
/// assert_eq!(h.value.as_deref(), Some(&b"42"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub key: String,
    /// The header value; Kafka allows a null value.
    pub value: Option<Vec<u8>>,
}

/// The headers of a record, in order; a name may repeat.
///
/// ```
/// use kstreams_streams::header::Headers;
/// let mut headers = Headers::new();
/// headers.add("source", Some(b"pos".to_vec()));
/// assert_eq!(headers.last("source"), Some(&b"pos"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }
    /// Appends a header.
    pub fn add(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) -> &mut Self {
        self.0.push(Header { key: key.into(), value });
        self
    }
    /// Removes every header named `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.0.retain(|h| h.key != key);
        self
    }
    /// The value of the last header named `key` (a header with a null value gives `None`).
    pub fn last(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().rev().find(|h| h.key == key).and_then(|h| h.value.as_deref())
    }
    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Headers(iter.into_iter().collect())
    }
}
