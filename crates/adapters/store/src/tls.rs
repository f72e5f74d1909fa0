//! TLS to PostgreSQL with rustls (ring, the TLS stack the Docker adapter's TLS uses too), with
//! libpq's `sslmode` semantics and parameters in the URL:
//!
//! | `sslmode` | TLS | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | |
//! | `prefer` (the default) | when the server offers it | not checked |
//! | `require` | always | not checked; checked against `sslrootcert` as `verify-ca` when it is given (as libpq does) |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` |
//! | `verify-full` | always | signed by a CA of `sslrootcert` and valid for the host of the URL |
//!
//! `sslcert` and `sslkey` give a client certificate (PEM files). tokio-postgres knows only
//! `disable`, `prefer` and `require` and none of the file parameters, so they are taken out of
//! the URL before it parses the rest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS parameters of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Takes the TLS parameters out of `url`: the URL tokio-postgres is to parse (with an
/// `sslmode` it knows) and the parameters. The query starts at the first `?` after the last `@`
/// (a password may hold a `?`).
pub(crate) fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    let after_credentials = url
        .rfind('@')
        .map_or_else(|| url.find("://").map_or(0, |i| i + 3), |at| at + 1);
    let mut params = TlsParams {
        mode: SslMode::Prefer,
        root_cert: None,
        cert: None,
        key: None,
    };
    let Some(q) = url[after_credentials..]
        .find('?')
        .map(|i| i + after_credentials)
    else {
        return Ok((url.to_owned(), params));
    };
    let (head, query) = (&url[..q], &url[q + 1..]);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                params.mode = match value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other:?}: expected disable, prefer, require, verify-ca or \
                             verify-full (allow is not supported)"
                        ));
                    }
                }
            }
            "sslrootcert" => params.root_cert = Some(non_empty(key, value)?),
            "sslcert" => params.cert = Some(non_empty(key, value)?),
            "sslkey" => params.key = Some(non_empty(key, value)?),
            _ => kept.push(pair),
        }
    }
    if params.cert.is_some() != params.key.is_some() {
        return Err("sslcert and sslkey go together: give both, or neither".to_owned());
    }
    if matches!(params.mode, SslMode::VerifyCa | SslMode::VerifyFull) && params.root_cert.is_none()
    {
        return Err(
            "sslmode=verify-ca and verify-full need sslrootcert=FILE, the CA certificates (PEM) \
             to check the server's certificate against"
                .to_owned(),
        );
    }
    let tokio_mode = match params.mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    kept.push(match tokio_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((format!("{head}?{}", kept.join("&")), params))
}

fn non_empty(key: &str, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{key} must name a file"));
    }
    Ok(PathBuf::from(value))
}

/// The rustls connector of `params`.
pub(crate) fn connector(params: &TlsParams) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let verify_against = match (params.mode, &params.root_cert) {
        (SslMode::VerifyFull, Some(file)) => Some((file, true)),
        (SslMode::VerifyCa | SslMode::Require, Some(file)) => Some((file, false)),
        _ => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verify_against {
        None => Arc::new(Unchecked(Arc::clone(&provider))),
        Some((file, check_name)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(file, "sslrootcert")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", file.display()))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("sslrootcert {}: {e}", file.display()))?;
            if check_name {
                webpki
            } else {
                Arc::new(CaOnly(webpki))
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("sslkey {}: not a PEM private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert/sslkey: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn read_certs(file: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{what} {}: cannot read PEM certificates: {e}",
                file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("{what} {}: holds no certificate", file.display()));
    }
    Ok(certs)
}

/// `prefer` and `require` without `sslrootcert`: the connection is encrypted, the server's
/// certificate is not checked (libpq's meaning of these modes); its handshake signatures are.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a CA of `sslrootcert`; the name is not checked.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url() {
        let (url, params) = split_url(
            "postgres://u:p?w@h/db?connect_timeout=5&sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p?w@h/db?connect_timeout=5&sslmode=require"
        );
        assert_eq!(params.mode, SslMode::VerifyFull);
        assert_eq!(params.root_cert.as_deref(), Some(Path::new("/ca.pem")));

        let (url, params) = split_url("postgres://h/db").unwrap();
        assert_eq!(
            (url.as_str(), params.mode),
            ("postgres://h/db", SslMode::Prefer)
        );
        let (url, _) = split_url("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://h/db?sslmode=disable");

        for (bad, says) in [
            ("postgres://h/db?sslmode=allow", "allow"),
            ("postgres://h/db?sslmode=verify-ca", "sslrootcert"),
            ("postgres://h/db?sslcert=/c.pem", "together"),
            ("postgres://h/db?sslrootcert=", "name a file"),
        ] {
            let err = split_url(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unreadable_files_are_named() {
        let params = TlsParams {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
            cert: None,
            key: None,
        };
        let err = connector(&params).err().expect("refused");
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
