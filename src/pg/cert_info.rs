//! What pgrepctl needs to know about an X.509 certificate: when it
//! expires and which names it is valid for. init-master checks an existing
//! server certificate against the names a standby will use; check warns
//! before the server's certificate expires.

use crate::error::{Code, Error, Result};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Days before a server certificate expires that check's `CERT_EXPIRING`
/// is a WARNING (`--cert-warn-days`' default), and within which
/// `init-master --ssl-issue` reissues pgrepctl's own certificate.
pub const EXPIRY_WARN_DAYS: u32 = 30;
/// Days before it expires that `CERT_EXPIRING` is CRITICAL (`--cert-crit-days`' default).
pub const EXPIRY_CRIT_DAYS: u32 = 7;

/// The facts of one certificate, parsed from PEM or DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject, as OpenSSL prints it (`CN=db1`).
    pub subject: String,
    /// The subject's common names (used for the host name only when the
    /// certificate has no SAN of the host's kind, as libpq does).
    pub common_names: Vec<String>,
    /// dNSName subject alternative names.
    pub dns_names: Vec<String>,
    /// iPAddress subject alternative names.
    pub ip_addrs: Vec<IpAddr>,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// Whether the certificate may sign others (basicConstraints CA).
    pub is_ca: bool,
    /// The DER bytes, for [`crate::pg::tls::name_matches`].
    pub der: Vec<u8>,
}

impl CertInfo {
    /// The first certificate of a PEM file's text, or DER bytes.
    pub fn parse(bytes: &[u8]) -> Result<CertInfo> {
        let der = if bytes.starts_with(b"-----") || bytes.trim_ascii_start().starts_with(b"-----") {
            first_pem_certificate(bytes)?
        } else {
            bytes.to_vec()
        };
        Self::from_der(der)
    }

    fn from_der(der: Vec<u8>) -> Result<CertInfo> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
            Error::new(
                Code::TlsFailed,
                format!("could not parse the certificate: {e}"),
            )
            .hint("give a PEM certificate (-----BEGIN CERTIFICATE-----)")
        })?;
        let mut dns_names = vec![];
        let mut ip_addrs = vec![];
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => ip_addrs.extend(ip_of(b)),
                    _ => {}
                }
            }
        }
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            common_names,
            dns_names,
            ip_addrs,
            not_after: cert.validity().not_after.timestamp(),
            not_before: cert.validity().not_before.timestamp(),
            is_ca,
            der: der.clone(),
        })
    }

    /// Whole days from `now` until notAfter; negative once expired.
    pub fn days_left_at(&self, now: SystemTime) -> i64 {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (self.not_after - now).div_euclid(86_400)
    }

    /// [`Self::days_left_at`] now.
    pub fn days_left(&self) -> i64 {
        self.days_left_at(SystemTime::now())
    }

    /// Whether a client connecting by `host` accepts this certificate's
    /// name, by libpq's rules (see [`crate::pg::tls::name_matches`]).
    pub fn valid_for(&self, host: &str) -> std::result::Result<(), String> {
        crate::pg::tls::name_matches(&self.der, host)
    }

    /// Every name the certificate is valid for, for messages.
    pub fn names(&self) -> Vec<String> {
        let mut v = self.dns_names.clone();
        v.extend(self.ip_addrs.iter().map(IpAddr::to_string));
        if v.is_empty() {
            v = self.common_names.clone();
        }
        v
    }
}

fn first_pem_certificate(text: &[u8]) -> Result<Vec<u8>> {
    for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
        match pem {
            Ok(p) if p.label == "CERTIFICATE" => return Ok(p.contents),
            Ok(_) => continue,
            Err(e) => {
                return Err(Error::new(
                    Code::TlsFailed,
                    format!("could not read the PEM certificate: {e}"),
                )
                .hint("give a PEM certificate (-----BEGIN CERTIFICATE-----)"));
            }
        }
    }
    Err(
        Error::new(Code::TlsFailed, "no certificate in the PEM text")
            .hint("give a PEM certificate (-----BEGIN CERTIFICATE-----)"),
    )
}

/// An iPAddress SAN's bytes as an address (4 or 16 bytes).
pub(crate) fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str], days: i64) -> String {
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "db1 server");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        p.not_after = rcgen::date_time_ymd(1970, 1, 1)
            + std::time::Duration::from_secs((now + days * 86_400 + 3600) as u64);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn parses_names_and_expiry() {
        let pem = cert(&["db1.example.org", "10.0.0.1"], 20);
        let c = CertInfo::parse(pem.as_bytes()).unwrap();
        assert_eq!(c.dns_names, ["db1.example.org"]);
        assert_eq!(c.ip_addrs, ["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.common_names, ["db1 server"]);
        assert_eq!(c.days_left(), 20);
        assert!(c.valid_for("db1.example.org").is_ok());
        assert!(c.valid_for("10.0.0.1").is_ok());
        assert!(c.valid_for("db2.example.org").is_err());
        assert_eq!(c.names(), ["db1.example.org", "10.0.0.1"]);
        assert!(!c.is_ca);
        // DER gives the same facts.
        assert_eq!(CertInfo::parse(&c.der).unwrap(), c);
    }

    #[test]
    fn expired_is_negative() {
        let c = CertInfo::parse(cert(&["a"], -3).as_bytes()).unwrap();
        assert!(c.days_left() < 0, "{}", c.days_left());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let e = CertInfo::parse(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert_eq!(e.code, Code::TlsFailed);
        assert!(CertInfo::parse(b"\x30\x03\x02\x01\x00").is_err());
    }
}
