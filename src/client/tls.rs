//! HTTPS for the client: which servers it trusts (the built-in Mozilla
//! roots, or only the certificates of a `--ca` file), the handshake, and
//! TLS failures put in words a person can act on.
//!
//! It must never accept a certificate the person did not ask it to:
//! checking is turned off only by `--insecure`, and that says so on stderr.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, InvalidMessage,
    RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::cli::TlsOptions;

use super::connection::within;
use super::error::{describe_io, ClientError};
use super::url::Url;

/// What every `https://` connection of a command (or a shell session)
/// trusts; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    /// The `--ca` file in use, which messages name.
    ca: Option<Arc<Path>>,
}

impl Tls {
    /// Reads the `--ca` file now, so that a wrong path is reported even
    /// before the first `https://` request.
    pub fn new(options: &TlsOptions) -> Result<Tls, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| ClientError::TlsSetup {
                reason: error.to_string(),
            })?;
        let (mut config, ca) = if options.insecure {
            complain!(
                "csvd: warning: --insecure: server certificates are not checked; \
                 anyone in between could read and change this traffic"
            );
            let verifier = Arc::new(AnyCertificate { provider });
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            (config, None)
        } else if let Some(path) = &options.ca {
            let roots = roots_from_file(path)?;
            let config = builder.with_root_certificates(roots).with_no_client_auth();
            (config, Some(Arc::from(path.as_path())))
        } else {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = builder.with_root_certificates(roots).with_no_client_auth();
            (config, None)
        };
        // Say which protocol comes next, so a server that speaks several
        // never has to guess; csvd's client speaks only HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            ca,
        })
    }

    /// Runs the TLS handshake on a connected socket.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        url: &Url,
        timeout: Option<Duration>,
    ) -> Result<TlsStream<TcpStream>, ClientError> {
        let (host, _) = url.socket_host();
        let peer = url.host_and_port();
        let name = ServerName::try_from(host.to_string()).map_err(|_| ClientError::Tls {
            addr: peer.clone(),
            reason: format!("`{host}` is not a name a certificate can be checked against"),
        })?;
        within(
            timeout,
            "in the TLS handshake",
            self.connector.connect(name, stream),
        )
        .await?
        .map_err(|error| ClientError::Tls {
            reason: self.explain(&error, host),
            addr: peer,
        })
    }

    /// A failed handshake in words: what went wrong and, where there is
    /// one, what to do about it.
    fn explain(&self, error: &io::Error, host: &str) -> String {
        let tls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls_error {
            Some(rustls::Error::InvalidCertificate(problem)) => self.certificate(problem, host),
            Some(rustls::Error::InvalidMessage(
                InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
            )) => "it answered, but not in TLS: is it a plain http:// server?".to_string(),
            Some(rustls::Error::AlertReceived(alert)) => refused(*alert),
            Some(other) => format!("the TLS handshake failed: {other}"),
            None if error.kind() == io::ErrorKind::UnexpectedEof => {
                "it closed the connection during the TLS handshake: is it an https:// server?"
                    .to_string()
            }
            None => format!("the TLS handshake failed: {}", describe_io(error)),
        }
    }

    fn certificate(&self, problem: &CertificateError, host: &str) -> String {
        match problem {
            // A bad signature from a trusted name is, in practice, a
            // certificate made anew under the same name as the one in the
            // --ca file: to the person, the file does not hold its issuer.
            CertificateError::UnknownIssuer | CertificateError::BadSignature => match &self.ca {
                Some(path) => format!(
                    "its certificate is not signed by any certificate in {} \
                     (pass the right one with --ca FILE, or --insecure to skip the check)",
                    path.display()
                ),
                _ if *problem == CertificateError::BadSignature => {
                    "its certificate's signature does not match its issuer's key".to_string()
                }
                _ => "its certificate is not signed by a trusted authority \
                      (pass its CA or the certificate itself with --ca FILE, \
                      or --insecure to skip the check)"
                    .to_string(),
            },
            CertificateError::NotValidForName => {
                format!("its certificate is not valid for the name `{host}`")
            }
            CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
                format!("its certificate names no host, so it is not valid for `{host}`")
            }
            CertificateError::NotValidForNameContext { presented, .. } => {
                let names: Vec<&str> = presented.iter().map(|name| plain_name(name)).collect();
                let advice = if names.len() == 1 {
                    "use that name in the URL"
                } else {
                    "use one of those names in the URL"
                };
                format!(
                    "its certificate is for {}, not `{host}` ({advice})",
                    names.join(", ")
                )
            }
            CertificateError::Expired => "its certificate has expired".to_string(),
            CertificateError::ExpiredContext { not_after, .. } => {
                format!("its certificate expired on {}", date(*not_after))
            }
            CertificateError::NotValidYet => "its certificate is not valid yet".to_string(),
            CertificateError::NotValidYetContext { not_before, .. } => {
                format!("its certificate is not valid before {}", date(*not_before))
            }
            CertificateError::Other(other)
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                "its certificate is a CA certificate (CA:TRUE), which cannot be a server's own; \
                 give the server one with CA:FALSE, or pass --insecure"
                    .to_string()
            }
            other => format!("its certificate was refused: {other}"),
        }
    }
}

/// Whether the first bytes of an answer to plain HTTP are a TLS record
/// (an alert or a handshake): the server expected HTTPS.
pub fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

/// The server's alert in words: usually it and the client have no TLS
/// version or cipher suite in common.
fn refused(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::HandshakeFailure | AlertDescription::ProtocolVersion => format!(
            "it refused the TLS handshake ({alert:?}): no TLS version or cipher suite in common"
        ),
        other => format!("it refused the TLS handshake ({other:?})"),
    }
}

/// A name the certificate holds, as rustls reports it (`DnsName("x")`,
/// `IpAddress(127.0.0.1)`), without the wrapping.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

/// `Tue, 01 Jul 2025 00:00:00 GMT`.
fn date(time: UnixTime) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(time.as_secs());
    httpdate::fmt_http_date(at)
}

/// Every certificate of a PEM file, as the only roots trusted.
fn roots_from_file(path: &Path) -> Result<RootCertStore, ClientError> {
    let bad = |reason: String| ClientError::BadCa {
        path: path.to_path_buf(),
        reason,
    };
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|sections| sections.collect())
        .map_err(|error| match error {
            pem::Error::Io(error) => ClientError::file(path, error),
            other => bad(format!("not a PEM file ({other})")),
        })?;
    if certificates.is_empty() {
        return Err(bad("holds no `BEGIN CERTIFICATE` section".to_string()));
    }
    let mut roots = RootCertStore::empty();
    for (at, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|error| bad(format!("certificate {} is unusable ({error})", at + 1)))?;
    }
    Ok(roots)
}

/// `--insecure`: any certificate for any name is accepted. The handshake's
/// signatures are still checked, so the connection is at least with the
/// holder of the certificate's key (whoever that is).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_told_from_http() {
        assert!(is_tls_record(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
        assert!(is_tls_record(&[0x16, 0x03, 0x01]));
        assert!(!is_tls_record(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_tls_record(&[0x15]));
    }

    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let options = TlsOptions {
            ca: Some(path),
            insecure: false,
        };
        let error = Tls::new(&options).err().unwrap().to_string();
        assert!(error.contains("no `BEGIN CERTIFICATE`"), "{error}");
        let missing = TlsOptions {
            ca: Some(dir.path().join("missing.pem")),
            insecure: false,
        };
        let error = Tls::new(&missing).err().unwrap().to_string();
        assert!(error.contains("cannot read"), "{error}");
    }
}
