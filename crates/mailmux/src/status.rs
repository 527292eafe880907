//! Account status: users and domains that may not log in, whatever their password.
//!
//! Since 6.3 the MMP refuses a login unless `inetUserStatus` and `mailUserStatus` (on the
//! user's entry) and `inetDomainStatus` and `mailDomainStatus` (on the hosted domain's entry)
//! are absent, `active` or `overquota` (an over-quota user may still read and delete mail).
//! Anything else (`inactive`, `deleted`, `disabled`, `hold`, `removed` …) is refused with
//! the client's usual authentication failure, and logged with the value:
//! `user 'joe@siroe.com' mailUserStatus: 'disabled'`.

use crate::directory::Entry;
use crate::error::LoginError;

/// The status attributes of a user's entry (lower-cased, as entries keep them).
pub const USER_STATUS_ATTRS: [&str; 2] = ["inetuserstatus", "mailuserstatus"];
/// The status attributes of a domain's entry.
pub const DOMAIN_STATUS_ATTRS: [&str; 2] = ["inetdomainstatus", "maildomainstatus"];

/// Refuses `entry` (a user's or a domain's, per `attrs`) unless every status is one that may
/// log in. `who` names the account in the log (`user 'joe@siroe.com'`, `domain 'siroe.com'`).
pub fn check(entry: &Entry, attrs: &[&str], who: &str) -> Result<(), LoginError> {
    for attr in attrs {
        for value in entry.values(attr) {
            let v = value.trim();
            if !(v.eq_ignore_ascii_case("active") || v.eq_ignore_ascii_case("overquota")) {
                return Err(LoginError::Inactive {
                    who: who.to_owned(),
                    attr: display_name(attr),
                    value: v.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The attribute as the schema spells it, for the log line.
fn display_name(attr: &str) -> &'static str {
    match attr {
        "inetuserstatus" => "inetUserStatus",
        "mailuserstatus" => "mailUserStatus",
        "inetdomainstatus" => "inetDomainStatus",
        _ => "mailDomainStatus",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_active_and_overquota_may_log_in() {
        let ok = [
            Entry::new("uid=a", []),
            Entry::new("uid=a", [("inetuserstatus", "Active"), ("mailuserstatus", "overquota")]),
        ];
        for e in &ok {
            assert!(check(e, &USER_STATUS_ATTRS, "user 'a'").is_ok());
        }
        for (attr, value) in
            [("inetuserstatus", "inactive"), ("mailuserstatus", "disabled"), ("mailuserstatus", "hold")]
        {
            let e = Entry::new("uid=a", [(attr, value)]);
            let err = check(&e, &USER_STATUS_ATTRS, "user 'a'").unwrap_err();
            assert!(err.to_string().ends_with(&format!(": '{value}'")), "{err}");
        }
        let d = Entry::new("dc=x", [("inetdomainstatus", "deleted")]);
        assert_eq!(
            check(&d, &DOMAIN_STATUS_ATTRS, "domain 'x'").unwrap_err().to_string(),
            "domain 'x' inetDomainStatus: 'deleted'"
        );
    }
}
