use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where a PEM blob comes from; file names are kept for error messages.
#[derive(Debug, Clone)]
pub(crate) enum TlsSource {
    File(String),
    Pem(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read {what} file '{path}': {source}")]
    Read { what: &'static str, path: String, source: std::io::Error },
    #[error("{what} {origin} holds no PEM {what}")]
    Empty { what: &'static str, origin: String },
    #[error("private key {0} is encrypted and no passphrase was given")]
    Encrypted(String),
    #[error("cannot decrypt private key {0}: wrong passphrase or unsupported encryption (PKCS#8 PBES2 is supported; convert legacy keys with `openssl pkcs8 -topk8`)")]
    Decrypt(String),
    #[error("invalid PEM in {origin}: {detail}")]
    Pem { origin: String, detail: String },
    #[error("key and certificate do not form a valid TLS config: {0}")]
    Config(#[from] rustls::Error),
}

fn load(what: &'static str, src: &TlsSource) -> Result<(Vec<u8>, String), TlsError> {
    match src {
        TlsSource::File(path) => std::fs::read(path)
            .map(|b| (b, format!("'{path}'")))
            .map_err(|source| TlsError::Read { what, path: path.clone(), source }),
        TlsSource::Pem(b) => Ok((b.clone(), "buffer".to_string())),
    }
}

/// Builds a rustls server config (ALPN http/1.1) from PEM key and certificate
/// chain. `passphrase` decrypts an `ENCRYPTED PRIVATE KEY` (PKCS#8 PBES2).
pub(crate) fn load_server_config(
    key: &TlsSource,
    cert: &TlsSource,
    passphrase: Option<&str>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_pem, cert_origin) = load("certificate", cert)?;
    let (key_pem, key_origin) = load("key", key)?;

    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { origin: cert_origin.clone(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what: "certificate", origin: cert_origin });
    }
    // rustls-pemfile skips sections it does not know, so an encrypted key would
    // otherwise surface as the confusing "no key": look for it explicitly.
    let text = String::from_utf8_lossy(&key_pem);
    let key: PrivateKeyDer<'static> = if text.contains("ENCRYPTED") {
        decrypt_key(&text, passphrase, key_origin)?
    } else {
        rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| TlsError::Pem { origin: key_origin.clone(), detail: e.to_string() })?
            .ok_or(TlsError::Empty { what: "key", origin: key_origin })?
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // TLS 1.3 records are protected by tls_records.rs after the upgrade,
    // with the keys rustls derived (see TlsSession::settle).
    config.enable_secret_extraction = true;
    config.key_log = Arc::new(super::tls_records::Capture);
    Ok(Arc::new(config))
}

/// A rustls client config for TLS to Redis, as Node's `tls.connect` takes
/// its options: `ca` (PEM) replaces the system's CA store when given;
/// `cert` and `key` (PEM, together) authenticate this client (Redis's
/// `tls-auth-clients`); `verify` false accepts any server certificate
/// (Node's `rejectUnauthorized: false`, which self-signed hosted Redis
/// services document).
pub(crate) fn load_client_config(
    ca: Option<&[u8]>,
    cert: Option<&[u8]>,
    key: Option<&[u8]>,
    verify: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(pem) => {
            let origin = "tls.ca".to_string();
            // As Node: a bundle loads whatever certificates in it parse.
            let (added, _) = roots.add_parsable_certificates(pem_certs(pem, &origin)?);
            if added == 0 {
                return Err(TlsError::Empty { what: "certificate", origin });
            }
        }
        None => {
            // The system's store; certificates it cannot read are skipped.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if verify {
        versions.with_root_certificates(roots)
    } else {
        versions.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
    };
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs(cert, "tls.cert")?;
            if chain.is_empty() {
                return Err(TlsError::Empty { what: "certificate", origin: "tls.cert".into() });
            }
            let origin = "tls.key".to_string();
            let key = rustls_pemfile::private_key(&mut &key[..])
                .map_err(|e| TlsError::Pem { origin: origin.clone(), detail: e.to_string() })?
                .ok_or(TlsError::Empty { what: "key", origin })?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `rejectUnauthorized: false`: any certificate is taken, but the handshake
/// signatures are still checked (the peer holds the key it presents).
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pem_certs(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { origin: origin.to_string(), detail: e.to_string() })
}

fn decrypt_key(pem: &str, passphrase: Option<&str>, origin: String) -> Result<PrivateKeyDer<'static>, TlsError> {
    let Some(pass) = passphrase.filter(|p| !p.is_empty()) else {
        return Err(TlsError::Encrypted(origin));
    };
    // Legacy "Proc-Type: 4,ENCRYPTED" PEM is not PKCS#8: it fails to parse here.
    let start = pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----").ok_or_else(|| TlsError::Decrypt(origin.clone()))?;
    let (_, doc) = pkcs8::SecretDocument::from_pem(&pem[start..]).map_err(|_| TlsError::Decrypt(origin.clone()))?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|_| TlsError::Decrypt(origin.clone()))?;
    let plain = info.decrypt(pass).map_err(|_| TlsError::Decrypt(origin))?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> TlsSource {
        TlsSource::File(format!("{}/__test__/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn plain_key_and_cert_load_with_http11_alpn() {
        let cfg = load_server_config(&fixture("key.pem"), &fixture("cert.pem"), None).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_file_error_names_it() {
        let e = load_server_config(&fixture("nope.pem"), &fixture("cert.pem"), None).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
    }

    #[test]
    fn encrypted_key_needs_the_right_passphrase() {
        let (k, c) = (fixture("key-encrypted.pem"), fixture("cert.pem"));
        assert!(matches!(load_server_config(&k, &c, None), Err(TlsError::Encrypted(_))));
        assert!(matches!(load_server_config(&k, &c, Some("wrong")), Err(TlsError::Decrypt(_))));
        // The fixture's passphrase (also in __test__/core-tls.spec.mjs).
        assert!(load_server_config(&k, &c, Some("ferro-test-passphrase")).is_ok());
    }

    #[test]
    fn client_configs_take_a_ca_and_a_client_certificate() {
        let pem =
            |name: &str| std::fs::read(format!("{}/__test__/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (cert, key) = (pem("cert.pem"), pem("key.pem"));
        assert!(load_client_config(None, None, None, true).is_ok());
        assert!(load_client_config(None, None, None, false).is_ok());
        assert!(load_client_config(Some(&cert), Some(&cert), Some(&key), true).is_ok());
        let e = load_client_config(Some(b"not pem"), None, None, true).unwrap_err();
        assert!(matches!(e, TlsError::Empty { what: "certificate", .. }), "{e}");
        let e = load_client_config(None, Some(&cert), Some(&cert), true).unwrap_err();
        assert!(matches!(e, TlsError::Empty { what: "key", .. }), "{e}");
    }

    #[test]
    fn cert_given_as_key_is_refused() {
        let e = load_server_config(&fixture("cert.pem"), &fixture("cert.pem"), None).unwrap_err();
        assert!(matches!(e, TlsError::Empty { what: "key", .. }), "{e}");
    }
}
