//! The model against Elasticsearch's documented dynamic mapping behaviour, one table
//! row per behaviour: a fresh index (optionally with a mapping and settings), documents
//! in order, and for each whether it is accepted or the field and reason it is rejected for.

use logtide_mapping::{IndexMapping, IndexSettings, RejectionKind, Verdict};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    index: Value,
    docs: Vec<Value>,
    /// `None`: accepted; `Some((field, kind, reason fragment))`: rejected.
    expect: Vec<Option<(&'static str, RejectionKind, &'static str)>>,
    mapping: Vec<(&'static str, Option<Value>)>,
}

fn text() -> Value {
    json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
}

fn run(case: &Case) {
    let mut m = if case.index.is_null() {
        IndexMapping::default()
    } else {
        IndexMapping::from_index_template(&case.index)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name))
    };
    assert_eq!(
        case.docs.len(),
        case.expect.len(),
        "{}: one expectation per doc",
        case.name
    );
    for (i, (doc, want)) in case.docs.iter().zip(&case.expect).enumerate() {
        let verdict = m.check(doc);
        match (want, &verdict) {
            (None, Verdict::Accepted) => {}
            (Some((field, kind, reason)), Verdict::Rejected(r)) => {
                assert_eq!(
                    r.field, *field,
                    "{} doc {i}: field ({})",
                    case.name, r.reason
                );
                assert_eq!(r.kind, *kind, "{} doc {i}: kind ({})", case.name, r.reason);
                assert!(
                    r.reason.contains(reason),
                    "{} doc {i}: reason {:?} lacks {reason:?}",
                    case.name,
                    r.reason
                );
            }
            _ => panic!("{} doc {i}: want {want:?}, got {verdict:?}", case.name),
        }
    }
    for (path, want) in &case.mapping {
        assert_eq!(m.field(path), *want, "{}: mapping of {path}", case.name);
    }
}

use RejectionKind as K;

#[test]
fn dynamic_types_of_json_values() {
    run(&Case {
        name: "each JSON type maps as documented",
        index: Value::Null,
        docs: vec![
            json!({"s": "x", "l": 1, "f": 1.5, "b": true, "o": {"k": 1}, "n": null, "e": [], "d": "2015-01-01", "a": [null, 3]}),
        ],
        expect: vec![None],
        mapping: vec![
            ("s", Some(text())),
            ("l", Some(json!({"type": "long"}))),
            ("f", Some(json!({"type": "float"}))),
            ("b", Some(json!({"type": "boolean"}))),
            ("o", Some(json!({"properties": {"k": {"type": "long"}}}))),
            ("o.k", Some(json!({"type": "long"}))),
            ("n", None),
            ("e", None),
            ("d", Some(json!({"type": "date"}))),
            ("a", Some(json!({"type": "long"}))),
        ],
    });
}

#[test]
fn date_detection() {
    run(&Case {
        name: "date detection with the default formats",
        index: Value::Null,
        docs: vec![
            json!({"a": "2015/09/02", "b": "2015-09-02T10:11:12Z", "c": "2015", "d": "12", "e": "2015-09", "f": "02/09/2015", "g": "1.5"}),
        ],
        expect: vec![None],
        mapping: vec![
            (
                "a",
                Some(
                    json!({"type": "date", "format": "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis"}),
                ),
            ),
            ("b", Some(json!({"type": "date"}))),
            // Pure numbers are never dates (nor numbers, numeric detection being off).
            ("c", Some(text())),
            ("d", Some(text())),
            ("e", Some(json!({"type": "date"}))),
            ("f", Some(text())),
            ("g", Some(text())),
        ],
    });
    run(&Case {
        name: "custom dynamic_date_formats",
        index: json!({"mappings": {"dynamic_date_formats": ["MM/dd/yyyy"]}}),
        docs: vec![
            json!({"a": "09/25/2015", "b": "2015-09-25"}),
            json!({"a": "2015-09-25"}),
        ],
        expect: vec![
            None,
            Some(("a", K::Value, "failed to parse field [a] of type [date]")),
        ],
        mapping: vec![
            ("a", Some(json!({"type": "date", "format": "MM/dd/yyyy"}))),
            ("b", Some(text())),
        ],
    });
}

#[test]
fn numeric_detection() {
    run(&Case {
        name: "numeric detection maps numeric strings",
        index: json!({"mappings": {"numeric_detection": true}}),
        docs: vec![
            json!({"my_float": "1.0", "my_integer": "1"}),
            json!({"my_integer": "x"}),
        ],
        expect: vec![None, Some(("my_integer", K::Value, "of type [long]"))],
        mapping: vec![
            ("my_float", Some(json!({"type": "float"}))),
            ("my_integer", Some(json!({"type": "long"}))),
        ],
    });
}

#[test]
fn coercion_and_ranges() {
    run(&Case {
        name: "coercion on by default; booleans never numbers",
        index: Value::Null,
        docs: vec![
            json!({"n": 1}),
            json!({"n": "12"}),
            json!({"n": "5.0"}),
            json!({"n": 1.9}),
            json!({"n": "1e3"}),
            json!({"n": ""}),
            json!({"n": "abc"}),
            json!({"n": true}),
            json!({"n": "true"}),
            json!({"n": 18446744073709551615u64}),
            json!({"n": 1e30}),
        ],
        expect: vec![
            None,
            None,
            None,
            None,
            None,
            None,
            Some(("n", K::Value, "failed to parse field [n] of type [long]")),
            Some(("n", K::Value, "Preview of field's value: 'true'")),
            Some(("n", K::Value, "of type [long]")),
            Some(("n", K::Value, "of type [long]")),
            Some(("n", K::Value, "of type [long]")),
        ],
        mapping: vec![("n", Some(json!({"type": "long"})))],
    });
    run(&Case {
        name: "coerce false rejects strings and fractions",
        index: json!({"mappings": {"properties": {"n": {"type": "integer", "coerce": false}, "m": {"type": "integer"}}}}),
        docs: vec![
            json!({"n": 10, "m": "10"}),
            json!({"n": "10"}),
            json!({"n": 10.5}),
            json!({"m": 3000000000u64}),
        ],
        expect: vec![
            None,
            Some(("n", K::Value, "of type [integer]")),
            Some(("n", K::Value, "of type [integer]")),
            Some(("m", K::Value, "of type [integer]")),
        ],
        mapping: vec![],
    });
    run(&Case {
        name: "index-wide coerce setting",
        index: json!({"settings": {"index.mapping.coerce": false}, "mappings": {"properties": {"n": {"type": "long"}, "c": {"type": "long", "coerce": true}}}}),
        docs: vec![json!({"n": "1"}), json!({"c": "1"})],
        expect: vec![Some(("n", K::Value, "of type [long]")), None],
        mapping: vec![],
    });
    run(&Case {
        name: "a double too large for the dynamic float is rejected",
        index: Value::Null,
        docs: vec![
            json!({"f": 1.0e39}),
            json!({"f": 3.0e38}),
            json!({"f": "1e39"}),
        ],
        expect: vec![
            Some(("f", K::Value, "of type [float]")),
            None,
            Some(("f", K::Value, "of type [float]")),
        ],
        mapping: vec![("f", Some(json!({"type": "float"})))],
    });
}

#[test]
fn scalars_into_text_keyword_boolean() {
    run(&Case {
        name: "text takes any scalar, never an object",
        index: Value::Null,
        docs: vec![
            json!({"t": "x"}),
            json!({"t": 5}),
            json!({"t": false}),
            json!({"t": [1, "y", null]}),
            json!({"t": {"a": 1}}),
        ],
        expect: vec![
            None,
            None,
            None,
            None,
            Some((
                "t",
                K::ObjectForLeaf,
                "failed to parse field [t] of type [text]",
            )),
        ],
        mapping: vec![("t", Some(text())), ("t.a", None)],
    });
    run(&Case {
        name: "boolean takes true/false strings and the empty string",
        index: Value::Null,
        docs: vec![
            json!({"b": true}),
            json!({"b": "false"}),
            json!({"b": ""}),
            json!({"b": "yes"}),
            json!({"b": 1}),
        ],
        expect: vec![
            None,
            None,
            None,
            Some(("b", K::Value, "of type [boolean]")),
            Some(("b", K::Value, "of type [boolean]")),
        ],
        mapping: vec![],
    });
    let long = "x".repeat(40_000);
    run(&Case {
        name: "keywords: ignore_above skips, no limit hits Lucene's term limit",
        index: json!({"mappings": {"properties": {"k": {"type": "keyword"}, "i": {"type": "keyword", "ignore_above": 10}, "s": {"type": "keyword", "index": false, "doc_values": false}}}}),
        docs: vec![json!({"i": long, "s": long, "t": long}), json!({"k": long})],
        expect: vec![
            None,
            Some(("k", K::ImmenseTerm, "immense term in field=\"k\"")),
        ],
        mapping: vec![],
    });
}

#[test]
fn arrays() {
    run(&Case {
        name: "the first value of an array decides",
        index: Value::Null,
        // elastic.co array.html: ["some string", 10] is fine (text takes numbers);
        // the Elasticsearch-compatible emulators used in tests reject it.
        docs: vec![
            json!({"a": ["some string", 10]}),
            json!({"b": [10, "some string"]}),
            json!({"c": [[1, [2]], 3.5]}),
        ],
        expect: vec![None, Some(("b", K::Value, "of type [long]")), None],
        mapping: vec![
            ("a", Some(text())),
            ("b", None),
            ("c", Some(json!({"type": "long"}))),
        ],
    });
    run(&Case {
        name: "objects and scalars in one array",
        index: Value::Null,
        docs: vec![json!({"o": [{"x": 1}, "s"]}), json!({"p": ["s", {"x": 1}]}), json!({"q": [{"x": 1}, {"x": "2"}, {"y": true}]})],
        expect: vec![
            Some(("o", K::LeafForObject, "object mapping for [o] tried to parse field [o] as object, but found a concrete value")),
            Some(("p", K::ObjectForLeaf, "of type [text]")),
            None,
        ],
        mapping: vec![("o", None), ("p", None), ("q.x", Some(json!({"type": "long"}))), ("q.y", Some(json!({"type": "boolean"})))],
    });
}

#[test]
fn dots_in_names() {
    run(&Case {
        name: "dotted names are objects; clashes with leaves",
        index: Value::Null,
        docs: vec![
            json!({"labels": {"app": "web"}}),
            json!({"labels": {"app.kubernetes.io/name": "shop"}}),
            json!({"x.y": 1, "x": {"z": 2}}),
            json!({"x": 5}),
            json!({"a.b.c": 1, "a.b": 2}),
        ],
        expect: vec![
            None,
            Some(("labels.app", K::PrefixIsLeaf, "Could not dynamically add mapping for field [labels.app.kubernetes.io/name]. Existing mapping for [labels.app] must be of type object but found [text].")),
            None,
            Some(("x", K::LeafForObject, "object mapping for [x] tried to parse field [x] as object, but found a concrete value")),
            // Keys are walked in byte order ("a.b" < "a.b.c"): a.b maps long first.
            Some(("a.b", K::PrefixIsLeaf, "Existing mapping for [a.b] must be of type object but found [long]")),
        ],
        mapping: vec![("labels.app", Some(text())), ("x.y", Some(json!({"type": "long"}))), ("x.z", Some(json!({"type": "long"}))), ("a", None)],
    });
    run(&Case {
        name: "bad names",
        index: Value::Null,
        docs: vec![
            json!({"": 1}),
            json!({"a..b": 1}),
            json!({".a": 1}),
            json!({"a.": 1}),
            json!({"...": 1}),
            json!({" ": 1}),
            json!({"_id": "x"}),
            json!({"o": {"_id": 1}}),
        ],
        expect: vec![
            Some(("", K::BadName, "field name cannot be an empty string")),
            Some(("a..b", K::BadName, "makes object resolution ambiguous")),
            Some((".a", K::BadName, "makes object resolution ambiguous")),
            Some(("a.", K::BadName, "makes object resolution ambiguous")),
            Some(("...", K::BadName, "field name cannot contain only dots")),
            Some((" ", K::BadName, "cannot contain only whitespace")),
            Some(("_id", K::MetadataField, "Field [_id] is a metadata field")),
            None,
        ],
        mapping: vec![("o._id", Some(json!({"type": "long"})))],
    });
    run(&Case {
        name: "subobjects false keeps dotted leaf names",
        index: json!({"mappings": {"properties": {"metrics": {"type": "object", "subobjects": false}}}}),
        docs: vec![json!({"metrics": {"time": 10, "time.max": 100, "time.min": "x"}})],
        expect: vec![None],
        mapping: vec![
            ("metrics.time", Some(json!({"type": "long"}))),
            ("metrics.time.max", Some(json!({"type": "long"}))),
        ],
    });
}

#[test]
fn dynamic_settings() {
    run(&Case {
        name: "strict, false and runtime",
        index: json!({"mappings": {"dynamic": "strict", "properties": {
            "loose": {"dynamic": false, "properties": {}},
            "rt": {"dynamic": "runtime", "properties": {}},
            "known": {"type": "long"}
        }}}),
        docs: vec![
            json!({"known": 1, "loose": {"anything": {"deep": [1, "x"]}}}),
            json!({"rt": {"s": "x", "n": 1, "o": {"d": "2015-01-01"}}}),
            json!({"rt": {"s": {"now": "an object"}}}),
            json!({"known": 2, "other": null}),
            json!({"loose.x": 1, "rt": {"n": "not a number"}}),
            json!({"other": []}),
        ],
        expect: vec![
            None,
            None,
            None,
            Some(("other", K::Strict, "mapping set to strict, dynamic introduction of [other] within [_doc] is not allowed")),
            None,
            Some(("other", K::Strict, "dynamic introduction of [other]")),
        ],
        mapping: vec![("loose.anything", None), ("rt.s", Some(json!({"type": "keyword"}))), ("rt.o.d", Some(json!({"type": "date"})))],
    });
    run(&Case {
        name: "strict names the enclosing object",
        index: json!({"mappings": {"properties": {"o": {"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}}}}),
        docs: vec![json!({"o": {"a": "x", "b": 1}}), json!({"o.c": 1})],
        expect: vec![
            Some((
                "o.b",
                K::Strict,
                "dynamic introduction of [b] within [o] is not allowed",
            )),
            Some((
                "o.c",
                K::Strict,
                "dynamic introduction of [c] within [o] is not allowed",
            )),
        ],
        mapping: vec![],
    });
    run(&Case {
        name: "disabled objects take anything",
        index: json!({"mappings": {"properties": {"raw": {"type": "object", "enabled": false}}}}),
        docs: vec![
            json!({"raw": {"a": 1}}),
            json!({"raw": {"a": "x", "b": [{"c": 1}, 2]}}),
            json!({"raw.a.b": true}),
        ],
        expect: vec![None, None, None],
        mapping: vec![("raw.a", None)],
    });
}

#[test]
fn limits() {
    run(&Case {
        name: "total fields: objects, leaves and multi-fields count",
        index: json!({"settings": {"index.mapping.total_fields.limit": 4}}),
        // o (1) + o.n (1) + s (2: text and keyword) = 4.
        docs: vec![
            json!({"o": {"n": 1}, "s": "x"}),
            json!({"t": 1}),
            json!({"o": {"n": 2}}),
        ],
        expect: vec![
            None,
            Some((
                "t",
                K::TotalFields,
                "Limit of total fields [4] has been exceeded while adding new fields [1]",
            )),
            None,
        ],
        mapping: vec![("t", None)],
    });
    run(&Case {
        name: "ignore_dynamic_beyond_limit keeps the document",
        index: json!({"settings": {"index": {"mapping": {"total_fields": {"limit": 1, "ignore_dynamic_beyond_limit": true}}}}}),
        docs: vec![json!({"a": 1, "b": 2, "c": {"d": 3}})],
        expect: vec![None],
        mapping: vec![
            ("a", Some(json!({"type": "long"}))),
            ("b", None),
            ("c", None),
        ],
    });
    // An object's depth is its number of path parts plus one (the root is 1):
    // 19 nested objects are allowed, the 20th is not.
    let nest = |prefix: &str, levels: usize| {
        let mut v = json!(1);
        for i in (0..levels).rev() {
            v = json!({ format!("{prefix}{i}"): v });
        }
        v
    };
    let (shallow, deep) = (nest("s", 20), nest("d", 21));
    run(&Case {
        name: "depth limit counts objects",
        index: Value::Null,
        docs: vec![shallow, deep],
        expect: vec![
            None,
            Some((
                "d0.d1.d2.d3.d4.d5.d6.d7.d8.d9.d10.d11.d12.d13.d14.d15.d16.d17.d18.d19",
                K::Depth,
                "Limit of mapping depth [20] has been exceeded",
            )),
        ],
        mapping: vec![],
    });
}

#[test]
fn rejected_documents_add_nothing() {
    let mut m = IndexMapping::default();
    assert!(m.check(&json!({"n": 1})).is_accepted());
    let before = m.field_count();
    // New fields before the rejected one are not kept.
    assert!(!m
        .check(&json!({"a": "x", "b": {"c": 1}, "n": "abc"}))
        .is_accepted());
    assert_eq!(m.field_count(), before);
    assert_eq!(m.field("a"), None);
    assert_eq!(m.field("b"), None);
    // predict never learns.
    assert!(m.predict(&json!({"z": 1})).is_accepted());
    assert_eq!(m.field("z"), None);
    assert!(!m.check(&json!([1])).is_accepted());
}

#[test]
fn dynamic_templates() {
    run(&Case {
        name: "templates choose types by JSON kind, name and path",
        index: json!({"mappings": {"dynamic_templates": [
            {"ints_as_longs_only_in_ids": {"match_mapping_type": "long", "path_match": "ids.*", "mapping": {"type": "integer"}}},
            {"strings_as_keywords": {"match_mapping_type": "string", "unmatch": "*_text", "mapping": {"type": "keyword", "ignore_above": 10}}},
            {"dates_as_keywords": {"match_mapping_type": "date", "path_match": "stringy.*", "mapping": {"type": "keyword"}}},
            {"flat_labels": {"match_mapping_type": "object", "path_match": "labels", "mapping": {"type": "flattened"}}},
            {"rt": {"match": "rt_*", "runtime": {}}}
        ]}}),
        docs: vec![
            json!({"ids": {"a": 1}, "s": "x", "body_text": "y", "stringy": {"d": "2015-01-01"}, "labels": {"a": {"b": 1}}, "rt_n": 5}),
            json!({"ids": {"a": 3000000000u64}}),
            json!({"labels": {"a": "now a string"}, "rt_n": {"o": 1}}),
            json!({"stringy": {"d": "not a date"}}),
        ],
        expect: vec![
            None,
            Some(("ids.a", K::Value, "of type [integer]")),
            None,
            None,
        ],
        mapping: vec![
            ("ids.a", Some(json!({"type": "integer"}))),
            ("s", Some(json!({"type": "keyword", "ignore_above": 10}))),
            ("body_text", Some(text())),
            ("stringy.d", Some(json!({"type": "keyword"}))),
            ("labels", Some(json!({"type": "flattened"}))),
            ("rt_n", Some(json!({"type": "long"}))),
        ],
    });
    run(&Case {
        name: "placeholders",
        index: json!({"mappings": {"dynamic_templates": [{"all": {"match": "*", "match_mapping_type": "long", "mapping": {"type": "{dynamic_type}", "meta": {"from": "{name}"}}}}]}}),
        docs: vec![json!({"count": 5})],
        expect: vec![None],
        mapping: vec![(
            "count",
            Some(json!({"type": "long", "meta": {"from": "count"}})),
        )],
    });
}

#[test]
fn explicit_types() {
    run(&Case {
        name: "ip, date formats, constant_keyword, alias, ignore_malformed",
        index: json!({"settings": {"index.mapping.ignore_malformed": false}, "mappings": {"properties": {
            "ip": {"type": "ip"},
            "day": {"type": "date", "format": "yyyy-MM-dd"},
            "when": {"type": "date"},
            "c": {"type": "constant_keyword"},
            "al": {"type": "alias", "path": "ip"},
            "lenient": {"type": "long", "ignore_malformed": true},
            "h": {"type": "half_float"}
        }}}),
        docs: vec![
            json!({"ip": "10.0.0.1", "day": "2015-01-01", "when": 1420070400000u64, "c": "prod", "lenient": "oops", "h": 1.5}),
            json!({"ip": "::1", "c": "prod", "when": "2015-01-01T00:00:00Z"}),
            json!({"ip": "300.0.0.1"}),
            json!({"day": "2015-01-01T00:00:00Z"}),
            json!({"c": "dev"}),
            json!({"al": "10.0.0.1"}),
            json!({"when": "yesterday"}),
            json!({"h": 70000}),
        ],
        expect: vec![
            None,
            None,
            Some(("ip", K::Value, "of type [ip]")),
            Some(("day", K::Value, "of type [date]")),
            Some((
                "c",
                K::Value,
                "only accepts values that are equal to the value defined in the mappings [prod]",
            )),
            Some(("al", K::AliasWrite, "Cannot write to a field alias [al]")),
            Some(("when", K::Value, "of type [date]")),
            Some(("h", K::Value, "of type [half_float]")),
        ],
        mapping: vec![(
            "c",
            Some(json!({"type": "constant_keyword", "value": "prod"})),
        )],
    });
    let settings =
        IndexSettings::from_json(&json!({"index.mapping.ignore_malformed": true})).unwrap();
    let mut m = IndexMapping::with_settings(settings);
    assert!(m.check(&json!({"n": 1})).is_accepted());
    assert!(
        m.check(&json!({"n": "abc"})).is_accepted(),
        "ignore_malformed ignores a bad value"
    );
    assert!(
        !m.check(&json!({"n": {"o": 1}})).is_accepted(),
        "but not an object for a leaf"
    );
}
