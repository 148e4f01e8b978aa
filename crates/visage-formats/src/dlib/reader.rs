//! The primitive encodings of dlib's `serialize()`: variable-length integers, floats as
//! mantissa/exponent pairs, strings, matrices and DNN tensors. A [`DlibReader`] walks a byte
//! slice and turns every problem into a [`ReadError`] carrying the offset.

use std::path::Path;

use crate::FormatError;

/// A problem found while decoding, before the file name is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadError {
    /// Offset of the value being decoded, in bytes from the start of the data.
    pub offset: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl ReadError {
    /// Attaches the file and the format name, giving the error users see.
    pub fn into_format_error(self, path: &Path, format: &'static str) -> FormatError {
        FormatError::Invalid {
            path: path.to_path_buf(),
            format,
            offset: self.offset,
            message: self.message,
        }
    }
}

/// Parses a whole dlib-serialized model held in memory with `parse`; errors name `path` and
/// `format`. Every model reader goes through here, so errors read the same for every file.
pub fn parse_bytes<T>(
    bytes: &[u8],
    path: &Path,
    format: &'static str,
    parse: impl FnOnce(&mut DlibReader<'_>) -> ReadResult<T>,
) -> Result<T, FormatError> {
    parse(&mut DlibReader::new(bytes)).map_err(|e| e.into_format_error(path, format))
}

/// Reads the file at `path` and parses it as [`parse_bytes`] does.
pub fn parse_file<T>(
    path: &Path,
    format: &'static str,
    parse: impl FnOnce(&mut DlibReader<'_>) -> ReadResult<T>,
) -> Result<T, FormatError> {
    let bytes = std::fs::read(path).map_err(|source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(&bytes, path, format, parse)
}

/// Result of one decoding step.
pub type ReadResult<T> = Result<T, ReadError>;

/// A cursor over dlib-serialized bytes.
#[derive(Debug, Clone)]
pub struct DlibReader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Exponent values dlib reserves for +inf, -inf and NaN.
const EXP_POS_INF: i64 = 32000;
const EXP_NEG_INF: i64 = 32001;
const EXP_NAN: i64 = 32002;

impl<'a> DlibReader<'a> {
    /// Starts reading at the first byte of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Current offset, in bytes from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// An error at the current offset.
    pub fn error(&self, message: impl Into<String>) -> ReadError {
        ReadError {
            offset: self.pos,
            message: message.into(),
        }
    }

    /// An error at a given offset.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ReadError {
        ReadError {
            offset,
            message: message.into(),
        }
    }

    /// Takes `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "unexpected end of data: {n} more bytes needed, {} left (truncated file?)",
                self.remaining()
            )));
        }
        let slice = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// One raw byte.
    pub fn byte(&mut self) -> ReadResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    /// A signed integer: control byte (0x80 = negative, low nibble = byte count), then the
    /// magnitude little-endian. `max_bytes` is the size of the C++ type.
    fn int_with(&mut self, max_bytes: usize, signed: bool) -> ReadResult<i128> {
        let start = self.pos;
        let control = self.byte()?;
        if control & 0x70 != 0 {
            return Err(self.error_at(
                start,
                format!("expected an integer, found control byte 0x{control:02x}"),
            ));
        }
        let negative = control & 0x80 != 0;
        if negative && !signed {
            return Err(self.error_at(start, "expected an unsigned integer, found a negative one"));
        }
        let n = (control & 0x0f) as usize;
        if n == 0 || n > max_bytes {
            return Err(self.error_at(
                start,
                format!("integer of {n} bytes where at most {max_bytes} fit"),
            ));
        }
        let mut magnitude: u128 = 0;
        for (i, &b) in self.bytes(n)?.iter().enumerate() {
            magnitude |= (b as u128) << (8 * i);
        }
        let value = magnitude as i128;
        Ok(if negative { -value } else { value })
    }

    /// A 32-bit signed `int`.
    pub fn i32(&mut self) -> ReadResult<i32> {
        let start = self.pos;
        let v = self.int_with(4, true)?;
        i32::try_from(v).map_err(|_| self.error_at(start, format!("{v} does not fit an int")))
    }

    /// A 64-bit signed `long`.
    pub fn i64(&mut self) -> ReadResult<i64> {
        let start = self.pos;
        let v = self.int_with(8, true)?;
        i64::try_from(v).map_err(|_| self.error_at(start, format!("{v} does not fit a long")))
    }

    /// A 64-bit unsigned integer (`unsigned long`, `size_t`).
    pub fn u64(&mut self) -> ReadResult<u64> {
        let start = self.pos;
        let v = self.int_with(8, false)?;
        u64::try_from(v).map_err(|_| self.error_at(start, format!("{v} does not fit a size")))
    }

    /// An unsigned count or size that must be at most `max` (guards allocations).
    pub fn count(&mut self, max: usize, what: &str) -> ReadResult<usize> {
        let start = self.pos;
        let v = self.u64()?;
        if v > max as u64 {
            return Err(self.error_at(start, format!("{what} of {v} is larger than {max}")));
        }
        Ok(v as usize)
    }

    /// A `bool`, stored as ASCII '1' or '0'.
    pub fn bool(&mut self) -> ReadResult<bool> {
        let start = self.pos;
        match self.byte()? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => Err(self.error_at(
                start,
                format!("expected a bool ('0' or '1'), found 0x{other:02x}"),
            )),
        }
    }

    /// A floating-point value: signed mantissa, then signed exponent; value = m * 2^e.
    pub fn f64(&mut self) -> ReadResult<f64> {
        let mantissa = self.int_with(8, true)? as i64;
        let start = self.pos;
        let exponent = self.int_with(2, true)? as i64;
        Ok(match exponent {
            EXP_POS_INF => f64::INFINITY,
            EXP_NEG_INF => f64::NEG_INFINITY,
            EXP_NAN => f64::NAN,
            e if e.abs() > 20000 => {
                return Err(self.error_at(start, format!("float exponent {e} out of range")))
            }
            e => (mantissa as f64) * 2f64.powi(e as i32),
        })
    }

    /// A float stored in dlib's encoding, narrowed to f32.
    pub fn f32(&mut self) -> ReadResult<f32> {
        Ok(self.f64()? as f32)
    }

    /// A string: unsigned length, then the bytes.
    pub fn string(&mut self) -> ReadResult<String> {
        let start = self.pos;
        let len = self.count(self.remaining(), "string length")?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error_at(start, "string is not UTF-8"))
    }

    /// A string that must equal one of `expected`; returns which one.
    pub fn expect_string(&mut self, expected: &[&str]) -> ReadResult<String> {
        let start = self.pos;
        let s = self.string()?;
        if expected.iter().any(|e| *e == s) {
            Ok(s)
        } else {
            Err(self.error_at(
                start,
                format!("expected {}, found {s:?}", expected.join(" or ")),
            ))
        }
    }

    /// A signed int that must equal `expected` (version numbers, fixed fields).
    pub fn expect_i32(&mut self, expected: i32, what: &str) -> ReadResult<()> {
        let start = self.pos;
        let v = self.i32()?;
        if v == expected {
            Ok(())
        } else {
            Err(self.error_at(start, format!("expected {what} {expected}, found {v}")))
        }
    }

    /// A column vector or matrix of floats, `matrix<float>`: dims stored negated, then the
    /// elements row-major. Returns (rows, cols, values).
    pub fn matrix_f64(&mut self) -> ReadResult<(usize, usize, Vec<f64>)> {
        let start = self.pos;
        let nr = self.i64()?.unsigned_abs() as usize;
        let nc = self.i64()?.unsigned_abs() as usize;
        // Every element takes at least two bytes, which bounds what a valid file can ask for.
        let n = nr
            .checked_mul(nc)
            .filter(|&n| n <= self.remaining() / 2)
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format!("matrix of {nr}x{nc} is larger than the data left"),
                )
            })?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(self.f64()?);
        }
        Ok((nr, nc, values))
    }

    /// A column vector of floats (`matrix<float,0,1>`), narrowed to f32.
    pub fn column_f32(&mut self) -> ReadResult<Vec<f32>> {
        let start = self.pos;
        let (nr, nc, values) = self.matrix_f64()?;
        if nc != 1 && !(nr == 0 && nc == 0) {
            return Err(self.error_at(start, format!("expected a column vector, found {nr}x{nc}")));
        }
        Ok(values.into_iter().map(|v| v as f32).collect())
    }

    /// A DNN tensor (`resizable_tensor`): version 2, four dims, raw little-endian f32 data.
    /// Returns ([n, k, nr, nc], values).
    pub fn tensor(&mut self) -> ReadResult<([usize; 4], Vec<f32>)> {
        self.expect_i32(2, "tensor version")?;
        let start = self.pos;
        let dims = self.tensor_dims()?;
        let n = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= self.remaining() / 4)
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format!("tensor of shape {dims:?} is larger than the data left"),
                )
            })?;
        let raw = self.bytes(n * 4)?;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((dims, values))
    }

    /// An `alias_tensor`: version 1 and four dims, no data.
    pub fn alias_tensor(&mut self) -> ReadResult<[usize; 4]> {
        self.expect_i32(1, "alias_tensor version")?;
        self.tensor_dims()
    }

    fn tensor_dims(&mut self) -> ReadResult<[usize; 4]> {
        let mut dims = [0usize; 4];
        for d in &mut dims {
            let start = self.pos;
            let v = self.i64()?;
            *d = usize::try_from(v)
                .map_err(|_| self.error_at(start, format!("negative tensor dimension {v}")))?;
        }
        Ok(dims)
    }

    /// Fails unless every byte has been consumed.
    pub fn expect_end(&self) -> ReadResult<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(format!(
                "{} unexpected bytes after the model",
                self.remaining()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_sign_magnitude_control_bytes() {
        let data = [0x01, 0x00, 0x01, 0x02, 0x02, 0xe8, 0x03, 0x81, 0x01];
        let mut r = DlibReader::new(&data);
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i32().unwrap(), 2);
        assert_eq!(r.i32().unwrap(), 1000);
        assert_eq!(r.i32().unwrap(), -1);
        r.expect_end().unwrap();
    }

    #[test]
    fn unsigned_rejects_negative_and_oversized() {
        assert!(DlibReader::new(&[0x81, 0x01]).u64().is_err());
        assert!(DlibReader::new(&[0x05, 1, 2, 3, 4, 5]).i32().is_err());
        assert!(DlibReader::new(&[0x00]).i32().is_err());
    }

    #[test]
    fn floats_are_mantissa_then_exponent() {
        // 3 * 2^-1 = 1.5
        let data = [0x01, 0x03, 0x81, 0x01];
        assert_eq!(DlibReader::new(&data).f64().unwrap(), 1.5);
        // +inf
        let data = [0x01, 0x01, 0x02, 0x00, 0x7d];
        assert_eq!(DlibReader::new(&data).f64().unwrap(), f64::INFINITY);
    }

    #[test]
    fn truncation_is_an_error_with_offset() {
        let data = [0x02, 0xe8];
        let err = DlibReader::new(&data).i32().unwrap_err();
        assert_eq!(err.offset, 1);
        assert!(err.message.contains("unexpected end"));
    }

    #[test]
    fn oversized_tensor_is_refused_before_allocating() {
        // version 2, dims 1000000 x 1000000 x 1 x 1, no data
        let data = [
            0x01, 0x02, 0x03, 0x40, 0x42, 0x0f, 0x03, 0x40, 0x42, 0x0f, 0x01, 0x01, 0x01, 0x01,
        ];
        let err = DlibReader::new(&data).tensor().unwrap_err();
        assert!(
            err.message.contains("larger than the data left"),
            "{}",
            err.message
        );
    }

    #[test]
    fn strings_and_bools() {
        let data = [0x01, 0x02, b'h', b'i', b'1', b'0', b'x'];
        let mut r = DlibReader::new(&data);
        assert_eq!(r.string().unwrap(), "hi");
        assert!(r.bool().unwrap());
        assert!(!r.bool().unwrap());
        assert!(r.bool().is_err());
    }
}
