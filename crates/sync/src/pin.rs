//! Trusting a venue's own CA from a pairing code (issue 16): the code names
//! the CA certificate's SHA-256; the gate takes the certificate chain the
//! server presents in a TLS handshake that it then aborts (no request is
//! sent, no token leaves the gate), keeps the certificate whose SHA-256 is
//! the code's, and from then on trusts that CA (besides the public roots,
//! as `--ca-cert`) through the ordinary, fully verified transport
//! (`Transport::ca_cert_pem`). A server whose chain
//! holds no such certificate is refused: nothing is ever accepted unchecked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::client::{server_base, SyncError};

/// How long the handshake that shows the chain may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Certificates looked at, at most (a chain is a handful).
const MAX_CHAIN: usize = 10;

/// The PEM of the certificate in `server_url`'s TLS chain whose SHA-256 (of
/// its DER bytes, hex) is `sha256_hex`.
pub async fn fetch_pinned_ca(server_url: &str, sha256_hex: &str) -> Result<Vec<u8>, SyncError> {
    let base = server_base(server_url)?;
    let url = reqwest::Url::parse(&base).map_err(|_| SyncError::InvalidUrl(base.clone()))?;
    if url.scheme() != "https" {
        return Err(SyncError::CaFingerprint(format!(
            "{base} is not https://: a CA fingerprint needs TLS"
        )));
    }
    let port = url.port().unwrap_or(443);
    let host = url.host_str().unwrap_or_default();
    let dial_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = match dial_host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(dial_host.clone())
            .map_err(|_| SyncError::InvalidUrl(base.clone()))?,
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainRecorder {
            seen: seen.clone(),
            schemes: provider
                .signature_verification_algorithms
                .supported_schemes(),
        }))
        .with_no_client_auth();
    let probe = async {
        let tcp = TcpStream::connect((dial_host.as_str(), port))
            .await
            .map_err(|e| SyncError::Network(format!("{base}: {e}")))?;
        // Fails by design: the recorder refuses every chain once it has it.
        let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await;
        Ok::<_, SyncError>(())
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .map_err(|_| SyncError::Network(format!("{base}: no TLS handshake in time")))??;
    let chain = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let wanted = sha256_hex.to_ascii_lowercase();
    chain
        .iter()
        .find(|der| hex(&Sha256::digest(der)) == wanted)
        .map(|der| pem(der))
        .ok_or_else(|| {
            SyncError::CaFingerprint(format!(
                "none of the {} certificates {base} presents is the CA the pairing code names \
                 (SHA-256 {wanted}): another server, or one started without --tls-ca",
                chain.len()
            ))
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// DER as a PEM `CERTIFICATE` block.
pub fn pem(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

/// Keeps the chain the server presents and refuses it, so the handshake
/// ends before any data could flow.
#[derive(Debug)]
struct ChainRecorder {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.extend(
            std::iter::once(end_entity)
                .chain(intermediates)
                .take(MAX_CHAIN)
                .map(|c| c.as_ref().to_vec()),
        );
        Err(rustls::Error::General(
            "chain recorded, handshake ended".into(),
        ))
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("never verified".into()))
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("never verified".into()))
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_wraps_der_at_64_columns() {
        let der = vec![7u8; 100];
        let text = String::from_utf8(pem(&der)).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
        let b64: String = lines[1..lines.len() - 1].concat();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            der
        );
    }

    #[tokio::test]
    async fn plain_http_has_no_ca_to_pin() {
        let e = fetch_pinned_ca("http://127.0.0.1:9", &"a".repeat(64))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "CA_FINGERPRINT_MISMATCH");
    }
}
