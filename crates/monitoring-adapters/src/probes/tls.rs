//! The one TLS client configuration the probes share: the Mozilla root set
//! (webpki-roots) plus optional extra CAs from a PEM file.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use monitoring_core::config::ConfigError;

/// Builds the client configuration; `extra_ca_file` adds private CAs.
pub fn client_config(extra_ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        let file_error = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| file_error(format!("cannot read PEM certificates: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error(format!("invalid PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(file_error("no certificate in file".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| file_error(format!("unusable CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::File {
            path: "<tls>".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
