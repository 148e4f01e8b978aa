//! The protobuf wire format, just enough to walk ONNX messages: varints, fixed 32/64-bit values
//! and length-delimited fields. Every read is bounds-checked, so corrupt bytes give an error
//! with the offset where they went wrong, never a panic.

/// A decoding failure: where in the buffer (bytes from its start) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Offset of the problem, bytes from the start of the whole file.
    pub offset: usize,
    /// What was expected.
    pub message: String,
}

/// One field's value as found on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1, skipped: no field this reader uses is a fixed 64-bit value.
    Fixed64,
    /// Wire type 2: a nested message, a string, bytes or a packed array; `usize` is the offset
    /// of its first byte in the file.
    Bytes(&'a [u8], usize),
    /// Wire type 5 (little-endian).
    Fixed32(u32),
}

/// A cursor over one message's bytes. `base` is the offset of `buf[0]` in the file, so errors
/// report file offsets.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at `base` in the file.
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// An error at the current position.
    pub fn error(&self, message: impl Into<String>) -> WireError {
        WireError {
            offset: self.base + self.pos,
            message: message.into(),
        }
    }

    /// Reads one varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.error("varint runs past the end"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<(&'a [u8], usize), WireError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.error(format!("field of {len} bytes runs past the end")))?;
        let start = self.pos;
        self.pos = end;
        Ok((&self.buf[start..end], self.base + start))
    }

    /// The next field (number and value), or `None` at the end of the message.
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| self.error("field number too large"))?;
        if number == 0 {
            return Err(self.error("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.error("length too large"))?;
                let (b, at) = self.take(len)?;
                Value::Bytes(b, at)
            }
            5 => {
                let (b, _) = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            t => return Err(self.error(format!("unsupported wire type {t}"))),
        };
        Ok(Some((number, value)))
    }
}

/// The bytes of a length-delimited field, or an error naming `what`.
pub fn bytes<'a>(value: Value<'a>, what: &str, at: usize) -> Result<(&'a [u8], usize), WireError> {
    match value {
        Value::Bytes(b, offset) => Ok((b, offset)),
        _ => Err(WireError {
            offset: at,
            message: format!("{what}: expected a length-delimited field"),
        }),
    }
}

/// A UTF-8 string field.
pub fn string(value: Value<'_>, what: &str, at: usize) -> Result<String, WireError> {
    let (b, offset) = bytes(value, what, at)?;
    String::from_utf8(b.to_vec()).map_err(|_| WireError {
        offset,
        message: format!("{what}: not UTF-8"),
    })
}

/// A varint field read as a signed 64-bit integer (two's complement, as protobuf's int64).
pub fn int64(value: Value<'_>, what: &str, at: usize) -> Result<i64, WireError> {
    match value {
        Value::Varint(v) => Ok(v as i64),
        _ => Err(WireError {
            offset: at,
            message: format!("{what}: expected a varint"),
        }),
    }
}

/// Appends a repeated int64 field's values, packed or one per field.
pub fn push_int64s(value: Value<'_>, out: &mut Vec<i64>, what: &str) -> Result<(), WireError> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(b, at) => {
            let mut r = Reader::new(b, at);
            while r.pos < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => {
            return Err(WireError {
                offset: 0,
                message: format!("{what}: expected varints"),
            })
        }
    }
    Ok(())
}

/// Appends a repeated float field's values, packed or one per field.
pub fn push_floats(value: Value<'_>, out: &mut Vec<f32>, what: &str) -> Result<(), WireError> {
    match value {
        Value::Fixed32(v) => out.push(f32::from_bits(v)),
        Value::Bytes(b, at) => {
            if b.len() % 4 != 0 {
                return Err(WireError {
                    offset: at,
                    message: format!("{what}: packed floats of {} bytes", b.len()),
                });
            }
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            );
        }
        _ => {
            return Err(WireError {
                offset: 0,
                message: format!("{what}: expected 32-bit floats"),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_and_fields() {
        // Field 1 varint 300, field 2 bytes "hi", field 3 fixed32 1.0.
        let mut buf = vec![0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x1d];
        buf.extend(1.0f32.to_le_bytes());
        let mut r = Reader::new(&buf, 0);
        assert!(matches!(r.field().unwrap(), Some((1, Value::Varint(300)))));
        assert!(matches!(
            r.field().unwrap(),
            Some((2, Value::Bytes(b"hi", 5)))
        ));
        match r.field().unwrap() {
            Some((3, Value::Fixed32(v))) => assert_eq!(f32::from_bits(v), 1.0),
            other => panic!("{other:?}"),
        }
        assert!(r.field().unwrap().is_none());
    }

    #[test]
    fn negative_int64_and_packed_arrays() {
        let mut buf = vec![0x08];
        buf.extend([0xff; 9]);
        buf.push(0x01);
        let mut r = Reader::new(&buf, 0);
        let (_, v) = r.field().unwrap().unwrap();
        assert_eq!(int64(v, "x", 0).unwrap(), -1);
        let mut out = Vec::new();
        push_int64s(Value::Bytes(&[1, 2, 0x7f], 0), &mut out, "x").unwrap();
        assert_eq!(out, [1, 2, 127]);
    }

    #[test]
    fn truncation_is_an_error_with_offset() {
        let buf = [0x12, 10, 1, 2];
        let err = Reader::new(&buf, 100).field().unwrap_err();
        assert_eq!(err.offset, 102);
        assert!(Reader::new(&[0x08, 0x80], 0).field().is_err());
        assert!(Reader::new(&[0x0b], 0).field().is_err());
    }
}
