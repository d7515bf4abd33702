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
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {origin} holds no PEM {what}")]
    Empty { what: &'static str, origin: String },
    #[error("private key {0} is encrypted; ferrosocket needs an unencrypted PKCS#8, PKCS#1 or SEC1 key (decrypt it with `openssl pkey -in key.pem -out plain.pem`)")]
    Encrypted(String),
    #[error("invalid PEM in {origin}: {detail}")]
    Pem { origin: String, detail: String },
    #[error("key and certificate do not form a valid TLS config: {0}")]
    Config(#[from] rustls::Error),
}

fn load(what: &'static str, src: &TlsSource) -> Result<(Vec<u8>, String), TlsError> {
    match src {
        TlsSource::File(path) => std::fs::read(path)
            .map(|b| (b, format!("'{path}'")))
            .map_err(|source| TlsError::Read {
                what,
                path: path.clone(),
                source,
            }),
        TlsSource::Pem(b) => Ok((b.clone(), "buffer".to_string())),
    }
}

/// Builds a rustls server config (ALPN http/1.1) from PEM key and certificate chain.
pub(crate) fn load_server_config(
    key: &TlsSource,
    cert: &TlsSource,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_pem, cert_origin) = load("certificate", cert)?;
    let (key_pem, key_origin) = load("key", key)?;

    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            origin: cert_origin.clone(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what: "certificate",
            origin: cert_origin,
        });
    }
    // rustls-pemfile skips sections it does not know, so an encrypted key would
    // otherwise surface as the confusing "no key": look for it explicitly.
    if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED") {
        return Err(TlsError::Encrypted(key_origin));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Pem {
            origin: key_origin.clone(),
            detail: e.to_string(),
        })?
        .ok_or(TlsError::Empty {
            what: "key",
            origin: key_origin,
        })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
