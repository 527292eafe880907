//! The codecs alone, no I/O: how fast the IMAP framer cuts a pipelined stream into commands,
//! and what one pre-login command costs the IMAP and POP3 front machines, from bytes in to the
//! event the session acts on. `cargo bench -p mailmux-bench-codecs`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mailmux_proto::imap::framing::{CommandFramer, Frame, Limits};
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};
use mailmux_proto::pop3::front::{Pop3Event, Pop3Front, Pop3Settings};

/// A pipelined pre-login stream of the commands clients send, literals (LITERAL+) included.
fn pipelined_commands(len: usize) -> Vec<u8> {
    let shapes: [&[u8]; 4] = [
        b"a1 NOOP\r\n",
        b"a2 CAPABILITY\r\n",
        b"a3 ID (\"name\" \"Thunderbird\" \"version\" \"128.5.0\")\r\n",
        b"a4 LOGIN {13+}\r\nuser1@example {12+}\r\nsecret-12345\r\n",
    ];
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        for shape in shapes {
            out.extend_from_slice(shape);
        }
    }
    out
}

fn framing(c: &mut Criterion) {
    let stream = pipelined_commands(1 << 20);
    let mut group = c.benchmark_group("imap_framing");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for chunk in [4096, 64 * 1024] {
        group.bench_function(format!("1 MiB of commands in {chunk}-byte reads"), |b| {
            b.iter(|| {
                let mut framer = CommandFramer::new(Limits::default());
                let mut commands = 0usize;
                for piece in stream.chunks(chunk) {
                    framer.feed(piece);
                    while let Some(frame) = framer.next_frame() {
                        if matches!(frame, Frame::Command(_)) {
                            commands += 1;
                        }
                    }
                }
                black_box(commands)
            });
        });
    }
    group.finish();
}

fn imap_front() -> ImapFront {
    let mut front = ImapFront::new(FrontSettings {
        capabilities: "IMAP4rev1 ID LITERAL+ SASL-IR".into(),
        starttls: false,
        restrict_plaintext: false,
        tls: false,
        client_certificate: false,
        crams: None,
        bearer: false,
        banner: "mailmux ready".into(),
        limits: Limits::default(),
    });
    front.take_output();
    front
}

fn pop3_front() -> Pop3Front {
    let mut front = Pop3Front::new(Pop3Settings {
        banner: "mailmux ready".into(),
        stls: false,
        restrict_plaintext: false,
        tls: false,
        client_certificate: false,
        crams: None,
        bearer: false,
        capabilities: vec!["TOP".into(), "UIDL".into()],
    });
    front.take_output();
    front
}

fn prelogin(c: &mut Criterion) {
    let mut group = c.benchmark_group("prelogin");
    group.bench_function("IMAP LOGIN to a login event", |b| {
        b.iter_batched(
            imap_front,
            |mut front| {
                front.feed(b"a1 LOGIN user1@example.com secret-12345\r\n");
                assert!(matches!(front.next_event(), Some(FrontEvent::Login { .. })));
                front
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("IMAP AUTHENTICATE PLAIN (SASL-IR) to a login event", |b| {
        b.iter_batched(
            imap_front,
            |mut front| {
                front.feed(b"a1 AUTHENTICATE PLAIN AHVzZXIxQGV4YW1wbGUuY29tAHNlY3JldC0xMjM0NQ==\r\n");
                assert!(matches!(front.next_event(), Some(FrontEvent::Login { .. })));
                front
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("IMAP CAPABILITY answered", |b| {
        b.iter_batched(
            imap_front,
            |mut front| {
                front.feed(b"a1 CAPABILITY\r\n");
                assert!(front.next_event().is_none());
                black_box(front.take_output())
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("POP3 USER and PASS to a login event", |b| {
        b.iter_batched(
            pop3_front,
            |mut front| {
                front.feed(b"USER user1@example.com\r\nPASS secret-12345\r\n");
                assert!(matches!(front.next_event(), Some(Pop3Event::Login(_))));
                front
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, framing, prelogin);
criterion_main!(benches);
