//! Names PostgreSQL limits, checked once where a flag is read: a
//! replication slot, a role pgrepctl creates, an application_name. Each
//! type can only hold a valid name, so code past the settings never checks
//! again, and every command refuses a bad one with the same message.

use crate::error::{Code, Error, Result};
use std::fmt;
use std::ops::Deref;

/// PostgreSQL truncates identifiers to NAMEDATALEN-1 bytes; a longer name
/// would silently differ from the one written in pg_hba.conf or a config.
pub const MAX_NAME: usize = 63;

/// A physical replication slot name: `[a-z0-9_]{1,63}`, the rule of
/// ReplicationSlotValidateName.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotName(String);

/// A role pgrepctl creates or fixes: non-empty, at most 63 bytes, no
/// control characters (they would break pg_hba.conf), and not `pg_…`,
/// which PostgreSQL reserves for its own roles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(String);

/// An application_name a standby announces: 1 to 63 printable ASCII
/// characters without spaces, so that it reads back unchanged from
/// pg_stat_replication and needs no quoting to be matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationName(String);

impl SlotName {
    /// `flag` names the option in the message, e.g. `--slot`.
    pub fn parse(flag: &str, s: &str) -> Result<SlotName> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            return Ok(SlotName(s.to_string()));
        }
        Err(Error::new(
            Code::InvalidSlotName,
            format!("{flag} {s:?} is not a valid replication slot name"),
        )
        .hint("use lower-case letters, digits and underscores, at most 63 characters"))
    }
}

impl RoleName {
    /// `flag` names the option in the message, e.g. `--replication-user`.
    pub fn parse(flag: &str, s: &str) -> Result<RoleName> {
        let why = if s.is_empty() {
            "is empty"
        } else if s.len() > MAX_NAME {
            "is longer than 63 bytes, which PostgreSQL would truncate"
        } else if s.contains(['\0', '\n', '\r']) {
            "contains a control character"
        } else if s.starts_with("pg_") {
            "starts with pg_, which PostgreSQL reserves for its own roles"
        } else {
            return Ok(RoleName(s.to_string()));
        };
        Err(
            Error::new(Code::InvalidRoleName, format!("{flag} {s:?} {why}"))
                .hint("choose a plain name such as replicator or monitor"),
        )
    }
}

impl ApplicationName {
    /// `flag` names the option in the message, e.g. `--application-name`.
    pub fn parse(flag: &str, s: &str) -> Result<ApplicationName> {
        if !s.is_empty() && s.len() <= MAX_NAME && s.chars().all(|c| c.is_ascii_graphic()) {
            return Ok(ApplicationName(s.to_string()));
        }
        Err(
            Error::new(Code::InvalidValue, format!("invalid {flag} {s:?}"))
                .hint("use 1 to 63 printable ASCII characters without spaces"),
        )
    }
}

/// The string API the rest of the code reads names through.
macro_rules! name_type {
    ($t:ident, $flag:literal) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        /// So a name goes straight into a child's argv.
        impl AsRef<std::ffi::OsStr> for $t {
            fn as_ref(&self) -> &std::ffi::OsStr {
                self.0.as_ref()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }
        /// Parsing with the usual flag's name in a message.
        impl std::str::FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<$t> {
                $t::parse($flag, s)
            }
        }
    };
}

name_type!(SlotName, "--slot");
name_type!(RoleName, "--replication-user");
name_type!(ApplicationName, "--application-name");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_follow_postgres() {
        assert_eq!(SlotName::parse("--slot", "standby_1").unwrap(), "standby_1");
        for bad in ["", "Bad-Name", "a b", "é", &"x".repeat(64)] {
            let e = SlotName::parse("--slot", bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidSlotName, "{bad:?}");
            assert!(e.message.starts_with("--slot "), "{}", e.message);
        }
        assert!(SlotName::parse("--slot", &"x".repeat(63)).is_ok());
    }

    #[test]
    fn role_names_any_text_but_reserved_and_long() {
        assert!(RoleName::parse("--replication-user", "rep; drop table x; -- 'q'").is_ok());
        // pg_hba.conf writes `""` inside a quoted token for a literal quote.
        assert!(RoleName::parse("--replication-user", "a\"b").is_ok());
        for bad in ["", "a\nb", "pg_repl", &"x".repeat(64)] {
            let e = RoleName::parse("--monitor-user", bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidRoleName, "{bad:?}");
            assert!(e.message.starts_with("--monitor-user "), "{}", e.message);
        }
    }

    #[test]
    fn application_names_printable_ascii() {
        let n: ApplicationName = "db2.example".parse().unwrap();
        assert_eq!(n.to_string(), "db2.example");
        for bad in ["", "two words", "tab\t", "ü", &"x".repeat(64)] {
            assert_eq!(
                bad.parse::<ApplicationName>().unwrap_err().code,
                Code::InvalidValue,
                "{bad:?}"
            );
        }
    }
}
