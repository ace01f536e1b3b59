//! Which certificate authorities puente trusts for HTTPS, for the SDK's calls to AWS and the
//! connectors' calls to HubSpot and the ERPs alike.
//!
//! The Mozilla root program is compiled into the binary (`webpki-root-certs`), so a cold start
//! reads nothing from disk. Loading the system's roots instead (the bundle, then each of the
//! ~150 files in `/etc/ssl/certs`, parsed one by one, and parsed again for every SDK client)
//! was most of every function's init (README, Performance).
//!
//! An ERP on premises often presents a certificate from the company's own CA. Its PEM bundle,
//! named by `PUENTE_EXTRA_CA_FILE` (for example a file in a Lambda layer under `/opt`), is added
//! to the compiled-in roots; a file that cannot be read or holds no certificate stops the start.

use crate::config::{ConfigError, Env};
use base64::Engine as _;

pub const EXTRA_CA_FILE: &str = "PUENTE_EXTRA_CA_FILE";

/// The roots to trust: the compiled-in ones plus the operator's, if any.
#[derive(Debug, Clone, Default)]
pub struct TrustRoots {
    /// The operator's PEM bundle, as read (the SDK takes PEM)...
    extra_pem: Option<Vec<u8>>,
    /// ...and its certificates, parsed once (reqwest takes these).
    extra: Vec<reqwest::Certificate>,
}

impl TrustRoots {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(path) = env.optional(EXTRA_CA_FILE) else {
            return Ok(Self::default());
        };
        let invalid = |detail: String| ConfigError::Invalid {
            name: EXTRA_CA_FILE,
            detail,
        };
        let pem = std::fs::read(&path).map_err(|e| invalid(format!("({path}): {e}")))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => {
                tracing::info!(file = %path, certificates = certs.len(), "trusting extra certificate authorities");
                Ok(Self {
                    extra_pem: Some(pem),
                    extra: certs,
                })
            }
            _ => Err(invalid(format!("({path}) holds no PEM certificate"))),
        }
    }

    /// How many certificates the extra bundle holds (zero without one).
    pub fn extra_count(&self) -> usize {
        self.extra.len()
    }

    /// The SDK's HTTPS client (hyper, rustls on aws-lc, as the SDK's default) trusting these
    /// roots. The SDK takes roots as PEM only, so the compiled-in ones are encoded here and
    /// decoded again when it builds its connector: about 7 million instructions, once per
    /// process (README, Performance), against reading and parsing the system's files.
    pub fn configure_sdk(
        &self,
        loader: aws_config::ConfigLoader,
    ) -> Result<aws_config::ConfigLoader, ConfigError> {
        use aws_smithy_http_client::tls;
        let mut store = tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(builtin_pem());
        if let Some(extra) = &self.extra_pem {
            store.add_pem_certificate(extra.clone());
        }
        let context = tls::TlsContext::builder()
            .with_trust_store(store)
            .build()
            // Infallible with rustls today; kept as an error rather than a panic.
            .map_err(|e| ConfigError::Invalid {
                name: EXTRA_CA_FILE,
                detail: format!("could not be used for TLS: {e}"),
            })?;
        let client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https();
        Ok(loader.http_client(ConnectorOnFirstRequest(client)))
    }

    /// A reqwest builder that trusts these roots and no others.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builtin = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        builder.tls_certs_only(builtin.chain(self.extra.iter().cloned()))
    }
}

/// The SDK's HTTP client without its eager connector: on every SDK client's construction
/// (`Client::from_conf`, including the STS client the credential chain builds) the SDK's client
/// builds a connector and throws it away, "so that native certs load at client initialization
/// time", and each build parses every root again. Five of them were 85% of the receiver's init
/// instructions under callgrind. Here the connector is built at the first request, once per
/// connector settings, and cached by the inner client as before.
#[derive(Debug)]
struct ConnectorOnFirstRequest(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for ConnectorOnFirstRequest {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The compiled-in roots as one PEM bundle.
fn builtin_pem() -> Vec<u8> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
    let mut pem = Vec::with_capacity(roots.iter().map(|der| der.len() * 4 / 3 + 64).sum());
    for der in roots {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        pem.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(der)
                .as_bytes(),
        );
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_bundle_reads_back_as_every_mozilla_root() {
        let pem = builtin_pem();
        let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("valid PEM");
        assert_eq!(certs.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(certs.len() > 100, "{} roots", certs.len());
    }

    #[test]
    fn without_the_variable_only_the_compiled_in_roots_are_trusted() {
        let roots = TrustRoots::from_env(&Env::from_pairs([])).expect("no file to read");
        assert_eq!(roots.extra_count(), 0);
    }

    #[test]
    fn an_extra_bundle_is_read_and_counted() {
        let dir = std::env::temp_dir().join(format!("puente-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("private-ca.pem");
        // Two of the Mozilla roots stand in for a company's CA: any valid certificate will do.
        let two: Vec<u8> = builtin_pem()
            .split_inclusive(|b| *b == b'\n')
            .take(6)
            .flatten()
            .copied()
            .collect();
        std::fs::write(&file, &two).expect("write");
        let path = file.to_string_lossy().into_owned();
        let roots = TrustRoots::from_env(&Env::from_pairs([(EXTRA_CA_FILE, path.as_str())]))
            .expect("a valid bundle");
        assert_eq!(roots.extra_count(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_unreadable_or_empty_bundle_stops_the_start_with_the_variable_named() {
        let missing = TrustRoots::from_env(&Env::from_pairs([(
            EXTRA_CA_FILE,
            "/nonexistent/puente/ca.pem",
        )]))
        .expect_err("missing file");
        assert!(missing.to_string().contains(EXTRA_CA_FILE), "{missing}");
        assert!(
            missing.to_string().contains("/nonexistent/puente/ca.pem"),
            "{missing}"
        );

        let dir = std::env::temp_dir().join(format!("puente-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("not-a-cert.pem");
        std::fs::write(&file, b"hello\n").expect("write");
        let path = file.to_string_lossy().into_owned();
        let empty = TrustRoots::from_env(&Env::from_pairs([(EXTRA_CA_FILE, path.as_str())]))
            .expect_err("no certificate");
        assert!(
            empty.to_string().contains("holds no PEM certificate"),
            "{empty}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
