//! CA certificates read from PEM files.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ureq::tls::{parse_pem, Certificate, PemItem};

use crate::{Error, Result};

/// The CA certificates of one or more PEM files: the roots a client trusts instead of the
/// platform's (see [`Trust::Bundle`](crate::Trust::Bundle)).
///
/// Cloning is cheap: clones share the certificates.
#[derive(Clone)]
pub struct CaBundle {
    certs: Arc<Vec<Certificate<'static>>>,
}

impl CaBundle {
    /// Reads every certificate of each file, in order. `key` is the configuration key
    /// that lists the files (`ssl.certificate_authorities`); each error starts with it
    /// and names the file.
    ///
    /// Other PEM sections (private keys) are skipped, but a file must hold at least one
    /// certificate. With no files the bundle is empty and trusts no server.
    pub fn load<P: AsRef<Path>>(key: &str, paths: &[P]) -> Result<CaBundle> {
        let mut certs = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let pem = std::fs::read(path).map_err(|source| Error::Read {
                key: key.to_owned(),
                path: path.to_owned(),
                source,
            })?;
            let before = certs.len();
            for item in parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(source) => {
                        return Err(Error::Pem {
                            key: key.to_owned(),
                            path: path.to_owned(),
                            source,
                        })
                    }
                }
            }
            if certs.len() == before {
                return Err(Error::NoCertificate {
                    key: key.to_owned(),
                    path: path.to_owned(),
                });
            }
        }
        Ok(CaBundle {
            certs: Arc::new(certs),
        })
    }

    /// The certificates, in the order of the files and of their sections.
    pub fn certificates(&self) -> &[Certificate<'static>] {
        &self.certs
    }

    /// The certificates as ureq's root store takes them, without copying.
    pub(crate) fn shared(&self) -> Arc<Vec<Certificate<'static>>> {
        Arc::clone(&self.certs)
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const KEY: &str = "ssl.certificate_authorities";

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    fn ders(bundle: &CaBundle) -> Vec<Vec<u8>> {
        bundle
            .certificates()
            .iter()
            .map(|c| c.der().to_vec())
            .collect()
    }

    #[test]
    fn a_file_with_two_certificates_gives_both_in_order() {
        let both = CaBundle::load(KEY, &[data("two-cas.pem")]).unwrap();
        assert_eq!(both.certificates().len(), 2);
        let one_by_one = CaBundle::load(KEY, &[data("ca-1.pem"), data("ca-2.pem")]).unwrap();
        assert_eq!(ders(&both), ders(&one_by_one));
        let reversed = CaBundle::load(KEY, &[data("ca-2.pem"), data("ca-1.pem")]).unwrap();
        assert_ne!(ders(&both), ders(&reversed));
        assert_eq!(
            format!("{both:?}"),
            "CaBundle { certificates: 2 }",
            "no certificate bytes in debug output"
        );
    }

    #[test]
    fn no_files_make_an_empty_bundle() {
        let none: &[PathBuf] = &[];
        assert!(CaBundle::load(KEY, none).unwrap().certificates().is_empty());
    }

    #[test]
    fn each_error_names_the_key_and_the_file() {
        let key = "kubernetes.ssl.certificate_authorities";
        let cases = [
            ("missing.pem", "cannot read "),
            ("key-only.pem", ""),
            ("generate.sh", ""),
            ("truncated.pem", ""),
        ];
        for (name, before_path) in cases {
            let path = data(name);
            // A good file first: the error names the file that failed.
            let err = CaBundle::load(key, &[data("ca-1.pem"), path.clone()]).unwrap_err();
            let text = err.to_string();
            let prefix = format!("{key}: {before_path}{}: ", path.display());
            assert!(text.starts_with(&prefix), "{name}: {text}");
            match (name, &err) {
                ("missing.pem", Error::Read { source, .. }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
                }
                ("key-only.pem" | "generate.sh", Error::NoCertificate { .. }) => {
                    assert!(text.ends_with(": no PEM certificate in it"), "{text}")
                }
                ("truncated.pem", Error::Pem { .. }) => {}
                _ => panic!("{name}: unexpected {err:?}"),
            }
        }
    }
}
