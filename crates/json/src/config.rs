//! Reading processor options with serde while keeping track of where each value is.
//!
//! Options arrive as a `serde_json::Value` (the YAML `processors:` list, converted). Each
//! processor deserializes them into its own `deny_unknown_fields` struct through
//! [`from_value`], which walks the value with a deserializer that knows the path of every
//! node, so an error says `processors[0].rename.fields[1]: missing required key "to"`
//! rather than just `missing field`.

use std::fmt;

use serde::de::{
    self, value::BorrowedStrDeserializer, DeserializeSeed, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// Deserializes `T` from `value`, naming `path` (and the path below it) in errors.
pub(crate) fn from_value<'v, T: Deserialize<'v>>(value: &'v Value, path: &str) -> Result<T, Error> {
    T::deserialize(Node {
        value,
        path: path.to_owned(),
    })
    .map_err(|e| e.into_error(path))
}

/// An error found while deserializing, with the path where it happened once known.
#[derive(Debug)]
pub(crate) struct DeError {
    path: Option<String>,
    kind: DeKind,
}

#[derive(Debug)]
enum DeKind {
    UnknownKey(String, &'static [&'static str]),
    MissingKey(String),
    Invalid(String),
}

impl DeError {
    /// Records where the error happened, unless a deeper node already did.
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_owned());
        }
        self
    }

    fn into_error(self, fallback: &str) -> Error {
        let path = self.path.unwrap_or_else(|| fallback.to_owned());
        match self.kind {
            DeKind::UnknownKey(key, expected) => Error::UnknownKey {
                path,
                key,
                expected,
            },
            DeKind::MissingKey(key) => Error::MissingKey { path, key },
            DeKind::Invalid(reason) => Error::InvalidConfig { path, reason },
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DeKind::UnknownKey(key, _) => write!(f, "unknown key \"{key}\""),
            DeKind::MissingKey(key) => write!(f, "missing required key \"{key}\""),
            DeKind::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            kind: DeKind::Invalid(msg.to_string()),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            path: None,
            kind: DeKind::UnknownKey(field.to_owned(), expected),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            path: None,
            kind: DeKind::MissingKey(field.to_owned()),
        }
    }
}

/// A value and its path in the configuration.
struct Node<'v> {
    value: &'v Value,
    path: String,
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Object(map) => visitor.visit_map(Entries {
                entries: map.iter(),
                value: None,
                path: &self.path,
            }),
        };
        result.map_err(|e| e.at(&self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none().map_err(|e: DeError| e.at(&self.path)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // Only an object gives a struct; serde would otherwise also accept a list of values
        // in field order.
        if !self.value.is_object() {
            let found = logtide_event::path::json_type(self.value);
            let e: DeError = de::Error::custom(format_args!(
                "expected an object of options, found a JSON {found}"
            ));
            return Err(e.at(&self.path));
        }
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct Seq<'v, 'p> {
    items: std::slice::Iter<'v, Value>,
    index: usize,
    path: &'p str,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(Node { value, path }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'v, 'p> {
    entries: serde_json::map::Iter<'v>,
    value: Option<(&'v str, &'v Value)>,
    path: &'p str,
}

impl<'de> MapAccess<'de> for Entries<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        let path = format!("{}.{key}", self.path);
        seed.deserialize(Node { value, path })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A list of strings; a single string is read as a one-element list, as Filebeat's
/// configuration reader does.
#[derive(Debug, Default)]
pub(crate) struct StringList(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<StringList, E> {
                Ok(StringList(vec![s.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringList(out))
            }
        }

        deserializer.deserialize_any(ListVisitor)
    }
}

/// A `{from, to}` pair of `rename` and `copy_fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FromTo {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// `true`, for `#[serde(default = ...)]`.
pub(crate) fn yes() -> bool {
    true
}

/// The error for an option whose value deserialized but is not acceptable.
pub(crate) fn invalid(path: &str, key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        path: format!("{path}.{key}"),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        fields: StringList,
        #[serde(default)]
        pairs: Vec<FromTo>,
        #[serde(default)]
        depth: Option<u32>,
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (json!({"feilds": ["a"]}), r#"p.x: unknown key "feilds""#),
            (json!({}), r#"p.x: missing required key "fields""#),
            (
                json!({"fields": 5}),
                "p.x.fields: invalid type: integer `5`, expected a string or a list of strings",
            ),
            (
                json!({"fields": ["a", 1]}),
                "p.x.fields[1]: invalid type: integer `1`, expected a string",
            ),
            (
                json!({"fields": "a", "pairs": [{"from": "a", "to": "b"}, {"from": "c"}]}),
                r#"p.x.pairs[1]: missing required key "to""#,
            ),
            (
                json!({"fields": "a", "pairs": [{"from": "a", "to": "b", "too": 1}]}),
                r#"p.x.pairs[0]: unknown key "too""#,
            ),
            (
                json!({"fields": "a", "pairs": [["a", "b"]]}),
                "p.x.pairs[0]: expected an object of options, found a JSON array",
            ),
            (
                json!({"fields": "a", "depth": -1}),
                "p.x.depth: invalid value: integer `-1`, expected u32",
            ),
            (
                json!({"fields": "a", "depth": 1.5}),
                "p.x.depth: invalid type: floating point `1.5`, expected u32",
            ),
            (
                json!([1]),
                "p.x: expected an object of options, found a JSON array",
            ),
        ];
        for (value, want) in cases {
            let err = from_value::<Sample>(&value, "p.x").unwrap_err();
            assert_eq!(err.to_string(), want, "{value}");
        }
    }

    #[test]
    fn reads_single_strings_as_lists_and_nulls_as_absent() {
        let s: Sample = from_value(&json!({"fields": "a", "depth": null}), "p").unwrap();
        assert_eq!(s.fields.0, ["a"]);
        assert_eq!(s.depth, None);
        let s: Sample = from_value(&json!({"fields": ["a", "b"], "depth": 3}), "p").unwrap();
        assert_eq!(s.fields.0, ["a", "b"]);
        assert_eq!(s.depth, Some(3));
    }
}
