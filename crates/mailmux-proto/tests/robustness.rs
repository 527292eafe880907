//! Every machine on mangled input: no panic, and each gives up or answers within bounds.
//!
//! A deterministic stand-in for the fuzz targets in `fuzz/`, so CI exercises the same
//! property on every run: valid transcripts are mutated (bytes flipped, inserted, dropped,
//! spliced) and fed in random chunk sizes.

use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};
use mailmux_proto::imap::replay::{ImapReplay, ReplayEvent};
use mailmux_proto::ldap_filter;
use mailmux_proto::pop3::front::{Pop3Event, Pop3Front, Pop3Settings};
use mailmux_proto::pop3::replay::{Pop3Replay, Pop3ReplayEvent};
use mailmux_proto::sasl::{ChallengeSeed, Exchange, SaslError, SaslMechanism, Step};
use mailmux_proto::{BearerMechanism, Proof, Rejection, ReplayCredentials, ReplayMechanism, Secret};

const ROUNDS: usize = 4_000;

/// xorshift64*: small, deterministic, good enough to mangle bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mangle(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = rng.next() as u8;
            }
            1 => data.insert(at, b"\r\n{}+*\"\\ \x00\xff"[rng.below(11)]),
            2 if at < data.len() => {
                data.remove(at);
            }
            3 => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                data.splice(at..at, other[from..].iter().copied());
            }
            _ => data.extend(std::iter::repeat_n(b'A', rng.below(600))),
        }
    }
    data
}

fn chunks<'a>(rng: &mut Rng, data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + rng.below(64)).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

#[test]
fn imap_front_survives_mangled_clients() {
    let seeds: &[&[u8]] = &[
        b"a CAPABILITY\r\nb LOGIN {3}\r\njoe {2+}\r\npw\r\n",
        b"a AUTHENTICATE PLAIN\r\nAGpvZQBwdw==\r\nb ID (\"x\" \"y\")\r\n",
        b"a AUTHENTICATE LOGIN am9l\r\ncHc=\r\nc LOGOUT\r\n",
        b"a STARTTLS\r\nb AUTHENTICATE EXTERNAL =\r\n",
        b"x LOGIN \"a\\\"b\" \"c\"\r\ny SELECT INBOX\r\n",
        b"a AUTHENTICATE CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\nb AUTHENTICATE CRAM-MD5\r\n*\r\n",
        b"a AUTHENTICATE OAUTHBEARER bixhPWpvZSwBYXV0aD1CZWFyZXIgdG9rAQE=\r\nAQ==\r\nb NOOP\r\n",
        b"a AUTHENTICATE XOAUTH2\r\ndXNlcj1qb2UBYXV0aD1CZWFyZXIgdG9rAQE=\r\n\r\nc LOGOUT\r\n",
    ];
    let mut rng = Rng(0x5eed_1234);
    for round in 0..ROUNDS {
        let input = mangle(&mut rng, seeds);
        let mut front = ImapFront::new(FrontSettings {
            capabilities: "IMAP4rev1".into(),
            starttls: true,
            restrict_plaintext: round % 2 == 0,
            tls: false,
            client_certificate: round % 3 == 0,
            crams: (round % 4 != 1).then(|| ChallengeSeed::new("1896.697170952", "x")),
            bearer: round % 5 != 1,
            banner: "t".into(),
            limits: Limits::default(),
        });
        let mut written = 0usize;
        'feed: for piece in chunks(&mut rng, &input) {
            front.feed(piece);
            while let Some(event) = front.next_event() {
                match event {
                    FrontEvent::Login { tag, .. } => front.reject(&tag, &Rejection::AuthenticationFailed),
                    FrontEvent::StartTls => front.tls_started(round % 3 == 0),
                    FrontEvent::Logout | FrontEvent::Close => break 'feed,
                }
            }
            written += front.take_output().len();
        }
        // Answers are bounded by what was asked: no amplification loop.
        assert!(written <= 200 + input.len() * 64, "{written} bytes for {} in", input.len());
    }
}

#[test]
fn pop3_front_survives_mangled_clients() {
    let seeds: &[&[u8]] = &[
        b"CAPA\r\nUSER joe\r\nPASS p w\r\n",
        b"AUTH PLAIN\r\nAGpvZQBwdw==\r\nQUIT\r\n",
        b"AUTH LOGIN\r\nam9l\r\ncHc=\r\nSTAT\r\n",
        b"STLS\r\nAUTH EXTERNAL\r\n=\r\n",
        b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nAUTH CRAM-MD5\r\nbXJvc2UgYzRjOTMzNGJhYzU2MGVjYzk3OWU1ODAwMWIzZTIyZmI=\r\n",
        b"AUTH OAUTHBEARER bixhPWpvZSwBYXV0aD1CZWFyZXIgdG9rAQE=\r\nAQ==\r\nAUTH XOAUTH2\r\ndXNlcj1qb2UBYXV0aD1CZWFyZXIgdG9rAQE=\r\n",
    ];
    let mut rng = Rng(0xfeed_beef);
    for round in 0..ROUNDS {
        let input = mangle(&mut rng, seeds);
        let mut front = Pop3Front::new(Pop3Settings {
            banner: "t".into(),
            stls: true,
            restrict_plaintext: round % 2 == 0,
            tls: false,
            client_certificate: round % 3 == 0,
            crams: (round % 4 != 1).then(|| ChallengeSeed::new("1896.697170952", "x")),
            bearer: round % 5 != 1,
            capabilities: vec!["TOP".into(), "..".into()],
        });
        'feed: for piece in chunks(&mut rng, &input) {
            front.feed(piece);
            while let Some(event) = front.next_event() {
                match event {
                    Pop3Event::Login(_) if round % 2 == 0 => front.reject(&Rejection::AuthenticationFailed),
                    Pop3Event::Login(_) => front.reject(&Rejection::Unavailable { alert: None }),
                    Pop3Event::StartTls => front.tls_started(false),
                    Pop3Event::Quit | Pop3Event::Close => break 'feed,
                }
            }
            front.take_output();
        }
    }
}

#[test]
fn store_replays_survive_mangled_stores() {
    let imap: &[&[u8]] = &[
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+] hi\r\n+ \r\nM1 OK [CAPABILITY IMAP4rev1] in\r\n",
        b"* OK hi\r\nM1 OK in\r\n* CAPABILITY IMAP4rev1\r\nM2 OK done\r\n",
    ];
    let imap_bearer: &[&[u8]] = &[
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER AUTH=XOAUTH2] hi\r\n+ e30=\r\nM1 NO no\r\n",
        b"* OK hi\r\n* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER\r\nM3 OK\r\n+ \r\nM1 OK [CAPABILITY X] in\r\n",
    ];
    let pop3_bearer: &[&[u8]] = &[
        b"+OK hi\r\n+OK\r\nSASL PLAIN OAUTHBEARER XOAUTH2\r\n.\r\n+ e30=\r\n-ERR [AUTH] no\r\n",
        b"+OK hi\r\n+OK\r\nSASL XOAUTH2 OAUTHBEARER\r\n.\r\n+ \r\n+OK in\r\n",
    ];
    let pop3: &[&[u8]] = &[b"+OK hi\r\n+OK\r\n+OK in\r\n", b"+OK\r\n-ERR [SYS/TEMP] x\r\n"];
    let mut rng = Rng(0xabcd_ef01);
    for round in 0..ROUNDS {
        let bearer = round % 7 < 2;
        let credentials = if bearer {
            ReplayCredentials::Bearer {
                user: "joe".into(),
                // Long enough, every other time, to go after a POP3 continuation.
                token: Secret::new(if round % 2 == 0 { "ya29.tok".to_owned() } else { "t".repeat(300) }),
                mechanism: if round % 7 == 0 { BearerMechanism::OAuthBearer } else { BearerMechanism::XOAuth2 },
            }
        } else {
            ReplayCredentials::Password {
                authzid: (round % 3 == 0).then(|| "joe".to_owned()),
                authcid: "u".into(),
                password: Secret::new(if round % 2 == 0 { "pässword" } else { "pw" }),
            }
        };
        let (imap, pop3) = if bearer { (imap_bearer, pop3_bearer) } else { (imap, pop3) };
        let mechanism = if round % 4 < 2 { ReplayMechanism::Login } else { ReplayMechanism::Plain };
        let mut m = ImapReplay::new(mechanism, credentials.clone(), round % 5 == 0);
        let input = mangle(&mut rng, imap);
        for piece in chunks(&mut rng, &input) {
            m.feed(piece);
            match m.next_event() {
                Some(ReplayEvent::StartTls) => m.tls_started(),
                Some(_) => break,
                None => {}
            }
            m.take_output();
        }
        let mut m = Pop3Replay::new(mechanism, credentials, round % 5 == 0);
        let input = mangle(&mut rng, pop3);
        for piece in chunks(&mut rng, &input) {
            m.feed(piece);
            match m.next_event() {
                Some(Pop3ReplayEvent::StartTls) => m.tls_started(),
                Some(_) => break,
                None => {}
            }
            m.take_output();
        }
    }
}

#[test]
fn escaped_values_always_match_themselves_and_nothing_parses_into_a_panic() {
    let seeds: &[&[u8]] = &[b"(&(uid=joe)(|(mail=*@x*)(!(cn=a\\2a))))", b"uid=*", b"(mailHost>=a)"];
    let mut rng = Rng(0x00dd_ba11);
    for _ in 0..ROUNDS {
        let text = String::from_utf8_lossy(&mangle(&mut rng, seeds)).into_owned();
        let values = vec![text.clone()];
        if let Ok(filter) = ldap_filter::parse(&text) {
            // Lower-casing once up front must give the same answer as lower-casing per match.
            let lowered = vec![text.to_lowercase()];
            assert_eq!(
                filter.matches(&|_| values.as_slice()),
                filter.matches_lowercased(&|_| lowered.as_slice()),
                "{text:?}"
            );
        }
        let filter =
            ldap_filter::parse(&format!("(uid={})", ldap_filter::escape_value(&text))).expect("escaped value parses");
        assert!(filter.matches(&|_| values.as_slice()), "{text:?}");
    }
}

#[test]
fn sasl_exchanges_survive_mangled_responses() {
    let seeds: &[&[u8]] = &[
        b"AGpvZQBwdw==\r\n",
        b"am9l\r\ncHc=\r\n",
        b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n",
        b"bixhPWpvZSwBaG9zdD14AXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHRvawEB\r\nAQ==\r\n",
        b"dXNlcj1qb2UBYXV0aD1CZWFyZXIgdG9rAQE=\r\n\r\n",
        b"=\r\n*\r\n",
    ];
    let mut rng = Rng(0x5a51_0001);
    for round in 0..ROUNDS {
        let mechanism = SaslMechanism::ALL[round % SaslMechanism::ALL.len()];
        let input = mangle(&mut rng, seeds);
        let mut lines = input.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let initial = if round % 3 == 0 { lines.next() } else { None };
        let (mut exchange, mut step) = Exchange::start(mechanism, initial, Some("<1.2@x>".to_owned()));
        let mut answered = initial.into_iter().map(<[u8]>::len).collect::<Vec<_>>();
        let ended = loop {
            match step {
                Step::Challenge(_) => {
                    let Some(line) = lines.next() else { break false };
                    answered.push(line.len());
                    step = exchange.respond(line);
                }
                Step::Done(proof) => {
                    // A proof only from responses within the mechanism's cap, and never one
                    // that names nobody, except a certificate's.
                    assert!(answered.iter().all(|n| *n <= mechanism.max_response() + 2), "{mechanism:?}");
                    assert!(
                        matches!(proof, Proof::Certificate { .. })
                            || mechanism == SaslMechanism::Login
                            || !proof.login().is_empty()
                    );
                    match exchange.refuse() {
                        Some(_) => {
                            assert!(mechanism.bearer().is_some());
                            assert_eq!(exchange.respond(lines.next().unwrap_or_default()), Step::Refused);
                        }
                        None => assert!(mechanism.bearer().is_none()),
                    }
                    break true;
                }
                Step::Failed(_) | Step::Refused => break true,
            }
        };
        if ended {
            assert_eq!(exchange.respond(b"AGpvZQBwdw=="), Step::Failed(SaslError::OutOfSequence), "{mechanism:?}");
        }
    }
}
