//! A line-oriented client for protocol transcripts.
//!
//! Tests read like the RFC examples: `c.send("a1 LOGIN user1 secret1")`,
//! `c.expect("a1 OK")`. Every line sent and received is recorded; a failed expectation
//! panics with the whole conversation, so a broken test explains itself.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any single read may take before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A client connection with its transcript.
#[derive(Debug)]
pub struct Transcript {
    stream: BufReader<TcpStream>,
    log: Vec<String>,
}

impl Transcript {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Transcript {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Transcript {
            stream: BufReader::new(stream),
            log: Vec::new(),
        }
    }

    /// Sends one line (CRLF added).
    pub async fn send(&mut self, line: &str) {
        self.log.push(format!("C: {line}"));
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes).await;
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.get_mut().write_all(bytes).await {
            self.fail(&format!("write failed: {e}"));
        }
    }

    /// The next line, without CRLF; `None` at end of stream.
    pub async fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match tokio::time::timeout(READ_TIMEOUT, self.stream.read_until(b'\n', &mut buf)).await {
            Err(_) => self.fail("timed out waiting for a line"),
            // A server that closes with unread input resets the connection: closed all the same.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                self.log.push("S: <reset>".into());
                None
            }
            Ok(Err(e)) => self.fail(&format!("read failed: {e}")),
            Ok(Ok(0)) => {
                self.log.push("S: <closed>".into());
                None
            }
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.log.push(format!("S: {line}"));
                Some(line)
            }
        }
    }

    /// The next line; the connection must not be closed.
    pub async fn line(&mut self) -> String {
        match self.try_line().await {
            Some(line) => line,
            None => self.fail("connection closed"),
        }
    }

    /// The next line, which must start with `prefix`.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        if !line.starts_with(prefix) {
            self.fail(&format!("expected a line starting with {prefix:?}"));
        }
        line
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The server must close the connection (after any remaining lines).
    pub async fn expect_closed(&mut self) {
        while self.try_line().await.is_some() {}
    }

    /// The conversation so far.
    pub fn transcript(&self) -> String {
        self.log.join("\n")
    }

    /// Fails the test, printing the conversation.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- transcript ---\n{}\n------------------",
            self.transcript()
        );
    }
}
