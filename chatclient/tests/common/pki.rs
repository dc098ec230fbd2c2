//! Certificates for the TLS tests, made with rcgen (ring) and written as
//! PEM files to a temporary directory that lives as long as the [`Pki`].

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and what it signed, and certificates it did not sign, as files.
pub struct Pki {
    dir: tempfile::TempDir,
    /// Our CA's certificate: what `--ca-cert` trusts.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1 and localhost), signed by
    /// our CA, and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Another CA, which signed nothing of ours.
    pub other_ca: PathBuf,
    /// Both CAs in one file, the other first.
    pub bundle: PathBuf,
    /// A self-signed server certificate for localhost only (no IP
    /// address), and its key.
    pub self_signed: PathBuf,
    pub self_signed_key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = make_ca("chat test CA");
        let other = make_ca("some other CA");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "chatserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();

        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let self_key = KeyPair::generate().unwrap();
        let self_signed = params.self_signed(&self_key).unwrap();

        let write = |name: &str, text: String| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server-key.pem", key.serialize_pem()),
            other_ca: write("other-ca.pem", other.pem()),
            bundle: write("bundle.pem", format!("{}{}", other.pem(), ca.pem())),
            self_signed: write("self-signed.pem", self_signed.pem()),
            self_signed_key: write("self-signed-key.pem", self_key.serialize_pem()),
            dir,
        }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
