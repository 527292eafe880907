//! The little of HTTP/1.x the control endpoints speak (RFC 9112): one request head in, one
//! response out, then the connection closes.
//!
//! ```text
//! feed bytes ─▶ [`parse_head`] ─┬─ Ok(None): no blank line yet (and fewer than MAX_HEAD bytes): read more
//!                               ├─ Ok(Some((head, len))): GET/HEAD/POST, path, decoded query
//!                               └─ Err(..): answer [`HeadError::status`] and close
//! ```
//!
//! Deliberately narrow: requests carry no body (admin commands take their arguments in the
//! query string), so `Content-Length` other than 0 and any `Transfer-Encoding` are refused,
//! which leaves no request smuggling to get wrong. Lines end in CRLF; a bare CR or LF, a
//! control character, or a head over [`MAX_HEAD`] bytes is an error, never a panic.

/// The largest request head accepted (request line and headers, final blank line included).
pub const MAX_HEAD: usize = 8 * 1024;

/// Request headers accepted, at most.
pub const MAX_HEADERS: usize = 64;

/// The methods the control endpoints answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Read, headers only.
    Head,
    /// Act (reload, kick).
    Post,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The path, as sent (no percent-decoding: the paths served are plain words).
    pub path: String,
    /// Query parameters, percent-decoded (`+` is a space), in order.
    pub query: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why a request head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// No end of the head within [`MAX_HEAD`] bytes, or too many headers.
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed(&'static str),
    /// A method other than GET, HEAD, POST.
    Method,
    /// A body was announced.
    Body,
}

impl HeadError {
    /// The status the client is answered with.
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::Malformed(_) => 400,
            HeadError::Method => 405,
            HeadError::Body => 413,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "request head over {MAX_HEAD} bytes or {MAX_HEADERS} headers"),
            HeadError::Malformed(why) => write!(f, "malformed request: {why}"),
            HeadError::Method => f.write_str("method not allowed"),
            HeadError::Body => f.write_str("requests carry no body here"),
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete, else
/// the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(end) = memchr::memmem::find(window, b"\r\n\r\n") else {
        // Whatever is there already must be valid so far: a client cannot keep a
        // connection busy with garbage until the cap.
        if !window.iter().all(|&b| is_head_byte(b)) {
            return Err(HeadError::Malformed("control character"));
        }
        return if buf.len() >= MAX_HEAD { Err(HeadError::TooLarge) } else { Ok(None) };
    };
    let head = &window[..end];
    if !head.iter().all(|&b| is_head_byte(b)) {
        return Err(HeadError::Malformed("control character"));
    }
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // Every line but the last ended in CRLF (the split removed the LF); the last is followed
    // by the terminator. A CR anywhere else, or an LF without its CR, is malformed.
    if head.windows(2).filter(|w| w == b"\r\n").count() != head.iter().filter(|&&b| b == b'\n').count()
        || head.iter().filter(|&&b| b == b'\r').count() != head.iter().filter(|&&b| b == b'\n').count()
    {
        return Err(HeadError::Malformed("bare CR or LF"));
    }
    let request_line = lines.next().unwrap_or_default();
    let request_line = std::str::from_utf8(request_line).map_err(|_| HeadError::Malformed("request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed("version"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => return Err(HeadError::Method),
    };
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("target"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = parse_query(query).ok_or(HeadError::Malformed("query"))?;
    let mut count = 0;
    for line in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        let line = std::str::from_utf8(line).map_err(|_| HeadError::Malformed("header"))?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("header"));
        };
        if name.is_empty() || name.bytes().any(|b| !is_token_byte(b)) {
            return Err(HeadError::Malformed("header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            return Err(HeadError::Body);
        }
    }
    Ok(Some((RequestHead { method, path: path.to_owned(), query }, end + 4)))
}

/// Bytes a request head may hold: visible ASCII, space, tab, CR, LF, and UTF-8 beyond ASCII.
fn is_head_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\r' | b'\n' | 0x20..=0x7e | 0x80..)
}

/// `tchar` of RFC 9110 section 5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `a=1&b=x%40y` → pairs, percent-decoded; `None` when an escape is broken or the result
/// is not UTF-8.
fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(name)?, percent_decode(value)?));
    }
    Some(pairs)
}

/// Percent-decoding with `+` for space (`application/x-www-form-urlencoded`).
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                // Two hex digits exactly: from_str_radix alone would take "%+f".
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a query value (everything but unreserved characters), for clients.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reason phrase of the statuses the endpoints send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole response that closes the connection; `head_only` leaves the body out (HEAD).
pub fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn a_curl_request() {
        let text = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9143\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
        let (head, len) = parse(text).unwrap().unwrap();
        assert_eq!(len, text.len());
        assert_eq!(head, RequestHead { method: Method::Get, path: "/metrics".into(), query: vec![] });
    }

    #[test]
    fn queries_are_decoded() {
        let (head, _) =
            parse("POST /kick?user=joe%40siroe.com&why=moving+mailbox&flag HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.path, "/kick");
        assert_eq!(head.param("user"), Some("joe@siroe.com"));
        assert_eq!(head.param("why"), Some("moving mailbox"));
        assert_eq!(head.param("flag"), Some(""));
        assert_eq!(head.param("nope"), None);
        assert_eq!(percent_decode(&percent_encode("ü ser+@x/y&z=1")).as_deref(), Some("ü ser+@x/y&z=1"));
    }

    #[test]
    fn incomplete_heads_ask_for_more_fed_in_any_pieces() {
        let text = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nextra";
        for cut in 0..text.len() - 5 {
            assert_eq!(parse_head(&text[..cut]), Ok(None), "cut at {cut}");
        }
        let (head, len) = parse_head(text).unwrap().unwrap();
        assert_eq!((head.path.as_str(), len), ("/health", text.len() - 5));
    }

    #[test]
    fn hostile_heads_are_refused() {
        let cases: &[(&str, HeadError)] = &[
            ("DELETE / HTTP/1.1\r\n\r\n", HeadError::Method),
            ("GET / HTTP/2\r\n\r\n", HeadError::Malformed("version")),
            ("GET  / HTTP/1.1\r\n\r\n", HeadError::Malformed("request line")),
            ("GET http://x/ HTTP/1.1\r\n\r\n", HeadError::Malformed("target")),
            ("GET / HTTP/1.1\nHost: x\r\n\r\n", HeadError::Malformed("bare CR or LF")),
            ("GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n", HeadError::Malformed("bare CR or LF")),
            ("GET / HTTP/1.1\r\nHost x\r\n\r\n", HeadError::Malformed("header")),
            ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", HeadError::Malformed("header name")),
            ("GET /?u=%4 HTTP/1.1\r\n\r\n", HeadError::Malformed("query")),
            ("GET /?u=%ff HTTP/1.1\r\n\r\n", HeadError::Malformed("query")),
            ("POST /kick HTTP/1.1\r\nContent-Length: 5\r\n\r\n", HeadError::Body),
            ("POST /kick HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::Body),
            ("GET / HTTP/1.1\r\nX: \x00\r\n\r\n", HeadError::Malformed("control character")),
            ("GET /\x01", HeadError::Malformed("control character")),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(*want), "{text:?}");
        }
        assert!(parse("POST /reload HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap().is_some());
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse(&many), Err(HeadError::TooLarge));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
        assert_eq!(HeadError::TooLarge.status(), 431);
    }

    /// The fuzz target's properties over every one- and two-byte change of a few heads
    /// (a deterministic stand-in for `fuzz/fuzz_targets/http_request.rs` in `cargo test`).
    #[test]
    fn mutated_heads_never_panic_and_prefixes_ask_for_more() {
        let seeds: [&[u8]; 3] = [
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /kick?user=a%40b HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            b"HEAD /ready HTTP/1.1\r\n\r\n",
        ];
        let check = |data: &[u8]| match parse_head(data) {
            Ok(Some((head, len))) => {
                assert!(len <= data.len() && head.path.starts_with('/'));
                for cut in 0..len {
                    assert_eq!(parse_head(&data[..cut]), Ok(None), "{data:?} cut at {cut}");
                }
            }
            Ok(None) => assert!(data.len() < MAX_HEAD),
            Err(_) => {}
        };
        for seed in seeds {
            for i in 0..seed.len() {
                for b in [0u8, b'\r', b'\n', b' ', b'%', b'?', b':', 0x7f, 0xc3, 0xff] {
                    let mut data = seed.to_vec();
                    data[i] = b;
                    check(&data);
                    data.insert(i, b);
                    check(&data);
                    data.remove(i);
                    data.remove(i);
                    check(&data);
                }
            }
        }
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let r = response(200, "text/plain", b"ok\n", false);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\
             Cache-Control: no-store\r\n\r\nok\n"
        );
        assert!(response(200, "text/plain", b"ok\n", true).ends_with(b"\r\n\r\n"));
    }
}
