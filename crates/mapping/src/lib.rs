//! A model of Elasticsearch dynamic mapping, and a normalizer that resolves type conflicts
//! before documents are indexed, so that no document is dropped for its types.
//!
//! Pure and synchronous: no runtime, no HTTP, no I/O. The Elasticsearch sink gives it the
//! index's mapping (`GET <index>/_mapping`, again after any mapping error) and the
//! documents it is about to send.
//!
//! - [`IndexMapping`]: what one index has mapped, parsed from Elasticsearch's JSON
//!   ([`from_get_mapping`](IndexMapping::from_get_mapping),
//!   [`from_index_template`](IndexMapping::from_index_template)) with its
//!   [`IndexSettings`]. [`IndexMapping::check`] simulates indexing a document: a
//!   [`Verdict`] that accepts it (and learns what dynamic mapping adds) or names the
//!   field, error type and reason of the [`Rejection`] Elasticsearch would answer with.
//! - [`MappingConfig`] (`mapping: {default: coerce, rules: [...]}`) builds a
//!   [`Normalizer`]; [`Normalizer::normalize_value`] / [`Normalizer::normalize_event`]
//!   change a document until the model accepts it and return an [`Outcome`]: each
//!   [`Change`] (also written into the document, see below); [`Stats`] counts them per
//!   field. [`Normalizer::index_template`] is the `_index_template` body that goes with
//!   the policies.
//! - [`Checker`]: `mapping check` over a stream of documents ([`CheckReport`] per
//!   document).
//!
//! # The model
//!
//! It follows Elasticsearch 8's document parser and its documentation:
//!
//! - New fields: `null` and `[]` map nothing; `true`/`false` → `boolean`; integers →
//!   `long`; other numbers → `float`; objects → `object`; arrays → the first non-null
//!   element decides, the others must fit; strings → `date` when date detection is on
//!   (default) and the string parses with one of `dynamic_date_formats` (default
//!   `strict_date_optional_time` then `yyyy/MM/dd HH:mm:ss||yyyy/MM/dd`; strings that
//!   parse as numbers are never dates), `long`/`float` with `numeric_detection` (default
//!   off), else `text` with a `keyword` sub-field (`ignore_above: 256`).
//! - Dynamic templates (`match`, `unmatch`, `path_match`, `path_unmatch`, lists of them,
//!   `match_pattern: regex`, `match_mapping_type`, `unmatch_mapping_type`, `{name}`,
//!   `{dynamic_type}`, `runtime` templates) are tried in order before the defaults.
//! - Values for mapped fields: numbers are coerced as with `coerce: true` (the default;
//!   `coerce: false` and `index.mapping.coerce` are honoured): `"12"`, `"5.0"`, `1.9`
//!   go into a `long` (truncated), `"abc"`, `true`, `"true"` and out-of-range values
//!   do not; `float` rejects what overflows to infinity; the empty string is a null.
//!   `text`/`keyword` take any scalar; a `keyword` without `ignore_above` rejects terms
//!   over 32766 UTF-8 bytes. `boolean` takes `true`, `false`, `"true"`, `"false"`, `""`.
//!   `date` takes what its format parses. `ip`, `constant_keyword`, `alias` and
//!   `ignore_malformed` are modelled too.
//! - Objects: a scalar where an object is mapped, or an object where a leaf is mapped, is
//!   rejected; dotted names (`a.b`) are objects (`subobjects: false` keeps them whole),
//!   and a dotted name through a mapped leaf is rejected. Bad names (empty, blank, empty
//!   parts) and metadata fields at the top level are rejected.
//! - `dynamic: true | false | strict | runtime` per object, inherited; `enabled: false`
//!   objects take anything. `index.mapping.total_fields.limit` (objects, leaves,
//!   multi-fields and runtime fields count; `ignore_dynamic_beyond_limit`),
//!   `depth.limit` and `field_name_length.limit` are enforced.
//! - Fields are walked in the document's key order (byte order, as logtide writes them);
//!   within one document a field mapped by an earlier value constrains later ones; a
//!   rejected document adds nothing.
//!
//! Known limits: types the model does not know (`geo_point`, `flattened`, `nested`
//! field internals, `percolator`, …) and date formats it cannot evaluate (text month
//! names, week dates) are predicted to accept everything; Java regular expressions in
//! templates are run with Rust's `regex`; `copy_to`, `null_value`, `index.mapping.
//! nested_*` limits, ingest pipelines and concurrent writers are not modelled. The sink
//! learns the real mapping again after any rejection the model did not predict.
//!
//! # Policies
//!
//! Each conflict is resolved by the policy of the first rule whose pattern matches the
//! field's dotted path (patterns are Elasticsearch `path_match` wildcards), else the
//! default. A policy that cannot resolve a conflict falls back to `quarantine`, and
//! `quarantine` to `drop` (the value removed from the document but kept, as JSON text,
//! in the change record); the normalizer changes only what the model predicts would be
//! rejected, plus what `stringify` converts.
//!
//! | policy | does |
//! |---|---|
//! | `coerce` (default) | converts losslessly to the mapped type: `"12"` → `12` for a long that does not coerce, `"true"` → `true`, an object → its JSON text for a text/keyword field, a mixed array that this document itself mapped → strings |
//! | `rename` | moves the value to a sibling named by its JSON type: `id` → `id_str`, `id_num`, `id_bool`, `id_obj` (for a dotted name, the clashing part gets the suffix: `app.kubernetes.io/name` → `app_obj.kubernetes.io/name`) |
//! | `quarantine` | moves the field, as JSON text, to `_conflicts.<dotted path>` (several values of one path become one JSON array) and sets `event.mapping_quarantined: true` |
//! | `stringify` | turns every number and boolean under the matching paths into a string before checking (the template maps them `keyword`); an object for a keyword field becomes its JSON text |
//!
//! Every change is recorded in the document as one object appended to the list
//! `event.mapping_conflicts` (paths configurable):
//! `{"field": "message-json.id", "action": "rename", "reason": "<Elasticsearch's reason>",
//! "to": "message-json.id_str"}`; `to` for rename and quarantine, `value` (JSON text) for
//! drop. If the mapping would reject the record itself, it is left out
//! ([`Outcome::recorded`] is false) and the changes are still counted.
//!
//! # Example
//!
//! ```
//! use logtide_mapping::{IndexMapping, MappingConfig, Stats};
//! use serde_json::json;
//!
//! let response = json!({"logs-2024.05.01": {"mappings": {"properties": {
//!     "message-json": {"properties": {"id": {"type": "long"}}}
//! }}}});
//! let mut mapping = IndexMapping::from_get_mapping(&response, None)?;
//!
//! // As it is, Elasticsearch would reject this document.
//! let mut doc = json!({"message-json": {"id": "a-17"}});
//! let verdict = mapping.predict(&doc);
//! let rejection = verdict.rejection().expect("rejected");
//! assert_eq!(rejection.field, "message-json.id");
//! assert!(rejection.reason.starts_with("failed to parse field [message-json.id] of type [long]"));
//!
//! let config = MappingConfig::from_json(&json!({
//!     "default": "quarantine",
//!     "rules": [{"fields": "message-json.*", "policy": "rename"}]
//! }))?;
//! let normalizer = config.build()?;
//! let outcome = normalizer.normalize_value(&mut mapping, &mut doc);
//! assert_eq!(doc["message-json"]["id_str"], json!("a-17"));
//! assert_eq!(doc["event"]["mapping_conflicts"][0]["to"], json!("message-json.id_str"));
//! assert!(outcome.is_lossless() && mapping.predict(&doc).is_accepted());
//!
//! let mut stats = Stats::default();
//! stats.record(&outcome);
//! assert_eq!(stats.fields["message-json.id"].renamed, 1);
//! # Ok::<(), logtide_mapping::Error>(())
//! ```

mod check;
mod config;
mod date;
mod error;
mod index_template;
mod mapping;
mod model;
mod normalize;
mod number;
mod pattern;
mod stats;
mod template;

pub use check::{CheckReport, Checker};
pub use config::{FieldPatterns, MappingConfig, Policy, RuleConfig};
pub use error::{Error, Result};
pub use mapping::{Dynamic, IndexMapping, IndexSettings};
pub use model::{Rejection, RejectionKind, Verdict};
pub use normalize::{Action, Change, Normalizer, Outcome};
pub use stats::{FieldStats, Stats};

/// The event time's field in documents sent to Elasticsearch.
pub(crate) const TIMESTAMP_FIELD: &str = "@timestamp";
