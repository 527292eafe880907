//! The fuzz harnesses, one function per target, and the table the seed corpora are written from.
//!
//! Each `fuzz_targets/<name>.rs` is one line calling the function of the same name here, so the
//! same code runs under libFuzzer and in this crate's tests, which check that every committed
//! seed still reaches the state it was written for (`cargo test` in `fuzz/`).
//!
//! A harness drives a machine the way the server does and asserts properties, not just "no
//! panic": credentials never leave before TLS when STARTTLS was asked for and are sent at most
//! once, input pipelined before a TLS handshake never runs after it, buffers stay under their
//! caps, a SASL proof reads back the same once written for a store, no password is logged by
//! the configuration loader, an escaped LDAP value matches only itself.
//!
//! | target | input |
//! | --- | --- |
//! | `imap_front` | `[settings+chunk, client bytes…]` ([`front::imap_front`]) |
//! | `pop3_front` | `[settings+chunk, client bytes…]` ([`front::pop3_front`]) |
//! | `store_replay` | `[mode, chunk, store bytes…]` ([`store::store_replay`]) |
//! | `pop3_maildrop` | `[empty+chunk, client bytes…]` ([`maildrop::pop3_maildrop`]) |
//! | `store_probe` | `[protocol+chunk, store bytes…]` ([`probe::store_probe`]) |
//! | `sasl_exchange` | `[config, client lines…]` ([`sasl::sasl_exchange`]) |
//! | `ldap_filter` | UTF-8 text ([`text::ldap_filter`]) |
//! | `config_file` | UTF-8 text ([`text::config_file`]) |

pub mod front;
pub mod maildrop;
pub mod probe;
pub mod sasl;
pub mod seeds;
pub mod store;
pub mod text;

/// How often `needle` occurs in `haystack` (overlaps counted).
pub(crate) fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Whether `out` is whole CRLF lines: no LF without its CR, and nothing after the last CRLF.
pub(crate) fn whole_lines(out: &[u8]) -> bool {
    out.is_empty()
        || (out.ends_with(b"\r\n")
            && out.iter().enumerate().all(|(i, &b)| b != b'\n' || (i > 0 && out[i - 1] == b'\r')))
}
