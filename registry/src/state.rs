//! What the registry knows, rebuilt from the `_schemas` topic, and the records a change writes.
//!
//! [`State`] is only ever changed by [`State::apply`] with records read back from the topic, so
//! every instance that reads the same topic holds the same state. A change is planned against the
//! current state (`plan_*`): the plan is the records to write and the answer to give once they are
//! read back. Planning is pure, so every rule (versions, ids, deletes, compatibility) is tested here
//! without a broker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::compat::{self, CompatibilityLevel, Previous};
use crate::error::RegistryError;
use crate::records::{SchemaValue, StoreRecord};
use crate::schema::ParsedSchema;

/// A subject's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    /// The schema id.
    pub id: u32,
    /// Soft-deleted.
    pub deleted: bool,
}

/// A version as a request names it: a number or `latest`.
///
/// ```
/// use kstreams_registry::state::VersionRef;
/// assert_eq!("latest".parse::<VersionRef>().unwrap(), VersionRef::Latest);
/// assert_eq!("-1".parse::<VersionRef>().unwrap(), VersionRef::Latest);
/// assert_eq!("3".parse::<VersionRef>().unwrap(), VersionRef::Number(3));
/// assert!("0".parse::<VersionRef>().is_err() && "x".parse::<VersionRef>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest live version.
    Latest,
    /// A version number.
    Number(u32),
}

impl std::str::FromStr for VersionRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionRef::Latest);
        }
        match s.parse::<u32>() {
            Ok(v) if (1..=i32::MAX as u32).contains(&v) => Ok(VersionRef::Number(v)),
            _ => Err(RegistryError::InvalidVersion(s.to_string())),
        }
    }
}

/// A version found by a query.
#[derive(Debug, Clone)]
pub struct Found {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: u32,
    /// The schema id.
    pub id: u32,
    /// The schema.
    pub schema: ParsedSchema,
}

/// Records to write for a change, and the change's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<T> {
    /// What to write to the topic (empty when nothing changes).
    pub records: Vec<StoreRecord>,
    /// The answer, once the records are read back.
    pub answer: T,
}

/// The registry's state.
#[derive(Debug, Default)]
pub struct State {
    schemas: HashMap<u32, ParsedSchema>,
    id_by_text: HashMap<Arc<str>, u32>,
    subjects: BTreeMap<String, BTreeMap<u32, VersionEntry>>,
    global_level: Option<CompatibilityLevel>,
    subject_levels: HashMap<String, CompatibilityLevel>,
    /// The next id to hand out; ids start at 1.
    next_id: u32,
    /// The URL of the instance that last announced itself as the writer.
    leader: Option<String>,
}

impl State {
    /// An empty registry.
    pub fn new() -> Self {
        State { next_id: 1, ..State::default() }
    }

    /// Applies a record read from the topic.
    pub fn apply(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::Schema { subject, version, value: Some(value) } => {
                if !self.schemas.contains_key(&value.id) {
                    match ParsedSchema::parse(&value.schema) {
                        Ok(parsed) => {
                            self.id_by_text.entry(parsed.shared_text()).or_insert(value.id);
                            self.schemas.insert(value.id, parsed);
                        }
                        Err(e) => {
                            tracing::error!(%subject, version, id = value.id, error = %e, "skipping an unparsable schema in the topic");
                            return;
                        }
                    }
                }
                self.next_id = self.next_id.max(value.id.saturating_add(1));
                self.subjects
                    .entry(subject)
                    .or_default()
                    .insert(version, VersionEntry { id: value.id, deleted: value.deleted });
            }
            StoreRecord::Schema { subject, version, value: None } => {
                let Some(versions) = self.subjects.get_mut(&subject) else { return };
                let Some(removed) = versions.remove(&version) else { return };
                if versions.is_empty() {
                    self.subjects.remove(&subject);
                }
                self.forget_if_unused(removed.id);
            }
            StoreRecord::Config { subject: None, level } => self.global_level = level,
            StoreRecord::Config { subject: Some(subject), level: Some(level) } => {
                self.subject_levels.insert(subject, level);
            }
            StoreRecord::Config { subject: Some(subject), level: None } => {
                self.subject_levels.remove(&subject);
            }
            StoreRecord::NextId(id) => self.next_id = self.next_id.max(id),
            StoreRecord::Leader(url) => self.leader = Some(url),
            StoreRecord::Ignored => {}
        }
    }

    /// Drops a schema no version refers to any more (after permanent deletes).
    fn forget_if_unused(&mut self, id: u32) {
        let used = self.subjects.values().any(|versions| versions.values().any(|v| v.id == id));
        if !used {
            if let Some(schema) = self.schemas.remove(&id) {
                if self.id_by_text.get(schema.text()) == Some(&id) {
                    self.id_by_text.remove(schema.text());
                }
            }
        }
    }

    // --- queries -----------------------------------------------------------------------------

    /// The URL of the instance that writes (the last to announce itself).
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// How many schemas (distinct ids) are stored.
    pub fn schema_count(&self) -> usize {
        self.schemas.len()
    }

    /// The subjects with a live version (or any version, with `deleted`).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, versions)| deleted || versions.values().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// A subject's version numbers, oldest first.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<u32>, RegistryError> {
        let versions: Vec<u32> =
            self.subject(subject)?.iter().filter(|(_, v)| deleted || !v.deleted).map(|(n, _)| *n).collect();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// One version of a subject; soft-deleted ones only with `deleted`.
    pub fn version(&self, subject: &str, version: VersionRef, deleted: bool) -> Result<Found, RegistryError> {
        let versions = self.subject(subject)?;
        let (number, entry) = match version {
            VersionRef::Latest => versions
                .iter()
                .rev()
                .find(|(_, v)| deleted || !v.deleted)
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?,
            VersionRef::Number(n) => versions
                .get_key_value(&n)
                .filter(|(_, v)| deleted || !v.deleted)
                .ok_or_else(|| RegistryError::VersionNotFound(n.to_string()))?,
        };
        self.found(subject, *number, entry.id)
    }

    /// The schema with this id.
    pub fn schema_by_id(&self, id: u32) -> Result<&ParsedSchema, RegistryError> {
        self.schemas.get(&id).ok_or_else(|| RegistryError::schema_id_not_found(id))
    }

    /// The (subject, version) pairs that use schema `id`.
    pub fn versions_of_id(&self, id: u32, deleted: bool) -> Result<Vec<(String, u32)>, RegistryError> {
        self.schema_by_id(id)?;
        Ok(self
            .subjects
            .iter()
            .flat_map(|(s, versions)| {
                versions.iter().filter(|(_, v)| v.id == id && (deleted || !v.deleted)).map(|(n, _)| (s.clone(), *n))
            })
            .collect())
    }

    /// The version of `subject` that holds `schema` (`POST /subjects/{subject}`).
    pub fn lookup(&self, subject: &str, schema: &ParsedSchema, deleted: bool) -> Result<Found, RegistryError> {
        let versions = self.subject(subject)?;
        if !deleted && versions.values().all(|v| v.deleted) {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let id = self.id_by_text.get(schema.text()).ok_or_else(RegistryError::schema_not_found)?;
        let (number, _) = versions
            .iter()
            .rev()
            .find(|(_, v)| v.id == *id && (deleted || !v.deleted))
            .ok_or_else(RegistryError::schema_not_found)?;
        self.found(subject, *number, *id)
    }

    /// The compatibility level that applies to `subject` (its own, else the global one).
    pub fn level(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject.and_then(|s| self.subject_levels.get(s).copied()).or(self.global_level).unwrap_or_default()
    }

    /// A subject's own level, if it has one.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subject_levels.get(subject).copied()
    }

    /// Whether `schema` may be registered in `subject` against `version` (`latest` means the
    /// subject's rule: the latest version, or every version for a transitive level). Returns the
    /// problems found, empty if compatible.
    pub fn compatibility(
        &self,
        subject: &str,
        version: VersionRef,
        schema: &ParsedSchema,
    ) -> Result<Vec<String>, RegistryError> {
        let level = self.level(Some(subject));
        match version {
            VersionRef::Latest => {
                let Some(versions) = self.subjects.get(subject) else { return Ok(Vec::new()) };
                let previous = self.live_previous(versions);
                Ok(compat::check(schema.schema(), &previous, level))
            }
            VersionRef::Number(n) => {
                let found = self.version(subject, VersionRef::Number(n), false)?;
                let previous = [Previous { version: n, schema: found.schema.schema() }];
                Ok(compat::check(schema.schema(), &previous, level))
            }
        }
    }

    // --- plans -------------------------------------------------------------------------------

    /// Registers `schema` under `subject`: the existing id if the subject has it already (live),
    /// otherwise a new version with the schema's id (the same id when another subject holds the
    /// same schema), after the compatibility check.
    pub fn plan_register(&self, subject: &str, schema: &ParsedSchema) -> Result<Plan<u32>, RegistryError> {
        let existing_id = self.id_by_text.get(schema.text()).copied();
        let versions = self.subjects.get(subject);
        if let (Some(id), Some(versions)) = (existing_id, versions) {
            if versions.values().any(|v| v.id == id && !v.deleted) {
                return Ok(Plan { records: Vec::new(), answer: id });
            }
        }
        if let Some(versions) = versions {
            let level = self.level(Some(subject));
            let previous = self.live_previous(versions);
            let problems = compat::check(schema.schema(), &previous, level);
            if !problems.is_empty() {
                return Err(RegistryError::Incompatible(format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\" \
                     (compatibility {level}): {}",
                    problems.join("; ")
                )));
            }
        }
        let version = versions.and_then(|v| v.keys().next_back()).map_or(1, |last| last + 1);
        let (id, mut records) = match existing_id {
            Some(id) => (id, Vec::new()),
            None => (self.next_id, vec![StoreRecord::NextId(self.next_id + 1)]),
        };
        let value = SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema: schema.text().to_string(),
            deleted: false,
            schema_type: None,
        };
        records.insert(0, StoreRecord::Schema { subject: subject.to_string(), version, value: Some(value) });
        Ok(Plan { records, answer: id })
    }

    /// Deletes a subject: soft (every live version marked deleted) or, once soft-deleted,
    /// permanently (every version and the subject's level removed). Answers the versions deleted.
    pub fn plan_delete_subject(&self, subject: &str, permanent: bool) -> Result<Plan<Vec<u32>>, RegistryError> {
        let versions = self.subject(subject)?;
        let live: Vec<u32> = versions.iter().filter(|(_, v)| !v.deleted).map(|(n, _)| *n).collect();
        if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
            }
            let mut records: Vec<StoreRecord> = versions
                .keys()
                .map(|n| StoreRecord::Schema { subject: subject.to_string(), version: *n, value: None })
                .collect();
            if self.subject_levels.contains_key(subject) {
                records.push(StoreRecord::Config { subject: Some(subject.to_string()), level: None });
            }
            return Ok(Plan { records, answer: versions.keys().copied().collect() });
        }
        if live.is_empty() {
            return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
        }
        let records = live.iter().map(|n| self.soft_deleted(subject, *n, versions[n].id)).collect();
        Ok(Plan { records, answer: live })
    }

    /// Deletes one version: soft, or (once soft-deleted) permanently. Answers the version number.
    pub fn plan_delete_version(
        &self,
        subject: &str,
        version: VersionRef,
        permanent: bool,
    ) -> Result<Plan<u32>, RegistryError> {
        let versions = self.subject(subject)?;
        let number = match version {
            VersionRef::Number(n) => n,
            VersionRef::Latest if permanent => {
                *versions.keys().next_back().ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?
            }
            VersionRef::Latest => *versions
                .iter()
                .rev()
                .find(|(_, v)| !v.deleted)
                .map(|(n, _)| n)
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?,
        };
        let entry = versions.get(&number).ok_or_else(|| RegistryError::VersionNotFound(number.to_string()))?;
        let record = match (permanent, entry.deleted) {
            (false, true) => return Err(RegistryError::VersionSoftDeleted(subject.to_string(), number)),
            (true, false) => return Err(RegistryError::VersionNotSoftDeleted(subject.to_string(), number)),
            (false, false) => self.soft_deleted(subject, number, entry.id),
            (true, true) => StoreRecord::Schema { subject: subject.to_string(), version: number, value: None },
        };
        Ok(Plan { records: vec![record], answer: number })
    }

    /// Sets the global level (`subject: None`) or a subject's.
    pub fn plan_set_level(&self, subject: Option<&str>, level: CompatibilityLevel) -> Plan<CompatibilityLevel> {
        let unchanged = match subject {
            Some(s) => self.subject_levels.get(s) == Some(&level),
            None => self.global_level == Some(level),
        };
        let records = if unchanged {
            Vec::new()
        } else {
            vec![StoreRecord::Config { subject: subject.map(str::to_string), level: Some(level) }]
        };
        Plan { records, answer: level }
    }

    /// Removes a subject's own level; answers the level it had.
    pub fn plan_delete_level(&self, subject: &str) -> Result<Plan<CompatibilityLevel>, RegistryError> {
        match self.subject_levels.get(subject) {
            Some(level) => Ok(Plan {
                records: vec![StoreRecord::Config { subject: Some(subject.to_string()), level: None }],
                answer: *level,
            }),
            None if self.subjects.contains_key(subject) => {
                Err(RegistryError::SubjectCompatibilityNotConfigured(subject.to_string()))
            }
            None => Err(RegistryError::SubjectNotFound(subject.to_string())),
        }
    }

    // --- helpers -----------------------------------------------------------------------------

    fn subject(&self, subject: &str) -> Result<&BTreeMap<u32, VersionEntry>, RegistryError> {
        self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))
    }

    fn found(&self, subject: &str, version: u32, id: u32) -> Result<Found, RegistryError> {
        let schema = self.schema_by_id(id)?.clone();
        Ok(Found { subject: subject.to_string(), version, id, schema })
    }

    fn live_previous<'a>(&'a self, versions: &BTreeMap<u32, VersionEntry>) -> Vec<Previous<'a>> {
        versions
            .iter()
            .filter(|(_, v)| !v.deleted)
            .filter_map(|(n, v)| self.schemas.get(&v.id).map(|s| Previous { version: *n, schema: s.schema() }))
            .collect()
    }

    fn soft_deleted(&self, subject: &str, version: u32, id: u32) -> StoreRecord {
        let schema = self.schemas.get(&id).map(|s| s.text().to_string()).unwrap_or_default();
        StoreRecord::Schema {
            subject: subject.to_string(),
            version,
            value: Some(SchemaValue {
                subject: subject.to_string(),
                version,
                id,
                schema,
                deleted: true,
                schema_type: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> ParsedSchema {
        ParsedSchema::parse(&format!(r#"{{"type":"record","name":"Sale","fields":[{fields}]}}"#)).unwrap()
    }

    fn v1() -> ParsedSchema {
        schema(r#"{"name":"sku","type":"string"}"#)
    }
    fn v2() -> ParsedSchema {
        schema(r#"{"name":"sku","type":"string"},{"name":"promo","type":["null","string"],"default":null}"#)
    }

    /// Plans and applies, as the store does once the records are read back.
    fn run<T>(
        state: &mut State,
        plan: impl FnOnce(&State) -> Result<Plan<T>, RegistryError>,
    ) -> Result<T, RegistryError> {
        let plan = plan(state)?;
        for record in plan.records {
            state.apply(record);
        }
        Ok(plan.answer)
    }

    #[test]
    fn registering_assigns_versions_and_global_ids() {
        let mut s = State::new();
        assert_eq!(run(&mut s, |s| s.plan_register("a", &v1())), Ok(1));
        assert_eq!(run(&mut s, |s| s.plan_register("a", &v1())), Ok(1), "identical schema: same id, no new version");
        assert_eq!(s.versions("a", false).unwrap(), vec![1]);
        assert_eq!(run(&mut s, |s| s.plan_register("a", &v2())), Ok(2));
        assert_eq!(s.versions("a", false).unwrap(), vec![1, 2]);
        assert_eq!(run(&mut s, |s| s.plan_register("b", &v2())), Ok(2), "same schema in another subject: same id");
        assert_eq!(s.version("b", VersionRef::Latest, false).unwrap().version, 1);
        assert_eq!(s.subjects(false), vec!["a", "b"]);
        assert_eq!(s.versions_of_id(2, false).unwrap(), vec![("a".into(), 2), ("b".into(), 1)]);
        assert_eq!(s.lookup("a", &v1(), false).unwrap().version, 1);
        assert!(matches!(s.lookup("b", &v1(), false), Err(RegistryError::SchemaNotFound(_))));
        assert!(matches!(s.lookup("c", &v1(), false), Err(RegistryError::SubjectNotFound(_))));
    }

    #[test]
    fn incompatible_schemas_are_refused_with_the_field_named() {
        let mut s = State::new();
        run(&mut s, |s| s.plan_register("a", &v1())).unwrap();
        let breaking = schema(r#"{"name":"sku","type":"string"},{"name":"store","type":"string"}"#);
        let err = s.plan_register("a", &breaking).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("'store'") && err.to_string().contains("BACKWARD"), "{err}");
        // With NONE for the subject it goes in.
        run(&mut s, |s| Ok(s.plan_set_level(Some("a"), CompatibilityLevel::None))).unwrap();
        assert_eq!(run(&mut s, |s| s.plan_register("a", &breaking)), Ok(2));
        assert_eq!(s.level(Some("a")), CompatibilityLevel::None);
        assert_eq!(s.level(Some("other")), CompatibilityLevel::Backward);
    }

    #[test]
    fn soft_then_permanent_deletes_follow_confluents_rules() {
        let mut s = State::new();
        run(&mut s, |s| s.plan_register("a", &v1())).unwrap();
        run(&mut s, |s| s.plan_register("a", &v2())).unwrap();
        assert_eq!(
            s.plan_delete_version("a", VersionRef::Number(1), true).unwrap_err(),
            RegistryError::VersionNotSoftDeleted("a".into(), 1)
        );
        assert_eq!(run(&mut s, |s| s.plan_delete_version("a", VersionRef::Number(1), false)), Ok(1));
        assert_eq!(
            s.plan_delete_version("a", VersionRef::Number(1), false).unwrap_err(),
            RegistryError::VersionSoftDeleted("a".into(), 1)
        );
        assert_eq!(s.versions("a", false).unwrap(), vec![2]);
        assert_eq!(s.versions("a", true).unwrap(), vec![1, 2]);
        assert!(matches!(s.version("a", VersionRef::Number(1), false), Err(RegistryError::VersionNotFound(_))));
        assert_eq!(s.version("a", VersionRef::Number(1), true).unwrap().id, 1);
        // The schema id keeps resolving after a soft delete.
        assert!(s.schema_by_id(1).is_ok());

        assert_eq!(s.plan_delete_subject("a", true).unwrap_err(), RegistryError::SubjectNotSoftDeleted("a".into()));
        assert_eq!(run(&mut s, |s| s.plan_delete_subject("a", false)), Ok(vec![2]));
        assert_eq!(s.plan_delete_subject("a", false).unwrap_err(), RegistryError::SubjectSoftDeleted("a".into()));
        assert!(s.subjects(false).is_empty());
        assert_eq!(s.subjects(true), vec!["a"]);
        // Re-registering after a soft delete makes a new version, with the same id.
        assert_eq!(run(&mut s, |s| s.plan_register("a", &v1())), Ok(1));
        assert_eq!(s.versions("a", true).unwrap(), vec![1, 2, 3]);
        run(&mut s, |s| s.plan_delete_subject("a", false)).unwrap();
        assert_eq!(run(&mut s, |s| s.plan_delete_subject("a", true)), Ok(vec![1, 2, 3]));
        assert!(matches!(s.versions("a", true), Err(RegistryError::SubjectNotFound(_))));
        assert!(matches!(s.schema_by_id(1), Err(RegistryError::SchemaNotFound(_))));
        // Ids are never handed out twice, even after the schemas holding them are gone.
        let v3 = schema(r#"{"name":"sku","type":"string"},{"name":"n","type":"int","default":0}"#);
        assert_eq!(run(&mut s, |s| s.plan_register("a", &v3)), Ok(3));
    }

    #[test]
    fn replaying_the_records_rebuilds_the_same_state() {
        let mut s = State::new();
        let mut log = Vec::new();
        let mut step = |s: &mut State, plan: &dyn Fn(&State) -> Result<Plan<u32>, RegistryError>| {
            let plan = plan(s).unwrap();
            log.extend(plan.records.iter().cloned());
            run(s, |_| Ok(plan)).unwrap()
        };
        step(&mut s, &|s| s.plan_register("a", &v1()));
        step(&mut s, &|s| s.plan_register("a", &v2()));
        step(&mut s, &|s| s.plan_register("b", &v1()));
        step(&mut s, &|s| s.plan_delete_version("a", VersionRef::Latest, false));
        let mut replayed = State::new();
        for record in log {
            let (key, value) = record.encode();
            replayed.apply(StoreRecord::decode(&key, value.as_deref()).unwrap());
        }
        assert_eq!(replayed.subjects(true), s.subjects(true));
        assert_eq!(replayed.versions("a", false).unwrap(), vec![1]);
        assert_eq!(replayed.schema_by_id(2).unwrap().text(), v2().text());
        assert_eq!(replayed.next_id, s.next_id);
    }

    #[test]
    fn compatibility_checks_follow_the_subjects_level() {
        let mut s = State::new();
        let breaking = schema(r#"{"name":"sku","type":"long"}"#);
        assert!(s.compatibility("a", VersionRef::Latest, &breaking).unwrap().is_empty(), "no versions yet");
        run(&mut s, |s| s.plan_register("a", &v1())).unwrap();
        assert_eq!(s.compatibility("a", VersionRef::Latest, &breaking).unwrap().len(), 1);
        assert!(s.compatibility("a", VersionRef::Latest, &v2()).unwrap().is_empty());
        assert!(matches!(s.compatibility("a", VersionRef::Number(7), &v2()), Err(RegistryError::VersionNotFound(_))));
    }

    #[test]
    fn levels_are_set_and_removed() {
        let mut s = State::new();
        assert!(run(&mut s, |s| Ok(s.plan_set_level(None, CompatibilityLevel::Full))).is_ok());
        assert_eq!(s.level(Some("x")), CompatibilityLevel::Full);
        assert!(s.plan_set_level(None, CompatibilityLevel::Full).records.is_empty(), "no change, no record");
        assert_eq!(s.plan_delete_level("x").unwrap_err(), RegistryError::SubjectNotFound("x".into()));
        run(&mut s, |s| Ok(s.plan_set_level(Some("x"), CompatibilityLevel::None))).unwrap();
        assert_eq!(run(&mut s, |s| s.plan_delete_level("x")), Ok(CompatibilityLevel::None));
        assert_eq!(s.subject_level("x"), None);
    }
}
