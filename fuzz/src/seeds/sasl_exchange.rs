//! Client lines for `sasl_exchange`: the RFC examples of every mechanism (RFC 4616 PLAIN,
//! RFC 2195 CRAM-MD5, RFC 7628 OAUTHBEARER, Google's XOAUTH2), as initial responses and after a
//! challenge, refused, cancelled, malformed and over the caps.

use mailmux_proto::BearerMechanism;
use mailmux_proto::sasl::{bearer, encode};

use super::{Expect, Seed, lines, seed};
use crate::sasl::{SaslEnd, SaslOutcome, config};

// The mechanism indexes in `SaslMechanism::ALL`.
const PLAIN: u8 = 0;
const LOGIN: u8 = 1;
const CRAM_MD5: u8 = 2;
const OAUTHBEARER: u8 = 3;
const XOAUTH2: u8 = 4;
const EXTERNAL: u8 = 5;
const IR: u8 = config::INITIAL_RESPONSE;

/// RFC 4616 §4's example, `\0tim\0tanstaaftanstaaf`.
const RFC_4616: &str = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
/// RFC 2195 §2's client answer, `tim b913a602c7eda7a495b4e6e7334d3890`.
const RFC_2195: &str = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";
/// RFC 7628 §4.1's client response (with `host` and `port` pairs).
const RFC_7628: &str = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
/// Google's XOAUTH2 example, `user=someuser@example.com^Aauth=Bearer ya29.…^A^A`.
const GOOGLE_XOAUTH2: &str = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2cBAQ==";

fn sasl(challenges: u32, end: SaslEnd) -> Expect {
    Expect::Sasl(SaslOutcome { challenges, end })
}

pub(super) fn sasl_exchange(seeds: &mut Vec<Seed>) {
    use SaslEnd::*;
    let mut add = |name: &str, first: u8, client: Vec<u8>, expect: Expect| {
        let mut data = vec![first];
        data.extend(client);
        seed(seeds, "sasl_exchange", name, data, expect);
    };
    let over_plain_cap = encode(&[&b"\0tim\0"[..], &[b'p'; 3070]].concat());
    let large_token = encode(
        bearer::message(BearerMechanism::XOAuth2, "user1", &mailmux_proto::Secret::new("t".repeat(12_000))).expose(),
    );
    let channel_binding = encode(b"p=tls-unique,a=user1,\x01auth=Bearer vF9dft4qmTc2\x01\x01");

    add("plain-initial-response", PLAIN | IR, lines(&[RFC_4616]), sasl(0, Proof));
    add("plain-continuation", PLAIN, lines(&[RFC_4616]), sasl(1, Proof));
    add("plain-cancel", PLAIN, lines(&["*"]), sasl(1, Failed));
    add("plain-bad-base64", PLAIN, lines(&["AHRpbQB0YW5zdGFhZnRhbnN0YWF%"]), sasl(1, Failed));
    add("plain-over-the-cap", PLAIN | IR, lines(&[&over_plain_cap]), sasl(0, Failed));
    add("login-two-prompts", LOGIN, lines(&["dGlt", "dGFuc3RhYWZ0YW5zdGFhZg=="]), sasl(2, Proof));
    add(
        "login-initial-response-refused",
        LOGIN | IR | config::REFUSE,
        lines(&["dGlt", "dGFuc3RhYWZ0YW5zdGFhZg=="]),
        sasl(1, Proof),
    );
    add("cram-md5-rfc-2195", CRAM_MD5, lines(&[RFC_2195]), sasl(1, Proof));
    add("cram-md5-initial-response", CRAM_MD5 | IR, lines(&[RFC_2195]), sasl(0, Failed));
    add("cram-md5-without-crams", CRAM_MD5 | config::NO_CHALLENGE, lines(&[RFC_2195]), sasl(0, Failed));
    add("cram-md5-no-digest", CRAM_MD5, lines(&["dGlt"]), sasl(1, Failed));
    add(
        "oauthbearer-rfc-7628-refused",
        OAUTHBEARER | IR | config::REFUSE,
        lines(&[RFC_7628, "AQ=="]),
        sasl(1, Refused),
    );
    add("oauthbearer-continuation", OAUTHBEARER, lines(&[RFC_7628]), sasl(1, Proof));
    add("oauthbearer-channel-binding", OAUTHBEARER | IR, lines(&[&channel_binding]), sasl(0, Failed));
    add("xoauth2-google-refused", XOAUTH2 | config::REFUSE, lines(&[GOOGLE_XOAUTH2, ""]), sasl(2, Refused));
    add("xoauth2-large-token", XOAUTH2 | IR, lines(&[&large_token]), sasl(0, Proof));
    add("external-empty", EXTERNAL | IR, lines(&["="]), sasl(0, Proof));
    add("external-authzid", EXTERNAL, lines(&["dXNlcjE="]), sasl(1, Proof));
}
