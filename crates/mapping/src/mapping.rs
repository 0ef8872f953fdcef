//! The mapping tree: what an index has mapped, parsed from Elasticsearch's JSON and
//! rendered back to it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::date::{
    DateFormat, DEFAULT_DATE_FORMAT, DEFAULT_DATE_NANOS_FORMAT, DEFAULT_DYNAMIC_DATE_FORMATS,
};
use crate::template::DynamicTemplate;
use crate::{Error, Result};

/// What an object does with fields it has not mapped yet (`dynamic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    /// Map new fields (the default).
    True,
    /// Keep new fields in `_source` only: accepted, not mapped, not searchable.
    False,
    /// Reject documents with new fields.
    Strict,
    /// Map new leaves as runtime fields (not indexed, never rejected); objects as objects.
    Runtime,
}

impl Dynamic {
    fn parse(v: &Value, at: &str) -> Result<Dynamic> {
        match v {
            Value::Bool(true) => Ok(Dynamic::True),
            Value::Bool(false) => Ok(Dynamic::False),
            Value::String(s) => match s.as_str() {
                "true" => Ok(Dynamic::True),
                "false" => Ok(Dynamic::False),
                "strict" => Ok(Dynamic::Strict),
                "runtime" => Ok(Dynamic::Runtime),
                _ => Err(Error::mapping(at, format!("unknown dynamic value {s:?}"))),
            },
            _ => Err(Error::mapping(
                at,
                "dynamic must be true, false, \"strict\" or \"runtime\"",
            )),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Dynamic::True => json!("true"),
            Dynamic::False => json!("false"),
            Dynamic::Strict => json!("strict"),
            Dynamic::Runtime => json!("runtime"),
        }
    }
}

/// The kinds of leaf field the model tells apart.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `text`, `match_only_text`, `keyword`, `wildcard`, `version`…: any scalar.
    Text,
    /// `keyword` family with term length limits (immense terms are rejected).
    Keyword,
    /// `constant_keyword`: only its one value (set by the first document if absent).
    Constant(Option<String>),
    /// Integer types: `long`, `integer`, `short`, `byte`, `unsigned_long`.
    Integer,
    /// `double`, `float`, `half_float`, `scaled_float`.
    Float,
    Boolean,
    /// `date` and `date_nanos`, with their format.
    Date(DateFormat),
    Ip,
    Binary,
    /// A field alias: documents may not write to it.
    Alias,
    /// `flattened`, `flat_object`, `geo_point`, `object` with `enabled: false`
    /// reached through a template, and every type this model does not know: accepts
    /// anything (the model cannot predict a rejection for it).
    Opaque,
}

/// One leaf field mapping.
#[derive(Clone, Debug)]
pub(crate) struct FieldNode {
    pub(crate) kind: Kind,
    /// The type as Elasticsearch names it (`long`, `text`, …).
    pub(crate) type_name: String,
    pub(crate) coerce: Option<bool>,
    pub(crate) ignore_malformed: Option<bool>,
    pub(crate) ignore_above: Option<u64>,
    /// `index: false` and `doc_values: false`: nothing is indexed, so no term limit.
    pub(crate) stored_only: bool,
    pub(crate) multi_fields: Vec<FieldNode>,
    /// The mapping as Elasticsearch shows it.
    pub(crate) raw: Map<String, Value>,
}

/// One object mapping (the root is one too).
#[derive(Clone, Debug)]
pub(crate) struct ObjectNode {
    pub(crate) dynamic: Option<Dynamic>,
    pub(crate) enabled: bool,
    pub(crate) subobjects: bool,
    pub(crate) nested: bool,
    pub(crate) properties: BTreeMap<String, Node>,
    /// Parameters other than `properties`, as Elasticsearch shows them.
    pub(crate) raw: Map<String, Value>,
}

impl Default for ObjectNode {
    fn default() -> Self {
        ObjectNode {
            dynamic: None,
            enabled: true,
            subobjects: true,
            nested: false,
            properties: BTreeMap::new(),
            raw: Map::new(),
        }
    }
}

/// A mapped name: an object or a leaf.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Object(ObjectNode),
    Field(FieldNode),
}

impl Node {
    /// How many fields this node counts for `index.mapping.total_fields.limit`.
    pub(crate) fn field_count(&self) -> usize {
        match self {
            Node::Object(o) => 1 + o.properties.values().map(Node::field_count).sum::<usize>(),
            Node::Field(f) => f.field_count(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Node::Object(o) => o.to_json(),
            Node::Field(f) => Value::Object(f.raw.clone()),
        }
    }
}

impl FieldNode {
    pub(crate) fn field_count(&self) -> usize {
        1 + self
            .multi_fields
            .iter()
            .map(FieldNode::field_count)
            .sum::<usize>()
    }

    /// The dynamic mapping of a string: `text` with a `keyword` sub-field (ignore_above 256).
    pub(crate) fn dynamic_text() -> FieldNode {
        let raw = json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}});
        FieldNode::from_raw(raw).unwrap_or_else(|_| FieldNode::opaque("text"))
    }

    /// A plain leaf of one type (`long`, `float`, `boolean`, `keyword`…).
    pub(crate) fn of_type(type_name: &str) -> FieldNode {
        FieldNode::from_raw(json!({"type": type_name}))
            .unwrap_or_else(|_| FieldNode::opaque(type_name))
    }

    /// A date leaf; the format is written only when it is not the default.
    pub(crate) fn dynamic_date(format: &str) -> FieldNode {
        let raw = if format == DEFAULT_DATE_FORMAT {
            json!({"type": "date"})
        } else {
            json!({"type": "date", "format": format})
        };
        FieldNode::from_raw(raw).unwrap_or_else(|_| FieldNode::opaque("date"))
    }

    fn opaque(type_name: &str) -> FieldNode {
        let mut raw = Map::new();
        raw.insert("type".into(), json!(type_name));
        FieldNode {
            kind: Kind::Opaque,
            type_name: type_name.to_owned(),
            coerce: None,
            ignore_malformed: None,
            ignore_above: None,
            stored_only: false,
            multi_fields: Vec::new(),
            raw,
        }
    }

    fn from_raw(raw: Value) -> Result<FieldNode> {
        match raw {
            Value::Object(m) => FieldNode::parse(m, "field"),
            _ => Err(Error::mapping("field", "a field mapping must be an object")),
        }
    }

    /// Parses a leaf mapping (`{"type": "long", …}`).
    pub(crate) fn parse(raw: Map<String, Value>, at: &str) -> Result<FieldNode> {
        let type_name = match raw.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => {
                return Err(Error::mapping(
                    format!("{at}.type"),
                    "type must be a string",
                ))
            }
            None => return Err(Error::mapping(at, "a field mapping needs a type")),
        };
        let bool_param = |key: &str| -> Result<Option<bool>> {
            match raw.get(key) {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
                Some(_) => Err(Error::mapping(format!("{at}.{key}"), "must be a boolean")),
            }
        };
        let coerce = bool_param("coerce")?;
        let ignore_malformed = bool_param("ignore_malformed")?;
        let stored_only =
            bool_param("index")? == Some(false) && bool_param("doc_values")? == Some(false);
        let ignore_above = match raw.get("ignore_above") {
            None => None,
            Some(v) => Some(as_u64(v).ok_or_else(|| {
                Error::mapping(
                    format!("{at}.ignore_above"),
                    "must be a non-negative integer",
                )
            })?),
        };
        let format = match raw.get("format") {
            None => None,
            Some(Value::String(f)) => Some(f.clone()),
            Some(_) => return Err(Error::mapping(format!("{at}.format"), "must be a string")),
        };
        let kind = match type_name.as_str() {
            "text" | "match_only_text" | "search_as_you_type" | "annotated_text" | "wildcard"
            | "version" | "completion" | "token_count_source" => Kind::Text,
            "keyword" => Kind::Keyword,
            "constant_keyword" => Kind::Constant(raw.get("value").map(scalar_text)),
            "long" | "integer" | "short" | "byte" | "unsigned_long" => Kind::Integer,
            "double" | "float" | "half_float" | "scaled_float" => Kind::Float,
            "boolean" => Kind::Boolean,
            "date" => Kind::Date(DateFormat::new(
                format.as_deref().unwrap_or(DEFAULT_DATE_FORMAT),
            )),
            "date_nanos" => Kind::Date(DateFormat::new(
                format.as_deref().unwrap_or(DEFAULT_DATE_NANOS_FORMAT),
            )),
            "ip" => Kind::Ip,
            "binary" => Kind::Binary,
            "alias" => Kind::Alias,
            _ => Kind::Opaque,
        };
        let mut multi_fields = Vec::new();
        if let Some(fields) = raw.get("fields") {
            let Value::Object(fields) = fields else {
                return Err(Error::mapping(format!("{at}.fields"), "must be an object"));
            };
            for (name, sub) in fields {
                let sub_at = format!("{at}.fields.{name}");
                let Value::Object(sub) = sub else {
                    return Err(Error::mapping(sub_at, "a field mapping must be an object"));
                };
                multi_fields.push(FieldNode::parse(sub.clone(), &sub_at)?);
            }
        }
        Ok(FieldNode {
            kind,
            type_name,
            coerce,
            ignore_malformed,
            ignore_above,
            stored_only,
            multi_fields,
            raw,
        })
    }
}

impl ObjectNode {
    pub(crate) fn to_json(&self) -> Value {
        let mut out = self.raw.clone();
        if !self.properties.is_empty() {
            let props: Map<String, Value> = self
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            out.insert("properties".into(), Value::Object(props));
        } else if !out.contains_key("type") {
            out.insert("type".into(), json!("object"));
        }
        Value::Object(out)
    }

    /// Parses an object mapping (`{"properties": …, "dynamic": …}`).
    pub(crate) fn parse(raw: &Map<String, Value>, at: &str) -> Result<ObjectNode> {
        let mut node = ObjectNode::default();
        for (key, value) in raw {
            let key_at = format!("{at}.{key}");
            match key.as_str() {
                "properties" => {
                    let Value::Object(props) = value else {
                        return Err(Error::mapping(key_at, "must be an object"));
                    };
                    for (name, child) in props {
                        let child_at = format!("{key_at}.{name}");
                        node.properties
                            .insert(name.clone(), parse_node(child, &child_at)?);
                    }
                }
                "dynamic" => {
                    node.dynamic = Some(Dynamic::parse(value, &key_at)?);
                    node.raw.insert(key.clone(), value.clone());
                }
                "enabled" => {
                    node.enabled =
                        !matches!(value, Value::Bool(false)) && value.as_str() != Some("false");
                    node.raw.insert(key.clone(), value.clone());
                }
                "subobjects" => {
                    node.subobjects =
                        !matches!(value, Value::Bool(false)) && value.as_str() != Some("false");
                    node.raw.insert(key.clone(), value.clone());
                }
                "type" => {
                    node.nested = value.as_str() == Some("nested");
                    node.raw.insert(key.clone(), value.clone());
                }
                _ => {
                    node.raw.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(node)
    }

    /// The node at a dotted path below this object (`a.b.c`).
    pub(crate) fn find(&self, path: &str) -> Option<&Node> {
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        // An object without subobjects holds dotted names as they are.
        if !self.subobjects {
            return self.properties.get(path);
        }
        let node = self.properties.get(head)?;
        match (node, rest) {
            (_, None) => Some(node),
            (Node::Object(o), Some(rest)) => o.find(rest),
            // Multi-fields are shown under their parent, not as paths of their own.
            (Node::Field(_), Some(_)) => None,
        }
    }
}

fn parse_node(v: &Value, at: &str) -> Result<Node> {
    let Value::Object(m) = v else {
        return Err(Error::mapping(at, "a mapping must be an object"));
    };
    let is_object = match m.get("type") {
        None => true,
        Some(Value::String(t)) => t == "object" || t == "nested",
        Some(_) => {
            return Err(Error::mapping(
                format!("{at}.type"),
                "type must be a string",
            ))
        }
    };
    if is_object {
        Ok(Node::Object(ObjectNode::parse(m, at)?))
    } else {
        Ok(Node::Field(FieldNode::parse(m.clone(), at)?))
    }
}

/// The text of a scalar as Elasticsearch indexes it into a keyword.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Index settings that decide what the mapping accepts.
///
/// Defaults are Elasticsearch's: 1000 total fields, depth 20, no name length limit,
/// coercion on, malformed values rejected, fields beyond the limit rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSettings {
    /// `index.mapping.total_fields.limit` (default 1000).
    pub total_fields_limit: u64,
    /// `index.mapping.total_fields.ignore_dynamic_beyond_limit` (default false).
    pub ignore_dynamic_beyond_limit: bool,
    /// `index.mapping.depth.limit` (default 20).
    pub depth_limit: u64,
    /// `index.mapping.field_name_length.limit` (default none).
    pub field_name_length_limit: Option<u64>,
    /// `index.mapping.coerce` (default true).
    pub coerce: bool,
    /// `index.mapping.ignore_malformed` (default false).
    pub ignore_malformed: bool,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings {
            total_fields_limit: 1000,
            ignore_dynamic_beyond_limit: false,
            depth_limit: 20,
            field_name_length_limit: None,
            coerce: true,
            ignore_malformed: false,
        }
    }
}

impl IndexSettings {
    /// Reads the settings that matter to the model from index settings JSON in any of
    /// the forms Elasticsearch uses: a `GET <index>/_settings` response
    /// (`{"<index>": {"settings": …}}`), `{"settings": …}`, nested
    /// (`{"index": {"mapping": {"total_fields": {"limit": "2000"}}}}`) or flat keys
    /// (`{"index.mapping.total_fields.limit": 2000}`); values may be strings. Settings
    /// this model does not use are ignored.
    pub fn from_json(settings: &Value) -> Result<IndexSettings> {
        let mut flat = BTreeMap::new();
        let root = unwrap_settings(settings);
        flatten("", root, &mut flat);
        let mut out = IndexSettings::default();
        for (key, value) in &flat {
            let key = key.strip_prefix("index.").unwrap_or(key);
            let bad = |what: &str| {
                Error::mapping(format!("settings.index.{key}"), format!("must be {what}"))
            };
            match key {
                "mapping.total_fields.limit" => {
                    out.total_fields_limit =
                        as_u64(value).ok_or_else(|| bad("a non-negative integer"))?;
                }
                "mapping.total_fields.ignore_dynamic_beyond_limit" => {
                    out.ignore_dynamic_beyond_limit =
                        as_bool(value).ok_or_else(|| bad("a boolean"))?;
                }
                "mapping.depth.limit" => {
                    out.depth_limit = as_u64(value).ok_or_else(|| bad("a non-negative integer"))?;
                }
                "mapping.field_name_length.limit" => {
                    out.field_name_length_limit =
                        Some(as_u64(value).ok_or_else(|| bad("a non-negative integer"))?);
                }
                "mapping.coerce" => out.coerce = as_bool(value).ok_or_else(|| bad("a boolean"))?,
                "mapping.ignore_malformed" => {
                    out.ignore_malformed = as_bool(value).ok_or_else(|| bad("a boolean"))?;
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn unwrap_settings(v: &Value) -> &Value {
    let Value::Object(m) = v else { return v };
    if let Some(s) = m.get("settings") {
        return s;
    }
    // A `GET _settings` response: one entry per index, each with `settings`.
    if m.len() == 1 {
        if let Some(Value::Object(inner)) = m.values().next() {
            if let Some(s) = inner.get("settings") {
                return s;
            }
        }
    }
    v
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Root-level parameters: detection, templates, settings.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) date_detection: bool,
    pub(crate) numeric_detection: bool,
    pub(crate) dynamic_date_formats: Vec<DateFormat>,
    /// Whether `dynamic_date_formats` was given (it is then shown in the mapping).
    pub(crate) custom_date_formats: bool,
    pub(crate) templates: Vec<DynamicTemplate>,
    pub(crate) settings: IndexSettings,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            date_detection: true,
            numeric_detection: false,
            dynamic_date_formats: DEFAULT_DYNAMIC_DATE_FORMATS
                .iter()
                .map(|f| DateFormat::new(f))
                .collect(),
            custom_date_formats: false,
            templates: Vec::new(),
            settings: IndexSettings::default(),
        }
    }
}

/// The mapping of one index as the model knows it: what Elasticsearch reported plus what
/// the documents let through since then added.
///
/// Build it from Elasticsearch's JSON ([`IndexMapping::from_get_mapping`],
/// [`IndexMapping::from_mappings`], [`IndexMapping::from_index_template`]) or start from an
/// empty index ([`IndexMapping::default`]); then [`check`](IndexMapping::check) documents
/// against it.
#[derive(Clone, Debug, Default)]
pub struct IndexMapping {
    pub(crate) root: ObjectNode,
    /// Runtime fields by full path.
    pub(crate) runtime: BTreeMap<String, Value>,
    pub(crate) rules: Rules,
    pub(crate) field_count: usize,
    /// Buffers the walk reuses (the dotted path and where its names are).
    pub(crate) scratch: (String, Vec<(usize, usize)>),
}

impl IndexMapping {
    /// An index with no mappings yet and the given settings.
    pub fn with_settings(settings: IndexSettings) -> IndexMapping {
        let mut m = IndexMapping::default();
        m.rules.settings = settings;
        m
    }

    /// Parses a `mappings` object (`{"properties": …, "dynamic_templates": …}`), as given
    /// when creating an index or as found inside a `_mapping` response. A legacy mapping
    /// type level (`{"_doc": {"properties": …}}`) is unwrapped.
    pub fn from_mappings(mappings: &Value) -> Result<IndexMapping> {
        Self::from_mappings_and_settings(mappings, IndexSettings::default())
    }

    /// Like [`from_mappings`](IndexMapping::from_mappings), with index settings.
    pub fn from_mappings_and_settings(
        mappings: &Value,
        settings: IndexSettings,
    ) -> Result<IndexMapping> {
        let Value::Object(m) = mappings else {
            return Err(Error::mapping("mappings", "must be an object"));
        };
        let m = match (m.len(), m.iter().next()) {
            (1, Some((k, Value::Object(inner))))
                if !ROOT_KEYS.contains(&k.as_str()) && inner.contains_key("properties") =>
            {
                inner
            }
            _ => m,
        };
        let mut rules = Rules {
            settings,
            ..Rules::default()
        };
        let mut root_raw = Map::new();
        let mut runtime = BTreeMap::new();
        for (key, value) in m {
            let at = format!("mappings.{key}");
            match key.as_str() {
                "date_detection" => {
                    rules.date_detection =
                        as_bool(value).ok_or_else(|| Error::mapping(&at, "must be a boolean"))?;
                }
                "numeric_detection" => {
                    rules.numeric_detection =
                        as_bool(value).ok_or_else(|| Error::mapping(&at, "must be a boolean"))?;
                }
                "dynamic_date_formats" => {
                    let formats = match value {
                        Value::Array(a) => a
                            .iter()
                            .map(|f| f.as_str().map(DateFormat::new))
                            .collect::<Option<Vec<_>>>(),
                        Value::String(s) => Some(vec![DateFormat::new(s)]),
                        _ => None,
                    };
                    rules.dynamic_date_formats =
                        formats.ok_or_else(|| Error::mapping(&at, "must be a list of formats"))?;
                    rules.custom_date_formats = true;
                }
                "dynamic_templates" => {
                    let Value::Array(list) = value else {
                        return Err(Error::mapping(at, "must be a list"));
                    };
                    for (i, t) in list.iter().enumerate() {
                        rules
                            .templates
                            .push(DynamicTemplate::parse(t, &format!("{at}[{i}]"))?);
                    }
                }
                "runtime" => {
                    let Value::Object(fields) = value else {
                        return Err(Error::mapping(at, "must be an object"));
                    };
                    runtime = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
                _ => {
                    root_raw.insert(key.clone(), value.clone());
                }
            }
        }
        let root = ObjectNode::parse(&root_raw, "mappings")?;
        let field_count = root
            .properties
            .values()
            .map(Node::field_count)
            .sum::<usize>()
            + runtime.len();
        Ok(IndexMapping {
            root,
            runtime,
            rules,
            field_count,
            scratch: Default::default(),
        })
    }

    /// Parses a `GET <index>/_mapping` response body (`{"<index>": {"mappings": …}}`).
    /// With `index` given, that index is taken; otherwise the response must hold one.
    pub fn from_get_mapping(response: &Value, index: Option<&str>) -> Result<IndexMapping> {
        let Value::Object(indices) = response else {
            return Err(Error::mapping(
                "response",
                "a _mapping response must be an object",
            ));
        };
        let (name, body) = match index {
            Some(name) => (
                name,
                indices.get(name).ok_or_else(|| {
                    Error::mapping("response", format!("no index {name:?} in the response"))
                })?,
            ),
            None => {
                let mut it = indices.iter();
                match (it.next(), it.next()) {
                    (Some((name, body)), None) => (name.as_str(), body),
                    (None, _) => {
                        return Err(Error::mapping("response", "the response holds no index"))
                    }
                    _ => {
                        return Err(Error::mapping(
                            "response",
                            "the response holds several indices; name the one to use",
                        ))
                    }
                }
            }
        };
        let mappings = body
            .get("mappings")
            .ok_or_else(|| Error::mapping(format!("response.{name}"), "no mappings"))?;
        let settings = match body.get("settings") {
            Some(s) => IndexSettings::from_json(s)?,
            None => IndexSettings::default(),
        };
        Self::from_mappings_and_settings(mappings, settings)
    }

    /// Parses an index creation body or a composable index template
    /// (`{"settings": …, "mappings": …}`, or that inside `template`), which is what a new
    /// index created from the template starts with.
    pub fn from_index_template(body: &Value) -> Result<IndexMapping> {
        let inner = body.get("template").unwrap_or(body);
        let settings = match inner.get("settings") {
            Some(s) => IndexSettings::from_json(&json!({ "settings": s }))?,
            None => IndexSettings::default(),
        };
        match inner.get("mappings") {
            Some(m) => Self::from_mappings_and_settings(m, settings),
            None => Ok(Self::with_settings(settings)),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &IndexSettings {
        &self.rules.settings
    }

    /// Replaces the settings (after a `GET <index>/_settings`).
    pub fn set_settings(&mut self, settings: IndexSettings) {
        self.rules.settings = settings;
    }

    /// How many fields count toward `index.mapping.total_fields.limit`: objects, leaves,
    /// multi-fields and runtime fields.
    pub fn field_count(&self) -> usize {
        self.field_count
    }

    /// The mapping of one dotted path as `GET _mapping` would show it (`{"type": "long"}`),
    /// or `None` when the path is not mapped.
    pub fn field(&self, path: &str) -> Option<Value> {
        if let Some(rt) = self.runtime.get(path) {
            return Some(rt.clone());
        }
        self.root.find(path).map(Node::to_json)
    }

    /// The whole `mappings` object as Elasticsearch would return it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if !self.rules.date_detection {
            out.insert("date_detection".into(), json!(false));
        }
        if self.rules.numeric_detection {
            out.insert("numeric_detection".into(), json!(true));
        }
        if self.rules.custom_date_formats {
            let formats: Vec<Value> = self
                .rules
                .dynamic_date_formats
                .iter()
                .map(|f| json!(f.source()))
                .collect();
            out.insert("dynamic_date_formats".into(), Value::Array(formats));
        }
        if !self.rules.templates.is_empty() {
            let t: Vec<Value> = self
                .rules
                .templates
                .iter()
                .map(DynamicTemplate::to_json)
                .collect();
            out.insert("dynamic_templates".into(), Value::Array(t));
        }
        if let Some(d) = self.root.dynamic {
            out.insert("dynamic".into(), d.to_json());
        }
        for (k, v) in &self.root.raw {
            if k != "dynamic" {
                out.insert(k.clone(), v.clone());
            }
        }
        if !self.runtime.is_empty() {
            let rt: Map<String, Value> = self
                .runtime
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert("runtime".into(), Value::Object(rt));
        }
        let props: Map<String, Value> = self
            .root
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        out.insert("properties".into(), Value::Object(props));
        Value::Object(out)
    }
}

/// Keys of a root mapping; anything else alone at the top is a legacy type name.
const ROOT_KEYS: &[&str] = &[
    "properties",
    "dynamic",
    "dynamic_templates",
    "date_detection",
    "numeric_detection",
    "dynamic_date_formats",
    "runtime",
    "_source",
    "_meta",
    "_routing",
    "enabled",
    "subobjects",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_mapping_response_and_renders_it_back() {
        let response = json!({"logs-2024.01.02": {"mappings": {
            "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
            "properties": {
                "@timestamp": {"type": "date"},
                "message-json": {"properties": {
                    "id": {"type": "long"},
                    "msg": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
                }},
                "tags": {"type": "keyword"}
            }
        }}});
        let m = IndexMapping::from_get_mapping(&response, None).unwrap();
        assert_eq!(m.field("message-json.id"), Some(json!({"type": "long"})));
        assert_eq!(m.field("message-json.nope"), None);
        assert_eq!(
            m.field("message-json.msg"),
            Some(
                json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
            )
        );
        assert_eq!(m.field("message-json.msg.keyword"), None);
        // @timestamp, message-json, id, msg + keyword, tags.
        assert_eq!(m.field_count(), 6);
        let rendered = m.to_json();
        assert_eq!(
            rendered["properties"]["message-json"]["properties"]["id"],
            json!({"type": "long"})
        );
        assert_eq!(
            rendered["dynamic_templates"][0]["strings"]["mapping"],
            json!({"type": "keyword"})
        );
        assert!(IndexMapping::from_get_mapping(&response, Some("other")).is_err());
    }

    #[test]
    fn legacy_type_level_is_unwrapped() {
        let m = IndexMapping::from_mappings(
            &json!({"_doc": {"properties": {"a": {"type": "keyword"}}}}),
        )
        .unwrap();
        assert_eq!(m.field("a"), Some(json!({"type": "keyword"})));
    }

    #[test]
    fn settings_in_every_form() {
        let forms = [
            json!({"idx": {"settings": {"index": {"mapping": {"total_fields": {"limit": "2000"}, "coerce": "false"}}}}}),
            json!({"settings": {"index.mapping.total_fields.limit": 2000, "index.mapping.coerce": false}}),
            json!({"index": {"mapping.total_fields.limit": "2000", "mapping.coerce": false}}),
        ];
        for f in forms {
            let s = IndexSettings::from_json(&f).unwrap();
            assert_eq!(s.total_fields_limit, 2000, "{f}");
            assert!(!s.coerce, "{f}");
            assert_eq!(s.depth_limit, 20);
        }
        let err =
            IndexSettings::from_json(&json!({"index.mapping.depth.limit": "deep"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping JSON at settings.index.mapping.depth.limit: must be a non-negative integer"
        );
    }

    #[test]
    fn bad_mappings_name_the_place() {
        let err =
            IndexMapping::from_mappings(&json!({"properties": {"a": {"type": 5}}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping JSON at mappings.properties.a.type: type must be a string"
        );
        let err = IndexMapping::from_mappings(&json!({"dynamic": "sometimes"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping JSON at mappings.dynamic: unknown dynamic value \"sometimes\""
        );
    }
}
