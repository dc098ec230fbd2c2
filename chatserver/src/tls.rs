//! The server's TLS settings from a certificate chain and a key in PEM
//! files: rustls with the ring provider, TLS 1.2 and 1.3 only.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Read `cert` (a chain, leaf first) and `key`, and check that they go
/// together; the settings, and the leaf (for [`doubts`]). Every failure
/// is one line naming the file and what to do.
pub fn load(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, CertificateDer<'static>), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error("certificate", cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("certificate", cert, e))?;
    if chain.is_empty() {
        let none = rustls::pki_types::pem::Error::NoItemsFound;
        return Err(pem_error("certificate", cert, none));
    }
    let leaf = chain[0].clone();
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("key", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
                "the key {} (--tls-key) is not the key of the certificate {} (--tls-cert); give the key the certificate was made with",
                key.display(),
                cert.display()
            ),
            e => format!(
                "the key {} (--tls-key) cannot be used with the certificate {} (--tls-cert): {e}",
                key.display(),
                cert.display()
            ),
        })?;
    Ok((Arc::new(config), leaf))
}

/// Days before its end that a certificate's coming end is warned of.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// What clients will make of `leaf`, the server's own certificate (from
/// the file `cert`, named in the words), at `now` (seconds since 1970), as
/// warnings for the log: expired or not valid yet, ending within
/// [`EXPIRY_WARNING_DAYS`], or a CA's (`CA:TRUE`, which clients refuse as
/// a server's own). Nothing when it cannot be parsed (rustls took it, so
/// clients will say what is wrong).
pub fn doubts(leaf: &[u8], cert: &Path, now: i64) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let shown = cert.display();
    let mut said = Vec::new();
    let validity = parsed.validity();
    let (from, until) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > until {
        said.push(format!(
            "the TLS certificate {shown} (--tls-cert) expired {} ago: clients refuse it; renew it and restart",
            span(now - until)
        ));
    } else if now < from {
        said.push(format!(
            "the TLS certificate {shown} (--tls-cert) is not valid for another {} hour(s): clients refuse it until then (is this machine's clock right?)",
            (from - now + 3_599) / 3_600
        ));
    } else if until - now < EXPIRY_WARNING_DAYS * 86_400 {
        said.push(format!(
            "the TLS certificate {shown} (--tls-cert) expires in {}: renew it, then restart the server",
            span(until - now)
        ));
    }
    if let Ok(Some(bc)) = parsed.basic_constraints() {
        if bc.value.ca {
            said.push(format!(
                "the TLS certificate {shown} (--tls-cert) is a CA's (basicConstraints CA:TRUE): clients refuse it as a server's own; make one with CA:FALSE (README, \"On a LAN, with TLS\")"
            ));
        }
    }
    said
}

/// `secs` in words: whole days from a day on, whole hours under a day
/// (`0 day(s)` said nothing of a certificate ending in 5 hours).
fn span(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{} day(s)", s / 86_400),
        s if s >= 3_600 => format!("{} hour(s)", s / 3_600),
        _ => "less than an hour".to_owned(),
    }
}

/// A PEM file's error in words: `what` (`certificate` or `key`) in `path`.
fn pem_error(what: &str, path: &Path, e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    let expected = match what {
        "key" => "a PEM private key (PKCS#8, PKCS#1 or SEC1), such as -----BEGIN PRIVATE KEY-----",
        _ => "PEM certificates, -----BEGIN CERTIFICATE-----",
    };
    // Read again only to tell an encrypted key from no key at all.
    let encrypted = || {
        std::fs::read(path).is_ok_and(|b| b.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED"))
    };
    // The flag, so that a file named in a variable is told by its name.
    let flag = match what {
        "key" => "--tls-key",
        _ => "--tls-cert",
    };
    match e {
        Error::Io(e) => format!("cannot read the {what} file {} ({flag}): {e}", path.display()),
        Error::NoItemsFound if what == "key" && encrypted() => format!(
            "{} ({flag}) holds an encrypted key, which the server cannot use: decrypt it first (openssl pkey -in KEY -out PLAIN)",
            path.display()
        ),
        Error::NoItemsFound => format!(
            "{} ({flag}) holds no {what}; expected {expected}",
            path.display()
        ),
        // rustls says these in bytes (`[67, 69, 82, 84, ...]`).
        Error::MissingSectionEnd { end_marker } => {
            let marker = String::from_utf8_lossy(&end_marker);
            let label = marker.trim_matches('-').trim_start_matches("END ");
            format!(
                "{} ({flag}) is cut short: no -----END {label}----- line after its -----BEGIN {label}----- (copied in part?); expected {expected}",
                path.display()
            )
        }
        Error::IllegalSectionStart { line } => format!(
            "{} ({flag}) is not a {what} file: the line {:?} starts no PEM section; expected {expected}",
            path.display(),
            String::from_utf8_lossy(&line).trim_end()
        ),
        e => format!(
            "{} ({flag}) is not a {what} file ({e}); expected {expected}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, IsCa, KeyPair};

    /// [`doubts`] of the first certificate in the PEM file `path`, as
    /// the server reads it.
    fn doubts_of(path: &Path, now: i64) -> Vec<String> {
        let der = CertificateDer::pem_file_iter(path)
            .ok()
            .and_then(|mut i| i.next())
            .and_then(Result::ok);
        der.map_or_else(Vec::new, |der| doubts(&der, path, now))
    }

    /// A self-signed certificate valid from `from` to `until` (year,
    /// month, day), a CA's or not, in a PEM file in `dir`.
    fn cert(dir: &Path, from: (i32, u8, u8), until: (i32, u8, u8), ca: bool) -> std::path::PathBuf {
        let mut params = CertificateParams::new(vec!["chat.lan".to_owned()]).unwrap();
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(until.0, until.1, until.2);
        params.is_ca = if ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        let pem = params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .pem();
        let path = dir.join(format!("{from:?}-{until:?}-{ca}.pem"));
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// What clients will refuse is warned of at start: expired, not valid
    /// yet, a CA's; and an end within two weeks. A good one says nothing.
    #[test]
    fn a_certificate_clients_will_refuse_is_warned_of() {
        let dir = tempfile::tempdir().unwrap();
        let now = date_time_ymd(2030, 6, 10).unix_timestamp();
        let good = cert(dir.path(), (2030, 1, 1), (2031, 1, 1), false);
        assert_eq!(doubts_of(&good, now), Vec::<String>::new());
        let expired = cert(dir.path(), (2029, 1, 1), (2030, 6, 7), false);
        let said = doubts_of(&expired, now);
        assert!(
            said.len() == 1 && said[0].contains("expired 3 day(s) ago"),
            "{said:?}"
        );
        let early = cert(dir.path(), (2030, 6, 11), (2031, 1, 1), false);
        let said = doubts_of(&early, now);
        assert!(
            said.len() == 1 && said[0].contains("another 24 hour(s)"),
            "{said:?}"
        );
        let ending = cert(dir.path(), (2030, 1, 1), (2030, 6, 15), false);
        let said = doubts_of(&ending, now);
        assert!(
            said.len() == 1 && said[0].contains("expires in 5 day(s)"),
            "{said:?}"
        );
        let ca = cert(dir.path(), (2030, 1, 1), (2031, 1, 1), true);
        let said = doubts_of(&ca, now);
        assert!(said.len() == 1 && said[0].contains("CA:TRUE"), "{said:?}");
        // Not a certificate rustls could parse either: nothing more here.
        assert!(doubts(b"not DER", Path::new("junk.pem"), now).is_empty());
    }

    /// Under a day, the time left (or past) is said in hours, not as
    /// `0 day(s)`.
    #[test]
    fn an_end_within_a_day_is_said_in_hours() {
        let dir = tempfile::tempdir().unwrap();
        let until = date_time_ymd(2030, 6, 15).unix_timestamp();
        let cert = cert(dir.path(), (2030, 1, 1), (2030, 6, 15), false);
        let said = doubts_of(&cert, until - 5 * 3_600);
        assert!(
            said.len() == 1 && said[0].contains("expires in 5 hour(s)"),
            "{said:?}"
        );
        let said = doubts_of(&cert, until - 20 * 60);
        assert!(
            said.len() == 1 && said[0].contains("expires in less than an hour"),
            "{said:?}"
        );
        let said = doubts_of(&cert, until + 5 * 3_600);
        assert!(
            said.len() == 1 && said[0].contains("expired 5 hour(s) ago"),
            "{said:?}"
        );
        let said = doubts_of(&cert, until + 3 * 86_400 + 3_600);
        assert!(
            said.len() == 1 && said[0].contains("expired 3 day(s) ago"),
            "{said:?}"
        );
    }

    /// A PEM file cut short, or with a broken first line, is said in
    /// words, not as rustls's bytes.
    #[test]
    fn a_truncated_pem_is_said_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let good = cert(dir.path(), (2030, 1, 1), (2031, 1, 1), false);
        let pem = std::fs::read_to_string(&good).unwrap();
        let cut = dir.path().join("cut.pem");
        std::fs::write(&cut, &pem[..pem.len() / 2]).unwrap();
        let why = load(&cut, &good).expect_err("refused");
        assert!(
            why.contains("cut short")
                && why.contains(
                    "no -----END CERTIFICATE----- line after its -----BEGIN CERTIFICATE-----"
                ),
            "{why}"
        );
        assert!(!why.contains("[67, 69"), "{why}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE\nAAAA\n").unwrap();
        let why = load(&broken, &good).expect_err("refused");
        assert!(!why.contains("[45, 45"), "{why}");
        assert!(why.contains("-----BEGIN CERTIFICATE"), "{why}");
    }
}
