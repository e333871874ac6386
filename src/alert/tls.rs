//! Whom the executor trusts over TLS: the public roots (Mozilla's, through
//! webpki-roots), or only the CA certificates of a PEM file (`--ca`), the
//! same for SMTP and HTTPS. A CA file is read and checked at start-up, so a
//! file that is not PEM stops the executor before any command is read.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Reads the CA certificates of a PEM file; an error names the file and
/// says what is wrong with it.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display()))?;
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| {
            anyhow::anyhow!(
                "CA file {} is not PEM (certificate {}: {e})",
                path.display(),
                i + 1
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        bail!(
            "CA file {} holds no PEM certificate (a block that begins \"-----BEGIN CERTIFICATE-----\")",
            path.display()
        );
    }
    // Parse each one now, as the handshake would, so a damaged certificate
    // is a start-up error rather than a failure of every send.
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| {
            anyhow::anyhow!(
                "certificate {} in CA file {} cannot be a trust anchor: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(certs)
}

/// A rustls client configuration trusting `ca` only, or the public roots
/// when `ca` is `None`.
pub fn client_config(ca: Option<&[CertificateDer<'static>]>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(certs) => {
            for cert in certs {
                roots.add(cert.clone()).context("a CA certificate")?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a certificate the server showed is wrong with, and what to do;
/// `None` when `err` is not about the certificate.
pub fn certificate_problem(err: &rustls::Error, host: &str) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(e) = err else {
        return None;
    };
    Some(match e {
        C::UnknownIssuer => format!(
            "the certificate of {host} is signed by an issuer this executor does not trust: \
             give its CA certificate with --ca FILE (PEM)"
        ),
        C::Expired | C::ExpiredContext { .. } => {
            format!("the certificate of {host} has expired ({e}): the server needs a new one")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            format!("the certificate of {host} is not valid yet ({e}): check the clocks")
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "the certificate of {host} is not valid for the name {host:?} ({e}): \
             use a name the certificate is for in --send"
        ),
        other => format!("the certificate of {host} is refused: {other}"),
    })
}

/// The rustls error inside an I/O error, if it is one.
pub fn rustls_error(err: &std::io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_be_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let err = read_ca_file(&p).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = read_ca_file(&p).unwrap_err().to_string();
        assert!(err.contains("not PEM"), "{err}");
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = read_ca_file(&p).unwrap_err().to_string();
        assert!(err.contains("cannot be a trust anchor"), "{err}");
        assert!(read_ca_file(&dir.path().join("missing")).is_err());
        assert!(client_config(None).is_ok());
    }
}
