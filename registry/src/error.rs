//! The registry's errors, each with Confluent's HTTP status and error code.

/// What a request can fail with. [`status`](Self::status) and [`error_code`](Self::error_code) are
/// Confluent Schema Registry's, so clients that branch on them (`40401` subject not found, `409`
/// incompatible, …) behave as they do against Confluent's registry.
///
/// ```
/// use kstreams_registry::error::RegistryError;
/// let e = RegistryError::SubjectNotFound("orders-value".into());
/// assert_eq!((e.status(), e.error_code()), (404, 40401));
/// assert_eq!(e.to_string(), "Subject 'orders-value' not found.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No such subject (or only soft-deleted versions, when those are not asked for).
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// No such version in the subject.
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// No schema with this id, or the schema is not registered under the subject.
    #[error("{0}")]
    SchemaNotFound(String),
    /// A soft delete of a subject that is already soft-deleted.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// A permanent delete of a subject that was not soft-deleted first.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// A soft delete of a version that is already soft-deleted.
    #[error("Subject '{0}' Version {1} was soft deleted. Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, u32),
    /// A permanent delete of a version that was not soft-deleted first.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, u32),
    /// `GET /config/{subject}` for a subject without its own compatibility level.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured(String),
    /// The schema breaks the subject's compatibility rule; the message names what broke.
    #[error("{0}")]
    Incompatible(String),
    /// Not a schema this registry can parse.
    #[error("{0}")]
    InvalidSchema(String),
    /// A version that is neither a positive integer nor `latest`.
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// An unknown compatibility level.
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    /// An unknown mode.
    #[error("Invalid mode. Valid values are READWRITE, READONLY and IMPORT; this registry runs READWRITE only")]
    InvalidMode,
    /// A request body that is not the JSON the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// A request body that parses but has the wrong shape.
    #[error("{0}")]
    UnprocessableEntity(String),
    /// A request body over the size limit.
    #[error("Request body is larger than the registry's limit (its --max-body-bytes setting)")]
    PayloadTooLarge,
    /// No route matches.
    #[error("HTTP 404 Not Found")]
    NotFound,
    /// The route exists but not for this method.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// The `_schemas` topic could not be written or read.
    #[error("Error in the backend data store: {0}")]
    Store(String),
    /// The write did not complete (or was not read back) in time.
    #[error("Operation timed out: {0}")]
    Timeout(String),
    /// The registry is still reading the `_schemas` topic after a start.
    #[error("The registry is still loading its schemas from Kafka; retry shortly")]
    Loading,
}

impl RegistryError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        use RegistryError::*;
        match self {
            SubjectNotFound(_)
            | VersionNotFound(_)
            | SchemaNotFound(_)
            | SubjectSoftDeleted(_)
            | SubjectNotSoftDeleted(_)
            | VersionSoftDeleted(..)
            | VersionNotSoftDeleted(..)
            | SubjectCompatibilityNotConfigured(_)
            | NotFound => 404,
            MethodNotAllowed => 405,
            Incompatible(_) => 409,
            PayloadTooLarge => 413,
            InvalidSchema(_) | InvalidVersion(_) | InvalidCompatibilityLevel | InvalidMode | UnprocessableEntity(_) => {
                422
            }
            BadRequest(_) => 400,
            Store(_) | Timeout(_) | Loading => 500,
        }
    }

    /// Confluent's error code: the status, or the status followed by two digits.
    pub fn error_code(&self) -> u32 {
        use RegistryError::*;
        match self {
            SubjectNotFound(_) => 40401,
            VersionNotFound(_) => 40402,
            SchemaNotFound(_) => 40403,
            SubjectSoftDeleted(_) => 40404,
            SubjectNotSoftDeleted(_) => 40405,
            VersionSoftDeleted(..) => 40406,
            VersionNotSoftDeleted(..) => 40407,
            SubjectCompatibilityNotConfigured(_) => 40408,
            Incompatible(_) => 409,
            InvalidSchema(_) => 42201,
            InvalidVersion(_) => 42202,
            InvalidCompatibilityLevel => 42203,
            InvalidMode => 42204,
            Store(_) => 50001,
            Timeout(_) | Loading => 50002,
            NotFound | MethodNotAllowed | BadRequest(_) | UnprocessableEntity(_) | PayloadTooLarge => {
                u32::from(self.status())
            }
        }
    }

    /// The "schema not found" error for an id.
    pub fn schema_id_not_found(id: u32) -> Self {
        RegistryError::SchemaNotFound(format!("Schema {id} not found"))
    }

    /// The "schema not found" error of a lookup under a subject.
    pub fn schema_not_found() -> Self {
        RegistryError::SchemaNotFound("Schema not found".into())
    }
}
