//! Whether a message can be kept as the JSON text it is instead of being decoded.
//!
//! Most JSON log lines decode to an object that nothing looks inside before it is
//! written again. [`writable_as_is`] checks, in one pass that builds nothing, that the
//! text's value is what `decode_json_fields` would produce and that writing the text
//! itself gives that value; the event then holds the text (see
//! `Event::set_message_decoded`) and the output copies it.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::decode::is_structured;

/// Objects with more keys than this check for repeated keys with a hash set.
const LINEAR_KEYS: usize = 16;

/// Whether `text` is one JSON object that can be written as it is in place of its
/// decoded value: nothing but spaces and tabs around it and no line breaks in it (an
/// output line must stay one line), no key twice in any object (the decoded value keeps
/// the last), no integer beyond `i64` (decoded as a float) and, when `decodes_strings`
/// (a `max_depth` above 1), no top-level string value that looks like a JSON object or
/// array (it would be decoded in turn). `false` for anything else, JSON or not.
pub(crate) fn writable_as_is(text: &str, decodes_strings: bool) -> bool {
    // Spaces and tabs, the whitespace JSON allows but for line breaks (refused below).
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    let trimmed = &text[start..end];
    if !trimmed.starts_with('{') || memchr::memchr2(b'\n', b'\r', bytes).is_some() {
        return false;
    }
    crate::scan::sure_as_is(trimmed.as_bytes(), decodes_strings)
        || checked(trimmed, decodes_strings)
}

/// The full check of [`writable_as_is`] for a trimmed text, by `serde_json`'s parser.
fn checked(trimmed: &str, decodes_strings: bool) -> bool {
    let ok = Cell::new(true);
    let mut de = serde_json::Deserializer::from_str(trimmed);
    let check = Check {
        ok: &ok,
        top: true,
        strings: false,
        decodes_strings,
    };
    check.deserialize(&mut de).and_then(|()| de.end()).is_ok() && ok.get()
}

/// Walks one JSON value, clearing `ok` at anything that rules out writing it as is.
#[derive(Clone, Copy)]
struct Check<'c> {
    ok: &'c Cell<bool>,
    /// The value is the whole text (it must be an object).
    top: bool,
    /// The value is one of the top-level object's (strings are checked).
    strings: bool,
    decodes_strings: bool,
}

impl Check<'_> {
    fn inner(self, strings: bool) -> Self {
        Check {
            top: false,
            strings,
            ..self
        }
    }

    fn scalar(self) {
        if self.top {
            self.ok.set(false);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        if i64::try_from(v).is_err() {
            self.ok.set(false);
        }
        self.scalar();
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if self.strings && self.decodes_strings && is_structured(v) {
            self.ok.set(false);
        }
        self.scalar();
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.scalar();
        while seq.next_element_seed(self.inner(false))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The first keys without escapes (nearly all) are kept on the stack, the rest in
        // a set.
        let mut few: [&'de str; LINEAR_KEYS] = [""; LINEAR_KEYS];
        let mut len = 0;
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let seen = &few[..len];
            let repeated = match key {
                Cow::Borrowed(k) if len < LINEAR_KEYS => {
                    let repeated = seen.contains(&k) || many.contains(k);
                    few[len] = k;
                    len += 1;
                    repeated
                }
                key => seen.contains(&&*key) || !many.insert(key),
            };
            if repeated {
                self.ok.set(false);
            }
            map.next_value_seed(self.inner(self.top))?;
        }
        Ok(())
    }
}

/// An object's key, borrowed from the text when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"a\"",
        "\"b\"",
        ":",
        ",",
        "1",
        "-",
        "0",
        ".5",
        "e9",
        "E+12",
        "e400",
        "12345678901234567890",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"{}\"",
        "\" [1] \"",
        "\"\\t{\\\"a\\\":1}\"",
        "true",
        "nul",
        " ",
        "\t",
        "\"\\\"\"",
        "\"é\"",
        "\"\\x\"",
        "\"\u{1}\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The quick scan vouches only for what the full check accepts.
        #[test]
        fn the_quick_scan_is_never_wrong(
            tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..24),
            decodes_strings in any::<bool>(),
        ) {
            let text = format!("{{{}", tokens.concat());
            if crate::scan::sure_as_is(text.as_bytes(), decodes_strings) {
                prop_assert!(checked(&text, decodes_strings), "{}", text);
            }
        }

        #[test]
        fn well_formed_objects_agree(
            members in proptest::collection::vec(
                (proptest::sample::select(&["a", "b", "c", "a b"][..]), proptest::sample::select(TOKENS)),
                0..8,
            ),
            decodes_strings in any::<bool>(),
        ) {
            let inner: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", inner.join(","));
            if crate::scan::sure_as_is(text.as_bytes(), decodes_strings) {
                prop_assert!(checked(&text, decodes_strings), "{}", text);
            }
        }
    }

    #[test]
    fn what_can_be_written_as_is() {
        let cases = [
            (r#"{"a":1,"b":"x","c":{"d":[1,2.5,null,true]}}"#, true, true),
            ("  {\"a\": 1}\t ", true, true),
            (r#"{}"#, true, true),
            (r#"{"a":"{\"b\":1}"}"#, false, true),
            (r#"{"a":"{\"b\":1}"}"#, true, false),
            (r#"{"a":{"b":"{\"c\":1}"}}"#, true, true),
            (r#"{"a":["[1]"]}"#, true, true),
            (r#"{"a":" [1] "}"#, true, false),
            (r#"{"a":1,"a":2}"#, true, false),
            (r#"{"a":{"b":1,"b":2}}"#, true, false),
            (r#"{"a":1,"\u0061":2}"#, true, false),
            (
                r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":3}"#,
                true,
                false,
            ),
            (
                r#"{"n":9223372036854775807,"m":-9223372036854775808}"#,
                true,
                true,
            ),
            (r#"{"n":9223372036854775808}"#, true, false),
            ("{\"a\":\n1}", true, false),
            ("{\"a\":1}\r", true, false),
            (r#"[{"a":1}]"#, true, false),
            (r#""{}""#, true, false),
            (r#"{"a":1}x"#, true, false),
            (r#"{"a":1} {"b":2}"#, true, false),
            (r#"{"a":1"#, true, false),
            ("not json", true, false),
            ("", true, false),
        ];
        for (text, decodes_strings, want) in cases {
            assert_eq!(writable_as_is(text, decodes_strings), want, "{text}");
        }
    }
}
