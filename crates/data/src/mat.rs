//! A reader for MATLAB level-5 `.mat` files (numeric, char, cell and struct arrays,
//! compressed or not), enough for the annotation files of Flowers102 and Stanford Cars.
//!
//! Format: MATLAB's "MAT-File Format" (level 5): a 128-byte header, then data elements,
//! each a tag (type, byte count) and its data padded to 8 bytes; `miCOMPRESSED` elements
//! hold one zlib-compressed element; `miMATRIX` elements hold an array.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::DataError;

/// A MATLAB array.
#[derive(Clone, Debug, PartialEq)]
pub enum MatValue {
    /// A numeric array (any numeric class, as f64), column-major.
    Num {
        /// Dimensions.
        dims: Vec<usize>,
        /// Values.
        data: Vec<f64>,
    },
    /// A char array (a string when it is a row).
    Char(String),
    /// A cell array, column-major.
    Cell(Vec<MatValue>),
    /// A struct array: per element, field name -> value.
    Struct(Vec<BTreeMap<String, MatValue>>),
    /// An empty element.
    Empty,
}

impl MatValue {
    /// The numbers of a numeric array.
    pub fn numbers(&self) -> Option<&[f64]> {
        match self {
            MatValue::Num { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The text of a char array.
    pub fn text(&self) -> Option<&str> {
        match self {
            MatValue::Char(s) => Some(s),
            _ => None,
        }
    }
}

// Data types (`mi*`) and array classes (`mx*`) of the format.
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;

/// Reads every named variable of a `.mat` file.
pub fn read(path: &Path) -> Result<BTreeMap<String, MatValue>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|reason| DataError::BadFile {
        path: path.to_path_buf(),
        reason: format!("not a readable MATLAB v5 file: {reason}"),
    })
}

/// Parses the bytes of a `.mat` file.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, MatValue>, String> {
    if bytes.len() < 128 {
        return Err("shorter than the 128-byte header".into());
    }
    if bytes.starts_with(b"\x89HDF") || bytes[..128].windows(4).any(|w| w == b"7.3 ") {
        return Err("MATLAB v7.3 (HDF5) files are not supported; save with -v7".into());
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => return Err("bad endian indicator".into()),
    };
    let mut r = Reader {
        buf: bytes,
        pos: 128,
        big,
    };
    let mut vars = BTreeMap::new();
    while r.pos + 8 <= bytes.len() {
        let (ty, data) = r.element()?;
        let (name, value) = match ty {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("bad compressed element: {e}"))?;
                let mut inner = Reader {
                    buf: &inflated,
                    pos: 0,
                    big,
                };
                let (ty, data) = inner.element()?;
                if ty != MI_MATRIX {
                    continue;
                }
                matrix(data, big)?
            }
            MI_MATRIX => matrix(data, big)?,
            _ => continue,
        };
        vars.insert(name, value);
    }
    Ok(vars)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, at: usize) -> Result<u32, String> {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .ok_or("truncated")?
            .try_into()
            .map_err(|_| "truncated")?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The next element's type and data.
    fn element(&mut self) -> Result<(u32, &'a [u8]), String> {
        let first = self.u32_at(self.pos)?;
        // Small data element: type and size share the first word, data in the second.
        if first >> 16 != 0 {
            let (ty, size) = (first & 0xffff, (first >> 16) as usize);
            let data = self
                .buf
                .get(self.pos + 4..self.pos + 4 + size)
                .ok_or("truncated")?;
            self.pos += 8;
            return Ok((ty, data));
        }
        let size = self.u32_at(self.pos + 4)? as usize;
        let start = self.pos + 8;
        let data = self
            .buf
            .get(start..start + size)
            .ok_or("truncated element")?;
        // Compressed elements are not padded; others are, to 8 bytes.
        let padded = if first == MI_COMPRESSED {
            size
        } else {
            size.div_ceil(8) * 8
        };
        self.pos = start + padded;
        Ok((first, data))
    }
}

fn numbers(ty: u32, data: &[u8], big: bool) -> Result<Vec<f64>, String> {
    macro_rules! conv {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            data.chunks_exact(N)
                .map(|c| {
                    let b: [u8; N] = c.try_into().unwrap();
                    (if big {
                        <$t>::from_be_bytes(b)
                    } else {
                        <$t>::from_le_bytes(b)
                    }) as f64
                })
                .collect()
        }};
    }
    Ok(match ty {
        MI_INT8 => conv!(i8),
        MI_UINT8 | MI_UTF8 => conv!(u8),
        MI_INT16 => conv!(i16),
        MI_UINT16 | MI_UTF16 => conv!(u16),
        MI_INT32 => conv!(i32),
        MI_UINT32 => conv!(u32),
        MI_SINGLE => conv!(f32),
        MI_DOUBLE => conv!(f64),
        MI_INT64 => conv!(i64),
        MI_UINT64 => conv!(u64),
        _ => return Err(format!("unsupported numeric data type {ty}")),
    })
}

/// Parses the inside of an `miMATRIX` element: (name, value).
fn matrix(data: &[u8], big: bool) -> Result<(String, MatValue), String> {
    if data.is_empty() {
        return Ok((String::new(), MatValue::Empty));
    }
    let mut r = Reader {
        buf: data,
        pos: 0,
        big,
    };
    let (_, flags) = r.element()?;
    let class = *flags.first().ok_or("missing array flags")?;
    // The class is the low byte of the first flags word.
    let class = if big {
        *flags.get(3).ok_or("missing array flags")?
    } else {
        class
    };
    let (dty, dims) = r.element()?;
    let dims: Vec<usize> = numbers(dty, dims, big)?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let (_, name) = r.element()?;
    let name = String::from_utf8_lossy(name)
        .trim_end_matches('\0')
        .to_string();
    let count: usize = dims.iter().product();
    let value = match class {
        MX_CHAR => {
            let (ty, chars) = r.element()?;
            let codes = numbers(ty, chars, big)?;
            // Column-major: for a row vector (1 x n) this is the text in order.
            let text: String = codes
                .iter()
                .map(|&c| char::from_u32(c as u32).unwrap_or('\u{fffd}'))
                .collect();
            MatValue::Char(text)
        }
        MX_CELL => {
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let (_, inner) = r.element()?;
                items.push(matrix(inner, big)?.1);
            }
            MatValue::Cell(items)
        }
        MX_STRUCT => {
            let (ty, len) = r.element()?;
            let len = *numbers(ty, len, big)?
                .first()
                .ok_or("missing field name length")? as usize;
            let (_, names) = r.element()?;
            if len == 0 {
                return Err("zero field name length".into());
            }
            let fields: Vec<String> = names
                .chunks(len)
                .map(|c| {
                    String::from_utf8_lossy(c)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .collect();
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let mut item = BTreeMap::new();
                for f in &fields {
                    let (_, inner) = r.element()?;
                    item.insert(f.clone(), matrix(inner, big)?.1);
                }
                items.push(item);
            }
            MatValue::Struct(items)
        }
        6..=15 => {
            let (ty, real) = r.element()?;
            MatValue::Num {
                dims,
                data: numbers(ty, real, big)?,
            }
        }
        other => return Err(format!("unsupported array class {other}")),
    };
    Ok((name, value))
}

/// Writes level-5 `.mat` files (little-endian, optionally compressed): test fixtures in
/// the real format.
pub mod write {
    use super::*;
    use std::io::Write;

    fn element(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }

    fn header(dims: &[usize], class: u8, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut flags = [0u8; 8];
        flags[0] = class;
        element(&mut out, MI_UINT32, &flags);
        let dims: Vec<u8> = dims
            .iter()
            .flat_map(|&d| (d as i32).to_le_bytes())
            .collect();
        element(&mut out, MI_INT32, &dims);
        element(&mut out, MI_INT8, name.as_bytes());
        out
    }

    /// The bytes of one `miMATRIX` element holding `value` under `name`.
    pub fn matrix(name: &str, value: &MatValue) -> Vec<u8> {
        let body = match value {
            MatValue::Num { dims, data } => {
                let mut b = header(dims, 6, name);
                let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                element(&mut b, MI_DOUBLE, &bytes);
                b
            }
            MatValue::Char(s) => {
                let codes: Vec<u16> = s.encode_utf16().collect();
                let mut b = header(&[1, codes.len()], MX_CHAR, name);
                let bytes: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
                element(&mut b, MI_UINT16, &bytes);
                b
            }
            MatValue::Cell(items) => {
                let mut b = header(&[1, items.len()], MX_CELL, name);
                for item in items {
                    b.extend(matrix("", item));
                }
                b
            }
            MatValue::Struct(items) => {
                let fields: Vec<&String> = items.first().map_or(Vec::new(), |i| i.keys().collect());
                let mut b = header(&[1, items.len()], MX_STRUCT, name);
                let len = 32;
                element(&mut b, MI_INT32, &(len as i32).to_le_bytes());
                let mut names = vec![0u8; len * fields.len()];
                for (i, f) in fields.iter().enumerate() {
                    names[i * len..i * len + f.len()].copy_from_slice(f.as_bytes());
                }
                element(&mut b, MI_INT8, &names);
                for item in items {
                    for f in &fields {
                        b.extend(matrix("", &item[*f]));
                    }
                }
                b
            }
            MatValue::Empty => Vec::new(),
        };
        let mut out = Vec::new();
        element(&mut out, MI_MATRIX, &body);
        out
    }

    /// Writes `vars` to `path`; `compress` wraps each variable in `miCOMPRESSED` (what
    /// MATLAB's default `-v7` does).
    pub fn file(path: &Path, vars: &[(&str, MatValue)], compress: bool) -> std::io::Result<()> {
        let mut out = vec![b' '; 116];
        let text = b"MATLAB 5.0 MAT-file, written by netaug-data";
        out[..text.len()].copy_from_slice(text);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&0x0100u16.to_le_bytes());
        out.extend_from_slice(b"IM");
        for (name, value) in vars {
            let m = matrix(name, value);
            if compress {
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(&m)?;
                let z = z.finish()?;
                out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
                out.extend_from_slice(&(z.len() as u32).to_le_bytes());
                out.extend_from_slice(&z);
            } else {
                out.extend_from_slice(&m);
            }
        }
        std::fs::write(path, out)
    }

    /// A 1 x n row of numbers.
    pub fn row(values: &[f64]) -> MatValue {
        MatValue::Num {
            dims: vec![1, values.len()],
            data: values.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(&'static str, MatValue)> {
        let ann = |x: f64, class: f64, fname: &str| {
            BTreeMap::from([
                ("bbox_x1".to_string(), write::row(&[x])),
                ("class".to_string(), write::row(&[class])),
                ("fname".to_string(), MatValue::Char(fname.into())),
            ])
        };
        vec![
            ("labels", write::row(&[1.0, 102.0, 7.0])),
            (
                "class_names",
                MatValue::Cell(vec![
                    MatValue::Char("AM General Hummer SUV 2000".into()),
                    MatValue::Char("Acura RL Sedan 2012".into()),
                ]),
            ),
            (
                "annotations",
                MatValue::Struct(vec![
                    ann(39.0, 14.0, "00001.jpg"),
                    ann(36.0, 3.0, "00002.jpg"),
                ]),
            ),
        ]
    }

    #[test]
    fn round_trips_numbers_strings_cells_and_structs() {
        let dir = std::env::temp_dir().join(format!("netaug-mat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for compress in [false, true] {
            let path = dir.join(format!("t{compress}.mat"));
            write::file(&path, &sample(), compress).unwrap();
            let vars = read(&path).unwrap();
            for (name, value) in sample() {
                assert_eq!(vars[name], value, "{name} (compressed: {compress})");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"hello").is_err());
        let mut bytes = vec![0u8; 200];
        bytes[126..128].copy_from_slice(b"IM");
        bytes[128] = 14; // an miMATRIX tag claiming more bytes than there are
        bytes[132] = 255;
        assert!(parse(&bytes).is_err());
    }
}
