//! Transcripts of the mechanisms beyond passwords: CRAM-MD5 with a fixed challenge, the bearer
//! tokens with their error report, and what is (not) offered under which settings.

use hmac::{Hmac, Mac};

use super::tests::{expect_login, settings};
use super::*;
use crate::login::{BearerMechanism, ChallengeKind};
use crate::sasl::{bearer, encode, verify_cram_md5};

/// The seed the tests' challenges are made from (RFC 2195's example, made unique per exchange).
fn seed() -> ChallengeSeed {
    ChallengeSeed::new("1896.697170952", "postoffice.reston.mci.net")
}

fn everything() -> FrontSettings {
    FrontSettings { crams: Some(seed()), bearer: true, ..settings() }
}

fn front(settings: FrontSettings) -> ImapFront {
    let mut f = ImapFront::new(settings);
    f.take_output();
    f
}

/// Feeds `input` in `chunk`-byte reads until an event; returns the output and the event.
fn run(f: &mut ImapFront, input: &[u8], chunk: usize) -> (String, Option<FrontEvent>) {
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        f.feed(piece);
        let event = f.next_event();
        out.extend(f.take_output());
        if event.is_some() {
            return (String::from_utf8(out).unwrap(), event);
        }
    }
    (String::from_utf8(out).unwrap(), None)
}

/// What a CRAM-MD5 client computes.
fn cram_answer(user: &str, challenge: &str, password: &str) -> String {
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(password.as_bytes()).unwrap();
    mac.update(challenge.as_bytes());
    let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    encode(format!("{user} {digest}").as_bytes())
}

fn token_blob(mechanism: BearerMechanism, user: &str, token: &str) -> String {
    String::from_utf8(bearer::encode(mechanism, user, &Secret::new(token)).expose().to_vec()).unwrap()
}

#[test]
fn capabilities_follow_the_settings() {
    let greeting = |s: FrontSettings| String::from_utf8(ImapFront::new(s).take_output()).unwrap();
    assert_eq!(
        greeting(everything()),
        "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=OAUTHBEARER \
         AUTH=XOAUTH2] mailmux ready\r\n"
    );
    // Before TLS under RestrictPlainPasswords only what hands over no reusable secret is left.
    let restricted =
        FrontSettings { starttls: true, restrict_plaintext: true, client_certificate: true, ..everything() };
    assert!(
        greeting(restricted)
            .contains("[CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS LOGINDISABLED AUTH=CRAM-MD5 AUTH=EXTERNAL]")
    );
    let off = greeting(settings());
    assert!(!off.contains("CRAM") && !off.contains("OAUTHBEARER") && !off.contains("XOAUTH2"), "{off}");
}

#[test]
fn mechanisms_not_offered_are_refused() {
    let mut f = front(settings());
    let (out, ev) =
        run(&mut f, b"a AUTHENTICATE CRAM-MD5\r\nb AUTHENTICATE OAUTHBEARER =\r\nc AUTHENTICATE XOAUTH2\r\n", 64);
    assert_eq!(ev, None);
    assert_eq!(
        out,
        "a NO Unsupported authentication mechanism\r\nb NO Unsupported authentication mechanism\r\n\
         c NO Unsupported authentication mechanism\r\n"
    );
    // Bearer tokens wait for TLS under RestrictPlainPasswords; CRAM-MD5 does not.
    let mut f = front(FrontSettings { starttls: true, restrict_plaintext: true, ..everything() });
    let (out, ev) = run(&mut f, b"a AUTHENTICATE XOAUTH2\r\nb AUTHENTICATE CRAM-MD5\r\n", 64);
    assert_eq!(ev, None);
    assert!(out.starts_with("a NO [PRIVACYREQUIRED]"), "{out}");
    assert!(out.ends_with(&format!("+ {}\r\n", encode(b"<1896.697170952.1@postoffice.reston.mci.net>"))), "{out}");
}

#[test]
fn cram_md5_with_a_fixed_challenge() {
    let challenge = "<1896.697170952.0@postoffice.reston.mci.net>";
    let answer = cram_answer("tim", challenge, "tanstaaftanstaaf");
    for chunk in [1, 2, 3, 7, 1000] {
        let mut f = front(everything());
        let (out, ev) = run(&mut f, format!("a1 AUTHENTICATE CRAM-MD5\r\n{answer}\r\n").as_bytes(), chunk);
        assert_eq!(out, format!("+ {}\r\n", encode(challenge.as_bytes())));
        let (tag, proof) = expect_login(ev);
        let Proof::ChallengeResponse { login, challenge: issued, digest, kind } = proof else { panic!("{proof:?}") };
        assert_eq!((tag.as_slice(), login.as_str(), kind), (&b"a1"[..], "tim", ChallengeKind::CramMd5));
        assert_eq!(issued.expose(), challenge.as_bytes());
        assert!(verify_cram_md5(issued.expose(), b"tanstaaftanstaaf", digest.expose()));
    }
    // Each exchange gets its own challenge; SASL-IR is refused (server speaks first).
    let mut f = front(everything());
    let (out, _) =
        run(&mut f, b"a AUTHENTICATE CRAM-MD5 dGlt\r\nb AUTHENTICATE CRAM-MD5\r\n*\r\nc AUTHENTICATE CRAM-MD5\r\n", 64);
    assert_eq!(
        out,
        format!(
            "a BAD This mechanism takes no initial response\r\n+ {}\r\nb BAD Authentication cancelled\r\n+ {}\r\n",
            encode(b"<1896.697170952.1@postoffice.reston.mci.net>"),
            encode(b"<1896.697170952.2@postoffice.reston.mci.net>")
        )
    );
}

#[test]
fn oauthbearer_refused_gets_the_error_report_then_no() {
    let blob =
        token_blob(BearerMechanism::OAuthBearer, "joe@example.org", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    for chunk in [1, 3, 64, 100_000] {
        let mut f = front(everything());
        let (out, ev) = run(&mut f, format!("a AUTHENTICATE OAUTHBEARER {blob}\r\n").as_bytes(), chunk);
        assert_eq!(out, "");
        let (tag, proof) = expect_login(ev);
        let Proof::BearerToken { login, token, mechanism, raw_response } = &proof else { panic!("{proof:?}") };
        assert_eq!((login.as_str(), *mechanism), ("joe@example.org", BearerMechanism::OAuthBearer));
        assert_eq!(token.expose(), b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
        assert_eq!(encode(raw_response.expose()), blob, "the raw response is what the client sent");
        f.reject(&tag, &Rejection::AuthenticationFailed);
        assert_eq!(
            String::from_utf8(f.take_output()).unwrap(),
            format!("+ {}\r\n", encode(br#"{"status":"invalid_token","schemes":"bearer"}"#))
        );
        let (out, ev) = run(&mut f, b"AQ==\r\nb NOOP\r\n", chunk);
        assert_eq!(
            (out.as_str(), ev),
            ("a NO [AUTHENTICATIONFAILED] Authentication failed.\r\nb OK NOOP completed.\r\n", None)
        );
    }
}

#[test]
fn xoauth2_after_a_continuation_and_its_refusals() {
    let blob = token_blob(BearerMechanism::XOAuth2, "joe", "ya29.token");
    let mut f = front(everything());
    let (out, ev) = run(&mut f, format!("a AUTHENTICATE XOAUTH2\r\n{blob}\r\n").as_bytes(), 5);
    assert_eq!(out, "+ \r\n");
    let (tag, proof) = expect_login(ev);
    assert_eq!((proof.login(), proof.mechanism_name()), ("joe", "XOAUTH2"));
    // A temporary failure has no report: the NO comes at once.
    f.reject(&tag, &Rejection::Unavailable { alert: None });
    assert_eq!(
        String::from_utf8(f.take_output()).unwrap(),
        "a NO [UNAVAILABLE] Mail service temporarily unavailable, try again later.\r\n"
    );
    // Refused: the report, then the client's empty answer (XOAUTH2), then NO.
    let (_, ev) = run(&mut f, format!("b AUTHENTICATE XOAUTH2 {blob}\r\n").as_bytes(), 64);
    let (tag, _) = expect_login(ev);
    f.reject(&tag, &Rejection::AuthenticationFailed);
    assert_eq!(
        String::from_utf8(f.take_output()).unwrap(),
        format!("+ {}\r\n", encode(br#"{"status":"401","schemes":"bearer"}"#))
    );
    let (out, _) = run(&mut f, b"\r\n", 64);
    assert_eq!(out, "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    // The last allowed failure closes without the report.
    let (_, ev) = run(&mut f, format!("c AUTHENTICATE XOAUTH2 {blob}\r\n").as_bytes(), 64);
    let (tag, _) = expect_login(ev);
    f.reject_and_close(&tag, &Rejection::AuthenticationFailed);
    assert_eq!(
        String::from_utf8(f.take_output()).unwrap(),
        "* BYE Too many authentication failures\r\nc NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    // Accepted: the pipelined command is the store's.
    let mut f = front(everything());
    let (_, ev) = run(&mut f, format!("d AUTHENTICATE XOAUTH2 {blob}\r\ne SELECT INBOX\r\n").as_bytes(), 64);
    let (tag, _) = expect_login(ev);
    assert_eq!(f.accept(&tag, None, "Logged in"), b"e SELECT INBOX\r\n");
}

#[test]
fn bearer_tokens_over_the_plain_cap_fit_and_over_their_own_do_not() {
    let big = token_blob(BearerMechanism::OAuthBearer, "joe", &"t".repeat(9000));
    assert!(big.len() > 4096 && big.len() < 16384);
    let mut f = front(everything());
    let (_, ev) = run(&mut f, format!("a AUTHENTICATE OAUTHBEARER {big}\r\n").as_bytes(), 4096);
    assert_eq!(expect_login(ev).1.login(), "joe");
    let huge = token_blob(BearerMechanism::OAuthBearer, "joe", &"t".repeat(13_000));
    let mut f = front(everything());
    let (out, ev) = run(&mut f, format!("a AUTHENTICATE OAUTHBEARER\r\n{huge}\r\n").as_bytes(), 4096);
    assert_eq!((out.as_str(), ev), ("+ \r\na BAD SASL response too long\r\n", None));
}
