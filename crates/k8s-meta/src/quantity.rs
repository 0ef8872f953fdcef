//! Kubernetes resource quantities (`500m`, `2`, `1.5`, `128Mi`, `1G`, `1e3`), as the API
//! writes them in `resources.limits`, read into numbers.

/// A CPU quantity in cores (`500m` → 0.5); `None` when it is not a quantity.
pub(crate) fn cpu_cores(q: &str) -> Option<f64> {
    let q = q.trim();
    match q.strip_suffix('m') {
        Some(milli) => number(milli).map(|v| v / 1000.0),
        None => number(q).or_else(|| bytes_f64(q)),
    }
}

/// A memory quantity in bytes (`128Mi` → 134217728, `1G` → 10^9, `1e3` → 1000);
/// `None` when it is not a quantity or is negative.
pub(crate) fn bytes(q: &str) -> Option<u64> {
    let v = bytes_f64(q.trim())?;
    (v >= 0.0 && v.is_finite()).then(|| v.round() as u64)
}

fn bytes_f64(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = q.strip_suffix(suffix) {
            return number(n).map(|v| v * factor);
        }
    }
    for (suffix, factor) in [("P", 1e15), ("E", 1e18)] {
        if let Some(n) = q.strip_suffix(suffix) {
            return number(n).map(|v| v * factor);
        }
    }
    number(q)
}

/// A plain decimal number, with an optional exponent (`1.5`, `2e3`).
fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    ok.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("1.5"), Some(1.5));
        assert_eq!(cpu_cores("250000u"), Some(0.25));
        assert_eq!(cpu_cores("lots"), None);
        assert_eq!(cpu_cores(""), None);
    }

    #[test]
    fn memory() {
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("512"), Some(512));
        assert_eq!(bytes("64k"), Some(64_000));
        assert_eq!(bytes("-1Mi"), None);
        assert_eq!(bytes("1Zi"), None);
        assert_eq!(bytes("Mi"), None);
    }
}
