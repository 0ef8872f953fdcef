//! Which servers a client believes, as ureq TLS settings.

use std::sync::Arc;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::CaBundle;

/// How a client checks a server's certificate.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The platform's verifier: the system's roots (and its revocation checks where the
    /// platform has them). The certificate must name the host.
    Platform,
    /// Only chains that lead to a CA of the bundle. The certificate must name the host.
    Bundle(CaBundle),
    /// Any certificate: the connection is encrypted but the server is not authenticated
    /// (`verification_mode: none`).
    NoVerification,
}

impl Trust {
    /// The ureq TLS settings for this trust: rustls with the ring crypto provider.
    pub fn tls_config(&self) -> TlsConfig {
        let builder = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        match self {
            Trust::Platform => builder.root_certs(RootCerts::PlatformVerifier),
            Trust::Bundle(bundle) => builder.root_certs(RootCerts::Specific(bundle.shared())),
            Trust::NoVerification => builder.disable_verification(true),
        }
        .build()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What a configuration trusts: (platform verifier, specific roots, verification off).
    fn roots(config: &TlsConfig) -> (bool, Option<usize>, bool) {
        assert_eq!(config.provider(), TlsProvider::Rustls);
        assert!(config.unversioned_rustls_crypto_provider().is_some());
        assert!(config.client_cert().is_none());
        let (platform, specific) = match config.root_certs() {
            RootCerts::PlatformVerifier => (true, None),
            RootCerts::Specific(certs) => (false, Some(certs.len())),
            _ => (false, None),
        };
        (platform, specific, config.disable_verification())
    }

    #[test]
    fn each_trust_sets_its_roots_only() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/two-cas.pem");
        let bundle = CaBundle::load("ssl.certificate_authorities", &[ca]).unwrap();
        let cases = [
            (Trust::Platform, (true, None, false)),
            (Trust::Bundle(bundle), (false, Some(2), false)),
            // The roots are ureq's default; verification is off, so none is consulted.
            (Trust::NoVerification, (false, None, true)),
        ];
        for (trust, want) in cases {
            assert_eq!(roots(&trust.tls_config()), want, "{trust:?}");
        }
    }
}
