//! netaug-protobuf: the few pieces of the protobuf wire format that netaug writes (ONNX
//! models, TensorBoard events): varints, and fields that are varints, 32- or 64-bit floats
//! or length-delimited bytes (strings, packed arrays, nested messages). Writing only; no
//! schema compiler, no reflection.
#![warn(missing_docs)]

/// A message being written.
#[derive(Default)]
pub struct Message(Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Message {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }

    /// An int64 / int32 / enum field.
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, v as u64);
        self
    }

    /// A float field.
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A double field.
    pub fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A bytes field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A string field.
    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// A nested message field.
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.0)
    }

    /// A packed repeated int64 field.
    pub fn ints(&mut self, field: u32, vs: &[i64]) -> &mut Self {
        let mut packed = Vec::new();
        for &v in vs {
            varint(&mut packed, v as u64);
        }
        self.bytes(field, &packed)
    }

    /// The encoded message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_encode_as_the_protobuf_spec_examples() {
        // The protobuf docs' examples: field 1 = 150 -> 08 96 01; field 2 = "testing".
        let mut m = Message::default();
        m.int(1, 150).string(2, "testing");
        assert_eq!(
            m.into_bytes(),
            [
                0x08, 0x96, 0x01, 0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g'
            ]
        );
        // Packed [3, 270, 86942] in field 4: 22 06 03 8E 02 9E A7 05.
        let mut m = Message::default();
        m.ints(4, &[3, 270, 86942]);
        assert_eq!(
            m.into_bytes(),
            [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05]
        );
        // Negative int64s take ten bytes (two's complement).
        let mut m = Message::default();
        m.int(1, -1);
        assert_eq!(m.into_bytes().len(), 11);
        // Fixed-width fields: wire type 5 (float) and 1 (double), little-endian.
        let mut m = Message::default();
        m.float(2, 1.0).double(1, -2.0);
        assert_eq!(
            m.into_bytes(),
            [0x15, 0, 0, 0x80, 0x3F, 0x09, 0, 0, 0, 0, 0, 0, 0, 0xC0]
        );
    }
}
