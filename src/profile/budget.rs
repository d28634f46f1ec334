//! Memory bounds for reading untrusted profiles. A few hundred kilobytes of gzip can
//! describe a profile that takes gigabytes once decoded: 200 million one-byte varints of a
//! packed stack become 1.6 GB of `u64`s, a million functions naming one 1 MB string become
//! a terabyte of copied names. Decoding therefore first walks the protobuf wire format
//! (no allocation) to estimate what decoding would allocate (at most [`MAX_MEMORY`]), and
//! counts the bytes of strings it copies (at most [`MAX_STRING_COPIES`]); past either, the
//! input is refused.

use std::mem::size_of;

use super::proto;

/// The most memory decoding one profile's messages may take.
pub(crate) const MAX_MEMORY: u64 = 1 << 30;

/// The most bytes of strings copied out of the string table (one copy per reference):
/// real profiles copy a few tens of megabytes (names, files, label values).
pub(crate) const MAX_STRING_COPIES: u64 = 256 << 20;

/// A cursor over protobuf wire format; `None` on anything malformed (prost reports it).
struct Wire<'a> {
    buf: &'a [u8],
}

enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Some(v);
            }
        }
        None
    }

    /// The next field: its number and value (fixed-size values are skipped).
    fn field(&mut self) -> Option<(u64, Value<'a>)> {
        loop {
            if self.buf.is_empty() {
                return None;
            }
            let key = self.varint()?;
            let (number, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    self.varint()?;
                    return Some((number, Value::Varint));
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    self.buf = self.buf.get(n..)?;
                }
                2 => {
                    let len = usize::try_from(self.varint()?).ok()?;
                    let bytes = self.buf.get(..len)?;
                    self.buf = &self.buf[len..];
                    return Some((number, Value::Bytes(bytes)));
                }
                _ => return None,
            }
        }
    }
}

/// Varints in a packed field.
fn packed(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b & 0x80 == 0).count() as u64
}

/// 8 bytes per element of a repeated 64-bit integer field, packed or not.
fn ints(v: &Value<'_>) -> u64 {
    8 * match v {
        Value::Varint => 1,
        Value::Bytes(b) => packed(b),
    }
}

fn sample(bytes: &[u8]) -> u64 {
    let mut w = Wire { buf: bytes };
    let mut total = 0;
    while let Some((n, v)) = w.field() {
        total += match n {
            1 | 2 => ints(&v),
            3 => size_of::<proto::Label>() as u64,
            _ => 0,
        };
    }
    total
}

fn location(bytes: &[u8]) -> u64 {
    let mut w = Wire { buf: bytes };
    let mut total = 0;
    while let Some((n, _)) = w.field() {
        if n == 4 {
            total += size_of::<proto::Line>() as u64;
        }
    }
    total
}

/// About what decoding `buf` as a `Profile` allocates: every repeated element at its
/// in-memory size, doubled for vectors' spare capacity.
pub(crate) fn decoded_size(buf: &[u8]) -> u64 {
    let mut w = Wire { buf };
    let mut total = 0u64;
    while let Some((n, v)) = w.field() {
        let bytes = match &v {
            Value::Bytes(b) => b,
            Value::Varint => &[][..],
        };
        total = total.saturating_add(match n {
            1 => size_of::<proto::ValueType>() as u64,
            2 => size_of::<proto::Sample>() as u64 + sample(bytes),
            3 => size_of::<proto::Mapping>() as u64,
            4 => size_of::<proto::Location>() as u64 + location(bytes),
            5 => size_of::<proto::Function>() as u64,
            6 => (size_of::<String>() + bytes.len()) as u64,
            13 => ints(&v),
            _ => 0,
        });
    }
    total.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn estimate_covers_what_decoding_holds() {
        let p = proto::Profile {
            sample: (0..1000)
                .map(|i| proto::Sample {
                    location_id: vec![1; 50],
                    value: vec![i, 2],
                    label: vec![proto::Label::default(); 2],
                })
                .collect(),
            string_table: vec![String::new(), "x".repeat(1000)],
            ..Default::default()
        };
        let bytes = p.encode_to_vec();
        let held = 1000 * (size_of::<proto::Sample>() + 50 * 8 + 2 * 8)
            + 2000 * size_of::<proto::Label>()
            + 1000;
        let estimate = decoded_size(&bytes);
        assert!(estimate >= held as u64, "{estimate} < {held}");
        assert!(estimate <= 4 * held as u64, "{estimate} far above {held}");
    }

    #[test]
    fn malformed_input_stops_the_walk() {
        assert_eq!(decoded_size(&[0xff; 3]), 0);
        assert_eq!(decoded_size(&[0x12, 0x7f, 1]), 0); // length beyond the end
    }
}
