//! Buffering for slow clients (`SlowClientBuffer`): a client reading a 2 MiB message at about
//! 100 KiB/s must not hold its store for the 20 s it takes. With the buffer, Dovecot's side
//! of the transfer is over (nothing left in its socket, nothing unread by mailmux) while the
//! client has read only the first part; with `SlowClientBuffer 0` (flow control only, the
//! control) the store is still sending then. Both are read from the kernel's socket queues
//! (`ss`), the same view an operator has.

mod common;

use std::time::{Duration, Instant};

use common::{Mailmux, lab};
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_IPS};
use mailmux_testkit::transcript::Transcript;

const MESSAGE_BYTES: usize = 2 << 20;
/// How long the client reads slowly before the store's side is judged.
const SLOW_PHASE: Duration = Duration::from_secs(4);

/// Receive and send queues of every established connection to `store` (address:port):
/// (mailmux's unread bytes, the store's unsent or unacknowledged bytes).
fn store_queues(store: &str) -> (u64, u64) {
    let out =
        std::process::Command::new("ss").args(["-tnH", "state", "established"]).output().expect("run ss (iproute2)");
    let (mut unread, mut unsent) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [recv_q, send_q, local, peer, ..] = f[..] else { continue };
        let (recv_q, send_q): (u64, u64) = (recv_q.parse().unwrap_or(0), send_q.parse().unwrap_or(0));
        if peer == store {
            unread += recv_q; // mailmux's socket toward the store
        }
        if local == store {
            unsent += send_q; // the store's socket toward mailmux
        }
    }
    (unread, unsent)
}

/// Logs in on a slow link, FETCHes the big message, reads it at about 100 KiB/s for
/// [`SLOW_PHASE`], and says whether the store's side was over by then (then reads the rest
/// at full speed and checks every byte).
async fn store_done_during_a_slow_fetch(extra: &str) -> bool {
    let (lab, message) = big_lab();
    let user = lab.user_on(0);
    let store = format!("{}:{}", STORE_IPS[0], lab.imap_port);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, extra, "")).await;
    let mut c = Transcript::connect_slow_link(mm.imap, 8 * 1024).await;
    c.expect("* OK").await;
    c.send(&format!("l LOGIN {} {}", user.uid, user.password)).await;
    c.expect("l OK").await;
    c.send("s SELECT INBOX").await;
    c.until("s OK").await;
    c.send("f FETCH 2 BODY.PEEK[]").await;
    let head = c.expect("* 2 FETCH (BODY[] {").await;
    assert_eq!(head, format!("* 2 FETCH (BODY[] {{{}}}", message.len()));
    let started = Instant::now();
    let mut body = Vec::with_capacity(message.len());
    // 5 KiB every 50 ms.
    while started.elapsed() < SLOW_PHASE {
        body.extend(c.read_bytes(5 * 1024, 5 * 1024, Duration::from_millis(50)).await);
    }
    let queues = store_queues(&store);
    let read_slowly = body.len();
    body.extend(c.read_bytes(message.len() - body.len(), 64 * 1024, Duration::ZERO).await);
    assert!(body == *message, "the message changed on the way");
    c.expect(")").await;
    c.expect("f OK").await;
    mm.stop().await;
    assert!(read_slowly < message.len() / 2, "the client was not slow: {read_slowly} bytes in {SLOW_PHASE:?}");
    eprintln!(
        "{extra:?}: after {read_slowly} bytes read slowly, store queues (mailmux unread, store unsent) {queues:?}"
    );
    queues == (0, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_hold_its_store() {
    assert!(
        !store_done_during_a_slow_fetch("default:SlowClientBuffer 0\n").await,
        "control: without the buffer the store must still be sending to a slow client"
    );
    assert!(
        store_done_during_a_slow_fetch("default:SlowClientBuffer 4M\n").await,
        "with a 4 MiB buffer the store's side is over while the client still reads"
    );
}

/// The shared lab, with the big message as message 2 of the first user on store A.
fn big_lab() -> &'static (&'static Lab, Vec<u8>) {
    static LAB: std::sync::OnceLock<(&'static Lab, Vec<u8>)> = std::sync::OnceLock::new();
    LAB.get_or_init(|| {
        let lab = lab(2);
        let mut message = b"From: postmaster@example.com\r\nSubject: big\r\n\r\n".to_vec();
        let mut n = 0u64;
        while message.len() < MESSAGE_BYTES {
            message.extend_from_slice(format!("{n:010} {:-<65}\r\n", "").as_bytes());
            n += 1;
        }
        let user = lab.user_on(0);
        lab.stores[user.store].add_message(&user.uid, "1700000001.M2P1.big", &message);
        (lab, message)
    })
}
