//! The server's TLS settings from a certificate chain and a key in PEM
//! files: rustls with the ring provider, TLS 1.2 and 1.3 only.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Read `cert` (a chain, leaf first) and `key`, and check that they go
/// together. Every failure is one line naming the file and what to do.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error("certificate", cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("certificate", cert, e))?;
    if chain.is_empty() {
        let none = rustls::pki_types::pem::Error::NoItemsFound;
        return Err(pem_error("certificate", cert, none));
    }
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
    Ok(Arc::new(config))
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
        e => format!(
            "{} ({flag}) is not a {what} file ({e}); expected {expected}",
            path.display()
        ),
    }
}
