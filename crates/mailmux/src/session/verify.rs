//! What the client proved, checked at the edge before any store is contacted.
//!
//! * **PreAuth** (`PreAuth yes`, or a hosted domain's `mailAccessProxyPreAuth`): the
//!   password is checked by binding to the directory as the user's DN (the LDAP directory
//!   does it on connections of its own), or from the AuthCache
//!   ([`crate::directory::auth_cache`]). A wrong password never reaches a store. Each success
//!   is logged in the MMP's form, which sites parse:
//!   `yyyymmdd hhmmss (sid 0x<hex>) <user@domain> pre-authenticated - <client IP>, <server IP>`
//!   (UTC; the sid is the session's `id`, in hexadecimal).
//! * **CRAM-MD5 and APOP** (`CRAMs yes`): the digest is checked against the user's
//!   cleartext `userPassword`, read with `BindDN`'s rights and never cached; mailmux then logs
//!   into the store as `StoreAdmin` for the user.

use std::time::Duration;

use mailmux_proto::sasl::{ChallengeSeed, verify_apop, verify_cram_md5};
use mailmux_proto::{ChallengeKind, Secret};

use super::SessionContext;
use crate::directory::auth_cache::{self, Verdict};
use crate::directory::{Entry, password};
use crate::error::LoginError;
use crate::hosted::HostedDomain;

/// What a session's CRAM-MD5 challenges and APOP timestamp are made of, with `CRAMs yes`:
/// 16 random hexadecimal digits and the time, so that no two sessions (of this or another
/// instance) ever issue the same challenge, and the machine's name.
pub fn challenge_seed(service: &crate::service::Service) -> Option<ChallengeSeed> {
    use ring::rand::SecureRandom;
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if !service.config.auth.crams {
        return None;
    }
    let mut random = [0u8; 8];
    // Without randomness a challenge could repeat: better no CRAM than a replayable one.
    ring::rand::SystemRandom::new().fill(&mut random).ok()?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let host = HOST.get_or_init(|| dns_lookup::get_hostname().unwrap_or_else(|_| "mailmux".to_owned()));
    Some(ChallengeSeed::new(&format!("{hex}.{}", now.as_secs()), host))
}

/// PreAuth, when it is on for this user: `Ok` when the password is right (or PreAuth is off).
pub async fn preauth(
    ctx: &SessionContext,
    user: &str,
    entry: &Entry,
    domain: Option<&HostedDomain>,
    password: &Secret,
) -> Result<(), LoginError> {
    let service = &ctx.service;
    let auth = &service.config.auth;
    if !domain.and_then(|d| d.preauth).unwrap_or(auth.preauth) {
        return Ok(());
    }
    let ttl = if auth.cache_size == 0 { Duration::ZERO } else { auth.cache_ttl };
    let key = auth_cache::key_of(&service.directory_key, &entry.dn);
    let bind = service.directory.authenticate(&entry.dn, password);
    let verdict = service.auth_cache.verify(&key, password, ttl, bind).await?;
    ctx.metrics.preauth(service.config.protocol, verdict);
    match verdict {
        Verdict::Refused => {
            Err(LoginError::WrongPassword { dn: entry.dn.clone(), how: "the directory refused the bind" })
        }
        verdict => {
            tracing::debug!(cached = verdict == Verdict::Cached, "password checked by PreAuth");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            tracing::info!(target: crate::log_severity::INFORMATION, "{}", preauth_line(now.as_secs(), ctx.id, user, ctx.client.ip(), ctx.local.ip()));
            Ok(())
        }
    }
}

/// The MMP's line for a pre-authenticated user.
pub fn preauth_line(
    unix_seconds: u64,
    sid: u64,
    user: &str,
    client: std::net::IpAddr,
    server: std::net::IpAddr,
) -> String {
    let (days, seconds) = (unix_seconds / 86_400, unix_seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let (client, server) = (client.to_canonical(), server.to_canonical());
    format!(
        "{year:04}{month:02}{day:02} {h:02}{m:02}{s:02} (sid 0x{sid:x}) {user} pre-authenticated - {client}, {server}"
    )
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// CRAM-MD5 or APOP: the client's digest over `challenge` against the user's cleartext
/// `userPassword`.
pub async fn challenge_response(
    ctx: &SessionContext,
    entry: &Entry,
    challenge: &Secret,
    digest: &Secret,
    kind: ChallengeKind,
) -> Result<(), LoginError> {
    let stored = ctx.service.directory.stored_passwords(&entry.dn).await?;
    let cleartexts: Vec<&str> =
        stored.iter().filter_map(|s| std::str::from_utf8(s.expose()).ok()).filter_map(password::cleartext).collect();
    if cleartexts.is_empty() {
        return Err(LoginError::NoCleartextPassword { dn: entry.dn.clone() });
    }
    let matches = |clear: &&str| match kind {
        ChallengeKind::CramMd5 => verify_cram_md5(challenge.expose(), clear.as_bytes(), digest.expose()),
        ChallengeKind::Apop => verify_apop(challenge.expose(), clear.as_bytes(), digest.expose()),
    };
    if cleartexts.iter().any(matches) {
        Ok(())
    } else {
        Err(LoginError::WrongPassword { dn: entry.dn.clone(), how: "the digest does not match" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mmp_line_to_the_character() {
        // 2026-11-28 21:07:05 UTC.
        let line = preauth_line(
            1_795_900_025,
            0x2a,
            "joe@siroe.com",
            "192.0.2.7".parse().unwrap(),
            "::ffff:198.51.100.1".parse().unwrap(),
        );
        assert_eq!(line, "20261128 210705 (sid 0x2a) joe@siroe.com pre-authenticated - 192.0.2.7, 198.51.100.1");
    }

    #[test]
    fn dates_across_leap_years_and_centuries() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (19_782, (2024, 2, 29)),
            (47_541, (2100, 3, 1)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days}");
        }
    }
}
