//! netaug-tensorboard: TensorBoard event files, written in Rust.
//!
//! An event file is a sequence of records (TFRecord framing: the length as a little-endian
//! u64, its masked CRC-32C, the data, the data's masked CRC-32C); each record's data is a
//! protobuf `Event` (wall time, step, and a `Summary` of tagged values). TensorBoard, and
//! the tools that sync its files (W&B, MLflow, Aim), read every file named
//! `*tfevents*` in a folder. [`EventWriter`] writes scalars (`simple_value`, float32) and
//! text (the text plugin's string tensor); [`read_records`] reads the framing back,
//! checking both checksums.
#![warn(missing_docs)]

mod crc32c;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use netaug_protobuf::Message;

pub use crc32c::{crc32c, masked_crc32c};

/// The `file_version` of the first event, as TensorFlow writes it.
const FILE_VERSION: &str = "brain.Event:2";
/// TensorFlow's `DT_STRING`.
const DT_STRING: i64 = 7;

/// Appends events to one new event file.
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it
    /// (`events.out.tfevents.<unix seconds>.<host>.<pid>`, a counter appended when that
    /// name is taken), starting with the file-version event. Never opens an existing file.
    pub fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = now();
        let stem = format!(
            "events.out.tfevents.{}.{}.{}",
            now as u64,
            host(),
            std::process::id()
        );
        let mut n = 0;
        let (file, path) = loop {
            let path = match n {
                0 => dir.join(&stem),
                n => dir.join(format!("{stem}.{n}")),
            };
            match File::create_new(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        };
        let file = BufWriter::new(file);
        let mut writer = Self { file, path };
        let mut event = Message::default();
        event.double(1, now).string(3, FILE_VERSION);
        writer.record(&event.into_bytes())?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar `value` under `tag` at `step` (stored as float32, as TensorBoard does).
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64, wall_time: f64) -> io::Result<()> {
        let mut v = Message::default();
        v.string(1, tag).float(2, value as f32);
        self.summary(step, wall_time, &v)
    }

    /// A text (markdown) value under `tag` at `step`, for TensorBoard's text tab.
    pub fn text(&mut self, tag: &str, step: i64, text: &str, wall_time: f64) -> io::Result<()> {
        let mut plugin = Message::default();
        plugin.string(1, "text");
        let mut metadata = Message::default();
        metadata.message(1, &plugin);
        // A rank-0 string tensor: an empty shape message and one string value.
        let mut tensor = Message::default();
        tensor
            .int(1, DT_STRING)
            .message(2, &Message::default())
            .bytes(8, text.as_bytes());
        let mut v = Message::default();
        v.string(1, tag).message(9, &metadata).message(8, &tensor);
        self.summary(step, wall_time, &v)
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn summary(&mut self, step: i64, wall_time: f64, value: &Message) -> io::Result<()> {
        let mut summary = Message::default();
        summary.message(1, value);
        let mut event = Message::default();
        event.double(1, wall_time).int(2, step).message(5, &summary);
        self.record(&event.into_bytes())
    }

    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.file.write_all(&len)?;
        self.file.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.file.write_all(data)?;
        self.file.write_all(&masked_crc32c(data).to_le_bytes())
    }
}

/// Seconds since the Unix epoch, the wall time events carry.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for event file names (TensorFlow's convention), `localhost` when
/// it cannot be read.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        })
        .unwrap_or_else(|| "localhost".into())
}

/// The data of every record in an event file, each checked against both checksums; an
/// `InvalidData` error names the record that fails. A file cut inside its last record
/// (a writer killed mid-write) ends the list there.
pub fn read_records(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 12 {
        let len_bytes: [u8; 8] = bytes[at..at + 8].try_into().expect("8 bytes");
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if crc != masked_crc32c(&len_bytes) {
            return Err(bad(records.len(), "length checksum"));
        }
        let len = u64::from_le_bytes(len_bytes) as usize;
        let start = at + 12;
        let Some(end) = start.checked_add(len).filter(|&e| e + 4 <= bytes.len()) else {
            break;
        };
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
        if crc != masked_crc32c(&bytes[start..end]) {
            return Err(bad(records.len(), "data checksum"));
        }
        records.push(bytes[start..end].to_vec());
        at = end + 4;
    }
    Ok(records)
}

fn bad(index: usize, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("record {index}: wrong {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_in_order_and_a_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalar("loss", 3, 0.5, 1.0).unwrap();
        w.text("config", 0, "a: 1", 2.0).unwrap();
        w.flush().unwrap();
        let name = w.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        let records = read_records(w.path()).unwrap();
        assert_eq!(records.len(), 3);
        // The scalar event: wall time 1.0, step 3, summary { value { tag, simple_value } }.
        let mut value = Message::default();
        value.string(1, "loss").float(2, 0.5);
        let mut summary = Message::default();
        summary.message(1, &value);
        let mut event = Message::default();
        event.double(1, 1.0).int(2, 3).message(5, &summary);
        assert_eq!(records[1], event.into_bytes());
        assert!(
            records[0].ends_with(FILE_VERSION.as_bytes()),
            "the first event names the file version"
        );

        let mut bytes = std::fs::read(w.path()).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        std::fs::write(w.path(), &bytes).unwrap();
        let err = read_records(w.path()).unwrap_err();
        assert!(
            err.to_string().contains("record 2: wrong data checksum"),
            "{err}"
        );
    }

    #[test]
    fn a_file_cut_inside_its_last_record_keeps_the_whole_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalar("a", 1, 1.0, 1.0).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        std::fs::write(w.path(), &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(read_records(w.path()).unwrap().len(), 1);
    }

    #[test]
    fn two_writers_in_one_folder_write_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = EventWriter::create(dir.path()).unwrap();
        a.scalar("a", 1, 1.0, 1.0).unwrap();
        a.flush().unwrap();
        // Most likely the same second and pid: the second file takes another name and the
        // first keeps its events.
        let b = EventWriter::create(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(read_records(a.path()).unwrap().len(), 2);
        assert_eq!(read_records(b.path()).unwrap().len(), 1);
    }
}
