//! The crate's error type.

/// Errors of this crate.
///
/// The first group is found when a chain is built ([`Processors::from_config`]): each names
/// the YAML path of the offending value, such as `processors[1].drop_fields`. The second
/// group is reported by a processor while it runs over an event (wrapped in a
/// [`ProcessorError`] that names the processor); each names the field involved. None is
/// retryable: running the same event again gives the same error.
///
/// [`Processors::from_config`]: crate::Processors::from_config
/// [`ProcessorError`]: crate::ProcessorError
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The list names a processor this crate does not have.
    #[error("{path}: unknown processor \"{name}\"")]
    UnknownProcessor {
        /// Where the processor is, e.g. `processors[2]`.
        path: String,
        /// The name given.
        name: String,
    },
    /// An options object (or a condition) has a key that is not one of its options.
    #[error("{path}: unknown key \"{key}\"")]
    UnknownKey {
        /// The object that holds the key, e.g. `processors[1].drop_fields`.
        path: String,
        /// The key given.
        key: String,
        /// The keys the object accepts (empty where they are not a fixed list).
        expected: &'static [&'static str],
    },
    /// A required option is missing.
    #[error("{path}: missing required key \"{key}\"")]
    MissingKey {
        /// The object that lacks the key.
        path: String,
        /// The missing key.
        key: String,
    },
    /// A value in the configuration has the wrong type or an invalid value.
    #[error("{path}: {reason}")]
    InvalidConfig {
        /// The value's path, e.g. `processors[0].decode_json_fields.max_depth`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A regular expression in the configuration does not compile.
    #[error("{path}: invalid regular expression: {error}")]
    InvalidRegex {
        /// The value's path, e.g. `processors[0].drop_fields.fields[1]`.
        path: String,
        /// The compiler's complaint.
        error: regex::Error,
    },
    /// A regular expression Rust's `regex` accepts but Go's `regexp` (which Filebeat
    /// uses) refuses, such as a nested repetition (`w++`); Go's message, with the byte
    /// position of the offending text in the pattern.
    #[error("{path}: invalid regular expression: error parsing regexp: {reason}: `{text}` (at byte {position} of {pattern:?})")]
    InvalidGoRegex {
        /// The value's path, e.g. `processors[0].drop_event.when.regexp.message`.
        path: String,
        /// The pattern.
        pattern: String,
        /// Go's error text, e.g. `invalid nested repetition operator`.
        reason: &'static str,
        /// The text Go quotes, e.g. `++`.
        text: String,
        /// Byte offset of `text` in the pattern.
        position: usize,
    },

    /// A processor supplied by the host ([`Extension`]) failed on an event.
    ///
    /// [`Extension`]: crate::Extension
    #[error("{reason}")]
    Extension {
        /// What the processor reported.
        reason: String,
    },
    /// A string field does not hold exactly one JSON value (`decode_json_fields`).
    #[error("parsing field \"{field}\" as JSON: {reason}")]
    InvalidJson {
        /// The field that was decoded.
        field: String,
        /// Why it is not JSON, e.g. `multiple json elements found`.
        reason: String,
    },
    /// With `target: ""`, a field decoded to something other than an object, which cannot be
    /// merged into the event root (`decode_json_fields`).
    #[error(
        "failed to add target to root: field \"{field}\" decoded to a JSON {found}, not an object"
    )]
    TargetNotObject {
        /// The field that was decoded.
        field: String,
        /// The JSON type it decoded to.
        found: &'static str,
    },
    /// A decoded value could not be written as configured: its dotted keys conflict
    /// (`expand_keys`), or a key with a special meaning (`@timestamp`, `@metadata`, `type`)
    /// has an unusable value (`overwrite_keys`).
    #[error("decoded field \"{field}\": {reason}")]
    DecodedValue {
        /// The field that was decoded.
        field: String,
        /// What could not be written, e.g. `cannot expand "a.b": found conflicting key`.
        reason: String,
    },
    /// A field the processor needs does not exist (and `ignore_missing` is off). The text
    /// is Filebeat's, so searches on `error.message` keep working.
    #[error("could not fetch value for key: {field}, Error: key not found")]
    MissingField {
        /// The field path.
        field: String,
    },
    /// `drop_fields` was asked to drop a field that does not exist (and `ignore_missing`
    /// is off); Filebeat's text.
    #[error("failed to drop field [{field}], error: key not found")]
    NotDropped {
        /// The field path.
        field: String,
    },
    /// `rename` could not write the value at its target (a parent on the way is not an
    /// object). Filebeat's text: `could not put value: <to>: <value>, ...`.
    #[error("could not put value: {field}: {value}, {source}")]
    NotPut {
        /// The target field path.
        field: String,
        /// The value, as Go's `%v` shows it.
        value: String,
        /// Why it could not be written.
        #[source]
        source: Box<Error>,
    },
    /// `copy_fields` could not write the value at its target (a parent on the way is not
    /// an object). Filebeat's text: `could not copy value to <to>: <value>, ...`.
    #[error("could not copy value to {field}: {value}, {source}")]
    NotCopied {
        /// The target field path.
        field: String,
        /// The value, as Go's `%v` shows it.
        value: String,
        /// Why it could not be written.
        #[source]
        source: Box<Error>,
    },
    /// `rename` or `copy_fields` would overwrite an existing field; Filebeat's text.
    #[error("target field {field} already exists, drop or rename this field first")]
    TargetExists {
        /// The target field path.
        field: String,
    },
    /// `truncate_fields` was asked to truncate something that is not a string.
    /// Filebeat's text, which shows the value as Go's `%+v` does.
    #[error("value cannot be truncated: {value}")]
    NotAString {
        /// The field path.
        field: String,
        /// The JSON type found.
        found: &'static str,
        /// The value, as Go shows it.
        value: String,
    },
    /// Tags cannot be appended to a field that holds something other than an array.
    #[error("cannot add tags to field \"{field}\": it holds a JSON {found}, not an array")]
    NotAnArray {
        /// The field path.
        field: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A value could not be set on the event (a value on the way is not an object).
    #[error(transparent)]
    Event(#[from] logtide_event::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
