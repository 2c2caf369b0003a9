//! Loading the serving certificate and key into a rustls configuration (TLS 1.2+, ring only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block, or one is corrupt.
    #[error("no usable PEM certificate in {path}: {message}")]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1), or it is corrupt.
    #[error("no usable PEM private key in {path}: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the pair (unsupported key type, or the key does not match the certificate).
    #[error("certificate {cert} and key {key} cannot be used together: {source}")]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
}

/// Reads a certificate chain and a key file.
pub fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    Ok((read("certificate", cert)?, read("key", key)?))
}

/// Builds a server configuration from PEM bytes; the paths are only used in errors.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_owned(),
            message: "the file has no CERTIFICATE block".to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        message: e.to_string(),
    })?;
    let rustls_error = |source| TlsError::Rustls {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(rustls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads both files and builds a server configuration.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_pem, key_pem) = read_pair(cert, key)?;
    server_config(&cert_pem, &key_pem, cert, key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn builds_a_config_from_pem() {
        let (cert, key) = pair();
        let config = server_config(
            cert.as_bytes(),
            key.as_bytes(),
            Path::new("c"),
            Path::new("k"),
        )
        .unwrap();
        assert_eq!(config.alpn_protocols.len(), 2);
    }

    #[test]
    fn bad_inputs_are_named() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let (c, k) = (Path::new("tls.crt"), Path::new("tls.key"));
        let cases: [(&[u8], &[u8], &str); 4] = [
            (b"", key.as_bytes(), "no usable PEM certificate in tls.crt"),
            (cert.as_bytes(), b"", "no usable PEM private key in tls.key"),
            (key.as_bytes(), key.as_bytes(), "no usable PEM certificate"),
            (
                cert.as_bytes(),
                other_key.as_bytes(),
                "cannot be used together",
            ),
        ];
        for (cert_pem, key_pem, needle) in cases {
            let err = server_config(cert_pem, key_pem, c, k)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let err = load(Path::new("/nonexistent/tls.crt"), k)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read certificate file /nonexistent/tls.crt"),
            "{err}"
        );
    }
}
