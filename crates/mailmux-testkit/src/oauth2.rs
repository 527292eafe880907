//! An OAuth 2.0 token introspection endpoint (RFC 7662) for Dovecot's `oauth2` passdb, so
//! bearer-token logins can be tested against a real store without an identity provider.
//!
//! Dovecot (`introspection_mode = post`) POSTs `token=<token>` as a form and expects a JSON
//! object; this endpoint answers `{"active":true,"username":"<user>"}` for the tokens it was
//! given and `{"active":false}` for any other, and records every token it was asked about, so
//! a test can prove which token reached the store, byte for byte.
//!
//! One blocking thread, one request per connection (`Connection: close`), requests capped at
//! 64 KiB: it serves a test, not the internet.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest request read.
const MAX_REQUEST: usize = 64 * 1024;

/// A running introspection endpoint.
#[derive(Debug)]
pub struct Introspection {
    /// Where it listens.
    pub addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Introspection {
    /// Starts an endpoint on 127.0.0.1 that knows `tokens` (token, user name).
    pub fn start(tokens: &[(&str, &str)]) -> Introspection {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the introspection endpoint");
        let addr = listener.local_addr().expect("introspection address");
        let known: HashMap<String, String> = tokens.iter().map(|(t, u)| ((*t).to_owned(), (*u).to_owned())).collect();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &known, &log);
            }
        });
        Introspection { addr, asked }
    }

    /// The URL Dovecot's `introspection_url` takes.
    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// Every token asked about so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("introspection log").clone()
    }
}

fn answer(mut stream: TcpStream, known: &HashMap<String, String>, asked: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_start = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 || request.len() + n > MAX_REQUEST {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    while request.len() < body_start + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&request[body_start..body_start + length]).into_owned();
    let token = body.split('&').find_map(|pair| pair.strip_prefix("token=")).map(percent_decode).unwrap_or_default();
    let json = match known.get(&token) {
        Some(user) => format!(r#"{{"active":true,"username":"{user}"}}"#),
        None => r#"{"active":false}"#.to_owned(),
    };
    asked.lock().expect("introspection log").push(token);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
}

/// `application/x-www-form-urlencoded` value decoding (`+` is a space, `%XX` a byte).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode() {
        assert_eq!(percent_decode("a%2Bb%3D%3D+c"), "a+b== c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn known_tokens_are_active_and_every_token_is_recorded() {
        let endpoint = Introspection::start(&[("good-token", "user1")]);
        let ask = |token: &str| {
            let mut s = TcpStream::connect(endpoint.addr).unwrap();
            let body = format!("token={token}");
            write!(s, "POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        assert!(ask("good-token").ends_with(r#"{"active":true,"username":"user1"}"#));
        assert!(ask("bad-token").ends_with(r#"{"active":false}"#));
        assert_eq!(endpoint.asked(), ["good-token", "bad-token"]);
    }
}
