//! The normalizer: changes what the model predicts Elasticsearch would reject, by policy,
//! until the document is accepted, and records every change.

use std::collections::{BTreeMap, HashMap};

use logtide_event::{path, Event};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::{MappingConfig, Policy};
use crate::model::{json_kind, Rejection, RejectionKind, Step};
use crate::number;
use crate::pattern::Pattern;
use crate::IndexMapping;

/// What was done to one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Converted to the mapped type without loss.
    Coerce,
    /// Moved to a sibling field named by its type.
    Rename,
    /// Moved, as JSON text, under the conflicts field.
    Quarantine,
    /// Turned into a string by the stringify policy.
    Stringify,
    /// Removed; its JSON text is kept in the change record (`value`). The last resort,
    /// used only when nothing else is accepted.
    Drop,
}

impl Action {
    /// The action's name as records and counters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Coerce => "coerce",
            Action::Rename => "rename",
            Action::Quarantine => "quarantine",
            Action::Stringify => "stringify",
            Action::Drop => "drop",
        }
    }
}

/// One change made to a document, as recorded in it (`event.mapping_conflicts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The field's dotted path before the change.
    pub field: String,
    /// What was done.
    pub action: Action,
    /// Why: Elasticsearch's rejection reason as the model predicts it, or the stringify
    /// rule.
    pub reason: String,
    /// Where the value went (rename, quarantine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The removed value as JSON text (drop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What normalizing one document did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every change, in the order made.
    pub changes: Vec<Change>,
    /// Whether the changes were recorded in the document (they are not when the mapping
    /// would reject the record field itself; the changes are still counted).
    pub recorded: bool,
    /// A rejection the normalizer cannot resolve (the document is not an object, or an
    /// event's `@timestamp` conflicts with the mapping). The document is left as it was
    /// and nothing is learned; the sink should dead-letter it.
    pub unresolved: Option<Rejection>,
}

impl Outcome {
    /// Whether the document was changed.
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether every original value is still in the document: in place, moved, or in a
    /// written change record.
    pub fn is_lossless(&self) -> bool {
        self.unresolved.is_none()
            && (self.recorded || !self.changes.iter().any(|c| c.action == Action::Drop))
    }
}

/// The order in which a policy tries actions; `Drop` always ends it.
fn chain(policy: Policy) -> &'static [Action] {
    match policy {
        Policy::Coerce => &[Action::Coerce, Action::Quarantine, Action::Drop],
        Policy::Rename => &[Action::Rename, Action::Quarantine, Action::Drop],
        Policy::Stringify => &[Action::Stringify, Action::Quarantine, Action::Drop],
        Policy::Quarantine => &[Action::Quarantine, Action::Drop],
    }
}

/// Resolves mapping conflicts in documents by policy (built from [`MappingConfig`]).
///
/// The normalizer holds only configuration and can be shared; the mapping state lives in
/// the [`IndexMapping`] passed to each call (one per index).
#[derive(Clone, Debug)]
pub struct Normalizer {
    config: MappingConfig,
    rules: Vec<(Vec<Pattern>, Policy)>,
    stringify: bool,
}

struct Session {
    changes: Vec<Change>,
    /// Quarantined values by key inside the conflicts object.
    quarantined: BTreeMap<String, Vec<Value>>,
    /// How far along its policy's chain each location is.
    attempts: HashMap<String, usize>,
    quarantine_broken: bool,
}

impl Normalizer {
    pub(crate) fn new(config: MappingConfig, rules: Vec<(Vec<Pattern>, Policy)>) -> Normalizer {
        let stringify = config.default == Policy::Stringify
            || rules.iter().any(|(_, p)| *p == Policy::Stringify);
        Normalizer {
            config,
            rules,
            stringify,
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &MappingConfig {
        &self.config
    }

    /// The policy for a dotted path: the first rule that matches, else the default.
    pub fn policy_for(&self, field: &str) -> Policy {
        self.rules
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(field)))
            .map_or(self.config.default, |(_, policy)| *policy)
    }

    pub(crate) fn rules(&self) -> &[(Vec<Pattern>, Policy)] {
        &self.rules
    }

    /// Normalizes a plain JSON document in place against `mapping`, which then learns the
    /// fields the (normalized) document adds.
    pub fn normalize_value(&self, mapping: &mut IndexMapping, doc: &mut Value) -> Outcome {
        match doc {
            Value::Object(fields) => self.normalize_fields(mapping, None, fields),
            other => Outcome {
                unresolved: mapping.predict(other).rejection().cloned(),
                ..Outcome::default()
            },
        }
    }

    /// Normalizes an event in place (its `@timestamp` is checked as Elasticsearch will
    /// receive it; `@metadata` is not sent and not checked).
    pub fn normalize_event(&self, mapping: &mut IndexMapping, event: &mut Event) -> Outcome {
        let mut ts = Vec::with_capacity(32);
        event.timestamp().write_rfc3339(&mut ts);
        let ts = Value::String(String::from_utf8_lossy(&ts).into_owned());
        self.normalize_fields(mapping, Some(&ts), event.fields_mut())
    }

    fn normalize_fields(
        &self,
        mapping: &mut IndexMapping,
        ts: Option<&Value>,
        fields: &mut Map<String, Value>,
    ) -> Outcome {
        let mut session = Session {
            changes: Vec::new(),
            quarantined: BTreeMap::new(),
            attempts: HashMap::new(),
            quarantine_broken: false,
        };
        if self.stringify {
            let mut path = String::new();
            self.stringify_members(fields, &mut path, &mut session.changes);
        }
        // The common case: accepted as it is, learned in the same walk.
        if session.changes.is_empty() && mapping.walk(ts, fields, true).is_ok() {
            return Outcome {
                recorded: true,
                ..Outcome::default()
            };
        }
        let budget = 16 + 4 * count_nodes(fields, 0);
        let mut rounds = 0;
        while let Err(rejection) = mapping.walk(ts, fields, false) {
            let synthetic = ts.is_some()
                && matches!(rejection.steps.first(), Some(Step::Key { key, .. }) if key == crate::TIMESTAMP_FIELD);
            if synthetic || !self.resolve(fields, &rejection, &mut session, rounds >= budget) {
                return Outcome {
                    changes: session.changes,
                    recorded: false,
                    unresolved: Some(*rejection),
                };
            }
            rounds += 1;
        }
        let mut recorded = true;
        if !session.changes.is_empty() {
            self.write_records(fields, &session);
            if mapping.walk(ts, fields, true).is_ok() {
                return Outcome {
                    changes: session.changes,
                    recorded,
                    unresolved: None,
                };
            }
            self.remove_records(fields, &session);
            recorded = false;
        }
        let learned = mapping.walk(ts, fields, true);
        Outcome {
            changes: session.changes,
            recorded,
            unresolved: learned.err().map(|r| *r),
        }
    }

    fn is_own_field(&self, path: &str) -> bool {
        [
            &self.config.conflicts_field,
            &self.config.record_field,
            &self.config.quarantine_flag,
        ]
        .iter()
        .any(|own| {
            path == own.as_str()
                || (path.starts_with(own.as_str()) && path.as_bytes().get(own.len()) == Some(&b'.'))
        })
    }

    fn stringify_members(
        &self,
        map: &mut Map<String, Value>,
        path: &mut String,
        changes: &mut Vec<Change>,
    ) {
        for (key, value) in map.iter_mut() {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            if !self.is_own_field(path) {
                self.stringify_value(value, path, changes);
            }
            path.truncate(len);
        }
    }

    fn stringify_value(&self, value: &mut Value, path: &mut String, changes: &mut Vec<Change>) {
        match value {
            Value::Object(m) => self.stringify_members(m, path, changes),
            Value::Array(items) => {
                let before = changes.len();
                for item in items.iter_mut() {
                    self.stringify_value(item, path, changes);
                }
                // One change per field, however many elements changed.
                if changes.len() > before + 1 {
                    changes.truncate(before + 1);
                }
            }
            Value::Null | Value::String(_) => {}
            scalar @ (Value::Bool(_) | Value::Number(_)) => {
                if self.policy_for(path) == Policy::Stringify {
                    let kind = json_kind(scalar);
                    *scalar = Value::String(scalar.to_string());
                    changes.push(Change {
                        field: path.clone(),
                        action: Action::Stringify,
                        reason: format!("stringify policy: a {kind} became a string"),
                        to: None,
                        value: None,
                    });
                }
            }
        }
    }

    /// Applies the next action of the policy chain to the rejected field. `false`: the
    /// rejection cannot be resolved by changing the document.
    fn resolve(
        &self,
        root: &mut Map<String, Value>,
        rejection: &Rejection,
        s: &mut Session,
        force_drop: bool,
    ) -> bool {
        let Some(key_at) = rejection
            .steps
            .iter()
            .rposition(|st| matches!(st, Step::Key { .. }))
        else {
            return false;
        };
        let (unit_steps, element_steps) = rejection.steps.split_at(key_at + 1);
        let Some(Step::Key { key, seg }) = unit_steps.last() else {
            return false;
        };
        let unit = Unit {
            parent_steps: &unit_steps[..key_at],
            key,
            seg: *seg,
            element_steps,
            path: dotted(unit_steps),
            location: location(unit_steps),
        };
        if self.is_own_field(&unit.path) && self.touches_conflicts(&unit.path) {
            s.quarantine_broken = true;
            return self.unquarantine(root, &unit, rejection, s);
        }
        let policy = self.policy_for(&rejection.field);
        let start = s.attempts.get(&unit.location).copied().unwrap_or(0);
        for (i, action) in chain(policy).iter().enumerate().skip(start) {
            let action = if force_drop { Action::Drop } else { *action };
            let done = match action {
                Action::Coerce => self.coerce(root, &unit, rejection, s, false),
                Action::Stringify => self.coerce(root, &unit, rejection, s, true),
                Action::Rename => self.rename(root, &unit, rejection, s, i + 1),
                Action::Quarantine => self.quarantine(root, &unit, rejection, s),
                Action::Drop => self.drop(root, &unit, &rejection.reason, s),
            };
            if done {
                s.attempts.insert(unit.location.clone(), i + 1);
                return true;
            }
        }
        false
    }

    fn touches_conflicts(&self, path: &str) -> bool {
        let own = &self.config.conflicts_field;
        path == own
            || (path.starts_with(own.as_str()) && path.as_bytes().get(own.len()) == Some(&b'.'))
    }

    /// Coerce: convert the value to the mapped type; an object for a text or keyword field
    /// becomes its JSON text. With `objects_only` (stringify), only the latter.
    fn coerce(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        rejection: &Rejection,
        s: &mut Session,
        objects_only: bool,
    ) -> bool {
        let Some(mapped) = rejection.mapped_type.as_deref() else {
            return false;
        };
        let at_whole_key = unit.seg + 1 == unit.key.split('.').count();
        let action = if objects_only {
            Action::Stringify
        } else {
            Action::Coerce
        };
        let Some(parent) = parent_map(root, unit.parent_steps) else {
            return false;
        };
        let Some(value) = parent.get_mut(unit.key) else {
            return false;
        };
        let converted = match rejection.kind {
            RejectionKind::ObjectForLeaf if at_whole_key && is_text_like(mapped) => {
                map_leaves(value, &|v| match v {
                    Value::Object(_) => Some(Value::String(v.to_string())),
                    other => Some(other.clone()),
                })
            }
            RejectionKind::Value if !objects_only => {
                let to_mapped = map_leaves(value, &|v| convert(mapped, v));
                match to_mapped {
                    Some(v) if v != *value => Some(v),
                    // A mixed array that only this document mapped: strings fit any scalar.
                    _ if rejection.mapped_by_this_document && value.is_array() => {
                        map_leaves(value, &|v| match v {
                            Value::Object(_) => None,
                            Value::String(_) | Value::Null => Some(v.clone()),
                            other => Some(Value::String(other.to_string())),
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match converted {
            Some(new) if new != *value => {
                *value = new;
                s.changes.push(Change {
                    field: unit.path.clone(),
                    action,
                    reason: rejection.reason.clone(),
                    to: None,
                    value: None,
                });
                true
            }
            _ => false,
        }
    }

    fn rename(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        rejection: &Rejection,
        s: &mut Session,
        next: usize,
    ) -> bool {
        let Some(parent) = parent_map(root, unit.parent_steps) else {
            return false;
        };
        let Some(value) = parent.get(unit.key) else {
            return false;
        };
        let suffix = match rejection.kind {
            RejectionKind::PrefixIsLeaf => "_obj",
            RejectionKind::Value | RejectionKind::ObjectForLeaf | RejectionKind::LeafForObject => {
                let element = element_at(value, unit.element_steps).unwrap_or(value);
                match first_leaf(element) {
                    Some(Value::String(_)) => "_str",
                    Some(Value::Number(_)) => "_num",
                    Some(Value::Bool(_)) => "_bool",
                    Some(Value::Object(_)) => "_obj",
                    _ => return false,
                }
            }
            _ => return false,
        };
        let mut parts: Vec<String> = unit.key.split('.').map(str::to_owned).collect();
        let Some(part) = parts.get_mut(unit.seg) else {
            return false;
        };
        part.push_str(suffix);
        let new_key = parts.join(".");
        if parent.contains_key(&new_key) {
            return false;
        }
        let Some(value) = parent.remove(unit.key) else {
            return false;
        };
        parent.insert(new_key.clone(), value);
        let prefix_len = unit.path.len() - unit.key.len();
        let to = format!("{}{new_key}", &unit.path[..prefix_len]);
        let mut new_steps: Vec<Step> = unit.parent_steps.to_vec();
        new_steps.push(Step::Key {
            key: new_key,
            seg: unit.seg,
        });
        s.attempts.insert(location(&new_steps), next);
        s.changes.push(Change {
            field: unit.path.clone(),
            action: Action::Rename,
            reason: rejection.reason.clone(),
            to: Some(to),
            value: None,
        });
        true
    }

    fn quarantine(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        rejection: &Rejection,
        s: &mut Session,
    ) -> bool {
        if s.quarantine_broken || self.touches_conflicts(&unit.path) {
            return false;
        }
        let conflicts = &self.config.conflicts_field;
        match path::get(root, conflicts) {
            None | Some(Value::Object(_)) => {}
            Some(_) => return false,
        }
        let Some(value) = parent_map(root, unit.parent_steps).and_then(|p| p.remove(unit.key))
        else {
            return false;
        };
        let entry = s.quarantined.entry(unit.path.clone()).or_default();
        entry.push(value);
        let text = match entry.as_slice() {
            [one] => one.to_string(),
            many => Value::Array(many.to_vec()).to_string(),
        };
        let holder = match path::get_mut(root, conflicts) {
            Some(Value::Object(m)) => m,
            _ => {
                if path::insert(root, conflicts, Value::Object(Map::new())).is_err() {
                    // Put the value back where it was: quarantine is not possible here.
                    self.restore_last_quarantined(root, unit, s);
                    return false;
                }
                match path::get_mut(root, conflicts) {
                    Some(Value::Object(m)) => m,
                    _ => return false,
                }
            }
        };
        holder.insert(unit.path.clone(), Value::String(text));
        s.changes.push(Change {
            field: unit.path.clone(),
            action: Action::Quarantine,
            reason: rejection.reason.clone(),
            to: Some(format!("{conflicts}.{}", unit.path)),
            value: None,
        });
        true
    }

    fn restore_last_quarantined(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        s: &mut Session,
    ) {
        if let Some(list) = s.quarantined.get_mut(&unit.path) {
            if let Some(v) = list.pop() {
                if let Some(parent) = parent_map(root, unit.parent_steps) {
                    parent.insert(unit.key.to_owned(), v);
                }
            }
            if list.is_empty() {
                s.quarantined.remove(&unit.path);
            }
        }
    }

    fn drop(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        reason: &str,
        s: &mut Session,
    ) -> bool {
        let Some(value) = parent_map(root, unit.parent_steps).and_then(|p| p.remove(unit.key))
        else {
            return false;
        };
        s.changes.push(Change {
            field: unit.path.clone(),
            action: Action::Drop,
            reason: reason.to_owned(),
            to: None,
            value: Some(value.to_string()),
        });
        true
    }

    /// The conflicts object itself is rejected: its entries made here become drops (their
    /// values kept in the records); anything else in it is dropped as it is.
    fn unquarantine(
        &self,
        root: &mut Map<String, Value>,
        unit: &Unit<'_>,
        rejection: &Rejection,
        s: &mut Session,
    ) -> bool {
        let Some(removed) = parent_map(root, unit.parent_steps).and_then(|p| p.remove(unit.key))
        else {
            return false;
        };
        let conflicts_prefix = format!("{}.", self.config.conflicts_field);
        let mut ours = Vec::new();
        let whole = unit.path == self.config.conflicts_field;
        for (field, values) in std::mem::take(&mut s.quarantined) {
            let key_path = format!("{conflicts_prefix}{field}");
            if whole || key_path == unit.path {
                ours.push((field, values));
            } else {
                s.quarantined.insert(field, values);
            }
        }
        if ours.is_empty() {
            s.changes.push(Change {
                field: unit.path.clone(),
                action: Action::Drop,
                reason: rejection.reason.clone(),
                to: None,
                value: Some(removed.to_string()),
            });
        }
        for (field, values) in ours {
            s.changes
                .retain(|c| !(c.action == Action::Quarantine && c.field == field));
            for v in values {
                s.changes.push(Change {
                    field: field.clone(),
                    action: Action::Drop,
                    reason: rejection.reason.clone(),
                    to: None,
                    value: Some(v.to_string()),
                });
            }
        }
        true
    }

    fn write_records(&self, root: &mut Map<String, Value>, s: &Session) {
        let records: Vec<Value> = s
            .changes
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap_or_else(|_| json!({"field": c.field, "action": c.action.as_str()}))
            })
            .collect();
        let record_field = &self.config.record_field;
        match path::get_mut(root, record_field) {
            Some(Value::Array(existing)) => existing.extend(records),
            Some(other) => {
                let old = other.take();
                let mut list = vec![old];
                list.extend(records);
                *other = Value::Array(list);
            }
            None => {
                // A field on the way that is not an object: the record cannot be written.
                let _ = path::insert(root, record_field, Value::Array(records));
            }
        }
        if s.changes.iter().any(|c| c.action == Action::Quarantine) {
            let _ = path::insert(root, &self.config.quarantine_flag, Value::Bool(true));
        }
    }

    fn remove_records(&self, root: &mut Map<String, Value>, s: &Session) {
        let n = s.changes.len();
        if let Some(Value::Array(list)) = path::get_mut(root, &self.config.record_field) {
            let keep = list.len().saturating_sub(n);
            list.truncate(keep);
            if keep == 0 {
                path::remove(root, &self.config.record_field);
            } else if keep == 1 {
                // It was a single value wrapped into a list: unwrap it again.
                if let Some(Value::Array(list)) = path::get_mut(root, &self.config.record_field) {
                    if let Some(v) = list.pop() {
                        let _ = path::insert(root, &self.config.record_field, v);
                    }
                }
            }
        }
        if s.changes.iter().any(|c| c.action == Action::Quarantine) {
            path::remove(root, &self.config.quarantine_flag);
        }
        prune_empty_parents(root, &self.config.record_field);
        prune_empty_parents(root, &self.config.quarantine_flag);
    }
}

/// Removes objects on a path that were left empty.
fn prune_empty_parents(root: &mut Map<String, Value>, field: &str) {
    let mut parts: Vec<&str> = field.split('.').collect();
    while parts.len() > 1 {
        parts.pop();
        let parent = parts.join(".");
        match path::get(root, &parent) {
            Some(Value::Object(m)) if m.is_empty() => {
                path::remove(root, &parent);
            }
            _ => return,
        }
    }
}

/// The field a rejection points at, in the document.
struct Unit<'r> {
    parent_steps: &'r [Step],
    key: &'r str,
    /// The dot-separated part of `key` where the conflict is.
    seg: usize,
    /// Array indexes from the key's value to the offending element.
    element_steps: &'r [Step],
    /// Dotted path of the whole key.
    path: String,
    /// A key for this exact place in the document.
    location: String,
}

fn dotted(steps: &[Step]) -> String {
    let mut out = String::new();
    for st in steps {
        if let Step::Key { key, .. } = st {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
    }
    out
}

fn location(steps: &[Step]) -> String {
    let mut out = String::new();
    for st in steps {
        match st {
            Step::Key { key, .. } => {
                out.push('\u{1f}');
                out.push_str(key);
            }
            Step::Index(i) => {
                out.push('\u{1e}');
                out.push_str(&i.to_string());
            }
        }
    }
    out
}

fn parent_map<'a>(
    root: &'a mut Map<String, Value>,
    steps: &[Step],
) -> Option<&'a mut Map<String, Value>> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(root);
    };
    let Step::Key { key, .. } = first else {
        return None;
    };
    let mut cur = root.get_mut(key)?;
    for st in rest {
        cur = match st {
            Step::Key { key, .. } => cur.as_object_mut()?.get_mut(key)?,
            Step::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    cur.as_object_mut()
}

fn element_at<'v>(value: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    let mut cur = value;
    for st in steps {
        match st {
            Step::Index(i) => cur = cur.as_array()?.get(*i)?,
            Step::Key { .. } => return None,
        }
    }
    Some(cur)
}

/// The first non-null value in a possibly nested array (or the value itself).
fn first_leaf(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.iter().find_map(first_leaf),
        Value::Null => None,
        other => Some(other),
    }
}

/// Applies `f` to a value or to every element of a (nested) array; `None` if any fails.
fn map_leaves(v: &Value, f: &dyn Fn(&Value) -> Option<Value>) -> Option<Value> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| map_leaves(i, f))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Value::Null => Some(Value::Null),
        other => f(other),
    }
}

fn is_text_like(type_name: &str) -> bool {
    matches!(
        type_name,
        "text" | "keyword" | "wildcard" | "match_only_text"
    )
}

/// A lossless conversion of a scalar to a mapped type, if there is one.
fn convert(type_name: &str, v: &Value) -> Option<Value> {
    match type_name {
        "long" | "integer" | "short" | "byte" | "unsigned_long" => {
            let (min, max) = number::integer_range(type_name);
            let whole: i128 = match v {
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i128::from(i),
                    (_, Some(u), _) => i128::from(u),
                    (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e38 => {
                        #[allow(clippy::cast_possible_truncation)]
                        let w = f as i128;
                        w
                    }
                    _ => return None,
                },
                Value::String(s) => {
                    let f = number::java_double(s)?;
                    if !(f.is_finite() && f.fract() == 0.0) {
                        return None;
                    }
                    number::coerce_integer(s.trim()).flatten().or_else(|| {
                        #[allow(clippy::cast_possible_truncation)]
                        let w = f as i128;
                        (f.abs() < 1e18).then_some(w)
                    })?
                }
                _ => return None,
            };
            if !(min..=max).contains(&whole) {
                return None;
            }
            i64::try_from(whole)
                .map(|i| json!(i))
                .or_else(|_| u64::try_from(whole).map(|u| json!(u)))
                .ok()
        }
        "double" | "float" | "half_float" | "scaled_float" => {
            let f = match v {
                Value::Number(_) => return Some(v.clone()),
                Value::String(s) => number::java_double(s)?,
                _ => return None,
            };
            if !number::fits_float_type(type_name, f) {
                return None;
            }
            serde_json::Number::from_f64(f).map(|n| {
                // Whole numbers stay integers in the JSON, as the text had them.
                #[allow(clippy::cast_possible_truncation)]
                if f.fract() == 0.0 && f.abs() < 9e15 {
                    json!(f as i64)
                } else {
                    Value::Number(n)
                }
            })
        }
        "boolean" => match v {
            Value::Bool(_) => Some(v.clone()),
            Value::String(s) if s == "true" => Some(Value::Bool(true)),
            Value::String(s) if s == "false" => Some(Value::Bool(false)),
            _ => None,
        },
        "text" | "keyword" | "wildcard" | "match_only_text" => match v {
            Value::Object(_) | Value::Array(_) => None,
            Value::String(_) => Some(v.clone()),
            other => Some(Value::String(other.to_string())),
        },
        _ => None,
    }
}

fn count_nodes(map: &Map<String, Value>, depth: usize) -> usize {
    fn count(v: &Value, depth: usize) -> usize {
        if depth > 64 {
            return 1;
        }
        match v {
            Value::Object(m) => 1 + count_nodes(m, depth + 1),
            Value::Array(items) => 1 + items.iter().map(|i| count(i, depth + 1)).sum::<usize>(),
            _ => 1,
        }
    }
    map.values().map(|v| count(v, depth)).sum()
}
