//! Replaying a bearer token to an IMAP store: only where the store advertises the mechanism,
//! with and without SASL-IR, asking for the capability list when there is none, and the
//! store's error report answered before its NO.

use super::tests::play;
use super::*;
use crate::BearerMechanism;
use crate::sasl::encode;

const TOKEN: &str = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

fn token(mechanism: BearerMechanism) -> ReplayCredentials {
    ReplayCredentials::Bearer { user: "joe@example.org".into(), token: Secret::new(TOKEN), mechanism }
}

fn blob(mechanism: BearerMechanism) -> String {
    String::from_utf8(bearer::encode(mechanism, "joe@example.org", &Secret::new(TOKEN)).expose().to_vec()).unwrap()
}

fn machine(mechanism: BearerMechanism, starttls: bool) -> ImapReplay {
    // The password mechanism setting does not apply to tokens.
    ImapReplay::new(ReplayMechanism::Login, token(mechanism), starttls)
}

#[test]
fn oauthbearer_with_sasl_ir() {
    let mut m = machine(BearerMechanism::OAuthBearer, false);
    let (sent, ev) = play(
        &mut m,
        &["* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=OAUTHBEARER] hi", "M1 OK [CAPABILITY IMAP4rev1 IDLE] in"],
    );
    assert_eq!(sent, format!("M1 AUTHENTICATE OAUTHBEARER {}\r\n", blob(BearerMechanism::OAuthBearer)));
    assert_eq!(ev, Some(ReplayEvent::LoggedIn { capabilities: Some("IMAP4rev1 IDLE".into()), text: "in".into() }));
    // What went out reads back as the client's user and token.
    let wire = crate::sasl::decode_response(blob(BearerMechanism::OAuthBearer).as_bytes(), 16384).unwrap();
    let parsed = bearer::parse_oauthbearer(wire.expose()).unwrap();
    assert_eq!((parsed.user.as_str(), parsed.token.expose()), ("joe@example.org", TOKEN.as_bytes()));
}

#[test]
fn xoauth2_without_sasl_ir_waits_for_the_continuation() {
    let mut m = machine(BearerMechanism::XOAuth2, false);
    let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi", "+ ", "M1 OK [CAPABILITY X] in"]);
    assert_eq!(sent, format!("M1 AUTHENTICATE XOAUTH2\r\n{}\r\n", blob(BearerMechanism::XOAuth2)));
    assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })), "{ev:?}");
}

#[test]
fn a_store_that_does_not_advertise_the_mechanism_never_sees_the_token() {
    for mechanism in [BearerMechanism::OAuthBearer, BearerMechanism::XOAuth2] {
        let mut m = machine(mechanism, false);
        let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=OAUTHBEARERX] hi"]);
        assert_eq!(sent, "");
        let Some(ReplayEvent::Failed(StoreFailure::Protocol { reason })) = ev else { panic!("{ev:?}") };
        assert!(reason.contains(&format!("AUTH={}", mechanism.as_str())), "{reason}");
    }
}

#[test]
fn without_a_capability_list_it_asks_first() {
    let mut m = machine(BearerMechanism::XOAuth2, false);
    let (sent, ev) = play(
        &mut m,
        &["* OK ready", "* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2", "M3 OK done", "M1 OK [CAPABILITY IMAP4rev1] in"],
    );
    assert_eq!(sent, format!("M3 CAPABILITY\r\nM1 AUTHENTICATE XOAUTH2 {}\r\n", blob(BearerMechanism::XOAuth2)));
    assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })), "{ev:?}");
    // No list in the answer: nothing is advertised.
    let mut m = machine(BearerMechanism::XOAuth2, false);
    let (sent, ev) = play(&mut m, &["* OK ready", "M3 OK done"]);
    assert_eq!(sent, "M3 CAPABILITY\r\n");
    assert!(matches!(ev, Some(ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
    let mut m = machine(BearerMechanism::XOAuth2, false);
    let (_, ev) = play(&mut m, &["* OK ready", "M3 BAD no"]);
    assert!(matches!(ev, Some(ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
}

#[test]
fn after_starttls_the_list_is_asked_again() {
    let mut m = machine(BearerMechanism::OAuthBearer, true);
    let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=OAUTHBEARER] hi", "M0 OK go"]);
    assert_eq!((sent.as_str(), ev), ("M0 STARTTLS\r\n", Some(ReplayEvent::StartTls)));
    m.tls_started();
    let (sent, ev) = play(
        &mut m,
        &["* CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER", "M3 OK done", "M1 OK [CAPABILITY IMAP4rev1] in"],
    );
    assert_eq!(
        sent,
        format!("M3 CAPABILITY\r\nM1 AUTHENTICATE OAUTHBEARER {}\r\n", blob(BearerMechanism::OAuthBearer))
    );
    assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })), "{ev:?}");
}

#[test]
fn the_error_report_is_answered_and_the_no_is_a_rejection() {
    let report = r#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#;
    for (mechanism, answer) in [(BearerMechanism::OAuthBearer, "AQ=="), (BearerMechanism::XOAuth2, "")] {
        let mut m = machine(mechanism, false);
        let caps = format!("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH={}] hi", mechanism.as_str());
        let challenge = format!("+ {}", encode(report.as_bytes()));
        let (sent, ev) = play(&mut m, &[&caps, &challenge, "M1 NO [AUTHENTICATIONFAILED] Authentication failed."]);
        assert_eq!(sent, format!("M1 AUTHENTICATE {} {}\r\n{answer}\r\n", mechanism.as_str(), blob(mechanism)));
        let Some(ReplayEvent::Failed(StoreFailure::Rejected { text })) = ev else { panic!("{ev:?}") };
        assert!(text.contains("Authentication failed.") && text.contains(report), "{text}");
    }
    // A second challenge is not part of the protocol.
    let mut m = machine(BearerMechanism::OAuthBearer, false);
    let (_, ev) = play(&mut m, &["* OK [CAPABILITY SASL-IR AUTH=OAUTHBEARER] hi", "+ e30=", "+ e30="]);
    assert!(matches!(ev, Some(ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
    // A report that is not base64 (or very long) is logged as far as it is text, cut short.
    let long = format!("+ {}", "x".repeat(5000));
    let mut m = machine(BearerMechanism::OAuthBearer, false);
    let (_, ev) = play(&mut m, &["* OK [CAPABILITY SASL-IR AUTH=OAUTHBEARER] hi", &long, "M1 NO no"]);
    let Some(ReplayEvent::Failed(StoreFailure::Rejected { text })) = ev else { panic!("{ev:?}") };
    assert!(text.chars().count() < 260, "{text}");
}

#[test]
fn tokens_no_message_carries_and_logs_never_show_them() {
    let bad = ReplayCredentials::Bearer {
        user: "joe".into(),
        token: Secret::new("to ken"),
        mechanism: BearerMechanism::XOAuth2,
    };
    let mut m = ImapReplay::new(ReplayMechanism::Login, bad, false);
    assert!(matches!(m.next_event(), Some(ReplayEvent::Failed(StoreFailure::Rejected { .. }))));
    assert!(m.take_output().is_empty());
    let mut m = machine(BearerMechanism::OAuthBearer, false);
    m.feed(b"* OK [CAPABILITY SASL-IR AUTH=OAUTHBEARER] hi\r\n");
    assert_eq!(m.next_event(), None);
    assert!(!format!("{m:?}").contains(TOKEN), "{m:?}");
}
