//! Transcripts of APOP and the SASL mechanisms beyond passwords, with fixed challenges.

use super::tests::{creds, run, settings};
use super::*;
use crate::login::BearerMechanism;
use crate::sasl::{bearer, encode, verify_apop, verify_cram_md5};

/// RFC 1939's example greeting timestamp, `<1896.697170952@dbc.mtview.ca.us>`.
fn seed() -> ChallengeSeed {
    ChallengeSeed::new("1896.697170952", "dbc.mtview.ca.us")
}

fn everything() -> Pop3Settings {
    Pop3Settings { crams: Some(seed()), bearer: true, ..settings() }
}

fn front(s: Pop3Settings) -> (Pop3Front, String) {
    let mut f = Pop3Front::new(s);
    let greeting = String::from_utf8(f.take_output()).unwrap();
    (f, greeting)
}

fn capa(f: &mut Pop3Front) -> String {
    run(f, b"CAPA\r\n", 64).0
}

#[test]
fn greeting_capa_and_auth_list_follow_the_settings() {
    let (mut f, greeting) = front(everything());
    assert_eq!(greeting, "+OK mailmux ready <1896.697170952@dbc.mtview.ca.us>\r\n");
    assert!(capa(&mut f).contains("\r\nSASL PLAIN LOGIN CRAM-MD5 OAUTHBEARER XOAUTH2\r\n"));
    assert_eq!(run(&mut f, b"AUTH\r\n", 64).0, "+OK\r\nPLAIN\r\nLOGIN\r\nCRAM-MD5\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n");
    let (mut f, _) = front(Pop3Settings { stls: true, restrict_plaintext: true, ..everything() });
    assert!(capa(&mut f).contains("\r\nSASL CRAM-MD5\r\n"));
    let (mut f, greeting) = front(settings());
    assert_eq!(greeting, "+OK mailmux ready\r\n", "no timestamp without CRAMs");
    let out = capa(&mut f);
    assert!(out.contains("\r\nSASL PLAIN LOGIN\r\n"), "{out}");
}

#[test]
fn apop_rfc_1939_example() {
    for chunk in [1, 2, 5, 64] {
        let (mut f, _) = front(everything());
        let (out, ev) = run(&mut f, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n", chunk);
        assert_eq!(out, "");
        let Proof::ChallengeResponse { login, challenge, digest, kind } = creds(ev) else { panic!() };
        assert_eq!((login.as_str(), kind), ("mrose", ChallengeKind::Apop));
        assert_eq!(challenge.expose(), b"<1896.697170952@dbc.mtview.ca.us>");
        assert!(verify_apop(challenge.expose(), b"tanstaaf", digest.expose()));
    }
    // Allowed before TLS under RestrictPlainPasswords: no password crosses the wire.
    let (mut f, _) = front(Pop3Settings { stls: true, restrict_plaintext: true, ..everything() });
    assert!(matches!(
        creds(run(&mut f, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n", 64).1),
        Proof::ChallengeResponse { .. }
    ));
    // Malformed, and not offered without CRAMs.
    let (mut f, _) = front(everything());
    let (out, ev) = run(&mut f, b"APOP mrose c4c9\r\nAPOP\r\nAPOP c4c9334bac560ecc979e58001b3e22fb\r\n", 64);
    assert_eq!(ev, None);
    assert_eq!(
        out,
        "-ERR Malformed challenge response\r\n-ERR Malformed challenge response\r\n-ERR Malformed challenge response\r\n"
    );
    let (mut f, _) = front(settings());
    let (out, _) = run(&mut f, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n", 64);
    assert_eq!(out, "-ERR APOP is not available here\r\n");
}

#[test]
fn auth_cram_md5_with_a_fixed_challenge() {
    let (mut f, _) = front(everything());
    f.feed(b"AUTH CRAM-MD5\r\n");
    assert_eq!(f.next_event(), None);
    let challenge = "<1896.697170952.0@dbc.mtview.ca.us>";
    assert_eq!(String::from_utf8(f.take_output()).unwrap(), format!("+ {}\r\n", encode(challenge.as_bytes())));
    // What a client with the password "tanstaaf" answers (HMAC-MD5, computed with Python's hmac).
    let digest = "efe431572ba5e5cc6ba0481dd7dae4b3";
    assert!(cram_md5_matches(challenge, digest));
    let (_, ev) = run(&mut f, format!("{}\r\n", encode(format!("mrose {digest}").as_bytes())).as_bytes(), 3);
    let Proof::ChallengeResponse { login, challenge: issued, digest: got, kind } = creds(ev) else { panic!() };
    assert_eq!((login.as_str(), kind, issued.expose()), ("mrose", ChallengeKind::CramMd5, challenge.as_bytes()));
    assert_eq!(got.expose(), digest.as_bytes());
    assert!(verify_cram_md5(issued.expose(), b"tanstaaf", got.expose()));
    // Not offered without CRAMs.
    let (mut f, _) = front(settings());
    assert_eq!(run(&mut f, b"AUTH CRAM-MD5\r\n", 64).0, "-ERR Unsupported authentication mechanism\r\n");
}

/// The same digest computed with the hmac crate directly, so the test does not check the
/// function with itself.
fn cram_md5_matches(challenge: &str, digest: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(b"tanstaaf").unwrap();
    mac.update(challenge.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    hex == digest
}

#[test]
fn oauthbearer_and_xoauth2_with_their_error_reports() {
    for (mechanism, answer) in [(BearerMechanism::OAuthBearer, "AQ=="), (BearerMechanism::XOAuth2, "")] {
        let blob =
            String::from_utf8(bearer::encode(mechanism, "joe", &Secret::new("ya29.tok")).expose().to_vec()).unwrap();
        for chunk in [1, 4, 1000] {
            let (mut f, _) = front(everything());
            let (out, ev) = run(&mut f, format!("AUTH {} {blob}\r\n", mechanism.as_str()).as_bytes(), chunk);
            assert_eq!(out, "");
            let proof = creds(ev);
            assert_eq!((proof.login(), proof.mechanism_name()), ("joe", mechanism.as_str()));
            f.reject(&Rejection::AuthenticationFailed);
            assert_eq!(
                String::from_utf8(f.take_output()).unwrap(),
                format!("+ {}\r\n", encode(bearer::error_report(mechanism)))
            );
            let (out, ev) = run(&mut f, format!("{answer}\r\nUSER joe\r\n").as_bytes(), chunk);
            assert_eq!((out.as_str(), ev), ("-ERR [AUTH] Authentication failed.\r\n+OK\r\n", None));
        }
        // Without IR, after an empty challenge; then accepted.
        let (mut f, _) = front(everything());
        let (out, ev) = run(&mut f, format!("AUTH {}\r\n{blob}\r\nSTAT\r\n", mechanism.as_str()).as_bytes(), 10_000);
        assert_eq!(out, "+ \r\n");
        assert_eq!(creds(ev).login(), "joe");
        assert_eq!(f.accept("Logged in."), b"STAT\r\n");
    }
}

#[test]
fn bearer_lines_fit_only_when_bearer_tokens_are_offered() {
    let blob = String::from_utf8(
        bearer::encode(BearerMechanism::XOAuth2, "joe", &Secret::new("t".repeat(10_000))).expose().to_vec(),
    )
    .unwrap();
    let line = format!("AUTH XOAUTH2 {blob}\r\n");
    let (mut f, _) = front(everything());
    assert_eq!(creds(run(&mut f, line.as_bytes(), 4096).1).login(), "joe");
    let (mut f, _) = front(settings());
    let (out, ev) = run(&mut f, line.as_bytes(), 4096);
    assert_eq!((out.as_str(), ev), ("-ERR Line too long\r\n", Some(Pop3Event::Close)));
    // Bearer tokens wait for TLS under RestrictPlainPasswords.
    let (mut f, _) = front(Pop3Settings { stls: true, restrict_plaintext: true, ..everything() });
    let (out, _) = run(&mut f, line.as_bytes(), 4096);
    assert_eq!(out, "-ERR [AUTH] Plaintext authentication is disabled; use STLS first\r\n");
}
