//! TLS for the connection (`--tls`, `tls://HOST:PORT`): rustls with the
//! ring provider, TLS 1.3 and 1.2 only, the server's certificate checked
//! against `--ca-cert` (a LAN's own CA, or a self-signed server
//! certificate) or else the operating system's root certificates, for the
//! host part of the address connected to (a name, or an IP address as an
//! IP SAN): given several, each node's own.
//!
//! Everything here is set up once, before connecting: a bad `--ca-cert`
//! is a bad command line, and the same settings (and TLS session cache)
//! serve every reconnect.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{code, JoinError};

/// What the server's certificate is checked against, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The certificates in this `--ca-cert` file.
    File(PathBuf),
    /// The operating system's root certificates.
    System,
}

/// TLS settings for the addresses given: made once, used for every
/// (re)connect to any of them.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    trust: Trust,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

/// Why TLS could not be set up; one line each.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `--ca-cert` cannot be read or holds no usable certificate; or an
    /// address's host is no name a certificate can be for.
    #[error("{0}")]
    Usage(String),
    /// No `--ca-cert`, and the system has no root certificates either.
    #[error(
        "cannot check the server's certificate: found no root certificates in {0}; \
         give the server's CA (or its self-signed certificate) with --ca-cert PEM"
    )]
    NoRoots(String),
}

impl SetupError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            SetupError::Usage(_) => code::USAGE,
            SetupError::NoRoots(_) => code::UNTRUSTED,
        }
    }
}

impl Tls {
    /// TLS to `addrs` (HOST:PORT, or several comma-separated), trusting
    /// the certificates in `ca_cert`, or without it the system's roots.
    /// Every address's host must be a name a certificate can be for: each
    /// is the name its node's certificate is checked against.
    pub fn new(addrs: &str, ca_cert: Option<&Path>) -> Result<Tls, SetupError> {
        for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            server_name(addr).map_err(SetupError::Usage)?;
        }
        let (roots, trust) = match ca_cert {
            Some(path) => (
                roots_from_file(path).map_err(SetupError::Usage)?,
                Trust::File(path.to_owned()),
            ),
            None => (system_roots()?, Trust::System),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| SetupError::Usage(format!("TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            trust,
        })
    }

    /// The TLS handshake over `stream`, to `addr` (HOST:PORT): its host is
    /// the name sent (SNI) and the one the certificate must be for. A
    /// certificate that does not verify is [`JoinError::Untrusted`].
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        addr: &str,
        stream: S,
    ) -> Result<TlsStream<S>, JoinError> {
        // Checked by `Tls::new` for every address given.
        let name = server_name(addr).map_err(|why| JoinError::Tls {
            addr: addr.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, why),
        })?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(|e| self.failed(addr, e))
    }

    /// The error for a failed handshake.
    fn failed(&self, addr: &str, e: io::Error) -> JoinError {
        let cert = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|e| match e {
                rustls::Error::InvalidCertificate(c) => Some(c),
                _ => None,
            });
        match cert {
            Some(c) => JoinError::Untrusted {
                addr: addr.to_owned(),
                why: self.explain(c),
            },
            None => JoinError::Tls {
                addr: addr.to_owned(),
                source: e,
            },
        }
    }

    /// Why the certificate was not trusted, and what to do.
    fn explain(&self, c: &CertificateError) -> String {
        use CertificateError::{BadSignature, UnknownIssuer};
        // A CA of the issuer's name whose key is of another kind (Debian's
        // snakeoil certificate, `CN=localhost`, beside a self-signed one of
        // that name) did not sign it either: said as a signature that does
        // not match, not as rustls's structure.
        let other_kind = matches!(
            c,
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
        );
        let c = if other_kind { &BadSignature } else { c };
        match (c, &self.trust) {
            (CertificateError::UnsupportedSignatureAlgorithmContext { .. }, _) => {
                "it is signed with a signature algorithm this client does not accept; give \
                 the server a certificate signed with ECDSA, Ed25519 or RSA (SHA-256 or better)"
                    .to_owned()
            }
            // A bad signature: a CA of the same name, but not the one that
            // signed it.
            (UnknownIssuer | BadSignature, Trust::System) => {
                "it is not signed by any CA in the system's store; if the server uses its own \
                 CA or a self-signed certificate, give that with --ca-cert PEM"
                    .to_owned()
            }
            (UnknownIssuer | BadSignature, Trust::File(p)) => format!(
                "it is not signed by any certificate in {}; give the CA the server's \
                 certificate comes from (or the self-signed certificate itself) with --ca-cert PEM",
                p.display()
            ),
            (
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                _,
            ) => format!(
                "{c}; connect by a name or address the certificate lists \
                 (or, for a certificate of your own, give the right one with --ca-cert PEM)"
            ),
            (CertificateError::Other(e), _)
                if matches!(
                    e.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                "it is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` \
                 makes unless given -addext basicConstraints=critical,CA:FALSE); give the \
                 server a certificate of its own (a self-signed one with CA:FALSE will do)"
                    .to_owned()
            }
            (_, Trust::System) => {
                format!("{c}; for a certificate of your own, give its CA with --ca-cert PEM")
            }
            (_, Trust::File(p)) => format!("{c} (checked against --ca-cert {})", p.display()),
        }
    }
}

/// The host part of HOST:PORT, as the name the certificate must be for.
fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned()).map_err(|_| {
        format!(
            "{host:?} is neither a host name nor an IP address that a TLS certificate can be for"
        )
    })
}

/// Every certificate in the PEM file `path`, as trust anchors.
fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read --ca-cert {shown}: {}", pem_error(&e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--ca-cert {shown} is not a PEM file: {}", pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert {shown} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "--ca-cert {shown}: certificate {} cannot be trusted as a CA: {e}",
                i + 1
            )
        })?;
    }
    Ok(roots)
}

/// A PEM error in words (an I/O error as the OS says it).
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The operating system's root certificates (or those `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` name); an error when there are none.
fn system_roots() -> Result<RootCertStore, SetupError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        // rustls-native-certs reads only these when either is set.
        let named: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .into_iter()
            .filter_map(|v| std::env::var_os(v).map(|p| format!("{v}={}", p.to_string_lossy())))
            .collect();
        let mut where_ = if named.is_empty() {
            "the system's store".to_owned()
        } else {
            named.join(" and ")
        };
        if let Some(e) = found.errors.first() {
            where_.push_str(&format!(" ({e})"));
        }
        return Err(SetupError::NoRoots(where_));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ProtocolVersion, SupportedProtocolVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CA (as a PEM file in `dir`) and a server certificate it signed
    /// for 127.0.0.1, with its key. Every CA made here has rcgen's default
    /// name: another one is told apart by its key (a bad signature).
    fn pki(dir: &Path, name: &str) -> (PathBuf, CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let path = dir.join(name);
        std::fs::write(&path, ca.pem()).unwrap();
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        (path, cert.der().clone(), key)
    }

    /// A handshake over an in-memory pipe, as to 127.0.0.1:7878, with a
    /// server that offers only `versions`; the version agreed, once a
    /// byte went each way.
    async fn handshake(
        tls: &Tls,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<ProtocolVersion, JoinError> {
        handshake_to(tls, "127.0.0.1:7878", cert, key, versions).await
    }

    /// [`handshake`], as to `addr`.
    async fn handshake_to(
        tls: &Tls,
        addr: &str,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<ProtocolVersion, JoinError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (near, far) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut s = acceptor.accept(far).await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            s.write_all(&b).await?;
            s.flush().await?;
            std::io::Result::Ok(())
        });
        let mut client = tls.connect(addr, near).await?;
        client.write_all(b"x").await.unwrap();
        client.flush().await.unwrap();
        let mut b = [0u8; 1];
        client.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
        server.await.unwrap().unwrap();
        Ok(client.get_ref().1.protocol_version().unwrap())
    }

    #[tokio::test]
    async fn tls_1_3_and_1_2_with_the_ca_given() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = pki(dir.path(), "ca.pem");
        let tls = Tls::new("127.0.0.1:7878", Some(&ca)).unwrap();
        for (offered, agreed) in [
            (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
            (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        ] {
            let got = handshake(&tls, cert.clone(), key.clone_key(), &[offered])
                .await
                .unwrap();
            assert_eq!(got, agreed);
        }
        // Both offered: 1.3.
        let both = [&rustls::version::TLS13, &rustls::version::TLS12];
        let got = handshake(&tls, cert, key, &both).await.unwrap();
        assert_eq!(got, ProtocolVersion::TLSv1_3);
    }

    #[tokio::test]
    async fn another_ca_or_another_name_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = pki(dir.path(), "ours.pem");
        let (theirs, _, _) = pki(dir.path(), "theirs.pem");
        let tls = Tls::new("127.0.0.1:7878", Some(&theirs)).unwrap();
        let versions = [&rustls::version::TLS13];
        let e = handshake(&tls, cert.clone(), key.clone_key(), &versions)
            .await
            .unwrap_err();
        assert!(matches!(e, JoinError::Untrusted { .. }), "{e:?}");
        assert_eq!(e.exit_code(), code::UNTRUSTED);
        let said = e.to_string();
        assert!(said.contains("not signed by any certificate in"), "{said}");
        assert!(said.contains("--ca-cert"), "{said}");

        let ours = dir.path().join("ours.pem");
        let tls = Tls::new("10.1.2.3:7878", Some(&ours)).unwrap();
        let e = handshake_to(&tls, "10.1.2.3:7878", cert, key, &versions)
            .await
            .unwrap_err();
        assert!(matches!(e, JoinError::Untrusted { .. }), "{e:?}");
        assert!(e.to_string().contains("not valid for name"), "{e}");
    }

    /// Given several addresses, each node's certificate is checked
    /// against its own address's host, not the first one's.
    #[tokio::test]
    async fn each_address_is_checked_for_its_own_host() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = pki(dir.path(), "ca.pem");
        let tls = Tls::new("10.1.2.3:7878,127.0.0.1:7878", Some(&ca)).unwrap();
        let versions = [&rustls::version::TLS13];
        let got = handshake_to(
            &tls,
            "127.0.0.1:7878",
            cert.clone(),
            key.clone_key(),
            &versions,
        )
        .await
        .unwrap();
        assert_eq!(got, ProtocolVersion::TLSv1_3);
        let e = handshake_to(&tls, "10.1.2.3:7878", cert, key, &versions)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not valid for name"), "{e}");
        // A host no certificate can be for is a bad command line, at any
        // place in the list.
        let e = Tls::new("chat.lan:7878,not a name:7878", Some(&ca)).unwrap_err();
        assert_eq!(e.exit_code(), code::USAGE);
        assert!(
            e.to_string().starts_with("\"not a name\" is neither"),
            "{e}"
        );
    }

    /// A CA of the same name as the server's issuer but with another kind
    /// of key (Debian's snakeoil `CN=localhost` beside a self-signed
    /// `localhost`) did not sign it: said so, not as rustls's structure.
    #[tokio::test]
    async fn a_ca_of_the_issuers_name_with_another_kind_of_key_did_not_sign_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = pki(dir.path(), "ours.pem");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let theirs = CertifiedIssuer::self_signed(params, other).unwrap();
        let path = dir.path().join("theirs.pem");
        std::fs::write(&path, theirs.pem()).unwrap();
        let tls = Tls::new("127.0.0.1:7878", Some(&path)).unwrap();
        let e = handshake(&tls, cert, key, &[&rustls::version::TLS13])
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), code::UNTRUSTED);
        let said = e.to_string();
        assert!(said.contains("not signed by any certificate in"), "{said}");
        assert!(!said.contains("Context"), "{said}");
    }

    /// A self-signed certificate that says it is a CA (`openssl req -x509`
    /// without options) cannot be the server's; the line says why.
    #[tokio::test]
    async fn a_ca_certificate_as_the_servers_own_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.path().join("ca-as-server.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        let tls = Tls::new("127.0.0.1:7878", Some(&path)).unwrap();
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let versions = [&rustls::version::TLS13];
        let e = handshake(&tls, cert.der().clone(), key, &versions)
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), code::UNTRUSTED);
        assert!(e.to_string().contains("it is a CA certificate"), "{e}");
    }

    #[test]
    fn every_certificate_in_the_file_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, _) = pki(dir.path(), "a.pem");
        let (b, _, _) = pki(dir.path(), "b.pem");
        let both = dir.path().join("both.pem");
        let text = std::fs::read_to_string(&a).unwrap() + &std::fs::read_to_string(&b).unwrap();
        std::fs::write(&both, text).unwrap();
        assert_eq!(roots_from_file(&both).unwrap().len(), 2);
        let e = Tls::new("127.0.0.1:1", Some(&dir.path().join("nope.pem"))).unwrap_err();
        assert_eq!(e.exit_code(), code::USAGE);
        assert!(e.to_string().starts_with("cannot read --ca-cert "), "{e}");
    }

    #[test]
    fn the_server_name_is_the_host_part() {
        let ip = |a: IpAddr| ServerName::IpAddress(a.into());
        assert_eq!(
            server_name("127.0.0.1:7878").unwrap(),
            ip(Ipv4Addr::LOCALHOST.into())
        );
        assert_eq!(
            server_name("[::1]:7878").unwrap(),
            ip(Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(
            server_name("chat.lan:7878").unwrap(),
            ServerName::try_from("chat.lan").unwrap()
        );
        // No port: the whole (resolving it then fails, as without TLS).
        assert_eq!(
            server_name("chat.lan").unwrap(),
            ServerName::try_from("chat.lan").unwrap()
        );
        assert!(server_name("not a name:7878").is_err());
    }
}
