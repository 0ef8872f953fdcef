//! How logtide's HTTP clients check the servers they talk to: the TLS settings of a
//! [`ureq`] agent, and the CA bundles they trust, read from PEM files.
//!
//! TLS goes through rustls with the ring crypto provider. No runtime and no network: the
//! only I/O is reading the CA files a caller names. Each caller still builds its own
//! `ureq::Agent`, with its own timeouts and redirect rules.
//!
//! - [`Trust`]: the platform's verifier, the CAs of a [`CaBundle`], or no verification;
//!   [`Trust::tls_config`] is the [`ureq::tls::TlsConfig`] for it.
//! - [`CaBundle::load`]: the certificates of PEM files. An [`Error`] names the
//!   configuration key that listed the file and the file:
//!   `ssl.certificate_authorities: /etc/ca.pem: no PEM certificate in it`.
//!
//! ```
//! use std::time::Duration;
//!
//! use logtide_tls::{CaBundle, Trust};
//!
//! let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
//! let key = "ssl.certificate_authorities";
//! let bundle = CaBundle::load(key, &[format!("{data}/two-cas.pem")])?;
//! assert_eq!(bundle.certificates().len(), 2);
//! let _agent = ureq::Agent::config_builder()
//!     .timeout_global(Some(Duration::from_secs(10)))
//!     .tls_config(Trust::Bundle(bundle).tls_config())
//!     .build()
//!     .new_agent();
//!
//! let err = CaBundle::load(key, &[format!("{data}/key-only.pem")]).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     format!("ssl.certificate_authorities: {data}/key-only.pem: no PEM certificate in it")
//! );
//! # Ok::<(), logtide_tls::Error>(())
//! ```

mod bundle;
mod error;
mod trust;

pub use bundle::CaBundle;
pub use error::{Error, Result};
pub use trust::Trust;
