//! Compatibility levels and the check a new schema must pass against a subject's earlier versions.
//!
//! The rules are Avro's schema resolution rules as apache-avro implements them
//! ([`SchemaCompatibility::can_read`]): a reader schema can read data written with a writer schema
//! when every reader field is either in the writer (by name or by one of the reader field's aliases)
//! with a promotable type, or has a default. The levels decide who reads whom:
//!
//! | level | the new schema must… |
//! |---|---|
//! | `BACKWARD` (default) | read data written with the latest version |
//! | `FORWARD` | be readable by the latest version |
//! | `FULL` | both |
//! | `*_TRANSITIVE` | the same, against every earlier version, not only the latest |
//! | `NONE` | nothing |
//!
//! A partial match (an enum that lacks some of the writer's symbols, a union that lacks some of its
//! branches) counts as incompatible, as in Confluent's registry: some records would fail to decode.

use std::fmt;
use std::str::FromStr;

use apache_avro::error::CompatibilityError;
use apache_avro::schema::{RecordSchema, Schema};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use crate::error::RegistryError;

/// A subject's (or the registry's) compatibility level.
///
/// ```
/// use kstreams_registry::compat::CompatibilityLevel;
/// let level: CompatibilityLevel = "full_transitive".parse().unwrap();
/// assert_eq!(level, CompatibilityLevel::FullTransitive);
/// assert_eq!(level.to_string(), "FULL_TRANSITIVE");
/// assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data of the latest version.
    #[default]
    Backward,
    /// The new schema reads data of every version.
    BackwardTransitive,
    /// The latest version reads data of the new schema.
    Forward,
    /// Every version reads data of the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in the order Confluent lists them.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// Confluent's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the check runs against every earlier version rather than the latest only.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(RegistryError::InvalidCompatibilityLevel)
    }
}

/// An earlier version a new schema is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    /// Its version number in the subject.
    pub version: u32,
    /// Its schema.
    pub schema: &'a Schema,
}

/// Checks `new` against `previous` (a subject's live versions, oldest first) under `level`.
///
/// Returns one message per problem, each naming the version and the field that broke it; empty when
/// the schema is compatible. Non-transitive levels look at the last of `previous` only.
///
/// ```
/// use apache_avro::Schema;
/// use kstreams_registry::compat::{check, CompatibilityLevel, Previous};
/// let v1 = Schema::parse_str(r#"{"type":"record","name":"Sale","fields":[{"name":"qty","type":"int"}]}"#).unwrap();
/// let v2 = Schema::parse_str(r#"{"type":"record","name":"Sale","fields":[{"name":"qty","type":"int"},{"name":"store","type":"string"}]}"#).unwrap();
/// let problems = check(&v2, &[Previous { version: 1, schema: &v1 }], CompatibilityLevel::Backward);
/// assert_eq!(problems.len(), 1);
/// assert!(problems[0].contains("'store'"), "{}", problems[0]);
/// assert!(check(&v2, &[Previous { version: 1, schema: &v1 }], CompatibilityLevel::Forward).is_empty());
/// ```
pub fn check(new: &Schema, previous: &[Previous<'_>], level: CompatibilityLevel) -> Vec<String> {
    let against: &[Previous<'_>] = if level.is_transitive() {
        previous
    } else {
        match previous.last() {
            Some(last) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut problems = Vec::new();
    for old in against {
        if level.backward() {
            if let Err(problem) = can_read(old.schema, new, Direction::NewReadsOld) {
                problems.push(format!("version {}: {problem}", old.version));
            }
        }
        if level.forward() {
            if let Err(problem) = can_read(new, old.schema, Direction::OldReadsNew) {
                problems.push(format!("version {}: {problem}", old.version));
            }
        }
    }
    problems
}

/// Which of the two schemas is the reader.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Backward: the new schema reads old data.
    NewReadsOld,
    /// Forward: the old schema reads new data.
    OldReadsNew,
}

impl Direction {
    fn reader(self) -> &'static str {
        match self {
            Direction::NewReadsOld => "new",
            Direction::OldReadsNew => "old",
        }
    }
    fn writer(self) -> &'static str {
        match self {
            Direction::NewReadsOld => "old",
            Direction::OldReadsNew => "new",
        }
    }
}

/// Whether `reader` reads everything `writer` writes; the error says why not, in words.
fn can_read(writer: &Schema, reader: &Schema, direction: Direction) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(format!(
            "the {} schema reads only some of the {} schema's data: an enum lacks some of the writer's symbols \
             (and has no default), or a union lacks some of the writer's branches",
            direction.reader(),
            direction.writer()
        )),
        Err(error) => Err(explain(&error, writer, reader, direction, "")),
    }
}

/// Turns apache-avro's error chain into a sentence naming the field path and both types.
fn explain(error: &CompatibilityError, writer: &Schema, reader: &Schema, direction: Direction, path: &str) -> String {
    match error {
        CompatibilityError::FieldTypeMismatch(field, inner) => {
            let path = format!("{path}/{field}");
            match (field_schema(writer, reader, field), field_schema(reader, reader, field)) {
                (Some(w), Some(r)) => explain(inner, w, r, direction, &path),
                _ => {
                    format!("field '{}' has a type the {} schema cannot read: {inner}", trim(&path), direction.reader())
                }
            }
        }
        CompatibilityError::MissingDefaultValue(field) => {
            let field_path = trim(&format!("{path}/{field}"));
            match direction {
                Direction::NewReadsOld => format!(
                    "READER_FIELD_MISSING_DEFAULT_VALUE: the new schema adds field '{field_path}' without a default, \
                     so records written with the old schema cannot be read; give it a default"
                ),
                Direction::OldReadsNew => format!(
                    "READER_FIELD_MISSING_DEFAULT_VALUE: the new schema drops (or renames) field '{field_path}', \
                     which has no default in the old schema, so readers on the old schema cannot read new records; \
                     keep the field, or add a default to it first"
                ),
            }
        }
        CompatibilityError::NameMismatch { writer_name, reader_name } => format!(
            "NAME_MISMATCH at {}: the {} schema names the type '{writer_name}', the {} schema '{reader_name}'; \
             keep the name or add the old one as an alias",
            display_path(path),
            direction.writer(),
            direction.reader()
        ),
        CompatibilityError::WrongType { .. } | CompatibilityError::TypeExpected { .. } => format!(
            "TYPE_MISMATCH at {}: the {} schema's type {} cannot be read as the {} schema's type {}",
            display_path(path),
            direction.writer(),
            type_name(writer),
            direction.reader(),
            type_name(reader)
        ),
        CompatibilityError::MissingSymbols => format!(
            "MISSING_ENUM_SYMBOLS at {}: the {} schema's enum has none of the {} schema's symbols",
            display_path(path),
            direction.reader(),
            direction.writer()
        ),
        CompatibilityError::MissingUnionElements | CompatibilityError::SchemaMismatchAllUnionElements => format!(
            "MISSING_UNION_BRANCH at {}: the {} schema's {} has branches the {} schema's {} cannot read",
            display_path(path),
            direction.writer(),
            type_name(writer),
            direction.reader(),
            type_name(reader)
        ),
        CompatibilityError::FixedMismatch => format!(
            "FIXED_SIZE_MISMATCH at {}: the fixed sizes differ between the old and new schema",
            display_path(path)
        ),
        CompatibilityError::DecimalMismatch { r_precision, r_scale, w_precision, w_scale } => format!(
            "DECIMAL_MISMATCH at {}: the {} schema's decimal({w_precision},{w_scale}) cannot be read as the {} \
             schema's decimal({r_precision},{r_scale})",
            display_path(path),
            direction.writer(),
            direction.reader()
        ),
        other => format!("at {}: {other}", display_path(path)),
    }
}

/// The schema of the field of `record` that the reader's `field` reads (by name, then by the reader
/// field's aliases, as the resolution rules match).
fn field_schema<'a>(record: &'a Schema, reader: &Schema, field: &str) -> Option<&'a Schema> {
    let Schema::Record(RecordSchema { fields, .. }) = record else { return None };
    let aliases: Vec<String> = match reader {
        Schema::Record(RecordSchema { fields: reader_fields, .. }) => {
            reader_fields.iter().find(|f| f.name == field).map(|f| f.aliases.clone()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    std::iter::once(field)
        .chain(aliases.iter().map(String::as_str))
        .find_map(|name| fields.iter().find(|f| f.name == name))
        .map(|f| &f.schema)
}

fn trim(path: &str) -> String {
    path.trim_start_matches('/').replace('/', ".")
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the top level".into()
    } else {
        format!("field '{}'", trim(path))
    }
}

/// A short name for a schema's type: `string`, `record Sale`, `union [null, string]`, ….
fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Union(union) => {
            let branches: Vec<String> = union.variants().iter().map(type_name).collect();
            format!("union [{}]", branches.join(", "))
        }
        Schema::Array(array) => format!("array<{}>", type_name(&array.items)),
        Schema::Map(map) => format!("map<{}>", type_name(&map.types)),
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        Schema::Fixed(f) => format!("fixed {}", f.name.name()),
        Schema::Ref { name } => name.name().to_string(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Object(o) => {
                    let base = o.get("type").and_then(|t| t.as_str()).unwrap_or("?").to_string();
                    Some(match o.get("logicalType").and_then(|t| t.as_str()) {
                        Some(logical) => format!("{base} ({logical})"),
                        None => base,
                    })
                }
                _ => None,
            })
            .unwrap_or_else(|| format!("{:?}", apache_avro::schema::SchemaKind::from(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompatibilityLevel::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(r#"{{"type":"record","name":"Sale","namespace":"retail","fields":[{fields}]}}"#))
            .unwrap()
    }

    const V1: &str = r#"{"name":"sku","type":"string"},{"name":"qty","type":"int"}"#;

    /// One evolution from V1 and, for every level, whether Confluent's registry accepts it.
    struct Case {
        what: &'static str,
        new: &'static str,
        /// Accepted under NONE, BACKWARD, FORWARD, FULL (transitive variants agree with a single earlier version).
        accepted: [bool; 4],
        /// Fields a refusal's message may name (one of them must be there).
        names: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            what: "add a field with a default",
            new: r#"{"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"promo","type":["null","string"],"default":null}"#,
            accepted: [true, true, true, true],
            names: &[],
        },
        Case {
            what: "add a field without a default",
            new: r#"{"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"store","type":"string"}"#,
            accepted: [true, false, true, false],
            names: &["store"],
        },
        Case {
            what: "remove a field without a default",
            new: r#"{"name":"sku","type":"string"}"#,
            accepted: [true, true, false, false],
            names: &["qty"],
        },
        Case {
            what: "change a type (int to string)",
            new: r#"{"name":"sku","type":"string"},{"name":"qty","type":"string"}"#,
            accepted: [true, false, false, false],
            names: &["qty"],
        },
        Case {
            what: "promote a type (int to long)",
            new: r#"{"name":"sku","type":"string"},{"name":"qty","type":"long"}"#,
            accepted: [true, true, false, false],
            names: &["qty"],
        },
        Case {
            what: "rename a field without an alias",
            new: r#"{"name":"product","type":"string"},{"name":"qty","type":"int"}"#,
            accepted: [true, false, false, false],
            names: &["product", "sku"],
        },
        Case {
            what: "rename a field with an alias",
            new: r#"{"name":"product","type":"string","aliases":["sku"]},{"name":"qty","type":"int"}"#,
            accepted: [true, true, false, false],
            names: &["sku"],
        },
    ];

    #[test]
    fn the_table_of_evolutions_under_every_level() {
        let v1 = record(V1);
        let previous = [Previous { version: 1, schema: &v1 }];
        for case in CASES {
            let new = record(case.new);
            for (i, levels) in
                [[None, None], [Backward, BackwardTransitive], [Forward, ForwardTransitive], [Full, FullTransitive]]
                    .into_iter()
                    .enumerate()
            {
                for level in levels {
                    let problems = check(&new, &previous, level);
                    assert_eq!(
                        problems.is_empty(),
                        case.accepted[i],
                        "{} under {level}: expected {}, got {problems:?}",
                        case.what,
                        if case.accepted[i] { "accepted" } else { "refused" }
                    );
                    if !problems.is_empty() {
                        assert!(
                            problems.iter().any(|p| {
                                p.contains("version 1") && case.names.iter().any(|n| p.contains(&format!("'{n}'")))
                            }),
                            "{} under {level}: the message should name one of {:?}: {problems:?}",
                            case.what,
                            case.names
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn transitive_levels_check_every_earlier_version() {
        // v1 has `qty` as an int; v2 dropped it (BACKWARD accepts that); v3 brings `qty` back as a
        // string with a default: it reads v2's data, but not v1's, whose `qty` is an int.
        let v1 = record(r#"{"name":"sku","type":"string"},{"name":"qty","type":"int"}"#);
        let v2 = record(r#"{"name":"sku","type":"string"}"#);
        let v3 = record(r#"{"name":"sku","type":"string"},{"name":"qty","type":"string","default":"1"}"#);
        let previous = [Previous { version: 1, schema: &v1 }, Previous { version: 2, schema: &v2 }];
        assert!(check(&v3, &previous, Backward).is_empty(), "v3 reads v2's data");
        let problems = check(&v3, &previous, BackwardTransitive);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("version 1:") && problems[0].contains("qty"), "{problems:?}");
        assert!(problems[0].contains("int") && problems[0].contains("string"), "{problems:?}");
    }

    #[test]
    fn nested_fields_are_named_by_path() {
        let old = Schema::parse_str(
            r#"{"type":"record","name":"Sale","fields":[{"name":"line","type":{"type":"record","name":"Line","fields":[{"name":"cents","type":"long"}]}}]}"#,
        )
        .unwrap();
        let new = Schema::parse_str(
            r#"{"type":"record","name":"Sale","fields":[{"name":"line","type":{"type":"record","name":"Line","fields":[{"name":"cents","type":"string"}]}}]}"#,
        )
        .unwrap();
        let problems = check(&new, &[Previous { version: 4, schema: &old }], Backward);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line.cents"), "{}", problems[0]);
        assert!(problems[0].contains("long") && problems[0].contains("string"), "{}", problems[0]);
    }

    #[test]
    fn enums_losing_symbols_are_incompatible() {
        let old = Schema::parse_str(r#"{"type":"enum","name":"Channel","symbols":["POS","WEB"]}"#).unwrap();
        let new = Schema::parse_str(r#"{"type":"enum","name":"Channel","symbols":["POS"]}"#).unwrap();
        assert_eq!(check(&new, &[Previous { version: 1, schema: &old }], Backward).len(), 1);
        assert!(check(&new, &[Previous { version: 1, schema: &old }], Forward).is_empty());
    }

    #[test]
    fn no_earlier_version_is_always_compatible() {
        assert!(check(&record(V1), &[], FullTransitive).is_empty());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().to_lowercase().parse::<CompatibilityLevel>().unwrap(), level);
        }
        assert_eq!(CompatibilityLevel::default(), Backward);
    }
}
