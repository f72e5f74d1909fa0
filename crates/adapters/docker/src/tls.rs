//! TLS to a Docker daemon on another machine (`tcp://` with TLS files, `https://`): the files
//! read and checked once, at connect, each refusal naming the file; the client's TLS built on
//! rustls with ring; and failures of the handshake told in words naming the file to check.
//!
//! Why not bollard's `Docker::connect_with_ssl`: it trusts the system's root certificates
//! besides the CA given (the Docker CLI trusts the given CA alone, so a certificate some public
//! CA issued for the daemon's name would pass), ignores a CA file with no certificate in it,
//! and reads the client certificate and key at each handshake, sending none when they do not
//! parse (the daemon then refuses a client without a word about the file). The same rustls
//! 0.23 and ring serve here through hyper-rustls, and bollard gets the client as a custom
//! transport.
//!
//! With TLS 1.3 a daemon judges the client certificate only after the client has finished its
//! handshake, and answers a refused one with an alert on a connection the client already
//! holds. hyper reads an idle connection to notice it closing, so it may read that alert
//! before it sends its request and drop the connection with the request merely "canceled":
//! the reason would be lost, at random. A connection here therefore reads nothing before its
//! first write ([`WriteFirst`]): the alert then always fails the request it was sent for.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::{BollardRequest, ClientVersion, Docker};
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_ports::{PortError, PortResult};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::config::{DockerConfig, split_authority};

/// The port of a TLS daemon whose address names none: Docker's.
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// A bollard client for the TLS daemon of `config`, speaking `version`, with bollard's own
/// timeout of `seconds`. Reads the TLS files; connects to nothing yet.
///
/// Errors: [`PortError::Invalid`] naming the daemon, the setting and the file when a file is
/// missing from the settings, cannot be read, holds no PEM certificate or key, or the key is
/// not the certificate's.
pub(crate) fn client(
    config: &DockerConfig,
    version: &ClientVersion,
    daemon: &str,
    seconds: u64,
) -> PortResult<Docker> {
    let tls = client_config(config, daemon)?;
    let address = address(config, daemon)?;
    let mut http = HttpConnector::new();
    // The URL is `https://`: hyper-rustls does the TLS over this plain TCP connector.
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(seconds)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).build(WritesFirst(https));
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = client.clone();
            async move { client.request(request).await.map_err(BollardError::from) }
        },
        Some(address),
        seconds,
        version,
    )
    .map_err(|error| {
        PortError::invalid(format!("Docker host {daemon}: {}", one_line(&error))).with_source(error)
    })
}

/// A connector whose connections read nothing before their first write (see the module's
/// docs).
#[derive(Debug, Clone)]
struct WritesFirst<C>(C);

impl<C> tower_service::Service<Uri> for WritesFirst<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = WriteFirst<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            connecting.await.map(|inner| WriteFirst {
                inner,
                written: false,
                reader: None,
            })
        })
    }
}

/// A connection that reads nothing before its first write.
#[derive(Debug)]
struct WriteFirst<T> {
    inner: T,
    written: bool,
    /// Who tried to read before the first write, woken by it.
    reader: Option<Waker>,
}

impl<T> WriteFirst<T> {
    fn wrote(&mut self, result: &Poll<std::io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.written = true;
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
        }
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for WriteFirst<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.written {
            this.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for WriteFirst<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: Connection> Connection for WriteFirst<T> {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

/// `https://host:port` of the daemon, the port 2376 when the address names none.
fn address(config: &DockerConfig, daemon: &str) -> PortResult<String> {
    let rest = config
        .host
        .strip_prefix("tcp://")
        .or_else(|| config.host.strip_prefix("https://"))
        .unwrap_or_default();
    let (host, port) = split_authority(rest);
    if host.is_empty() {
        return Err(PortError::invalid(format!(
            "Docker host {daemon}: the address names no host"
        )));
    }
    let port = port.unwrap_or_default();
    let port = if port.is_empty() {
        DEFAULT_TLS_PORT
    } else {
        port.parse::<u16>().map_err(|_| {
            PortError::invalid(format!(
                "Docker host {daemon}: {:?} is not a port",
                escape_foreign(port, 16)
            ))
        })?
    };
    Ok(if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    })
}

/// The three files, each named by its setting.
struct Files<'a> {
    ca: &'a Path,
    cert: &'a Path,
    key: &'a Path,
}

fn files<'a>(config: &'a DockerConfig, daemon: &str) -> PortResult<Files<'a>> {
    let settings = [
        ("tls_ca", &config.tls_ca),
        ("tls_cert", &config.tls_cert),
        ("tls_key", &config.tls_key),
    ];
    let missing: Vec<&str> = settings
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| *name)
        .collect();
    match (&config.tls_ca, &config.tls_cert, &config.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Ok(Files { ca, cert, key }),
        _ => Err(PortError::invalid(format!(
            "Docker host {daemon}: TLS needs tls_ca (the daemon's CA), tls_cert and tls_key (the \
             client's certificate and key); {} not set (or set DOCKER_TLS_VERIFY=1 with \
             DOCKER_CERT_PATH for ca.pem, cert.pem and key.pem)",
            missing.join(" and ")
        ))),
    }
}

/// One file as messages name it: `tls_ca /etc/galaxy/ca.pem`.
fn named(setting: &str, path: &Path) -> String {
    escape_foreign(&format!("{setting} {}", path.display()), MESSAGE_CHARS)
}

fn refused(daemon: &str, setting: &str, path: &Path, reason: impl std::fmt::Display) -> PortError {
    PortError::invalid(format!(
        "Docker host {daemon}: {} {reason}",
        named(setting, path)
    ))
}

fn read(daemon: &str, setting: &str, path: &Path) -> PortResult<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        refused(daemon, setting, path, format!("cannot be read: {error}")).with_source(error)
    })
}

fn certificates(
    daemon: &str,
    setting: &str,
    path: &Path,
) -> PortResult<Vec<CertificateDer<'static>>> {
    let bytes = read(daemon, setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| refused(daemon, setting, path, format!("is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(refused(
            daemon,
            setting,
            path,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certificates)
}

fn private_key(daemon: &str, path: &Path) -> PortResult<PrivateKeyDer<'static>> {
    let bytes = read(daemon, "tls_key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => refused(
            daemon,
            "tls_key",
            path,
            "holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
        ),
        other => refused(
            daemon,
            "tls_key",
            path,
            format!("is not valid PEM: {other}"),
        ),
    })
}

/// The client's TLS: the CA of `tls_ca` as the only roots, the certificate of `tls_cert` with
/// the key of `tls_key`, checked to belong together.
fn client_config(config: &DockerConfig, daemon: &str) -> PortResult<ClientConfig> {
    let files = files(config, daemon)?;
    let mut roots = RootCertStore::empty();
    for ca in certificates(daemon, "tls_ca", files.ca)? {
        roots.add(ca).map_err(|error| {
            refused(
                daemon,
                "tls_ca",
                files.ca,
                format!("holds a certificate that cannot serve as a CA: {error}"),
            )
        })?;
    }
    let chain = certificates(daemon, "tls_cert", files.cert)?;
    let key = private_key(daemon, files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|error| {
            refused(
                daemon,
                "tls_key",
                files.key,
                format!("is not a key rustls can sign with: {error}"),
            )
        })?;
    // `Unknown` is a key whose public half cannot be compared: the handshake will tell.
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        CertifiedKey::new(chain.clone(), signing_key).keys_match()
    {
        return Err(PortError::invalid(format!(
            "Docker host {daemon}: {} is not the key of the certificate in {}",
            named("tls_key", files.key),
            named("tls_cert", files.cert)
        )));
    }
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
        })
        .map_err(|error| {
            PortError::invalid(format!(
                "Docker host {daemon}: the TLS files cannot be used together ({}, {}, {}): {error}",
                named("tls_ca", files.ca),
                named("tls_cert", files.cert),
                named("tls_key", files.key)
            ))
        })
}

/// The rustls error among `error` and its causes: hyper and tokio-rustls carry it inside
/// `std::io::Error`s (one in another), whose `source` skips what they carry.
fn rustls_error_in_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // hyper-rustls wraps tokio-rustls's `io::Error` in another: go inside each.
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// A setting as messages name it, set or not: `tls_ca /etc/galaxy/ca.pem`, `tls_ca (not set)`.
fn named_setting(setting: &str, path: Option<&PathBuf>) -> String {
    match path {
        Some(path) => named(setting, path),
        None => format!("{setting} (not set)"),
    }
}

/// What went wrong in a TLS handshake with the daemon of `config`, in words that name the file
/// to check; `None` when `error` is no TLS failure.
pub(crate) fn handshake_failure(
    error: &(dyn std::error::Error + 'static),
    config: &DockerConfig,
) -> Option<String> {
    let tls = rustls_error_in_chain(error)?;
    let ca = || named_setting("tls_ca", config.tls_ca.as_ref());
    let cert = || named_setting("tls_cert", config.tls_cert.as_ref());
    let text = escape_foreign(&tls.to_string(), MESSAGE_CHARS);
    Some(match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!(
            "the daemon's certificate is not signed by the CA in {} ({text})",
            ca()
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the daemon's certificate does not name the host or address it was reached at; \
             reach it by a name or address among the certificate's subject alternative names \
             ({text})"
        ),
        rustls::Error::InvalidCertificate(_) => {
            format!(
                "the daemon's certificate is refused ({text}); checked against {}",
                ca()
            )
        }
        rustls::Error::AlertReceived(alert) if is_certificate_alert(*alert) => format!(
            "the daemon refused the client certificate in {} ({text}); it must be signed by \
             a CA the daemon trusts (its --tlscacert)",
            cert()
        ),
        rustls::Error::AlertReceived(_) => {
            format!("the daemon ended the TLS handshake ({text})")
        }
        _ => format!("the TLS handshake failed ({text}); does the daemon serve TLS on this port?"),
    })
}

/// The alerts by which a server refuses a client certificate (Go's crypto/tls, which serves
/// dockerd, sends `bad_certificate`; TLS 1.3 servers may send `certificate_required`).
fn is_certificate_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
    )
}

fn one_line(error: &BollardError) -> String {
    escape_foreign(&error.to_string(), MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> DockerConfig {
        DockerConfig::with_host(host)
    }

    #[tokio::test]
    async fn a_connection_reads_nothing_before_its_first_write() {
        use hyper::rt::{Read, Write};
        use tokio::io::AsyncWriteExt;

        let (client, mut server) = tokio::io::duplex(64);
        // What a daemon refusing the client certificate sends at once: an alert.
        server.write_all(b"alert").await.unwrap();
        let mut connection = WriteFirst {
            inner: hyper_util::rt::TokioIo::new(client),
            written: false,
            reader: None,
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut bytes = [0u8; 16];
        let mut buf = hyper::rt::ReadBuf::new(&mut bytes);
        assert!(
            Pin::new(&mut connection)
                .poll_read(&mut cx, buf.unfilled())
                .is_pending(),
            "nothing is read before the request is written"
        );
        assert!(connection.reader.is_some(), "the reader waits to be woken");
        let written = Pin::new(&mut connection).poll_write(&mut cx, b"GET /_ping");
        assert!(matches!(written, Poll::Ready(Ok(10))), "{written:?}");
        assert!(
            connection.reader.is_none(),
            "the first write woke the reader"
        );
        let read = Pin::new(&mut connection).poll_read(&mut cx, buf.unfilled());
        assert!(matches!(read, Poll::Ready(Ok(()))), "{read:?}");
        assert_eq!(buf.filled(), b"alert");
    }

    #[test]
    fn the_address_gets_https_and_dockers_tls_port() {
        let daemon = "d";
        assert_eq!(
            address(&config("tcp://10.0.0.2:2376"), daemon).unwrap(),
            "https://10.0.0.2:2376"
        );
        assert_eq!(
            address(&config("tcp://docker.internal"), daemon).unwrap(),
            "https://docker.internal:2376"
        );
        assert_eq!(
            address(&config("https://[2001:db8::1]/"), daemon).unwrap(),
            "https://[2001:db8::1]:2376"
        );
        assert_eq!(
            address(&config("https://[::1]:9999"), daemon).unwrap(),
            "https://[::1]:9999"
        );
        assert!(
            address(&config("tcp://h:port"), daemon)
                .unwrap_err()
                .to_string()
                .contains("\"port\" is not a port")
        );
        assert!(
            address(&config("tcp://"), daemon)
                .unwrap_err()
                .to_string()
                .contains("names no host")
        );
    }

    #[test]
    fn all_three_files_are_needed() {
        let c = DockerConfig {
            tls_ca: Some("/ca.pem".into()),
            ..config("tcp://10.0.0.2:2376")
        };
        let error = client_config(&c, "tcp://10.0.0.2:2376").unwrap_err();
        assert!(matches!(error, PortError::Invalid { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("tls_cert and tls_key not set"), "{text}");
        assert!(text.contains("tcp://10.0.0.2:2376"), "{text}");
    }

    #[test]
    fn an_unreadable_or_empty_file_is_named() {
        let dir = std::env::temp_dir().join(format!("grt-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let c = DockerConfig {
            tls_ca: Some(dir.join("missing.pem")),
            tls_cert: Some(empty.clone()),
            tls_key: Some(empty.clone()),
            ..config("tcp://h:2376")
        };
        let text = client_config(&c, "tcp://h:2376").unwrap_err().to_string();
        assert!(
            text.contains(&format!(
                "tls_ca {} cannot be read",
                dir.join("missing.pem").display()
            )),
            "{text}"
        );
        let c = DockerConfig {
            tls_ca: Some(empty.clone()),
            ..c
        };
        let text = client_config(&c, "tcp://h:2376").unwrap_err().to_string();
        assert!(
            text.contains(&format!(
                "tls_ca {} holds no PEM certificate",
                empty.display()
            )),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn handshake_failures_name_the_file_to_check() {
        let c = DockerConfig {
            tls_ca: Some("/etc/galaxy/ca.pem".into()),
            tls_cert: Some("/etc/galaxy/cert.pem".into()),
            tls_key: Some("/etc/galaxy/key.pem".into()),
            ..config("tcp://h:2376")
        };
        let inside_io =
            |tls: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let wrong_ca = inside_io(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let text = handshake_failure(&wrong_ca, &c).unwrap();
        assert!(
            text.starts_with(
                "the daemon's certificate is not signed by the CA in tls_ca /etc/galaxy/ca.pem"
            ),
            "{text}"
        );
        let refused = inside_io(rustls::Error::AlertReceived(
            AlertDescription::BadCertificate,
        ));
        let text = handshake_failure(&refused, &c).unwrap();
        assert!(
            text.starts_with(
                "the daemon refused the client certificate in tls_cert /etc/galaxy/cert.pem"
            ),
            "{text}"
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(
            handshake_failure(&name, &c)
                .unwrap()
                .contains("subject alternative names")
        );
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(handshake_failure(&plain, &c), None);
    }
}
