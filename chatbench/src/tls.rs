//! TLS for `--transport tls` and `wss`: rustls with the ring provider, as
//! chatserver and chatclient use it, TLS 1.3 and 1.2, the server's
//! certificate checked against the certificates in `--ca-cert` for the
//! host of `--addr` (or `--tls-name`). Set up once per run; every
//! connection shares the configuration.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio_rustls::TlsConnector;

/// A connector trusting the certificates in the PEM file `ca_cert`.
pub fn connector(ca_cert: &Path) -> Result<TlsConnector, String> {
    let shown = ca_cert.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_cert)
        .map_err(|e| format!("cannot read --ca-cert {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--ca-cert {shown} is not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert {shown} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| format!("--ca-cert {shown}: certificate {}: {e}", i + 1))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The host part of `HOST:PORT` (brackets of an IPv6 address removed).
pub fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `name` as the name a certificate must be for (a DNS name or an IP address).
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned()).map_err(|_| {
        format!("{name:?} is neither a host name nor an IP address a TLS certificate can be for")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_names() {
        assert_eq!(host_of("127.0.0.1:7878"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7878"), "::1");
        assert_eq!(host_of("chat.lan:7878"), "chat.lan");
        assert_eq!(host_of("chat.lan"), "chat.lan");
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("chat.lan"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("not a name").is_err());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("chatbench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = connector(&empty).err().unwrap();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = connector(&dir.join("missing.pem")).err().unwrap();
        assert!(e.contains("cannot read"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
