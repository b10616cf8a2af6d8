//! Go's `encoding/gob`, as much of it as the FunctionGraph Go SDK's `net/rpc` protocol uses
//! (`go_fn`): fgs encodes the fixed client messages (`rpc.Request` and the SDK's `InvokeRequest`)
//! and decodes whatever the function's Go binary sends, type definitions included, into a
//! generic [`Value`]. No crate speaks gob's type-definition wire format; the tests check both
//! directions against bytes produced by Go 1.19's encoder.
//!
//! The format: a stream of messages, each a length then a type id; a negative id defines type
//! `-id` (the value is a `wireType`), a positive one carries a value of that type. Integers are
//! gob's variable-length uints (one byte below 128, else the negated byte count and big-endian
//! bytes); signed ones fold the sign into bit 0. A struct is a run of (field delta, value) ended
//! by a zero delta; zero-valued fields are left out.

use std::collections::HashMap;

/// A decoded value; structs keep their field names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    Struct(Vec<(String, Value)>),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// A struct's field, if it was sent (gob leaves zero values out).
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(f) => f.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum GobError {
    #[error("gob message ends early")]
    Short,
    #[error("gob type {0} is not defined")]
    UnknownType(i64),
    #[error("gob type {0} is not supported")]
    Unsupported(&'static str),
    #[error("gob value is malformed: {0}")]
    Malformed(&'static str),
}

// The predefined type ids of encoding/gob.
const BOOL: i64 = 1;
const INT: i64 = 2;
pub(crate) const UINT: i64 = 3;
const FLOAT: i64 = 4;
pub(crate) const BYTES: i64 = 5;
pub(crate) const STRING: i64 = 6;
const INTERFACE: i64 = 8;

#[derive(Debug, Clone)]
enum Wire {
    Struct(Vec<(String, i64)>),
    Slice(i64),
    Array(i64),
    Map(i64, i64),
    /// GobEncoder, BinaryMarshaler, TextMarshaler: the value is its encoding, as bytes.
    Opaque,
}

/// Reads one message's bytes.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn uint(&mut self) -> Result<u64, GobError> {
        let first = *self.b.get(self.at).ok_or(GobError::Short)?;
        self.at += 1;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let n = (first as i8).unsigned_abs() as usize;
        if n > 8 {
            return Err(GobError::Malformed("uint over 8 bytes"));
        }
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 {
            !((u >> 1) as i64)
        } else {
            (u >> 1) as i64
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GobError> {
        let end = self.at.checked_add(n).ok_or(GobError::Short)?;
        let s = self.b.get(self.at..end).ok_or(GobError::Short)?;
        self.at = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, GobError> {
        let n = usize::try_from(self.uint()?).map_err(|_| GobError::Short)?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, GobError> {
        String::from_utf8(self.bytes()?).map_err(|_| GobError::Malformed("string is not UTF-8"))
    }

    /// Calls `f(field index)` for each field of a struct value, until its end.
    fn fields(
        &mut self,
        mut f: impl FnMut(&mut Self, i64) -> Result<(), GobError>,
    ) -> Result<(), GobError> {
        let mut index = -1i64;
        loop {
            let delta = self.uint()?;
            if delta == 0 {
                return Ok(());
            }
            index = index.saturating_add(i64::try_from(delta).unwrap_or(i64::MAX));
            f(self, index)?;
        }
    }
}

/// The types one stream has defined so far (gob defines each once per stream).
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    types: HashMap<i64, Wire>,
}

impl Decoder {
    /// Decodes one message (without its length): `None` when it defined a type.
    pub(crate) fn message(&mut self, msg: &[u8]) -> Result<Option<Value>, GobError> {
        let mut r = Reader { b: msg, at: 0 };
        let id = r.int()?;
        if id < 0 {
            let wire = wire_type(&mut r)?;
            self.types.insert(-id, wire);
            return Ok(None);
        }
        // A value that is not a struct is sent as a singleton field: one zero delta first.
        if !matches!(self.types.get(&id), Some(Wire::Struct(_))) && r.uint()? != 0 {
            return Err(GobError::Malformed("singleton without its zero delta"));
        }
        self.value(&mut r, id, 0).map(Some)
    }

    fn value(&self, r: &mut Reader, id: i64, depth: u32) -> Result<Value, GobError> {
        if depth > 64 {
            return Err(GobError::Malformed("nested deeper than 64"));
        }
        Ok(match id {
            BOOL => Value::Bool(r.uint()? != 0),
            INT => Value::Int(r.int()?),
            UINT => Value::Uint(r.uint()?),
            FLOAT => Value::Float(f64::from_bits(r.uint()?.swap_bytes())),
            BYTES => Value::Bytes(r.bytes()?),
            STRING => Value::Str(r.string()?),
            INTERFACE => return Err(GobError::Unsupported("interface")),
            _ => match self.types.get(&id).ok_or(GobError::UnknownType(id))? {
                Wire::Struct(fields) => {
                    let mut out = Vec::new();
                    r.fields(|r, i| {
                        let (name, ty) = usize::try_from(i)
                            .ok()
                            .and_then(|i| fields.get(i))
                            .ok_or(GobError::Malformed("field index out of range"))?;
                        out.push((name.clone(), self.value(r, *ty, depth + 1)?));
                        Ok(())
                    })?;
                    Value::Struct(out)
                }
                Wire::Slice(elem) | Wire::Array(elem) => {
                    let n = r.uint()?;
                    let mut out = Vec::new();
                    for _ in 0..n {
                        out.push(self.value(r, *elem, depth + 1)?);
                    }
                    Value::List(out)
                }
                Wire::Map(k, v) => {
                    let n = r.uint()?;
                    let mut out = Vec::new();
                    for _ in 0..n {
                        let key = self.value(r, *k, depth + 1)?;
                        out.push((key, self.value(r, *v, depth + 1)?));
                    }
                    Value::Map(out)
                }
                Wire::Opaque => Value::Bytes(r.bytes()?),
            },
        })
    }
}

/// A `wireType`: one of its fields is set, a struct holding a `CommonType` first.
fn wire_type(r: &mut Reader) -> Result<Wire, GobError> {
    let mut wire = None;
    r.fields(|r, which| {
        let (mut elem, mut key, mut fields) = (0i64, 0i64, Vec::new());
        r.fields(|r, i| {
            match (which, i) {
                (_, 0) => r.fields(|r, f| {
                    // CommonType{Name string, Id int}: neither is needed to decode.
                    match f {
                        0 => r.bytes().map(drop),
                        _ => r.int().map(drop),
                    }
                })?,
                (0 | 1, 1) | (3, 2) => elem = r.int()?,
                (0, 2) => {
                    r.int()?; // an array's length is in each value too
                }
                (3, 1) => key = r.int()?,
                (2, 1) => {
                    for _ in 0..r.uint()? {
                        let (mut name, mut id) = (String::new(), 0i64);
                        r.fields(|r, f| {
                            match f {
                                0 => name = r.string()?,
                                1 => id = r.int()?,
                                _ => return Err(GobError::Malformed("fieldType has 2 fields")),
                            }
                            Ok(())
                        })?;
                        fields.push((name, id));
                    }
                }
                _ => return Err(GobError::Malformed("unknown wireType field")),
            }
            Ok(())
        })?;
        wire = Some(match which {
            0 => Wire::Array(elem),
            1 => Wire::Slice(elem),
            2 => Wire::Struct(fields),
            3 => Wire::Map(key, elem),
            4..=6 => Wire::Opaque,
            _ => return Err(GobError::Malformed("unknown wireType kind")),
        });
        Ok(())
    })?;
    wire.ok_or(GobError::Malformed("empty wireType"))
}

/// Writes gob: values into a message body, messages with their length.
#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn uint(&mut self, u: u64) -> &mut Self {
        if u < 0x80 {
            self.0.push(u as u8);
        } else {
            let bytes = u.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            self.0.push((-((8 - skip) as i8)) as u8);
            self.0.extend_from_slice(&bytes[skip..]);
        }
        self
    }

    pub(crate) fn int(&mut self, i: i64) -> &mut Self {
        let u = if i < 0 {
            ((!i as u64) << 1) | 1
        } else {
            (i as u64) << 1
        };
        self.uint(u)
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.uint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// Appends this writer's bytes as one message (its length first) to `out`.
    pub(crate) fn finish_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::default();
        w.uint(self.0.len() as u64);
        out.extend_from_slice(&w.0);
        out.extend_from_slice(&self.0);
    }

    fn common(&mut self, name: &str, id: i64) -> &mut Self {
        self.uint(1); // CommonType
        if !name.is_empty() {
            self.uint(1).bytes(name.as_bytes()).uint(1).int(id);
        } else {
            self.uint(2).int(id);
        }
        self.uint(0)
    }
}

/// Message: defines struct type `id` named `name` with `fields`.
pub(crate) fn define_struct(out: &mut Vec<u8>, id: i64, name: &str, fields: &[(&str, i64)]) {
    let mut w = Writer::default();
    w.int(-id).uint(3); // wireType.StructT
    w.common(name, id).uint(1).uint(fields.len() as u64);
    for (f, ty) in fields {
        w.uint(1).bytes(f.as_bytes()).uint(1).int(*ty).uint(0);
    }
    w.uint(0).uint(0);
    w.finish_into(out);
}

/// Message: defines slice type `id` of `elem` (unnamed, as `[]string` is).
pub(crate) fn define_slice(out: &mut Vec<u8>, id: i64, elem: i64) {
    let mut w = Writer::default();
    w.int(-id).uint(2); // wireType.SliceT
    w.common("", id).uint(1).int(elem).uint(0).uint(0);
    w.finish_into(out);
}

/// Message: defines map type `id` named `name`.
pub(crate) fn define_map(out: &mut Vec<u8>, id: i64, name: &str, key: i64, elem: i64) {
    let mut w = Writer::default();
    w.int(-id).uint(4); // wireType.MapT
    w.common(name, id)
        .uint(1)
        .int(key)
        .uint(1)
        .int(elem)
        .uint(0)
        .uint(0);
    w.finish_into(out);
}

#[cfg(test)]
#[path = "gob/tests.rs"]
mod tests;
