//! The number grammars Elasticsearch applies to strings (Java's `Long.parseLong`,
//! `Double.parseDouble` and `BigDecimal`), and the range of each numeric field type.

/// `Long.parseLong`: an optional sign and decimal digits, within `i64`.
pub(crate) fn java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Rust's parser accepts the same grammar, including a leading `+`.
    s.parse().ok()
}

/// `Double.parseDouble`: surrounding characters up to U+0020 are ignored; then an optional
/// sign and `NaN`, `Infinity`, a decimal number with optional exponent, or a hexadecimal
/// one with a binary exponent; a trailing `f`, `F`, `d` or `D` is allowed on numbers.
pub(crate) fn java_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let value = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let number = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            if let Some(hex) = number
                .strip_prefix("0x")
                .or_else(|| number.strip_prefix("0X"))
            {
                hex_float(hex)?
            } else {
                decimal_parts(number)?;
                number.parse::<f64>().ok()?
            }
        }
    };
    Some(if negative { -value } else { value })
}

/// The parts of an unsigned decimal number `digits [. digits] [e [sign] digits]` (at least
/// one digit before the exponent): integer digits, fraction digits, exponent.
fn decimal_parts(s: &str) -> Option<(&str, &str, i64)> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let exponent = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return None;
            }
            // Exponents beyond this only ever mean "out of range" or "zero".
            let significant = digits.trim_start_matches('0');
            let magnitude = if significant.len() > 12 {
                1 << 40
            } else {
                significant.parse::<i64>().unwrap_or(0).min(1 << 40)
            };
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    Some((int, frac, exponent))
}

fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_hexdigit())
        || !frac.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let exponent = java_long(exponent)?;
    let mut value = 0f64;
    for b in int.bytes().chain(frac.bytes()) {
        value = value * 16.0 + f64::from(char::from(b).to_digit(16)?);
    }
    let shift = exponent.saturating_sub(4 * i64::try_from(frac.len()).ok()?);
    let shift = i32::try_from(shift.clamp(-2000, 2000)).ok()?;
    Some(value * 2f64.powi(shift))
}

/// What a string becomes in an integer field with coercion on: `Long.parseLong`, or else a
/// `BigDecimal` (sign, digits, fraction, exponent; no spaces) truncated toward zero.
/// `None` when it is not a number; `Some(None)` when it is one outside `i128`.
pub(crate) fn coerce_integer(s: &str) -> Option<Option<i128>> {
    if let Some(v) = java_long(s) {
        return Some(Some(i128::from(v)));
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac, exponent) = decimal_parts(body)?;
    // The integer digits after moving the decimal point by the exponent.
    let digits: String = int.chars().chain(frac.chars()).collect();
    let point = i64::try_from(int.len()).ok()? + exponent;
    let whole = if point <= 0 {
        ""
    } else {
        let point = usize::try_from(point).ok()?;
        if point > digits.len() {
            // More integer digits than written: pad with zeros, unless that is huge.
            let significant = digits.trim_start_matches('0');
            if significant.is_empty() {
                return Some(Some(0));
            }
            if point - (digits.len() - significant.len()) > 39 {
                return Some(None);
            }
            let mut padded = digits.clone();
            padded.extend(std::iter::repeat_n('0', point - digits.len()));
            return Some(parse_whole(&padded, negative));
        }
        &digits[..point]
    };
    Some(parse_whole(whole, negative))
}

fn parse_whole(whole: &str, negative: bool) -> Option<i128> {
    let whole = whole.trim_start_matches('0');
    if whole.is_empty() {
        return Some(0);
    }
    if whole.len() > 38 {
        return None;
    }
    let v: i128 = whole.parse().ok()?;
    Some(if negative { -v } else { v })
}

/// The integer types and their ranges.
pub(crate) fn integer_range(type_name: &str) -> (i128, i128) {
    match type_name {
        "byte" => (i128::from(i8::MIN), i128::from(i8::MAX)),
        "short" => (i128::from(i16::MIN), i128::from(i16::MAX)),
        "integer" => (i128::from(i32::MIN), i128::from(i32::MAX)),
        "unsigned_long" => (0, i128::from(u64::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    }
}

/// Whether a finite double stays finite in a floating point field type.
pub(crate) fn fits_float_type(type_name: &str, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    match type_name {
        // Narrowing rounds: values past the largest float become infinite.
        #[allow(clippy::cast_possible_truncation)]
        "float" => (v as f32).is_finite(),
        // 65504 is the largest half float; 65520 and above round to infinity.
        "half_float" => v.abs() < 65520.0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_long_grammar() {
        assert_eq!(java_long("12"), Some(12));
        assert_eq!(java_long("+12"), Some(12));
        assert_eq!(java_long("-0"), Some(0));
        assert_eq!(java_long("9223372036854775807"), Some(i64::MAX));
        for bad in ["", "+", "1.0", " 1", "1e3", "9223372036854775808", "0x1"] {
            assert_eq!(java_long(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn java_double_grammar() {
        for (s, want) in [
            ("1.5", 1.5),
            (" 2.5 ", 2.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("-1E-2", -0.01),
            ("2f", 2.0),
            ("0x1p3", 8.0),
            ("0x1.8p1", 3.0),
        ] {
            assert_eq!(java_double(s), Some(want), "{s:?}");
        }
        assert!(java_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(java_double("-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [
            "", ".", "e3", "1e", "abc", "1.2.3", "inf", "0x1", "1_000", "--1",
        ] {
            assert_eq!(java_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integer_coercion_truncates_and_bounds() {
        let cases: &[(&str, Option<Option<i128>>)] = &[
            ("12", Some(Some(12))),
            ("5.0", Some(Some(5))),
            ("1.9", Some(Some(1))),
            ("-1.9", Some(Some(-1))),
            ("1e3", Some(Some(1000))),
            ("1.5e1", Some(Some(15))),
            ("15e-1", Some(Some(1))),
            (".5", Some(Some(0))),
            ("0e999999999999999999", Some(Some(0))),
            ("1e999999999999999999", Some(None)),
            ("9223372036854775808", Some(Some(9_223_372_036_854_775_808))),
            ("abc", None),
            (" 12", None),
            ("true", None),
            ("", None),
            ("NaN", None),
        ];
        for (s, want) in cases {
            assert_eq!(coerce_integer(s), *want, "{s:?}");
        }
    }

    #[test]
    fn float_types_overflow_to_rejection() {
        assert!(fits_float_type("float", 3.0e38));
        assert!(!fits_float_type("float", 1.0e39));
        assert!(fits_float_type("double", 1.0e39));
        assert!(fits_float_type("half_float", 65504.0));
        assert!(!fits_float_type("half_float", 70000.0));
        assert!(!fits_float_type("double", f64::NAN));
    }
}
