//! Store answers for `store_replay`: Dovecot's own words where a Dovecot says them (captured
//! from Dovecot 2.3.19.1, Debian 12, configured like the testkit's stores, with
//! `login_trusted_networks` set, hence `[XCLIENT]`), the replay unit tests' lines, and lines
//! written to reach a state.

use super::{Expect, Seed, lines, seed};
use crate::probe::ProbeEnd;
use crate::store::{StoreEnd, StoreOutcome, mode};

/// Dovecot's greeting (STARTTLS because `ssl = yes`).
const DOVECOT_GREETING: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready.";
/// Dovecot's answer to a successful login.
const DOVECOT_LOGGED_IN: &str = "M1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY] Logged in";
/// Dovecot's answer to a wrong password.
const DOVECOT_AUTH_FAILED: &str = "M1 NO [AUTHENTICATIONFAILED] Authentication failed.";
/// Dovecot's answer to STARTTLS.
const DOVECOT_STARTTLS: &str = "M0 OK Begin TLS negotiation now.";
/// Dovecot's answers to ID (the address fields are honoured from trusted networks).
const DOVECOT_ID: [&str; 2] = ["* ID (\"name\" \"Dovecot\")", "M9 OK ID completed."];
/// Dovecot's continuation for a synchronising literal, and for a SASL exchange.
const DOVECOT_LITERAL_GO: &str = "+ OK";
const DOVECOT_SASL_GO: &str = "+ ";
/// Dovecot's pre-login capabilities once TLS is on, and its CAPABILITY answer after login.
const DOVECOT_CAPABILITY_TLS: &str =
    "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN";
const DOVECOT_CAPABILITY_DONE: &str = "M2 OK Capability completed (0.001 + 0.000 secs).";
/// Dovecot's goodbye to a client that sent too many bad commands.
const DOVECOT_BYE: &str = "* BYE Too many invalid IMAP commands.";
/// Dovecot's texts for a temporary authentication failure (from its sources, not captured).
const DOVECOT_TEMPFAIL: &str = "M1 NO [UNAVAILABLE] Temporary authentication failure.";
const DOVECOT_POP3_TEMPFAIL: &str = "-ERR [SYS/TEMP] Temporary authentication failure.";
/// Dovecot POP3.
const DOVECOT_POP3_GREETING: &str = "+OK [XCLIENT] Dovecot (Debian) ready.";
const DOVECOT_POP3_USER_OK: &str = "+OK";
const DOVECOT_POP3_LOGGED_IN: &str = "+OK Logged in.";
const DOVECOT_POP3_AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed.";
const DOVECOT_POP3_STLS: &str = "+OK Begin TLS negotiation now.";
/// Dovecot's answer to XCLIENT from a trusted network (from its sources, not captured).
const DOVECOT_POP3_XCLIENT: &str = "+OK Updated";

fn store(end: StoreEnd, tls: bool, sent_credentials: bool) -> Expect {
    Expect::Store(StoreOutcome { end, tls, sent_credentials })
}

pub(super) fn store_replay(seeds: &mut Vec<Seed>) {
    use StoreEnd::*;
    let mut add = |name: &str, mode: u8, chunk: u8, store_bytes: Vec<u8>, expect: Expect| {
        let mut data = vec![mode, chunk];
        data.extend(store_bytes);
        seed(seeds, "store_replay", name, data, expect);
    };
    const ALL: u8 = 0;
    const POP3: u8 = mode::POP3;
    let (g, ok, no) = (DOVECOT_GREETING, DOVECOT_LOGGED_IN, DOVECOT_AUTH_FAILED);

    // IMAP, LOGIN.
    add("imap-dovecot-login", 0, ALL, lines(&[g, ok]), store(LoggedIn, false, true));
    add("imap-dovecot-login-bytewise", 0, 1, lines(&[g, ok, "* 1 EXISTS"]), store(LoggedIn, false, true));
    add(
        "imap-dovecot-login-with-client-id",
        mode::CLIENT_ID,
        7,
        lines(&[g, DOVECOT_ID[0], DOVECOT_ID[1], ok]),
        store(LoggedIn, false, true),
    );
    add("imap-dovecot-wrong-password", 0, ALL, lines(&[g, no]), store(Rejected, false, true));
    add("imap-dovecot-tempfail", 0, 16, lines(&[g, DOVECOT_TEMPFAIL]), store(Temporary, false, true));
    add(
        "imap-ok-without-capabilities",
        0,
        ALL,
        lines(&["* OK Dovecot ready.", "M1 OK Logged in", "* CAPABILITY IMAP4rev1 IDLE", DOVECOT_CAPABILITY_DONE]),
        store(LoggedIn, false, true),
    );
    add(
        "imap-untagged-noise-during-login",
        mode::CLIENT_ID,
        ALL,
        lines(&[
            "* OK [CAPABILITY IMAP4rev1 ID LITERAL+] ready",
            "* OK [ALERT] System going down at 17:00",
            "* NO [ALERT] Quota nearly full",
            "* CAPABILITY IMAP4rev1 IDLE",
            "* ENABLED",
            "* ID NIL",
            "M9 BAD no",
            "M1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in",
            "* 3 EXISTS",
            "* 0 RECENT",
        ]),
        store(LoggedIn, false, true),
    );
    add(
        "imap-untagged-capability-with-answer",
        0,
        ALL,
        lines(&["* OK [CAPABILITY OLD] hi", "* CAPABILITY IMAP4rev1 NEW", "M1 OK done", "* 1 EXISTS"]),
        store(LoggedIn, false, true),
    );
    add(
        "imap-preauth-greeting",
        0,
        ALL,
        lines(&["* PREAUTH [CAPABILITY IMAP4rev1] Logged in as joe"]),
        store(Protocol, false, false),
    );
    add("imap-bye-greeting", 0, ALL, lines(&["* BYE Server shutting down."]), store(Temporary, false, false));
    add("imap-bye-during-login", 0, 32, lines(&[g, DOVECOT_BYE]), store(Temporary, false, true));
    add(
        "imap-bye-after-login-before-capability",
        0,
        ALL,
        lines(&["* OK hi", "M1 OK Logged in", "* BYE Internal error"]),
        store(Temporary, false, true),
    );
    add(
        "imap-bad",
        0,
        ALL,
        lines(&[g, "M1 BAD Error in IMAP command received by server."]),
        store(Protocol, false, true),
    );
    add("imap-unexpected-tag", 0, ALL, lines(&[g, "M7 OK what"]), store(Protocol, false, true));
    add("imap-unexpected-continuation", 0, ALL, lines(&[g, DOVECOT_LITERAL_GO]), store(Protocol, false, true));
    add("imap-inuse", 0, ALL, lines(&["* OK hi", "M1 NO [INUSE] busy"]), store(Temporary, false, true));
    add("imap-garbage-greeting", 0, ALL, b"\xff\xfe garbage\r\n".to_vec(), store(Protocol, false, false));
    add("imap-tagged-before-greeting", 0, ALL, lines(&["M1 OK [CAPABILITY X] early"]), store(Protocol, false, false));
    add("imap-greeting-only", 0, 3, lines(&[g]), store(Waiting, false, true));
    // Passwords that need escapes or literals.
    let no_literal_plus = "* OK [CAPABILITY IMAP4rev1 SASL-IR ID] ready.";
    add(
        "imap-8bit-sync-literals",
        mode::password(1),
        ALL,
        lines(&[no_literal_plus, DOVECOT_LITERAL_GO, DOVECOT_LITERAL_GO, ok]),
        store(LoggedIn, false, true),
    );
    add("imap-8bit-literal-plus", mode::password(1), 9, lines(&[g, ok]), store(LoggedIn, false, true));
    add(
        "imap-8bit-literal-answered-early",
        mode::password(1),
        ALL,
        lines(&[no_literal_plus, no]),
        store(Rejected, false, false),
    );
    add("imap-quoted-escapes", mode::password(2), ALL, lines(&[g, no]), store(Rejected, false, true));
    add(
        "imap-crlf-password-literal",
        mode::password(3),
        ALL,
        lines(&[no_literal_plus, DOVECOT_LITERAL_GO, no]),
        store(Rejected, false, true),
    );
    // SASL PLAIN, and the store administrator on a user's behalf.
    add("imap-plain-sasl-ir", mode::PLAIN, ALL, lines(&[g, ok]), store(LoggedIn, false, true));
    add(
        "imap-plain-continuation",
        mode::PLAIN,
        ALL,
        lines(&["* OK [CAPABILITY IMAP4rev1 LITERAL+] ready.", DOVECOT_SASL_GO, ok]),
        store(LoggedIn, false, true),
    );
    add("imap-admin-plain", mode::ADMIN, 64, lines(&[g, ok]), store(LoggedIn, false, true));
    add(
        "imap-admin-plain-refused-continuation",
        mode::ADMIN | mode::password(2),
        ALL,
        lines(&["* OK hi", DOVECOT_SASL_GO, no]),
        store(Rejected, false, true),
    );
    // STARTTLS. Reads end after the STARTTLS answer, so what follows comes over TLS.
    let plaintext = lines(&[g, DOVECOT_STARTTLS]);
    let read = u8::try_from(plaintext.len()).expect("greeting and STARTTLS answer fit one read");
    add(
        "imap-starttls-login",
        mode::STARTTLS,
        read,
        [plaintext.clone(), lines(&[ok])].concat(),
        store(LoggedIn, true, true),
    );
    add(
        "imap-starttls-client-id-plain",
        mode::STARTTLS | mode::CLIENT_ID | mode::PLAIN,
        read,
        [plaintext.clone(), lines(&[DOVECOT_ID[0], DOVECOT_ID[1], DOVECOT_SASL_GO, ok])].concat(),
        store(LoggedIn, true, true),
    );
    add(
        "imap-starttls-capability-after-login",
        mode::STARTTLS | mode::password(1),
        read,
        [
            plaintext.clone(),
            lines(&[DOVECOT_LITERAL_GO, DOVECOT_LITERAL_GO, "M1 OK Logged in", DOVECOT_CAPABILITY_TLS, "M2 OK done"]),
        ]
        .concat(),
        store(LoggedIn, true, true),
    );
    // A store (or someone on the path) pipelining answers behind its STARTTLS answer.
    add(
        "imap-starttls-injection",
        mode::STARTTLS,
        ALL,
        lines(&["* OK [CAPABILITY IMAP4rev1 STARTTLS LITERAL+] hi", "M0 OK go", "M1 OK [CAPABILITY FAKE] injected"]),
        store(Waiting, true, true),
    );
    add(
        "imap-starttls-refused",
        mode::STARTTLS,
        ALL,
        lines(&["* OK hi", "M0 BAD no tls"]),
        store(Temporary, false, false),
    );
    add("imap-starttls-answered-with-login", mode::STARTTLS, ALL, lines(&[g, ok]), store(Protocol, false, false));
    add(
        "imap-starttls-continuation",
        mode::STARTTLS | mode::PLAIN,
        ALL,
        lines(&[g, DOVECOT_SASL_GO]),
        store(Protocol, false, false),
    );
    // Line caps: 17 KiB greeting text, with and without its line end.
    let long = [&b"* OK "[..], &[0xff; 17]].concat();
    add("imap-long-line", mode::EXPAND, ALL, [&long[..], b"\r\n"].concat(), store(Protocol, false, false));
    add("imap-long-line-unterminated", mode::EXPAND, 200, long, store(Protocol, false, false));
    add(
        "imap-line-just-under-cap",
        mode::EXPAND,
        ALL,
        [&b"* OK "[..], &[0xff; 15], &b"\r\n"[..], &lines(&[ok])].concat(),
        store(LoggedIn, false, true),
    );

    // POP3.
    let (pg, user_ok, pok) = (DOVECOT_POP3_GREETING, DOVECOT_POP3_USER_OK, DOVECOT_POP3_LOGGED_IN);
    add("pop3-dovecot-user-pass", POP3, ALL, lines(&[pg, user_ok, pok, "+OK 0 0"]), store(LoggedIn, false, true));
    add("pop3-dovecot-user-pass-bytewise", POP3, 1, lines(&[pg, user_ok, pok]), store(LoggedIn, false, true));
    add(
        "pop3-dovecot-wrong-password",
        POP3,
        ALL,
        lines(&[pg, user_ok, DOVECOT_POP3_AUTH_FAILED]),
        store(Rejected, false, true),
    );
    add(
        "pop3-wrong-user",
        POP3,
        ALL,
        lines(&[pg, "-ERR [AUTH] Authentication failed."]),
        store(Rejected, false, false),
    );
    add("pop3-tempfail", POP3, 5, lines(&[pg, user_ok, DOVECOT_POP3_TEMPFAIL]), store(Temporary, false, true));
    add(
        "pop3-in-use",
        POP3,
        ALL,
        lines(&[pg, user_ok, "-ERR [IN-USE] Mailbox is locked by another session"]),
        store(Temporary, false, true),
    );
    add("pop3-err-no-code", POP3, ALL, lines(&[pg, user_ok, "-ERR nope"]), store(Rejected, false, true));
    add(
        "pop3-greeting-err",
        POP3,
        ALL,
        lines(&["-ERR [SYS/TEMP] Too many connections"]),
        store(Temporary, false, false),
    );
    add("pop3-imap-greeting", POP3, ALL, lines(&["* OK imap?"]), store(Protocol, false, false));
    add(
        "pop3-plain",
        POP3 | mode::PLAIN,
        ALL,
        lines(&["+OK Dovecot (Debian) ready.", pok]),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-plain-answered-with-continuation",
        POP3 | mode::PLAIN,
        ALL,
        lines(&[pg, DOVECOT_SASL_GO]),
        store(Protocol, false, true),
    );
    add("pop3-admin", POP3 | mode::ADMIN, ALL, lines(&[pg, pok]), store(LoggedIn, false, true));
    add(
        "pop3-crlf-password-forces-plain",
        POP3 | mode::password(3),
        ALL,
        lines(&[pg, pok]),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-8bit-user-and-password",
        POP3 | mode::password(1),
        ALL,
        lines(&[pg, user_ok, pok]),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-quotes-in-password",
        POP3 | mode::password(2),
        11,
        lines(&[pg, user_ok, pok]),
        store(LoggedIn, false, true),
    );
    let plaintext = lines(&[pg, DOVECOT_POP3_STLS]);
    let read = u8::try_from(plaintext.len()).expect("greeting and STLS answer fit one read");
    add(
        "pop3-stls-login",
        POP3 | mode::STARTTLS,
        read,
        [plaintext.clone(), lines(&[user_ok, pok])].concat(),
        store(LoggedIn, true, true),
    );
    add(
        "pop3-stls-injection",
        POP3 | mode::STARTTLS,
        ALL,
        lines(&[pg, DOVECOT_POP3_STLS, user_ok, "+OK injected"]),
        store(Waiting, true, false),
    );
    add(
        "pop3-stls-refused",
        POP3 | mode::STARTTLS,
        ALL,
        lines(&[pg, "-ERR TLS support isn't enabled."]),
        store(Temporary, false, false),
    );
    // ForwardClientAddress: XCLIENT where the greeting offers it, its answer skipped.
    let xc = DOVECOT_POP3_XCLIENT;
    add(
        "pop3-xclient-user-pass",
        POP3 | mode::CLIENT_ID,
        ALL,
        lines(&[pg, xc, user_ok, pok]),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-xclient-refused-plain",
        POP3 | mode::CLIENT_ID | mode::PLAIN,
        3,
        lines(&[pg, "-ERR You are not from trusted IP", DOVECOT_POP3_AUTH_FAILED]),
        store(Rejected, false, true),
    );
    add(
        "pop3-xclient-not-offered",
        POP3 | mode::CLIENT_ID,
        ALL,
        lines(&["+OK Dovecot ready.", user_ok, pok]),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-xclient-after-stls",
        POP3 | mode::CLIENT_ID | mode::STARTTLS,
        read,
        [plaintext.clone(), lines(&[xc, user_ok, pok])].concat(),
        store(LoggedIn, true, true),
    );
    let long = [&b"+OK "[..], &[0xff; 5]].concat();
    add("pop3-long-line", POP3 | mode::EXPAND, ALL, [&long[..], b"\r\n"].concat(), store(Protocol, false, false));
    add("pop3-long-line-unterminated", POP3 | mode::EXPAND, 100, long, store(Protocol, false, false));
    bearer_tokens(&mut add);
}

/// Bearer tokens (`mode::BEARER`): written, not captured; a store advertising the mechanisms
/// as Dovecot does with `auth_mechanisms = plain oauthbearer xoauth2`, and an RFC 7628 report.
fn bearer_tokens(add: &mut impl FnMut(&str, u8, u8, Vec<u8>, Expect)) {
    use StoreEnd::*;
    const ALL: u8 = 0;
    const POP3: u8 = mode::POP3;
    const BEARER: u8 = mode::BEARER;
    let greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2] Dovecot (Debian) ready.";
    let report = "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciJ9";
    let (ok, no) = (DOVECOT_LOGGED_IN, DOVECOT_AUTH_FAILED);
    add(
        "imap-bearer-oauthbearer",
        BEARER | mode::password(0),
        ALL,
        lines(&[greeting, ok]),
        store(LoggedIn, false, true),
    );
    add(
        "imap-bearer-not-advertised",
        BEARER | mode::password(1),
        ALL,
        lines(&[DOVECOT_GREETING, ok]),
        store(Protocol, false, false),
    );
    add(
        "imap-bearer-error-report",
        BEARER | mode::password(2),
        9,
        lines(&[greeting, report, no]),
        store(Rejected, false, true),
    );
    add(
        "imap-bearer-capability-asked",
        BEARER | mode::password(1) | mode::CLIENT_ID,
        ALL,
        lines(&[
            "* OK Dovecot ready.",
            "* CAPABILITY IMAP4rev1 ID AUTH=XOAUTH2",
            "M3 OK Capability completed.",
            DOVECOT_SASL_GO,
            ok,
        ]),
        store(LoggedIn, false, true),
    );
    let plaintext = lines(&[greeting, DOVECOT_STARTTLS]);
    let read = u8::try_from(plaintext.len()).expect("greeting and STARTTLS answer fit one read");
    add(
        "imap-bearer-after-starttls",
        BEARER | mode::STARTTLS | mode::password(3),
        read,
        [plaintext, lines(&["* CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN AUTH=XOAUTH2", "M3 OK done", ok])].concat(),
        store(LoggedIn, true, true),
    );
    let capa = ["+OK", "CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN OAUTHBEARER XOAUTH2", "."];
    let pg = DOVECOT_POP3_GREETING;
    add(
        "pop3-bearer-capa-then-auth",
        POP3 | BEARER | mode::password(1),
        ALL,
        lines(&[&[pg][..], &capa, &[DOVECOT_POP3_LOGGED_IN]].concat()),
        store(LoggedIn, false, true),
    );
    add(
        "pop3-bearer-long-token-and-report",
        POP3 | BEARER | mode::password(2),
        13,
        lines(&[&[pg][..], &capa, &["+ ", report, DOVECOT_POP3_AUTH_FAILED]].concat()),
        store(Rejected, false, true),
    );
    add(
        "pop3-bearer-not-listed",
        POP3 | BEARER | mode::password(0),
        ALL,
        lines(&[pg, "+OK", "SASL PLAIN", "."]),
        store(Protocol, false, false),
    );
}

/// Store answers for `store_probe`: Dovecot's greeting (captured) and CAPA (as Dovecot 2.3's
/// pop3-login sources write it to a trusted network), a store that needs asking, one without
/// CAPA, and hostile ones.
pub(super) fn store_probe(seeds: &mut Vec<Seed>) {
    use ProbeEnd::*;
    let mut add = |name: &str, mode: u8, store_bytes: Vec<u8>, end: ProbeEnd| {
        let mut data = vec![mode];
        data.extend(store_bytes);
        seed(seeds, "store_probe", name, data, Expect::Probe(end));
    };
    const IMAP: u8 = 0;
    const POP3: u8 = 1;
    const BYTEWISE: u8 = 1 << 1;
    let capa = [
        DOVECOT_POP3_GREETING,
        "+OK",
        "CAPA",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "STLS",
        "USER",
        "SASL PLAIN LOGIN",
        "XCLIENT",
        ".",
        "+OK Logging out",
    ];
    add("imap-dovecot-greeting", IMAP, lines(&[DOVECOT_GREETING, "* BYE Logging out"]), Learned(10));
    add(
        "imap-asked",
        IMAP | BYTEWISE,
        lines(&["* OK Dovecot ready.", DOVECOT_CAPABILITY_TLS, "P1 OK Capability completed."]),
        Learned(9),
    );
    add("imap-bye", IMAP, lines(&[DOVECOT_BYE]), Failed);
    add("imap-preauth", IMAP, lines(&["* PREAUTH [CAPABILITY IMAP4rev1] hi"]), Failed);
    add("imap-refused", IMAP, lines(&["* OK hi", "P1 NO later"]), Failed);
    add("pop3-dovecot-capa", POP3, lines(&capa), Learned(10));
    add("pop3-dovecot-capa-bytewise", POP3 | BYTEWISE, lines(&capa), Learned(10));
    add("pop3-no-capa", POP3, lines(&["+OK hi", "-ERR Unknown command."]), Learned(0));
    add("pop3-greeting-err", POP3, lines(&["-ERR [SYS/TEMP] busy"]), Failed);
    add("pop3-imap-store", POP3, lines(&[DOVECOT_GREETING]), Failed);
    add("pop3-stuffed-dot", POP3, lines(&["+OK", "+OK", "..", "X-ODD", "."]), Learned(2));
    // Found by this target: a bare CR inside a CAPA line made an item with a line end in it.
    add("pop3-bare-cr-in-a-line", POP3, lines(&["+OK", "+OK", "TOP", "UIDL\r\u{e}RESP-CODES", "."]), Learned(1));
}
