//! The shape of Kafka's request messages, and a walk over a request body that checks every
//! length in it before the typed decoder runs.
//!
//! Why: kafka-protocol's decoder reserves `count × element size` for an array before it reads
//! a single element, so a 19-byte Metadata request that claims 2^31 topics makes that
//! allocation fail, and a failed allocation aborts the process. Kafka's own generated readers
//! refuse any array, string or bytes field longer than what is left of the frame. `check_body`
//! applies that rule to every length in a request, in the order the decoder will read them, so
//! that once it passes, nothing the decoder reserves is larger than the frame allows.
//!
//! The shapes come from Kafka's own message definitions, reduced by
//! `scripts/extract-request-schemas.py` to `protocol/schema/requests.json` (field names, types
//! and the versions each field is present, nullable and tagged at). They must be those of the
//! Kafka release kafka-protocol was generated from: the walk and the decoder then read a frame
//! the same way, field for field.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use thiserror::Error;

/// Why a request body does not have the shape its version requires.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct ShapeError {
    /// The field (dotted path from the message) where the walk stopped.
    pub field: String,
    pub reason: String,
}

impl ShapeError {
    fn at(reason: impl Into<String>) -> Self {
        ShapeError {
            field: String::new(),
            reason: reason.into(),
        }
    }

    fn within(mut self, name: &str) -> Self {
        self.field = if self.field.is_empty() {
            name.to_string()
        } else {
            format!("{name}.{}", self.field)
        };
        self
    }
}

/// An inclusive version range, as `[min, max]` in the schema file.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Versions(pub i16, pub i16);

impl Versions {
    pub fn contains(self, version: i16) -> bool {
        (self.0..=self.1).contains(&version)
    }
}

fn within(range: Option<Versions>, version: i16) -> bool {
    range.is_some_and(|r| r.contains(version))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FieldType {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(Box<FieldType>),
    Struct(Vec<Field>),
}

#[derive(Debug, Deserialize)]
struct Field {
    name: String,
    #[serde(rename = "type")]
    ty: FieldType,
    versions: Option<Versions>,
    #[serde(default)]
    nullable: Option<Versions>,
    #[serde(default)]
    tag: Option<u32>,
    #[serde(default)]
    tagged: Option<Versions>,
}

impl Field {
    fn is_tagged_at(&self, version: i16) -> bool {
        self.tag.is_some() && within(self.tagged, version)
    }
}

/// One request message: its API key, valid and flexible versions, and top-level fields.
#[derive(Debug, Deserialize)]
pub struct MessageSchema {
    pub name: String,
    pub api_key: i16,
    pub valid: Option<Versions>,
    flexible: Option<Versions>,
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct SchemaFile {
    messages: Vec<MessageSchema>,
}

/// The request schemas by API key, parsed once from the files compiled into the binary:
/// Kafka 4's requests, and the ZooKeeper-mode controller requests Kafka 4 removed (from the
/// Kafka release `controller_api`'s decoder was generated from).
pub fn request_schemas() -> &'static HashMap<i16, MessageSchema> {
    static SCHEMAS: OnceLock<HashMap<i16, MessageSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let parse = |text: &str| -> Vec<MessageSchema> {
            let file: SchemaFile = serde_json::from_str(text)
                .expect("protocol/schema/*.json is valid (checked by the unit tests)");
            file.messages
        };
        parse(include_str!("../schema/requests.json"))
            .into_iter()
            .chain(parse(include_str!("../schema/controller-requests.json")))
            .map(|m| (m.api_key, m))
            .collect()
    })
}

/// Checks that `body` (a request body, after its header) has the shape of `api_key` at
/// `version`: every array count, string and bytes length fits in the bytes that follow it,
/// and every known tagged field fills exactly the size it announces. Trailing bytes after
/// the last field are allowed, as Kafka allows them.
pub fn check_body(api_key: i16, version: i16, body: &[u8]) -> Result<(), ShapeError> {
    let plan = plans()
        .get(&(api_key, version))
        .ok_or_else(|| ShapeError::at(format!("no schema for api key {api_key} v{version}")))?;
    let mut reader = Reader { buf: body };
    plan.walk(&mut reader)
}

/// Every message's walk at every valid version, compiled once.
fn plans() -> &'static HashMap<(i16, i16), Plan> {
    static PLANS: OnceLock<HashMap<(i16, i16), Plan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let mut plans = HashMap::new();
        for (key, schema) in request_schemas() {
            let Some(valid) = schema.valid else { continue };
            for version in valid.0..=valid.1 {
                let flexible = within(schema.flexible, version);
                plans.insert(
                    (*key, version),
                    Plan::compile(&schema.fields, version, flexible),
                );
            }
        }
        plans
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ShapeError> {
        if n > self.buf.len() {
            return Err(ShapeError::at(format!(
                "needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, ShapeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ShapeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i8(&mut self) -> Result<i8, ShapeError> {
        Ok(self.take(1)?[0] as i8)
    }

    /// An unsigned varint of at most 5 bytes (a u32), as Kafka writes them.
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return u32::try_from(value)
                    .map_err(|_| ShapeError::at("varint does not fit in 32 bits"));
            }
        }
        Err(ShapeError::at("varint longer than 5 bytes"))
    }

    /// A length that must fit in what is left of the frame: Kafka's rule for arrays,
    /// strings and bytes alike.
    fn length_within(&self, length: u64, what: &str) -> Result<usize, ShapeError> {
        if length > self.buf.len() as u64 {
            return Err(ShapeError::at(format!(
                "{what} of length {length} is longer than the {} bytes left",
                self.buf.len()
            )));
        }
        Ok(length as usize)
    }
}

/// A struct's fields at one version, as the walk needs them: consecutive fixed-width fields
/// are one step (a Fetch partition's six numbers are one 32-byte skip), tagged fields are
/// looked up by tag.
struct Plan {
    flexible: bool,
    steps: Vec<Step>,
    /// Known tagged fields (flexible versions only).
    tagged: Vec<(u32, Step)>,
}

/// One field (or run of fixed-width fields, named after the first).
struct Step {
    name: String,
    shape: Shape,
}

enum Shape {
    Fixed(usize),
    String,
    Bytes,
    Array(Box<Shape>),
    Struct { nullable: bool, plan: Plan },
}

impl Plan {
    fn compile(fields: &[Field], version: i16, flexible: bool) -> Plan {
        let mut steps: Vec<Step> = Vec::new();
        let mut tagged = Vec::new();
        for field in fields.iter().filter(|f| within(f.versions, version)) {
            let nullable = within(field.nullable, version);
            let step = Step {
                name: field.name.clone(),
                shape: Shape::compile(&field.ty, nullable, version, flexible),
            };
            if field.is_tagged_at(version) {
                if let Some(tag) = field.tag {
                    tagged.push((tag, step));
                }
                continue;
            }
            match (steps.last_mut(), &step.shape) {
                (
                    Some(Step {
                        shape: Shape::Fixed(run),
                        ..
                    }),
                    Shape::Fixed(n),
                ) => *run += n,
                _ => steps.push(step),
            }
        }
        Plan {
            flexible,
            steps,
            tagged,
        }
    }

    /// The fields in wire order, then (flexible versions) the tagged fields.
    fn walk(&self, r: &mut Reader) -> Result<(), ShapeError> {
        for step in &self.steps {
            self.value(r, &step.shape)
                .map_err(|e| e.within(&step.name))?;
        }
        if self.flexible {
            self.tagged_fields(r)?;
        }
        Ok(())
    }

    fn tagged_fields(&self, r: &mut Reader) -> Result<(), ShapeError> {
        let count = r.uvarint()?;
        r.length_within(u64::from(count), "tagged field count")?;
        for _ in 0..count {
            let tag = r.uvarint()?;
            let size = r.uvarint()?;
            let size = r.length_within(u64::from(size), "tagged field")?;
            let window = r.take(size)?;
            // An unknown tag is skipped by its size, as the decoder skips it. A known one is
            // decoded from the frame itself, so it must use exactly the bytes it announced.
            if let Some((_, step)) = self.tagged.iter().find(|(t, _)| *t == tag) {
                let mut inner = Reader { buf: window };
                self.value(&mut inner, &step.shape)
                    .map_err(|e| e.within(&step.name))?;
                if !inner.buf.is_empty() {
                    return Err(ShapeError::at(format!(
                        "tagged field of {size} bytes has {} it does not use",
                        inner.buf.len()
                    ))
                    .within(&step.name));
                }
            }
        }
        Ok(())
    }

    fn value(&self, r: &mut Reader, shape: &Shape) -> Result<(), ShapeError> {
        match shape {
            Shape::Fixed(n) => r.take(*n).map(drop),
            Shape::String => {
                let length = if self.flexible {
                    compact_length(r)?
                } else {
                    non_negative(r.i16()?.into())?
                };
                skip(r, length, "string")
            }
            Shape::Bytes => {
                let length = if self.flexible {
                    compact_length(r)?
                } else {
                    non_negative(r.i32()?)?
                };
                skip(r, length, "bytes")
            }
            Shape::Array(element) => {
                let count = if self.flexible {
                    compact_length(r)?
                } else {
                    non_negative(r.i32()?)?
                };
                let Some(count) = count else { return Ok(()) };
                let count = r.length_within(count, "array")?;
                for index in 0..count {
                    self.value(r, element)
                        .map_err(|e| e.within(&format!("[{index}]")))?;
                }
                Ok(())
            }
            Shape::Struct { nullable, plan } => {
                // A nullable struct is preceded by a marker byte: -1 null, 1 present.
                if *nullable && r.i8()? < 0 {
                    return Ok(());
                }
                plan.walk(r)
            }
        }
    }
}

impl Shape {
    fn compile(ty: &FieldType, nullable: bool, version: i16, flexible: bool) -> Shape {
        match ty {
            FieldType::Bool | FieldType::Int8 => Shape::Fixed(1),
            FieldType::Int16 | FieldType::Uint16 => Shape::Fixed(2),
            FieldType::Int32 => Shape::Fixed(4),
            FieldType::Int64 | FieldType::Float64 => Shape::Fixed(8),
            FieldType::Uuid => Shape::Fixed(16),
            FieldType::String => Shape::String,
            FieldType::Bytes | FieldType::Records => Shape::Bytes,
            FieldType::Array(element) => {
                Shape::Array(Box::new(Shape::compile(element, false, version, flexible)))
            }
            FieldType::Struct(fields) => Shape::Struct {
                nullable,
                plan: Plan::compile(fields, version, flexible),
            },
        }
    }
}

/// A compact length: unsigned varint of length + 1, 0 meaning null.
fn compact_length(r: &mut Reader) -> Result<Option<u64>, ShapeError> {
    Ok(match r.uvarint()? {
        0 => None,
        n => Some(u64::from(n) - 1),
    })
}

fn skip(r: &mut Reader, length: Option<u64>, what: &str) -> Result<(), ShapeError> {
    if let Some(length) = length {
        let length = r.length_within(length, what)?;
        r.take(length)?;
    }
    Ok(())
}

/// A body of `api_key`'s shape at `version` in which every array holds `elements` elements,
/// every string is "ab", every bytes or records field the two bytes "ab", every number has all
/// its bytes 1, every nullable field is present and every tagged field of that version is
/// written (in tag order, as encoders write them). The tests decode it with kafka-protocol and
/// mutate it; the fuzzers start from it.
pub fn sample_body(api_key: i16, version: i16, elements: usize) -> Option<Vec<u8>> {
    let schema = request_schemas().get(&api_key)?;
    let sample = Sample {
        version,
        flexible: within(schema.flexible, version),
        elements,
    };
    let mut out = Vec::new();
    sample.fields(&mut out, &schema.fields);
    Some(out)
}

struct Sample {
    version: i16,
    flexible: bool,
    elements: usize,
}

impl Sample {
    fn fields(&self, out: &mut Vec<u8>, fields: &[Field]) {
        let present = |f: &&Field| within(f.versions, self.version);
        for field in fields.iter().filter(present) {
            if !field.is_tagged_at(self.version) {
                self.value(out, &field.ty, within(field.nullable, self.version));
            }
        }
        if !self.flexible {
            return;
        }
        let mut tagged: Vec<&Field> = fields
            .iter()
            .filter(present)
            .filter(|f| f.is_tagged_at(self.version))
            .collect();
        tagged.sort_by_key(|f| f.tag);
        put_uvarint(out, tagged.len() as u32);
        for field in tagged {
            let mut value = Vec::new();
            self.value(&mut value, &field.ty, within(field.nullable, self.version));
            put_uvarint(out, field.tag.unwrap_or_default());
            put_uvarint(out, value.len() as u32);
            out.extend_from_slice(&value);
        }
    }

    fn length(&self, out: &mut Vec<u8>, length: usize, classic_width: usize) {
        if self.flexible {
            put_uvarint(out, length as u32 + 1);
        } else {
            let bytes = (length as i32).to_be_bytes();
            out.extend_from_slice(&bytes[4 - classic_width..]);
        }
    }

    fn value(&self, out: &mut Vec<u8>, ty: &FieldType, nullable: bool) {
        match ty {
            FieldType::Bool | FieldType::Int8 => out.push(1),
            FieldType::Int16 | FieldType::Uint16 => out.extend_from_slice(&[1; 2]),
            FieldType::Int32 => out.extend_from_slice(&[1; 4]),
            FieldType::Int64 | FieldType::Float64 => out.extend_from_slice(&[1; 8]),
            FieldType::Uuid => out.extend_from_slice(&[1; 16]),
            FieldType::String => {
                self.length(out, 2, 2);
                out.extend_from_slice(b"ab");
            }
            FieldType::Bytes | FieldType::Records => {
                self.length(out, 2, 4);
                out.extend_from_slice(b"ab");
            }
            FieldType::Array(element) => {
                self.length(out, self.elements, 4);
                for _ in 0..self.elements {
                    self.value(out, element, false);
                }
            }
            FieldType::Struct(fields) => {
                if nullable {
                    out.push(1);
                }
                self.fields(out, fields);
            }
        }
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A classic (non-compact) length: -1 means null, anything below is malformed.
fn non_negative(length: i32) -> Result<Option<u64>, ShapeError> {
    match length {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n as u64)),
        n => Err(ShapeError::at(format!("negative length {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::SUPPORTED_APIS;

    #[test]
    fn every_served_range_has_a_schema_that_covers_it() {
        for r in SUPPORTED_APIS {
            let schema = request_schemas()
                .get(&(r.key as i16))
                .unwrap_or_else(|| panic!("no schema for {:?}", r.key));
            let valid = schema.valid.expect("served APIs have valid versions");
            assert!(
                valid.contains(r.min) && valid.contains(r.max),
                "{:?} {}..={} outside the schema's {:?}",
                r.key,
                r.min,
                r.max,
                valid
            );
        }
    }

    #[test]
    fn the_nineteen_byte_metadata_request_is_refused() {
        // Metadata v1 body: a topics array claiming 0x7fffffff entries, nothing after it.
        let err = check_body(3, 1, &[0x7f, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err.field, "Topics");
        assert!(err.reason.contains("2147483647"), "{err}");
        // The same claim as a compact array (v9+): varint 0xffffffff.
        let err = check_body(3, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
        assert_eq!(err.field, "Topics");
    }

    #[test]
    fn lengths_inside_nested_arrays_are_checked() {
        // OffsetFetch v1: group "g", one topic "t" whose partitions array claims 2^31-1.
        let mut body = vec![0, 1, b'g', 0, 0, 0, 1, 0, 1, b't'];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        let err = check_body(9, 1, &body).unwrap_err();
        assert_eq!(err.field, "Topics.[0].PartitionIndexes");
        // A string longer than the frame.
        let err = check_body(9, 1, &[0, 9, b'g']).unwrap_err();
        assert_eq!(err.field, "GroupId");
        // Negative lengths other than -1 (null).
        let err = check_body(9, 1, &[0xff, 0xfe]).unwrap_err();
        assert!(err.reason.contains("negative"), "{err}");
    }

    #[test]
    fn a_known_tagged_field_must_fill_its_size() {
        // Fetch v12: replica id, max wait, min bytes, max bytes, isolation, session id, epoch,
        // empty topics, empty forgotten, rack "" and then tagged fields.
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&500i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&[1, 1, 1]);
        let mut with_tags = body.clone();
        // ClusterId (tag 0) as compact string "ab" in a 3-byte window: fits exactly.
        with_tags.extend_from_slice(&[1, 0, 3, 3, b'a', b'b']);
        check_body(1, 12, &with_tags).unwrap();
        // The same string announced in a 5-byte window leaves 2 bytes unread.
        let mut loose = body.clone();
        loose.extend_from_slice(&[1, 0, 5, 3, b'a', b'b', 0xff, 0xff]);
        let err = check_body(1, 12, &loose).unwrap_err();
        assert_eq!(err.field, "ClusterId");
        // An unknown tag is skipped by its size, whatever it holds.
        let mut unknown = body;
        unknown.extend_from_slice(&[1, 9, 4, 0xff, 0xff, 0xff, 0xff]);
        check_body(1, 12, &unknown).unwrap();
    }

    #[test]
    fn null_arrays_and_strings_are_accepted() {
        // Metadata v1 with a null topics array (all topics).
        check_body(3, 1, &(-1i32).to_be_bytes()).unwrap();
        // Metadata v12: compact null topics, allow auto create, include authorized ops,
        // no tagged fields.
        check_body(3, 12, &[0, 1, 0, 0]).unwrap();
    }
}
