//! The `auth_http` service nginx's mail proxy asks where each user lives: the user's
//! `mailHost` from the lab's slapd, found the way mailmux finds it (one subtree search
//! `(uid=USER)` from the suffix, on a pool of 4 connections bound as the directory
//! administrator, as mailmux's pool is), answered as `Auth-Status: OK`, `Auth-Server`,
//! `Auth-Port`. Like mailmux and the Dovecot proxy of this benchmark, it does not check the
//! password: nginx passes it on and the store checks it.
//!
//! It runs as a process of its own (`mailmux-bench-peers auth-http FILE`), so that its CPU
//! and memory count as nginx's, and reads its settings from FILE (`key value` lines: listen,
//! ldap, base, bind_dn, bind_pass, imap_port, pop3_port, pid_file), keeping the bind password
//! off the command line. nginx speaks HTTP/1.0 to it, one request per connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// LDAP connections, as in mailmux's search pool.
const POOL_SIZE: usize = 4;
/// Time limits: a request's headers, and an LDAP operation.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const LDAP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most header bytes read from nginx.
const MAX_HEADERS: u64 = 16 * 1024;

struct Settings {
    ldap: String,
    base: String,
    imap_port: u16,
    pop3_port: u16,
}

struct Pool {
    conns: Vec<Ldap>,
    next: AtomicUsize,
}

/// Runs the service from the settings file at `path`; never returns.
pub async fn run(path: &str) -> ! {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("auth-http: read {path}: {e}"));
    let kv: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let get = |k: &str| kv.get(k).copied().unwrap_or_else(|| panic!("auth-http: {path} lacks `{k}`")).to_owned();
    let settings = Arc::new(Settings {
        ldap: get("ldap"),
        base: get("base"),
        imap_port: get("imap_port").parse().expect("imap_port"),
        pop3_port: get("pop3_port").parse().expect("pop3_port"),
    });
    let mut conns = Vec::new();
    for _ in 0..POOL_SIZE {
        let settings = LdapConnSettings::new().set_conn_timeout(LDAP_TIMEOUT);
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(settings, &get("ldap")).await.expect("auth-http: connect to slapd");
        ldap3::drive!(conn);
        ldap.with_timeout(LDAP_TIMEOUT)
            .simple_bind(&get("bind_dn"), &get("bind_pass"))
            .await
            .and_then(|r| r.success())
            .expect("auth-http: bind to slapd");
        conns.push(ldap);
    }
    let pool = Arc::new(Pool { conns, next: AtomicUsize::new(0) });
    let listener = TcpListener::bind(get("listen")).await.expect("auth-http: listen");
    std::fs::write(get("pid_file"), std::process::id().to_string()).expect("auth-http: write the pid file");
    eprintln!("auth-http: listening on {}, directory {}", get("listen"), settings.ldap);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (pool, settings) = (pool.clone(), settings.clone());
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &pool, &settings)).await {
                eprintln!("auth-http: request timed out: {e}");
            }
        });
    }
}

/// Reads one request and answers it.
async fn answer(stream: TcpStream, pool: &Pool, settings: &Settings) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream).take(MAX_HEADERS);
    let (mut user, mut protocol) = (None, None);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            // nginx URL-escapes Auth-User and Auth-Pass; the lab's user names need no escaping.
            if name.eq_ignore_ascii_case("Auth-User") {
                user = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case("Auth-Protocol") {
                protocol = Some(value.trim().to_ascii_lowercase());
            }
        }
    }
    let port = match protocol.as_deref() {
        Some("imap") => settings.imap_port,
        Some("pop3") => settings.pop3_port,
        _ => 0,
    };
    let verdict = match (user, port) {
        (Some(user), port) if port != 0 => match mail_host(pool, settings, &user).await {
            Ok(Some(host)) => format!("Auth-Status: OK\r\nAuth-Server: {host}\r\nAuth-Port: {port}\r\n"),
            Ok(None) => "Auth-Status: Invalid login or password\r\nAuth-Wait: 0\r\n".to_owned(),
            Err(e) => {
                eprintln!("auth-http: directory: {e}");
                "Auth-Status: Temporary server problem, try again later\r\nAuth-Wait: 1\r\n".to_owned()
            }
        },
        _ => "Auth-Status: Invalid login or password\r\nAuth-Wait: 0\r\n".to_owned(),
    };
    let mut stream = reader.into_inner().into_inner();
    let _ = stream.write_all(format!("HTTP/1.0 200 OK\r\n{verdict}\r\n").as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The user's `mailHost` (an address: nginx wants `Auth-Server` as an IP address).
async fn mail_host(pool: &Pool, settings: &Settings, user: &str) -> ldap3::result::Result<Option<String>> {
    let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.conns.len();
    let mut ldap = pool.conns[i].clone();
    let filter = format!("(uid={})", ldap3::ldap_escape(user));
    let (entries, _) = ldap
        .with_timeout(LDAP_TIMEOUT)
        .search(&settings.base, Scope::Subtree, &filter, vec!["mailHost"])
        .await?
        .success()?;
    Ok(entries
        .into_iter()
        .next()
        .and_then(|e| SearchEntry::construct(e).attrs.remove("mailHost").and_then(|v| v.into_iter().next())))
}
