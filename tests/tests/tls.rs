//! HTTPS through the trust roots every function uses (`shared::tls`), against a real TLS server
//! on loopback whose certificate comes from a private CA, as an on-premises ERP's often does.
//! With the compiled-in Mozilla roots alone the handshake is refused and no request arrives;
//! with `PUENTE_EXTRA_CA_FILE` naming that CA the request arrives. Both HTTP stacks are checked:
//! reqwest (the connectors) and the AWS SDK (its endpoint pointed at the same server).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use shared::config::Env;
use shared::tls::{EXTRA_CA_FILE, TrustRoots};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS server for `localhost` with a certificate from a CA of its own.
struct PrivateServer {
    url: String,
    /// Requests that got through the handshake and were answered.
    served: Arc<AtomicUsize>,
    /// The CA's certificate, PEM, as the company would hand it over; removed on drop.
    ca_file: std::path::PathBuf,
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

impl PrivateServer {
    async fn start() -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Ferretería El Tornillo internal CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate()?;
        let server_cert = CertificateParams::new(vec!["localhost".to_owned()])?
            .signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    // A refused handshake ends here, before any request is read.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if answer(&mut tls).await.is_ok() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });

        let ca_file = std::env::temp_dir().join(format!("puente-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&ca_file, ca_cert.pem())?;
        Ok(Self {
            url: format!("https://localhost:{port}"),
            served,
            ca_file,
        })
    }

    /// The roots with this server's CA added, as `PUENTE_EXTRA_CA_FILE` does.
    fn roots_with_its_ca(&self) -> anyhow::Result<TrustRoots> {
        let path = self.ca_file.to_string_lossy().into_owned();
        Ok(TrustRoots::from_env(&Env::from_pairs([(
            EXTRA_CA_FILE,
            path.as_str(),
        )]))?)
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// Reads one request's head (and what came with it) and answers with a Secrets Manager
/// `GetSecretValue` body, which both clients accept as a 200.
async fn answer(
    tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let body = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:erp","Name":"erp","SecretString":"{}"}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body.as_bytes()).await?;
    tls.shutdown().await
}

async fn get(roots: &TrustRoots, url: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    let client = shared::connectors::http::client(Duration::from_secs(5), roots)?;
    Ok(client.get(url).send().await?.status())
}

#[tokio::test]
async fn the_connectors_refuse_a_private_ca_until_it_is_configured() -> anyhow::Result<()> {
    let server = PrivateServer::start().await?;

    let refused = get(&TrustRoots::default(), &server.url)
        .await
        .expect_err("a certificate from an unknown CA");
    let why = shared::error::aws_error_text(&refused);
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    assert_eq!(server.served(), 0, "no request got through");

    let status = get(&server.roots_with_its_ca()?, &server.url).await?;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(server.served(), 1);
    Ok(())
}

async fn get_secret(roots: &TrustRoots, url: &str) -> anyhow::Result<Option<String>> {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "tls-test",
        ))
        .endpoint_url(url);
    let sdk = roots.configure_sdk(loader)?.load().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client.get_secret_value().secret_id("erp").send().await?;
    Ok(out.secret_string().map(str::to_owned))
}

#[tokio::test]
async fn the_aws_sdk_refuses_a_private_ca_until_it_is_configured() -> anyhow::Result<()> {
    let server = PrivateServer::start().await?;

    let refused = get_secret(&TrustRoots::default(), &server.url)
        .await
        .expect_err("a certificate from an unknown CA");
    let why = format!("{refused:#}");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    assert_eq!(server.served(), 0, "no request got through");

    let secret = get_secret(&server.roots_with_its_ca()?, &server.url).await?;
    assert_eq!(secret.as_deref(), Some("{}"));
    assert_eq!(server.served(), 1);
    Ok(())
}
