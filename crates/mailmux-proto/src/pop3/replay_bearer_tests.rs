//! Replaying a bearer token to a POP3 store: CAPA first, the token only where its mechanism
//! is listed, the initial response only when the AUTH line stays within 255 octets, and the
//! store's error report answered before its `-ERR`.

use super::tests::play;
use super::*;
use crate::sasl::encode;

const CAPA: [&str; 6] = ["+OK", "TOP", "UIDL", "SASL PLAIN XOAUTH2 OAUTHBEARER", "USER", "."];

fn token(mechanism: BearerMechanism, token: &str) -> ReplayCredentials {
    ReplayCredentials::Bearer { user: "joe@example.org".into(), token: Secret::new(token), mechanism }
}

fn blob(mechanism: BearerMechanism, token: &str) -> String {
    String::from_utf8(bearer::encode(mechanism, "joe@example.org", &Secret::new(token)).expose().to_vec()).unwrap()
}

fn with_capa(lines: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec!["+OK Dovecot ready."];
    all.extend(CAPA);
    all.extend(lines);
    all
}

#[test]
fn short_token_goes_with_the_auth_line() {
    for mechanism in [BearerMechanism::OAuthBearer, BearerMechanism::XOAuth2] {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, token(mechanism, "ya29.short"), false);
        let (sent, ev) = play(&mut m, &with_capa(&["+OK Logged in."]));
        assert_eq!(sent, format!("CAPA\r\nAUTH {} {}\r\n", mechanism.as_str(), blob(mechanism, "ya29.short")));
        assert_eq!(ev, Some(Pop3ReplayEvent::LoggedIn { text: "Logged in.".into() }));
    }
}

#[test]
fn long_token_waits_for_the_continuation() {
    let long = "t".repeat(300);
    let mut m = Pop3Replay::new(ReplayMechanism::Plain, token(BearerMechanism::XOAuth2, &long), false);
    let (sent, ev) = play(&mut m, &with_capa(&["+ ", "+OK in"]));
    assert_eq!(sent, format!("CAPA\r\nAUTH XOAUTH2\r\n{}\r\n", blob(BearerMechanism::XOAuth2, &long)));
    assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })), "{ev:?}");
    let mut m = Pop3Replay::new(ReplayMechanism::Plain, token(BearerMechanism::XOAuth2, &long), false);
    let (_, ev) = play(&mut m, &with_capa(&["-ERR no"]));
    assert!(matches!(ev, Some(Pop3ReplayEvent::Failed(StoreFailure::Rejected { .. }))), "{ev:?}");
}

#[test]
fn a_store_that_does_not_list_the_mechanism_never_sees_the_token() {
    let mut m = Pop3Replay::new(ReplayMechanism::Login, token(BearerMechanism::OAuthBearer, "tok"), false);
    let (sent, ev) = play(&mut m, &["+OK hi", "+OK", "SASL PLAIN XOAUTH2", "OAUTHBEARER", "."]);
    assert_eq!(sent, "CAPA\r\n");
    let Some(Pop3ReplayEvent::Failed(StoreFailure::Protocol { reason })) = ev else { panic!("{ev:?}") };
    assert!(reason.contains("SASL OAUTHBEARER"), "{reason}");
    let mut m = Pop3Replay::new(ReplayMechanism::Login, token(BearerMechanism::OAuthBearer, "tok"), false);
    let (sent, ev) = play(&mut m, &["+OK hi", "-ERR what"]);
    assert_eq!(sent, "CAPA\r\n");
    assert!(matches!(ev, Some(Pop3ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
}

#[test]
fn the_error_report_is_answered_and_the_err_is_a_rejection() {
    let report = r#"{"status":"invalid_token","schemes":"bearer"}"#;
    let challenge: &'static str = Box::leak(format!("+ {}", encode(report.as_bytes())).into_boxed_str());
    for (mechanism, answer) in [(BearerMechanism::OAuthBearer, "AQ=="), (BearerMechanism::XOAuth2, "")] {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, token(mechanism, "tok"), false);
        let (sent, ev) = play(&mut m, &with_capa(&[challenge, "-ERR [AUTH] Authentication failed."]));
        assert_eq!(sent, format!("CAPA\r\nAUTH {} {}\r\n{answer}\r\n", mechanism.as_str(), blob(mechanism, "tok")));
        let Some(Pop3ReplayEvent::Failed(StoreFailure::Rejected { text })) = ev else { panic!("{ev:?}") };
        assert!(text.contains(report), "{text}");
    }
    // A continuation where none is due.
    let mut m = Pop3Replay::new(ReplayMechanism::Login, token(BearerMechanism::XOAuth2, "tok"), false);
    let (_, ev) = play(&mut m, &with_capa(&[challenge, challenge]));
    assert!(matches!(ev, Some(Pop3ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
    let mut m = Pop3Replay::new(
        ReplayMechanism::Login,
        ReplayCredentials::Password { authzid: None, authcid: "joe".into(), password: Secret::new("pw") },
        false,
    );
    let (_, ev) = play(&mut m, &["+OK hi", "+ go on"]);
    assert!(matches!(ev, Some(Pop3ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
}

#[test]
fn after_stls_capa_is_asked_on_the_encrypted_connection() {
    let mut m = Pop3Replay::new(ReplayMechanism::Login, token(BearerMechanism::XOAuth2, "tok"), true);
    let (sent, ev) = play(&mut m, &["+OK hi", "+OK go", "+OK injected"]);
    assert_eq!((sent.as_str(), ev), ("STLS\r\n", Some(Pop3ReplayEvent::StartTls)));
    m.tls_started();
    let (sent, ev) = play(&mut m, &[CAPA[0], CAPA[3], CAPA[5], "+OK in"]);
    assert_eq!(sent, format!("CAPA\r\nAUTH XOAUTH2 {}\r\n", blob(BearerMechanism::XOAuth2, "tok")));
    assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })), "{ev:?}");
}

#[test]
fn xclient_from_capa_goes_before_the_token() {
    let client = std::net::SocketAddr::from(([192, 0, 2, 7], 40000));
    let mut m = Pop3Replay::new(ReplayMechanism::Login, token(BearerMechanism::XOAuth2, "ya29.short"), false)
        .with_client_address(client);
    let (sent, ev) =
        play(&mut m, &["+OK Dovecot ready.", "+OK", "XCLIENT", "SASL XOAUTH2", ".", "+OK Updated", "+OK Logged in."]);
    assert_eq!(
        sent,
        format!(
            "CAPA\r\nXCLIENT ADDR=192.0.2.7 PORT=40000\r\nAUTH XOAUTH2 {}\r\n",
            blob(BearerMechanism::XOAuth2, "ya29.short")
        )
    );
    assert_eq!(ev, Some(Pop3ReplayEvent::LoggedIn { text: "Logged in.".into() }));
}
