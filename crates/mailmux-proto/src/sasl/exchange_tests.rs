//! The exchange on every mechanism, its lines fed whole and cut in pieces down to single bytes
//! (through the POP3 line splitter, as a front would).

use super::*;
use crate::line::LineBuffer;
use crate::sasl::{encode, verify_cram_md5};

const CHUNKS: [usize; 5] = [1, 2, 3, 5, usize::MAX];

/// Starts `mechanism` and answers each challenge with the client's next line, its bytes fed
/// `chunk` at a time; returns the challenges (decoded) and the last step.
fn run(
    mechanism: SaslMechanism,
    initial: Option<&str>,
    challenge: Option<&str>,
    client: &[u8],
    chunk: usize,
) -> (Vec<Vec<u8>>, Step, Exchange) {
    let (mut exchange, mut step) = Exchange::start(mechanism, initial.map(str::as_bytes), challenge.map(str::to_owned));
    let mut challenges = Vec::new();
    let mut lines = LineBuffer::new(64 * 1024);
    let mut pieces = client.chunks(chunk.min(client.len()).max(1));
    while let Step::Challenge(c) = &step {
        challenges.push(c.clone());
        let line = loop {
            match lines.next_line().expect("lines fit") {
                Some(line) => break Some(line),
                None => match pieces.next() {
                    Some(piece) => lines.feed(piece),
                    None => break None,
                },
            }
        };
        let Some(line) = line else { break };
        step = exchange.respond(line.expose());
    }
    (challenges, step, exchange)
}

/// Client lines, CRLF after each.
fn lines(l: &[&str]) -> Vec<u8> {
    l.iter().flat_map(|l| [l.as_bytes(), b"\r\n"]).flatten().copied().collect()
}

fn password(login: &str, pw: &str) -> Step {
    Step::Done(Proof::Password { login: login.into(), password: Secret::new(pw) })
}

#[test]
fn plain_rfc_4616_example_as_initial_response_and_after_a_challenge() {
    // RFC 4616 §4: "\0tim\0tanstaaftanstaaf".
    let blob = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
    assert_eq!(encode(b"\0tim\0tanstaaftanstaaf"), blob);
    for chunk in CHUNKS {
        let (challenges, step, _) = run(SaslMechanism::Plain, Some(blob), None, b"", chunk);
        assert_eq!((challenges.len(), step), (0, password("tim", "tanstaaftanstaaf")));
        let (challenges, step, _) = run(SaslMechanism::Plain, None, None, &lines(&[blob]), chunk);
        assert_eq!((challenges, step), (vec![vec![]], password("tim", "tanstaaftanstaaf")), "chunk {chunk}");
    }
}

#[test]
fn login_prompts_for_what_the_initial_response_did_not_give() {
    for chunk in CHUNKS {
        let (challenges, step, _) = run(SaslMechanism::Login, None, None, &lines(&["am9l", "cCB3"]), chunk);
        assert_eq!(challenges, vec![b"Username:".to_vec(), b"Password:".to_vec()]);
        assert_eq!(step, password("joe", "p w"));
        let (challenges, step, _) = run(SaslMechanism::Login, Some("am9l"), None, &lines(&["cCB3"]), chunk);
        assert_eq!((challenges, step), (vec![b"Password:".to_vec()], password("joe", "p w")));
    }
    // An empty user name is the front's to refuse (as a failed login, not a syntax error).
    let (_, step, _) = run(SaslMechanism::Login, Some("="), None, &lines(&["="]), 64);
    assert_eq!(step, password("", ""));
}

#[test]
fn external_with_and_without_an_authorization_identity() {
    for chunk in CHUNKS {
        let (c, step, _) = run(SaslMechanism::External, Some("="), None, b"", chunk);
        assert_eq!((c.len(), step), (0, Step::Done(Proof::Certificate { authzid: None })));
        let (c, step, _) = run(SaslMechanism::External, None, None, &lines(&["am9l"]), chunk);
        assert_eq!((c, step), (vec![vec![]], Step::Done(Proof::Certificate { authzid: Some("joe".into()) })));
    }
    let (_, step, _) = run(SaslMechanism::External, Some("/w=="), None, b"", 64);
    assert_eq!(step, Step::Failed(SaslError::NotUtf8));
}

#[test]
fn cram_md5_rfc_2195_example() {
    let challenge = "<1896.697170952@postoffice.reston.mci.net>";
    let answer = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";
    for chunk in CHUNKS {
        let (challenges, step, _) = run(SaslMechanism::CramMd5, None, Some(challenge), &lines(&[answer]), chunk);
        assert_eq!(challenges, vec![challenge.as_bytes().to_vec()]);
        let Step::Done(Proof::ChallengeResponse { login, challenge: issued, digest, kind }) = step else {
            panic!("{step:?}")
        };
        assert_eq!((login.as_str(), issued.expose(), kind), ("tim", challenge.as_bytes(), ChallengeKind::CramMd5));
        assert_eq!(digest.expose(), b"b913a602c7eda7a495b4e6e7334d3890");
        assert!(verify_cram_md5(issued.expose(), b"tanstaaftanstaaf", digest.expose()));
    }
    // Server first: an initial response is a protocol error (RFC 4422 §5), even an empty one.
    for ir in [answer, "="] {
        let (_, step, _) = run(SaslMechanism::CramMd5, Some(ir), Some(challenge), b"", 64);
        assert_eq!(step, Step::Failed(SaslError::UnexpectedInitialResponse));
    }
    let (_, step, _) = run(SaslMechanism::CramMd5, None, None, b"", 64);
    assert_eq!(step, Step::Failed(SaslError::NotOffered));
    let (_, step, _) = run(SaslMechanism::CramMd5, None, Some(challenge), &lines(&[&encode(b"tim")]), 64);
    assert_eq!(step, Step::Failed(SaslError::BadDigest));
}

#[test]
fn oauthbearer_rfc_7628_example_then_the_error_report() {
    // RFC 7628 §4.1's client response (host and port pairs included).
    let ir = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
    let raw = decode_response(ir.as_bytes(), 16384).unwrap();
    let expected = Step::Done(Proof::BearerToken {
        login: "user@example.com".into(),
        token: Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        mechanism: BearerMechanism::OAuthBearer,
        raw_response: raw,
    });
    for chunk in CHUNKS {
        let (c, step, mut exchange) = run(SaslMechanism::OAuthBearer, Some(ir), None, b"", chunk);
        assert_eq!((c.len(), &step), (0, &expected));
        assert_eq!(exchange.refuse(), Some(br#"{"status":"invalid_token","schemes":"bearer"}"#.to_vec()));
        assert_eq!(exchange.respond(b"AQ=="), Step::Refused);
        assert_eq!(exchange.respond(b"AQ=="), Step::Failed(SaslError::OutOfSequence), "the exchange is over");
        let (c, step, _) = run(SaslMechanism::OAuthBearer, None, None, &lines(&[ir]), chunk);
        assert_eq!((c, step), (vec![vec![]], expected.clone()));
    }
}

#[test]
fn xoauth2_google_example_then_the_error_report() {
    let message = b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01";
    let blob = encode(message);
    // Google's documentation shows this base64 for its example.
    assert_eq!(
        blob,
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    );
    for chunk in CHUNKS {
        let (c, step, mut exchange) = run(SaslMechanism::XOAuth2, None, None, &lines(&[&blob]), chunk);
        assert_eq!(c, vec![vec![]]);
        let Step::Done(Proof::BearerToken { login, token, mechanism, raw_response }) = step else { panic!("{step:?}") };
        assert_eq!((login.as_str(), mechanism), ("someuser@example.com", BearerMechanism::XOAuth2));
        assert_eq!(token.expose(), b"ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
        assert_eq!(raw_response.expose(), message);
        assert_eq!(exchange.refuse(), Some(br#"{"status":"401","schemes":"bearer"}"#.to_vec()));
        // XOAUTH2 clients answer the report with an empty response; anything ends it.
        assert_eq!(exchange.respond(b""), Step::Refused);
    }
}

#[test]
fn cancel_at_every_waiting_state() {
    let cases: [(SaslMechanism, Option<&str>, &[&str]); 6] = [
        (SaslMechanism::Plain, None, &["*"]),
        (SaslMechanism::Login, None, &["*"]),
        (SaslMechanism::Login, None, &["am9l", "*"]),
        (SaslMechanism::External, None, &[" * "]),
        (SaslMechanism::CramMd5, None, &["*"]),
        (SaslMechanism::OAuthBearer, None, &["*"]),
    ];
    for (mechanism, ir, client) in cases {
        for chunk in CHUNKS {
            let (_, step, mut exchange) = run(mechanism, ir, Some("<1.1@x>"), &lines(client), chunk);
            assert_eq!(step, Step::Failed(SaslError::Cancelled), "{mechanism:?} {client:?}");
            assert_eq!(exchange.respond(b"AGpvZQBwdw=="), Step::Failed(SaslError::OutOfSequence));
            assert_eq!(exchange.refuse(), None);
        }
    }
}

#[test]
fn size_caps_per_mechanism() {
    // 4 KiB of base64 for the password mechanisms, whole or as an initial response.
    let at_cap = encode(&[b"\0joe\0".as_slice(), &[b'p'; 3067]].concat());
    assert_eq!(at_cap.len(), 4096);
    let over_cap = encode(&[b"\0joe\0".as_slice(), &[b'p'; 3070]].concat());
    assert!(over_cap.len() > 4096);
    assert!(matches!(run(SaslMechanism::Plain, Some(&at_cap), None, b"", 64).1, Step::Done(_)));
    assert_eq!(run(SaslMechanism::Plain, Some(&over_cap), None, b"", 64).1, Step::Failed(SaslError::TooLong));
    assert_eq!(run(SaslMechanism::Login, None, None, &lines(&[&over_cap]), 4096).1, Step::Failed(SaslError::TooLong));
    // 16 KiB for a bearer token.
    let token = |n: usize| "t".repeat(n);
    let message = |n: usize| bearer::message(BearerMechanism::XOAuth2, "joe", &Secret::new(token(n)));
    let fits = encode(message(12_000).expose());
    assert!(fits.len() > 4096 && fits.len() <= 16384);
    assert!(matches!(run(SaslMechanism::XOAuth2, Some(&fits), None, b"", 64).1, Step::Done(_)));
    let too_big = encode(message(12_300).expose());
    assert!(too_big.len() > 16384);
    assert_eq!(run(SaslMechanism::XOAuth2, None, None, &lines(&[&too_big]), 999).1, Step::Failed(SaslError::TooLong));
    assert_eq!(run(SaslMechanism::Plain, Some(&fits), None, b"", 64).1, Step::Failed(SaslError::TooLong));
}

#[test]
fn bad_base64_and_malformed_messages() {
    for (mechanism, line, error) in [
        (SaslMechanism::Plain, "%%%", SaslError::Base64),
        (SaslMechanism::Plain, "cHc", SaslError::Base64),
        (SaslMechanism::Plain, "am9l", SaslError::Malformed),
        (SaslMechanism::Login, "/w==", SaslError::NotUtf8),
        (SaslMechanism::OAuthBearer, "am9l", SaslError::BadBearerMessage),
        (SaslMechanism::XOAuth2, "=", SaslError::BadBearerMessage),
        (SaslMechanism::CramMd5, "am9l", SaslError::BadDigest),
    ] {
        for chunk in CHUNKS {
            let (_, step, _) = run(mechanism, None, Some("<1.1@x>"), &lines(&[line]), chunk);
            assert_eq!(step, Step::Failed(error), "{mechanism:?} {line}");
        }
    }
}

#[test]
fn only_bearer_refusals_carry_a_report_and_nothing_answers_out_of_turn() {
    let (_, step, mut exchange) = run(SaslMechanism::Plain, Some("AGpvZQBwdw=="), None, b"", 64);
    assert!(matches!(step, Step::Done(_)));
    assert_eq!(exchange.respond(b"AGpvZQBwdw=="), Step::Failed(SaslError::OutOfSequence), "while verifying");
    assert_eq!(exchange.refuse(), None);
    assert_eq!(exchange.mechanism(), SaslMechanism::Plain);
}
