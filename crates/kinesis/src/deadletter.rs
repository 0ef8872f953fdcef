//! The dead-letter file: events that cannot be shipped, with the reason, never dropped
//! silently.
//!
//! Format, version 1: NDJSON, one object per line,
//! `{"v":1,"time":"<RFC 3339>","reason":"oversize","event":{…}}` for an event, or
//! `{"v":1,"time":…,"reason":…,"split_id":…,"received":k,"count":n}` for a split event
//! whose chunks did not all arrive. Files are named `dead-letter-<date>.ndjson`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use logtide_event::{Event, Timestamp};

use crate::decode::Incomplete;
use crate::Error;

/// Appends dead letters to a file per day in a directory.
#[derive(Debug)]
pub struct DeadLetters {
    dir: PathBuf,
    written: u64,
}

impl DeadLetters {
    /// Dead letters in `dir` (created when missing).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|source| Error::DeadLetter {
            message: format!("cannot create {}: {source}", dir.display()),
            source,
        })?;
        Ok(DeadLetters {
            dir: dir.to_owned(),
            written: 0,
        })
    }

    /// Dead letters written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn append(&mut self, line: &[u8]) -> Result<(), Error> {
        let now = Timestamp::now().to_string();
        let path = self.dir.join(format!("dead-letter-{}.ndjson", &now[..10]));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| Error::DeadLetter {
                message: format!("cannot open {}: {source}", path.display()),
                source,
            })?;
        f.write_all(line)
            .and_then(|()| f.sync_data())
            .map_err(|source| Error::DeadLetter {
                message: format!("cannot write {}: {source}", path.display()),
                source,
            })?;
        self.written += 1;
        Ok(())
    }

    fn prefix(reason: &str) -> Vec<u8> {
        let mut line = br#"{"v":1,"time":""#.to_vec();
        Timestamp::now().write_rfc3339(&mut line);
        line.extend_from_slice(br#"","reason":"#);
        logtide_event::json::write_str(&mut line, reason);
        line
    }

    /// Writes an event with the reason it could not be shipped.
    pub fn event(&mut self, event: &Event, reason: &str) -> Result<(), Error> {
        let mut line = Self::prefix(reason);
        line.extend_from_slice(br#","event":"#);
        event.write_json(&mut line);
        line.extend_from_slice(b"}\n");
        self.append(&line)
    }

    /// Writes a split event that could not be rejoined.
    pub fn incomplete(&mut self, i: &Incomplete) -> Result<(), Error> {
        let mut line = Self::prefix(i.reason);
        line.extend_from_slice(br#","split_id":"#);
        logtide_event::json::write_str(&mut line, &i.id);
        line.extend_from_slice(
            format!(r#","received":{},"count":{}}}"#, i.received, i.count).as_bytes(),
        );
        line.push(b'\n');
        self.append(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A directory that cannot be made: the error names it, keeps the I/O error as its
    /// source, and says that trying again may help (the events wait in the batch).
    #[test]
    fn an_unwritable_directory_is_a_retryable_error_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = DeadLetters::open(&file.join("sub")).unwrap_err();
        assert!(err.is_retryable());
        assert!(
            err.to_string().starts_with("dead letters: cannot create "),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("the I/O error");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an I/O error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory);
    }

    #[test]
    fn writes_versioned_lines_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let mut dl = DeadLetters::open(&dir.path().join("dl")).unwrap();
        let mut e = Event::new(Timestamp::UNIX_EPOCH);
        e.insert("message", json!("too big")).unwrap();
        dl.event(&e, "oversize").unwrap();
        dl.incomplete(&Incomplete {
            id: "00ff".into(),
            received: 1,
            count: 3,
            reason: "chunks did not arrive in time",
        })
        .unwrap();
        assert_eq!(dl.written(), 2);
        let file = fs::read_dir(dir.path().join("dl"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = fs::read_to_string(file).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["reason"], "oversize");
        assert_eq!(lines[0]["event"]["message"], "too big");
        assert_eq!(lines[1]["split_id"], "00ff");
        assert_eq!(lines[1]["count"], 3);
    }
}
