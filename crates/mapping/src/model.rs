//! Indexing simulated: walks a document the way Elasticsearch's document parser does,
//! against an [`IndexMapping`], and either accepts it (adding what dynamic mapping would
//! add) or names the first field Elasticsearch would reject it for.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::mapping::{
    scalar_text, Dynamic, FieldNode, IndexMapping, IndexSettings, Kind, Node, ObjectNode, Rules,
};
use crate::number;
use crate::template::MatchType;

/// The longest term Lucene indexes, in UTF-8 bytes.
pub(crate) const MAX_TERM_BYTES: usize = 32766;

/// Metadata fields that a document may not contain at its top level.
const METADATA_FIELDS: &[&str] = &[
    "_id",
    "_index",
    "_source",
    "_routing",
    "_ignored",
    "_seq_no",
    "_version",
    "_primary_term",
    "_field_names",
    "_tier",
    "_nested_path",
    "_data_stream_timestamp",
    "_tsid",
    "_ignored_source",
];

/// Why Elasticsearch would reject a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectionKind {
    /// A value the mapped type cannot parse (`"abc"` for a long, `true` for a date).
    Value,
    /// A JSON object where a leaf (non-object) field is mapped.
    ObjectForLeaf,
    /// A concrete value where an object is mapped.
    LeafForObject,
    /// A dotted name that needs an object where a leaf is mapped (`a.b` when `a` is text).
    PrefixIsLeaf,
    /// A new field under `dynamic: strict`.
    Strict,
    /// More fields than `index.mapping.total_fields.limit`.
    TotalFields,
    /// Objects nested deeper than `index.mapping.depth.limit`.
    Depth,
    /// A field name longer than `index.mapping.field_name_length.limit`.
    NameLength,
    /// A field name that is empty, blank, or has an empty part between dots.
    BadName,
    /// A metadata field (`_id`, `_index`, …) inside the document.
    MetadataField,
    /// A keyword longer than Lucene's 32766-byte term limit.
    ImmenseTerm,
    /// A value for a field alias.
    AliasWrite,
    /// The document is not a JSON object.
    NotAnObject,
}

/// One step from the document root to a value: a key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A key of an object; `seg` is the dot-separated part of it the walk had reached.
    Key {
        key: String,
        seg: usize,
    },
    Index(usize),
}

/// Why and where Elasticsearch would reject a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The field as Elasticsearch names it (dotted path of the mapping).
    pub field: String,
    /// What kind of problem it is.
    pub kind: RejectionKind,
    /// The `error.type` Elasticsearch answers with (8.x names).
    pub error_type: &'static str,
    /// The `error.reason`, worded as Elasticsearch words it.
    pub reason: String,
    /// The mapped type involved, if any.
    pub mapped_type: Option<String>,
    /// Whether the conflicting mapping was created by an earlier part of the same document.
    pub mapped_by_this_document: bool,
    pub(crate) steps: Vec<Step>,
}

impl Rejection {
    /// The HTTP status of the bulk item (400 for every rejection the model predicts).
    pub fn status(&self) -> u16 {
        400
    }
}

/// The model's answer for one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Elasticsearch would index the document.
    Accepted,
    /// Elasticsearch would reject the document.
    Rejected(Rejection),
}

impl Verdict {
    /// Whether the document would be indexed.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }

    /// The rejection, if any.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Verdict::Accepted => None,
            Verdict::Rejected(r) => Some(r),
        }
    }
}

impl IndexMapping {
    /// Simulates indexing `doc`: on acceptance the mapping learns every field dynamic
    /// mapping would add; on rejection it stays as it was (Elasticsearch adds nothing for
    /// a rejected document).
    pub fn check(&mut self, doc: &Value) -> Verdict {
        self.verdict(doc, true)
    }

    /// Like [`check`](IndexMapping::check) but never changes the mapping.
    pub fn predict(&mut self, doc: &Value) -> Verdict {
        self.verdict(doc, false)
    }

    fn verdict(&mut self, doc: &Value, learn: bool) -> Verdict {
        let Value::Object(fields) = doc else {
            return Verdict::Rejected(Rejection {
                field: String::new(),
                kind: RejectionKind::NotAnObject,
                error_type: "document_parsing_exception",
                reason: format!(
                    "failed to parse: the document is a JSON {}, not an object",
                    json_kind(doc)
                ),
                mapped_type: None,
                mapped_by_this_document: false,
                steps: Vec::new(),
            });
        };
        match self.walk(None, fields, learn) {
            Ok(()) => Verdict::Accepted,
            Err(r) => Verdict::Rejected(*r),
        }
    }

    /// Walks a document given as its top-level fields, with `@timestamp` (written first by
    /// the event writer) given separately.
    pub(crate) fn walk(
        &mut self,
        timestamp: Option<&Value>,
        fields: &Map<String, Value>,
        learn: bool,
    ) -> Result<(), Box<Rejection>> {
        let IndexMapping {
            root,
            runtime,
            rules,
            field_count,
            scratch,
        } = self;
        let (mut path, mut spans) = std::mem::take(scratch);
        path.clear();
        spans.clear();
        let mut w = Walker {
            rules,
            runtime,
            new_runtime: Vec::new(),
            undo: Vec::new(),
            base_count: *field_count,
            added: 0,
            path,
            spans,
            steps: Vec::with_capacity(8),
        };
        let inherited = root.dynamic.unwrap_or(Dynamic::True);
        let mut result = Ok(());
        if let Some(ts) = timestamp {
            result = w.key(root, crate::TIMESTAMP_FIELD, ts, inherited, true);
        }
        if result.is_ok() {
            result = w.object_members(root, fields, inherited, true);
        }
        let Walker {
            new_runtime,
            undo,
            added,
            path,
            spans,
            ..
        } = w;
        *scratch = (path, spans);
        if result.is_ok() && learn {
            *field_count += added;
            runtime.extend(new_runtime);
        } else {
            for u in undo.into_iter().rev() {
                u.revert(root);
            }
        }
        result
    }
}

/// A change made to the mapping during one walk, undone when the document is rejected.
enum Undo {
    Added(Vec<String>),
    Constant(Vec<String>),
}

impl Undo {
    fn revert(self, root: &mut ObjectNode) {
        let (Undo::Added(names) | Undo::Constant(names)) = &self;
        let Some((last, parents)) = names.split_last() else {
            return;
        };
        let mut cur = root;
        for name in parents {
            match cur.properties.get_mut(name) {
                Some(Node::Object(o)) => cur = o,
                _ => return,
            }
        }
        match self {
            Undo::Added(_) => {
                cur.properties.remove(last);
            }
            Undo::Constant(_) => {
                if let Some(Node::Field(f)) = cur.properties.get_mut(last) {
                    f.kind = Kind::Constant(None);
                    f.raw.remove("value");
                }
            }
        }
    }
}

type Walk = Result<(), Box<Rejection>>;

/// A step of the walk, borrowing the document's keys (made owned only for a rejection).
#[derive(Clone, Copy)]
enum StepRef<'d> {
    Key(&'d str, usize),
    Index(usize),
}

struct Walker<'m, 'd> {
    rules: &'m Rules,
    runtime: &'m BTreeMap<String, Value>,
    new_runtime: Vec<(String, Value)>,
    undo: Vec<Undo>,
    base_count: usize,
    added: usize,
    /// The dotted path being walked.
    path: String,
    /// Where each mapped name of `path` starts and ends (names may hold dots when an
    /// object has `subobjects: false`).
    spans: Vec<(usize, usize)>,
    steps: Vec<StepRef<'d>>,
}

impl<'d> Walker<'_, 'd> {
    fn push_name(&mut self, name: &str) -> usize {
        let before = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        let start = self.path.len();
        self.path.push_str(name);
        self.spans.push((start, self.path.len()));
        before
    }

    fn pop_to(&mut self, len: usize, spans: usize) {
        self.path.truncate(len);
        self.spans.truncate(spans);
    }

    fn names(&self) -> Vec<String> {
        self.spans
            .iter()
            .map(|&(s, e)| self.path[s..e].to_owned())
            .collect()
    }

    fn depth(&self) -> usize {
        self.spans.len()
    }

    fn current_name(&self) -> &str {
        self.spans.last().map_or("", |&(s, e)| &self.path[s..e])
    }

    fn parent_path(&self) -> &str {
        match self.spans.len() {
            0 | 1 => "_doc",
            _ => &self.path[..self.spans[self.spans.len() - 2].1],
        }
    }

    fn reject(
        &self,
        kind: RejectionKind,
        reason: String,
        mapped_type: Option<&str>,
        by_this_doc: bool,
    ) -> Box<Rejection> {
        let error_type = match kind {
            RejectionKind::Strict => "strict_dynamic_mapping_exception",
            RejectionKind::ImmenseTerm => "illegal_argument_exception",
            _ => "document_parsing_exception",
        };
        Box::new(Rejection {
            field: self.path.clone(),
            kind,
            error_type,
            reason,
            mapped_type: mapped_type.map(str::to_owned),
            mapped_by_this_document: by_this_doc,
            steps: self
                .steps
                .iter()
                .map(|st| match *st {
                    StepRef::Key(key, seg) => Step::Key {
                        key: key.to_owned(),
                        seg,
                    },
                    StepRef::Index(i) => Step::Index(i),
                })
                .collect(),
        })
    }

    fn was_added(&self) -> bool {
        let names = self.names();
        self.undo
            .iter()
            .any(|u| matches!(u, Undo::Added(n) if names.starts_with(n)))
    }

    fn object_members(
        &mut self,
        node: &mut ObjectNode,
        map: &'d Map<String, Value>,
        inherited: Dynamic,
        at_root: bool,
    ) -> Walk {
        for (key, value) in map {
            self.key(node, key, value, inherited, at_root)?;
        }
        Ok(())
    }

    /// One member of an object: validates the key, follows its dotted parts, then maps the
    /// value under the last part.
    fn key(
        &mut self,
        node: &mut ObjectNode,
        key: &'d str,
        value: &'d Value,
        inherited: Dynamic,
        at_root: bool,
    ) -> Walk {
        self.steps.push(StepRef::Key(key, 0));
        let (len, spans) = (self.path.len(), self.spans.len());
        let result = self.key_inner(node, key, value, inherited, at_root);
        self.pop_to(len, spans);
        self.steps.pop();
        result
    }

    fn key_inner(
        &mut self,
        node: &mut ObjectNode,
        key: &'d str,
        value: &'d Value,
        inherited: Dynamic,
        at_root: bool,
    ) -> Walk {
        if let Err(reason) = validate_key(key) {
            self.push_name(key);
            return Err(self.reject(RejectionKind::BadName, reason, None, false));
        }
        if at_root && key.starts_with('_') {
            let first = key.split('.').next().unwrap_or(key);
            if METADATA_FIELDS.contains(&first) {
                self.push_name(first);
                return Err(self.reject(
                    RejectionKind::MetadataField,
                    format!("Field [{first}] is a metadata field and cannot be added inside a document. Use the index API request parameters."),
                    None,
                    false,
                ));
            }
        }
        if !node.subobjects || !key.contains('.') {
            return self.member(node, key, value, inherited);
        }
        let key_base = self.path.len();
        let mut cur = node;
        let mut dynamic = inherited;
        let mut rest = key;
        let mut seg = 0;
        while let Some((part, tail)) = rest.split_once('.') {
            if let Some(StepRef::Key(_, at)) = self.steps.last_mut() {
                *at = seg;
            }
            match self.descend(cur, part, dynamic, (key, key_base))? {
                Some((child, d)) => {
                    cur = child;
                    dynamic = d;
                }
                None => return Ok(()),
            }
            rest = tail;
            seg += 1;
            if !cur.subobjects {
                // The rest of the name is one field name inside this object.
                break;
            }
        }
        if let Some(StepRef::Key(_, at)) = self.steps.last_mut() {
            *at = seg;
        }
        self.member(cur, rest, value, dynamic)
    }

    /// Moves into the object `name` of `node` for a dotted key, creating it when dynamic
    /// mapping allows. `None`: the rest of the key is not mapped (and not checked).
    fn descend<'n>(
        &mut self,
        node: &'n mut ObjectNode,
        name: &str,
        inherited: Dynamic,
        (full_key, key_base): (&str, usize),
    ) -> Result<Option<(&'n mut ObjectNode, Dynamic)>, Box<Rejection>> {
        self.push_name(name);
        if !node.properties.contains_key(name) {
            if self.runtime.contains_key(&self.path) {
                return Ok(None);
            }
            match inherited {
                Dynamic::Strict => return Err(self.strict_rejection()),
                Dynamic::False => return Ok(None),
                Dynamic::True | Dynamic::Runtime => {
                    if !self.create_object(node, name, inherited)? {
                        return Ok(None);
                    }
                }
            }
        }
        match node.properties.get_mut(name) {
            Some(Node::Object(o)) => {
                if !o.enabled {
                    return Ok(None);
                }
                let d = o.dynamic.unwrap_or(inherited);
                Ok(Some((o, d)))
            }
            Some(Node::Field(f)) => {
                if matches!(f.kind, Kind::Opaque) {
                    return Ok(None);
                }
                let full = if key_base == 0 {
                    full_key.to_owned()
                } else {
                    format!("{}.{full_key}", &self.path[..key_base])
                };
                let type_name = f.type_name.clone();
                Err(self.reject(
                    RejectionKind::PrefixIsLeaf,
                    format!("Could not dynamically add mapping for field [{full}]. Existing mapping for [{}] must be of type object but found [{type_name}].", self.path),
                    Some(&type_name),
                    self.was_added(),
                ))
            }
            None => Ok(None),
        }
    }

    fn strict_rejection(&self) -> Box<Rejection> {
        let reason = format!(
            "mapping set to strict, dynamic introduction of [{}] within [{}] is not allowed",
            self.current_name(),
            self.parent_path()
        );
        self.reject(RejectionKind::Strict, reason, None, false)
    }

    /// Counts new fields against the limit. `Ok(false)`: beyond the limit and ignored.
    fn admit(&mut self, count: usize) -> Result<bool, Box<Rejection>> {
        let limit = self.rules.settings.total_fields_limit;
        let total = (self.base_count + self.added + count) as u64;
        if total > limit {
            if self.rules.settings.ignore_dynamic_beyond_limit {
                return Ok(false);
            }
            return Err(self.reject(
                RejectionKind::TotalFields,
                format!("Limit of total fields [{limit}] has been exceeded while adding new fields [{}]", self.added + count),
                None,
                false,
            ));
        }
        if let Some(max) = self.rules.settings.field_name_length_limit {
            let name = self.current_name();
            if name.chars().count() as u64 > max {
                return Err(self.reject(
                    RejectionKind::NameLength,
                    format!("Field name [{name}] is longer than the limit of [{max}] characters"),
                    None,
                    false,
                ));
            }
        }
        self.added += count;
        Ok(true)
    }

    /// Adds a dynamic object `name` (the path already ends with it). `Ok(false)`: ignored.
    fn create_object(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        inherited: Dynamic,
    ) -> Result<bool, Box<Rejection>> {
        let depth = self.depth() as u64 + 1;
        if depth > self.rules.settings.depth_limit {
            return Err(self.reject(
                RejectionKind::Depth,
                format!(
                    "Limit of mapping depth [{}] has been exceeded due to object field [{}]",
                    self.rules.settings.depth_limit, self.path
                ),
                None,
                false,
            ));
        }
        let new = match self.template_for(name, MatchType::Object, inherited) {
            Some(mapping) => parse_template_node(mapping),
            None => Node::Object(ObjectNode::default()),
        };
        if !self.admit(new.field_count())? {
            return Ok(false);
        }
        node.properties.insert(name.to_owned(), new);
        self.undo.push(Undo::Added(self.names()));
        Ok(true)
    }

    fn template_for(
        &self,
        name: &str,
        kind: MatchType,
        dynamic: Dynamic,
    ) -> Option<Map<String, Value>> {
        if !matches!(dynamic, Dynamic::True | Dynamic::Runtime) {
            return None;
        }
        self.rules
            .templates
            .iter()
            .find(|t| t.selects(&self.path, name, kind))
            .map(|t| {
                let mut m = t.mapping_for(name, kind);
                if t.is_runtime() {
                    m.insert("__runtime".into(), json!(true));
                }
                m
            })
    }

    /// A member `name` of `node` with its value.
    fn member(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        value: &'d Value,
        inherited: Dynamic,
    ) -> Walk {
        self.push_name(name);
        if let Some(existing) = node.properties.get_mut(name) {
            return self.value(existing, value, inherited);
        }
        {
            if self.runtime.contains_key(&self.path)
                || self.new_runtime.iter().any(|(p, _)| *p == self.path)
            {
                return Ok(());
            }
            match (inherited, value) {
                (Dynamic::Strict, _) => return Err(self.strict_rejection()),
                (Dynamic::False, _) => return Ok(()),
                (_, Value::Object(_)) => {
                    if !self.create_object(node, name, inherited)? {
                        return Ok(());
                    }
                }
                (Dynamic::True, Value::Array(items)) => {
                    // A template for objects may claim the whole array.
                    if let Some(mapping) = self.template_for(name, MatchType::Object, inherited) {
                        let new = parse_template_node(mapping);
                        if !self.admit(new.field_count())? {
                            return Ok(());
                        }
                        node.properties.insert(name.to_owned(), new);
                        self.undo.push(Undo::Added(self.names()));
                    } else {
                        return self.new_array(node, name, items, inherited, 0);
                    }
                }
                (_, Value::Array(items)) => return self.new_array(node, name, items, inherited, 0),
                (_, Value::Null) => {
                    // A null maps nothing, unless a template for strings selects it.
                    if let Some(mapping) = self.template_for(name, MatchType::String, inherited) {
                        self.add_leaf(node, name, mapping)?;
                    }
                    return Ok(());
                }
                (_, scalar) => {
                    if !self.create_leaf(node, name, scalar, inherited)? {
                        return Ok(());
                    }
                }
            }
        }
        match node.properties.get_mut(name) {
            Some(existing) => self.value(existing, value, inherited),
            None => Ok(()),
        }
    }

    /// The elements of an array for a field that is not mapped yet: the first non-null
    /// element maps it, the rest must fit.
    fn new_array(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        items: &'d [Value],
        inherited: Dynamic,
        first: usize,
    ) -> Walk {
        for (i, item) in items.iter().enumerate().skip(first) {
            self.steps.push(StepRef::Index(i));
            let result = if let Some(existing) = node.properties.get_mut(name) {
                self.value(existing, item, inherited)
            } else {
                match item {
                    Value::Array(inner) => self.new_array(node, name, inner, inherited, 0),
                    Value::Null => Ok(()),
                    Value::Object(_) => match self.create_object(node, name, inherited) {
                        Ok(true) => self.value_of(node, name, item, inherited),
                        Ok(false) => Ok(()),
                        Err(e) => Err(e),
                    },
                    scalar => match self.create_leaf(node, name, scalar, inherited) {
                        Ok(true) => self.value_of(node, name, item, inherited),
                        Ok(false) => Ok(()),
                        Err(e) => Err(e),
                    },
                }
            };
            self.steps.pop();
            result?;
        }
        Ok(())
    }

    /// Checks a value against the mapped node `name` of `node` (the path ends with it).
    fn value_of(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        value: &'d Value,
        inherited: Dynamic,
    ) -> Walk {
        match node.properties.get_mut(name) {
            Some(existing) => self.value(existing, value, inherited),
            None => Ok(()),
        }
    }

    /// Checks a value against a mapped node (the path ends with its name).
    fn value(&mut self, existing: &mut Node, value: &'d Value, inherited: Dynamic) -> Walk {
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                self.steps.push(StepRef::Index(i));
                let result = self.value(existing, item, inherited);
                self.steps.pop();
                result?;
            }
            return Ok(());
        }
        if value.is_null() {
            return Ok(());
        }
        match (existing, value) {
            (Node::Object(o), Value::Object(members)) => {
                if !o.enabled {
                    return Ok(());
                }
                let d = o.dynamic.unwrap_or(inherited);
                self.object_members(o, members, d, false)
            }
            (Node::Object(_), _) => Err(self.reject(
                RejectionKind::LeafForObject,
                format!(
                    "object mapping for [{}] tried to parse field [{}] as object, but found a concrete value",
                    self.path,
                    self.current_name()
                ),
                Some("object"),
                self.was_added(),
            )),
            (Node::Field(f), Value::Object(_)) => match f.kind {
                Kind::Opaque => Ok(()),
                _ => {
                    let type_name = f.type_name.clone();
                    Err(self.reject(
                        RejectionKind::ObjectForLeaf,
                        format!(
                            "failed to parse field [{}] of type [{type_name}] in document. Preview of field's value: '{}'",
                            self.path,
                            preview(value)
                        ),
                        Some(&type_name),
                        self.was_added(),
                    ))
                }
            },
            (Node::Field(f), scalar) => {
                if let Kind::Constant(None) = f.kind {
                    let v = scalar_text(scalar);
                    f.raw.insert("value".into(), json!(v));
                    f.kind = Kind::Constant(Some(v));
                    self.undo.push(Undo::Constant(self.names()));
                    return Ok(());
                }
                match check_scalar(f, scalar, &self.rules.settings) {
                    Ok(()) => Ok(()),
                    Err(bad) => {
                        let type_name = f.type_name.clone();
                        let (kind, reason) = match bad {
                            Bad::Malformed => (
                                RejectionKind::Value,
                                format!(
                                    "failed to parse field [{}] of type [{type_name}] in document. Preview of field's value: '{}'",
                                    self.path,
                                    preview(scalar)
                                ),
                            ),
                            Bad::Immense => (
                                RejectionKind::ImmenseTerm,
                                format!(
                                    "Document contains at least one immense term in field=\"{}\" (whose UTF8 encoding is longer than the max length {MAX_TERM_BYTES}), all of which were skipped.",
                                    self.path
                                ),
                            ),
                            Bad::Alias => (RejectionKind::AliasWrite, format!("Cannot write to a field alias [{}].", self.path)),
                            Bad::Constant(expected) => (
                                RejectionKind::Value,
                                format!(
                                    "[constant_keyword] field [{}] only accepts values that are equal to the value defined in the mappings [{expected}], but got [{}]",
                                    self.path,
                                    scalar_text(scalar)
                                ),
                            ),
                        };
                        Err(self.reject(kind, reason, Some(&type_name), self.was_added()))
                    }
                }
            }
        }
    }

    /// Maps a new leaf for `value` (the path ends with `name`). `Ok(false)`: not mapped.
    fn create_leaf(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        value: &Value,
        dynamic: Dynamic,
    ) -> Result<bool, Box<Rejection>> {
        let (kind, date_format) = detect(self.rules, value);
        let mapping = match self.template_for(name, kind, dynamic) {
            Some(mut mapping) => {
                if let (Some(format), Some("date" | "date_nanos")) =
                    (date_format, mapping.get("type").and_then(Value::as_str))
                {
                    if !mapping.contains_key("format") && format != crate::date::DEFAULT_DATE_FORMAT
                    {
                        mapping.insert("format".into(), json!(format));
                    }
                }
                mapping
            }
            None if dynamic == Dynamic::Runtime => {
                let mut m = Map::new();
                m.insert("type".into(), json!(kind.default_type(true)));
                if let Some(format) = date_format.filter(|f| *f != crate::date::DEFAULT_DATE_FORMAT)
                {
                    m.insert("format".into(), json!(format));
                }
                m.insert("__runtime".into(), json!(true));
                m
            }
            None => {
                let leaf = match kind {
                    MatchType::String => FieldNode::dynamic_text(),
                    MatchType::Date => FieldNode::dynamic_date(
                        date_format.unwrap_or(crate::date::DEFAULT_DATE_FORMAT),
                    ),
                    MatchType::Double => FieldNode::of_type("float"),
                    other => FieldNode::of_type(other.default_type(false)),
                };
                return self.insert_leaf(node, name, Node::Field(leaf));
            }
        };
        self.add_leaf(node, name, mapping)
    }

    fn add_leaf(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        mut mapping: Map<String, Value>,
    ) -> Result<bool, Box<Rejection>> {
        if mapping.remove("__runtime").is_some() {
            if !self.admit(1)? {
                return Ok(false);
            }
            self.new_runtime
                .push((self.path.clone(), Value::Object(mapping)));
            return Ok(false);
        }
        let new = parse_template_node(mapping);
        self.insert_leaf(node, name, new)
    }

    fn insert_leaf(
        &mut self,
        node: &mut ObjectNode,
        name: &str,
        new: Node,
    ) -> Result<bool, Box<Rejection>> {
        if !self.admit(new.field_count())? {
            return Ok(false);
        }
        node.properties.insert(name.to_owned(), new);
        self.undo.push(Undo::Added(self.names()));
        Ok(true)
    }
}

fn parse_template_node(mapping: Map<String, Value>) -> Node {
    let is_object = matches!(
        mapping.get("type").and_then(Value::as_str),
        Some("object" | "nested")
    );
    if is_object {
        match ObjectNode::parse(&mapping, "template") {
            Ok(o) => Node::Object(o),
            Err(_) => Node::Object(ObjectNode::default()),
        }
    } else {
        let fallback = mapping.clone();
        match FieldNode::parse(mapping, "template") {
            Ok(f) => Node::Field(f),
            Err(_) => {
                // A template Elasticsearch would refuse: treat the field as unpredictable.
                let type_name = fallback
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned();
                Node::Field(
                    FieldNode::parse(json_type_only(&type_name), "template")
                        .unwrap_or_else(|_| FieldNode::of_type("keyword")),
                )
            }
        }
    }
}

fn json_type_only(type_name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(type_name));
    m
}

/// The template type of a new value and, for a detected date, its format.
fn detect<'r>(rules: &'r Rules, value: &Value) -> (MatchType, Option<&'r str>) {
    match value {
        Value::String(s) => {
            let long = number::java_long(s).is_some();
            let double = number::java_double(s).is_some();
            if long && rules.numeric_detection {
                (MatchType::Long, None)
            } else if double && rules.numeric_detection {
                (MatchType::Double, None)
            } else if !long && !double && rules.date_detection {
                match rules
                    .dynamic_date_formats
                    .iter()
                    .find(|f| f.surely_parses(s))
                {
                    Some(f) => (MatchType::Date, Some(f.source())),
                    None => (MatchType::String, None),
                }
            } else {
                (MatchType::String, None)
            }
        }
        Value::Number(n) if n.is_f64() => (MatchType::Double, None),
        Value::Number(_) => (MatchType::Long, None),
        Value::Bool(_) => (MatchType::Boolean, None),
        Value::Object(_) => (MatchType::Object, None),
        // Arrays and nulls are never detected themselves; their elements are.
        Value::Array(_) | Value::Null => (MatchType::String, None),
    }
}

/// Why a scalar does not fit a field.
pub(crate) enum Bad {
    Malformed,
    Immense,
    Alias,
    Constant(String),
}

/// Whether a field accepts a scalar (not an object, not an array).
pub(crate) fn check_scalar(f: &FieldNode, v: &Value, settings: &IndexSettings) -> Result<(), Bad> {
    let coerce = f.coerce.unwrap_or(settings.coerce);
    let result = match &f.kind {
        Kind::Text | Kind::Opaque => Ok(()),
        Kind::Alias => Err(Bad::Alias),
        Kind::Keyword => match v {
            Value::String(s) if f.ignore_above.is_some_and(|max| longer_than(s, max)) => Ok(()),
            Value::String(s) if !f.stored_only && s.len() > MAX_TERM_BYTES => Err(Bad::Immense),
            _ => Ok(()),
        },
        Kind::Constant(Some(expected)) => {
            if scalar_text(v) == *expected {
                Ok(())
            } else {
                Err(Bad::Constant(expected.clone()))
            }
        }
        Kind::Constant(None) => Ok(()),
        Kind::Integer => integer_fits(&f.type_name, v, coerce),
        Kind::Float => float_fits(&f.type_name, v, coerce),
        Kind::Boolean => match v {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s.is_empty() || s == "true" || s == "false" => Ok(()),
            _ => Err(Bad::Malformed),
        },
        Kind::Date(format) => {
            let parses = match v {
                Value::String(s) => format.parses(s),
                other => format.parses(&scalar_text(other)),
            };
            if parses {
                Ok(())
            } else {
                Err(Bad::Malformed)
            }
        }
        Kind::Ip => match v {
            Value::String(s) if s.parse::<IpAddr>().is_ok() => Ok(()),
            _ => Err(Bad::Malformed),
        },
        Kind::Binary => match v {
            Value::String(_) => Ok(()),
            _ => Err(Bad::Malformed),
        },
    };
    let ignorable = matches!(
        f.kind,
        Kind::Integer | Kind::Float | Kind::Boolean | Kind::Date(_) | Kind::Ip
    );
    match result {
        Err(Bad::Malformed)
            if ignorable && f.ignore_malformed.unwrap_or(settings.ignore_malformed) => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    for sub in &f.multi_fields {
        check_scalar(sub, v, settings)?;
    }
    Ok(())
}

fn integer_fits(type_name: &str, v: &Value, coerce: bool) -> Result<(), Bad> {
    let (min, max) = number::integer_range(type_name);
    let whole: Option<i128> = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(i128::from(u))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !coerce && f.fract() != 0.0 {
                    None
                } else if f.is_finite() && f.abs() < 1e38 {
                    #[allow(clippy::cast_possible_truncation)]
                    Some(f.trunc() as i128)
                } else {
                    None
                }
            }
        }
        Value::String(s) if coerce && s.is_empty() => return Ok(()),
        Value::String(s) if coerce => number::coerce_integer(s).flatten(),
        _ => None,
    };
    match whole {
        Some(w) if (min..=max).contains(&w) => Ok(()),
        _ => Err(Bad::Malformed),
    }
}

fn float_fits(type_name: &str, v: &Value, coerce: bool) -> Result<(), Bad> {
    let value = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if coerce && s.is_empty() => return Ok(()),
        Value::String(s) if coerce => number::java_double(s),
        _ => None,
    };
    match value {
        Some(f) if number::fits_float_type(type_name, f) => Ok(()),
        _ => Err(Bad::Malformed),
    }
}

/// Whether a string has more than `max` characters (counted only when it might).
fn longer_than(s: &str, max: u64) -> bool {
    s.len() as u64 > max && s.chars().count() as u64 > max
}

/// Checks a key as Elasticsearch checks field names.
fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("field name cannot be an empty string".into());
    }
    if key.starts_with(char::is_whitespace) && key.trim().is_empty() {
        return Err(format!(
            "field name cannot contain only whitespace: ['{key}']"
        ));
    }
    if key.contains('.') {
        if key.bytes().all(|b| b == b'.') {
            return Err("field name cannot contain only dots".into());
        }
        for part in key.split('.') {
            if part.is_empty() {
                return Err(format!(
                    "object field starting or ending with a [.] makes object resolution ambiguous: [{key}]"
                ));
            }
            if part.starts_with(char::is_whitespace) && part.trim().is_empty() {
                return Err(format!(
                    "object field cannot contain only whitespace: ['{key}']"
                ));
            }
        }
    }
    Ok(())
}

/// A value as Elasticsearch previews it in messages: strings bare, the rest as JSON,
/// cut after 20 characters.
fn preview(v: &Value) -> String {
    let text = scalar_text(v);
    let mut out: String = text.chars().take(20).collect();
    if text.chars().count() > 20 {
        out.push_str("...");
    }
    out
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    logtide_event::path::json_type(v)
}
