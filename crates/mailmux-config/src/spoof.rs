//! The spoof maildrop of a POP3 service: what a user whose store is down gets instead of an
//! error (MMP `SpoofMessageFile`, 7u4p26 `SpoofEmptyMailbox` and `SpoofTempFail`).
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `SpoofMessageFile` | none | a file with the administrator's message (RFC 5322; plain text gets a minimal header), served as the one message of the maildrop |
//! | `SpoofEmptyMailbox` | no | serve an empty maildrop instead (the file, if any, is not served) |
//! | `SpoofTempFail` | no | spoof on temporary failures too: a store's `-ERR [SYS/TEMP]` (or another temporary code), and `mailUserStatus` `hold` |
//!
//! The file is read when the configuration is loaded: a missing, empty or over-1-MiB file is
//! an error at its line, so a reload with a bad file changes nothing.

use std::path::Path;

use mailmux_proto::pop3::maildrop::{MAX_MESSAGE, SpoofMessage};

use crate::raw::{Entry, parse_bool};

/// The spoof parameters of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoofConfig {
    /// `SpoofMessageFile`, read and normalised.
    pub message: Option<SpoofMessage>,
    /// `SpoofEmptyMailbox`.
    pub empty_mailbox: bool,
    /// `SpoofTempFail`.
    pub temp_fail: bool,
}

impl SpoofConfig {
    /// Whether a user whose store cannot be reached gets a maildrop rather than an error.
    pub fn enabled(&self) -> bool {
        self.empty_mailbox || self.message.is_some()
    }

    /// The message the maildrop holds: none with `SpoofEmptyMailbox`.
    pub fn served_message(&self) -> Option<SpoofMessage> {
        if self.empty_mailbox { None } else { self.message.clone() }
    }

    /// Takes one entry if it is a spoof parameter: `None` when it is not, else its result.
    pub fn take(&mut self, entry: &Entry, dir: &Path) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        Some(match entry.key.as_str() {
            "spoofmessagefile" if v.is_empty() => {
                self.message = None;
                Ok(())
            }
            "spoofmessagefile" => {
                let path = crate::resolve(dir, v);
                match read_capped(&path) {
                    Err(e) => Err(format!("cannot read {}: {e}", path.display())),
                    Ok(text) if text.len() > MAX_MESSAGE => {
                        Err(format!("{} is {} bytes; at most {MAX_MESSAGE}", path.display(), text.len()))
                    }
                    Ok(text) => match SpoofMessage::new(&text) {
                        Some(message) => {
                            self.message = Some(message);
                            Ok(())
                        }
                        None => Err(format!("{} is empty", path.display())),
                    },
                }
            }
            "spoofemptymailbox" => parse_bool(v).map(|b| self.empty_mailbox = b),
            "spooftempfail" => parse_bool(v).map(|b| self.temp_fail = b),
            _ => return None,
        })
    }
}

/// The file's bytes, reading at most one byte past [`MAX_MESSAGE`] (a device such as
/// `/dev/zero` must not make the loader read forever).
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?.take(MAX_MESSAGE as u64 + 1).read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry { key: name.to_ascii_lowercase(), name: name.to_owned(), value: value.to_owned(), line: 1 }
    }

    #[test]
    fn file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("down.txt"), "Subject: down\n\nback soon\n").unwrap();
        std::fs::write(dir.path().join("empty.txt"), "").unwrap();
        std::fs::write(dir.path().join("big.txt"), vec![b'x'; MAX_MESSAGE + 1]).unwrap();
        let mut c = SpoofConfig::default();
        assert!(!c.enabled());
        assert_eq!(c.take(&entry("SpoofMessageFile", "down.txt"), dir.path()), Some(Ok(())));
        assert!(c.enabled());
        assert_eq!(c.served_message().unwrap().bytes(), b"Subject: down\r\n\r\nback soon\r\n");
        assert_eq!(c.take(&entry("SpoofEmptyMailbox", "1"), dir.path()), Some(Ok(())));
        assert!(c.enabled() && c.served_message().is_none());
        assert_eq!(c.take(&entry("SpoofTempFail", "yes"), dir.path()), Some(Ok(())));
        assert!(c.temp_fail);
        for bad in ["missing.txt", "empty.txt", "big.txt"] {
            assert!(matches!(c.take(&entry("SpoofMessageFile", bad), dir.path()), Some(Err(_))), "{bad}");
        }
        assert!(matches!(c.take(&entry("SpoofTempFail", "maybe"), dir.path()), Some(Err(_))));
        assert!(matches!(c.take(&entry("SpoofMessageFile", "/dev/zero"), dir.path()), Some(Err(_))));
        assert_eq!(c.take(&entry("Banner", "x"), dir.path()), None);
        // The message's text stays out of Debug.
        assert!(!format!("{c:?}").contains("back soon"));
    }
}
