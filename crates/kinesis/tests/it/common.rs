//! Helpers shared by the integration tests.

use logtide_testkit::AWS_ENV;

/// Fake credentials for the AWS default chain, set once in this process before any test
/// reads them: one `Once` for every test of the binary, so that no test changes the
/// environment while another's SDK client reads it.
pub(crate) fn set_aws_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in AWS_ENV {
            std::env::set_var(k, v);
        }
    });
}
