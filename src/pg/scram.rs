//! Client-side password hashing, and the check that makes it idempotent:
//! a SCRAM verifier has a random salt, so "is the stored password already
//! this one?" must be answered by recomputing with the stored salt and
//! iteration count, not by comparing strings.

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// A fresh SCRAM-SHA-256 verifier (postgres-protocol's, as libpq computes it).
pub fn hash(password: &Secret) -> String {
    postgres_protocol::password::scram_sha_256(password.expose().as_bytes())
}

/// Whether `stored` (a `pg_authid.rolpassword`) accepts `password`.
pub fn matches(stored: &str, password: &Secret, role: &str) -> bool {
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        return scram_matches(rest, password.expose());
    }
    if stored.starts_with("md5") {
        return postgres_protocol::password::md5(password.expose().as_bytes(), role) == stored;
    }
    false
}

fn scram_matches(rest: &str, password: &str) -> bool {
    // <iterations>:<salt>$<StoredKey>:<ServerKey>
    let Some((params, keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iter, salt)) = params.split_once(':') else {
        return false;
    };
    let Some((stored_key, server_key)) = keys.split_once(':') else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(stored_key), Ok(server_key)) = (
        iter.parse::<u32>(),
        STANDARD.decode(salt),
        STANDARD.decode(stored_key),
        STANDARD.decode(server_key),
    ) else {
        return false;
    };
    // Same SASLprep fallback as libpq and the server.
    let prepared = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), &salt, iter, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    };
    let client_key = hmac(&salted, b"Client Key");
    let computed_stored = Sha256::digest(&client_key).to_vec();
    computed_stored == stored_key && hmac(&salted, b"Server Key") == server_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_hash_verifies_and_a_wrong_password_does_not() {
        let pw = Secret::new("s3cret pass");
        let v = hash(&pw);
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(matches(&v, &pw, "rep"));
        assert!(!matches(&v, &Secret::new("other"), "rep"));
        assert_ne!(hash(&pw), v, "salt must be random");
    }

    #[test]
    fn md5_verifiers() {
        let pw = Secret::new("pw");
        let v = postgres_protocol::password::md5(b"pw", "rep");
        assert!(matches(&v, &pw, "rep"));
        assert!(!matches(&v, &pw, "other"));
    }
}
