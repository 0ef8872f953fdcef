//! docs/configuration.md lists every configuration key of the three binaries (and of the
//! processors they accept) with its type, default and meaning. This test holds the
//! reference to the configuration structs, so a key added to (or removed from) a struct
//! without its line in the reference fails here.
//!
//! How the keys are enumerated: each section is loaded, through the binary's own loader,
//! with one key no section has (`zz_probe`). Every section refuses unknown keys, and the
//! refusal names the keys the section accepts: serde's `unknown field ..., expected one of
//! ...` for the configuration structs, [`logtide_json::Error::UnknownKey`]'s `expected`
//! for the processors. The lists are thus those of the `Deserialize` impls that read the
//! files, custom deserializers and renames included, with no second description
//! of the structs to keep in step. (A reflection crate such as serde-reflection traces
//! `Deserialize` impls with a deserializer of its own, which cannot answer
//! `deserialize_any`: the untyped `processors` lists and the untagged duration readers
//! need it.)
//!
//! A key whose type is `section` in the reference must have a section of its own in the
//! reference, and each section must have a probe below: a new nested struct is caught too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use logtide_pipeline::metrics::MetricsConfig;
use logtide_pipeline::{FilesConfig, RelayConfig};
use serde_json::{json, Value};

/// Which loader reads a probe.
#[derive(Clone, Copy, Debug)]
enum Loader {
    Files,
    Metrics,
    Relay,
    /// A Filebeat processor, by name (its options object).
    Processor(&'static str),
}

/// A section of the reference, how to reach it with the probe key, and the keys the
/// reference documents that its struct does not hold (read before the struct is).
struct Probe {
    /// The reference's heading: `## <program>` then `### <path>`.
    program: &'static str,
    path: &'static str,
    loader: Loader,
    /// YAML (or, for processors, the options as YAML) with `zz_probe` in the section.
    text: &'static str,
    /// Documented keys taken off before the section's struct reads the rest.
    extra: &'static [&'static str],
}

const FILES: &str = "logtide-files";
const METRICS: &str = "logtide-metrics";
const RELAY: &str = "logtide-relay";
const PROCESSORS: &str = "Processors";

const PROBES: &[Probe] = &[
    Probe { program: FILES, path: "top level", loader: Loader::Files, text: "zz_probe: 1\ninputs: [{type: container}]\noutput.console: {}\n", extra: &[] },
    Probe { program: FILES, path: "inputs[]", loader: Loader::Files, text: "inputs: [{type: container, zz_probe: 1}]\noutput.console: {}\n", extra: &[] },
    Probe { program: FILES, path: "registry", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nregistry: {zz_probe: 1}\n", extra: &[] },
    Probe { program: FILES, path: "output", loader: Loader::Files, text: "inputs: [{type: container}]\noutput: {zz_probe: 1}\n", extra: &[] },
    Probe { program: FILES, path: "output.console", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {zz_probe: 1}\n", extra: &[] },
    Probe { program: FILES, path: "output.file", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.file: {path: /x, zz_probe: 1}\n", extra: &[] },
    Probe { program: FILES, path: "output.kinesis", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.kinesis: {stream_name: logs, zz_probe: 1}\n", extra: &[] },
    Probe { program: FILES, path: "output.kinesis.offload", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.kinesis: {stream_name: logs, offload: {bucket: b, zz_probe: 1}}\n", extra: &[] },
    Probe { program: FILES, path: "http", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nhttp: {zz_probe: 1}\n", extra: &[] },
    Probe { program: METRICS, path: "top level", loader: Loader::Metrics, text: "zz_probe: 1\noutput.console: {}\n", extra: &["output"] },
    Probe { program: METRICS, path: "filesystem", loader: Loader::Metrics, text: "filesystem: {zz_probe: 1}\noutput.console: {}\n", extra: &[] },
    Probe { program: METRICS, path: "kubernetes", loader: Loader::Metrics, text: "kubernetes: {zz_probe: 1}\noutput.console: {}\n", extra: &[] },
    Probe { program: METRICS, path: "kubernetes.ssl", loader: Loader::Metrics, text: "kubernetes: {ssl: {zz_probe: 1}}\noutput.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "top level", loader: Loader::Relay, text: "zz_probe: 1\n", extra: &[] },
    Probe { program: RELAY, path: "source", loader: Loader::Relay, text: "source: {zz_probe: 1}\nsinks.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "source.kinesis", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs, zz_probe: 1}\nsinks.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "source.kinesis.checkpoint", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs, checkpoint: {zz_probe: 1}}\nsinks.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "source.kinesis.checkpoint.dynamodb", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs, checkpoint: {dynamodb: {table: t, zz_probe: 1}}}\nsinks.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "source.kinesis.offload", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs, offload: {zz_probe: 1}}\nsinks.console: {}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks: {zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.s3", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.s3: {bucket: b, zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch.ssl", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], ssl: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch.aws_sigv4", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], aws_sigv4: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch.mapping", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], mapping: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch.mapping.rules[]", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], mapping: {rules: [{fields: a, policy: coerce, zz_probe: 1}]}}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.elasticsearch.setup", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [http://127.0.0.1:9200], setup: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.file", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.file: {path: /x, zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "sinks.console", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.console: {zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "http", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.console: {}\nhttp: {zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "alerts", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.console: {}\nalerts: {zz_probe: 1}\n", extra: &[] },
    Probe { program: RELAY, path: "alerts.kubernetes", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.console: {}\nalerts: {kubernetes: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: RELAY, path: "alerts.delivery", loader: Loader::Relay, text: "source.kinesis: {stream_name: logs}\nsinks.console: {}\nalerts: {delivery: {zz_probe: 1}}\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {zz_probe: 1}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.labels", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {labels: {zz_probe: 1}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.annotations", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {annotations: {zz_probe: 1}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.default_indexers", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {default_indexers: {zz_probe: 1}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.default_matchers", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {default_matchers: {zz_probe: 1}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.add_resource_metadata", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {add_resource_metadata: {zz_probe: 1}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "add_kubernetes_metadata.add_resource_metadata.namespace", loader: Loader::Files, text: "inputs: [{type: container}]\noutput.console: {}\nprocessors: [{add_kubernetes_metadata: {add_resource_metadata: {namespace: {zz_probe: 1}}}}]\n", extra: &[] },
    Probe { program: PROCESSORS, path: "decode_json_fields", loader: Loader::Processor("decode_json_fields"), text: "{fields: [m], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "drop_fields", loader: Loader::Processor("drop_fields"), text: "{fields: [m], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "include_fields", loader: Loader::Processor("include_fields"), text: "{fields: [m], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "drop_event", loader: Loader::Processor("drop_event"), text: "{zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "rename", loader: Loader::Processor("rename"), text: "{fields: [], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "copy_fields", loader: Loader::Processor("copy_fields"), text: "{fields: [], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "add_fields", loader: Loader::Processor("add_fields"), text: "{fields: {a: 1}, zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "add_labels", loader: Loader::Processor("add_labels"), text: "{labels: {a: 1}, zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "add_tags", loader: Loader::Processor("add_tags"), text: "{tags: [a], zz_probe: 1}", extra: &[] },
    Probe { program: PROCESSORS, path: "truncate_fields", loader: Loader::Processor("truncate_fields"), text: "{fields: [m], max_bytes: 10, zz_probe: 1}", extra: &[] },
];

/// The keys a probe's section accepts, from the loader's refusal of `zz_probe`.
fn accepted_keys(probe: &Probe) -> BTreeSet<String> {
    let origin = Path::new("probe.yml");
    let message = match probe.loader {
        Loader::Files => FilesConfig::from_yaml(probe.text, origin).map(drop),
        Loader::Metrics => MetricsConfig::from_yaml(probe.text, origin).map(drop),
        Loader::Relay => RelayConfig::from_yaml(probe.text, origin).map(drop),
        Loader::Processor(name) => {
            let options: Value = serde_saphyr::from_str(probe.text).unwrap();
            match logtide_json::Processors::from_config(&json!([{ name: options }])) {
                Err(logtide_json::Error::UnknownKey { key, expected, .. }) => {
                    assert_eq!(key, "zz_probe", "{name}");
                    return expected.iter().map(|k| (*k).to_owned()).collect();
                }
                other => panic!("{name}: expected an unknown key error, got {other:?}"),
            }
        }
    }
    .map(|()| panic!("{} {}: the probe was accepted", probe.program, probe.path))
    .unwrap_err()
    .to_string();
    serde_expected(&message).unwrap_or_else(|| {
        panic!(
            "{} {}: not an unknown-field refusal: {message}",
            probe.program, probe.path
        )
    })
}

/// The names serde lists after "unknown field `zz_probe`, expected …".
fn serde_expected(message: &str) -> Option<BTreeSet<String>> {
    let (_, rest) = message.split_once("unknown field `zz_probe`, ")?;
    if rest.starts_with("there are no fields") {
        return Some(BTreeSet::new());
    }
    let list = rest.strip_prefix("expected ")?;
    let list = list.strip_prefix("one of ").unwrap_or(list);
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// One section of the reference: its keys and their types.
#[derive(Debug, Default)]
struct Section {
    keys: BTreeMap<String, String>,
}

/// The reference's sections by (program, path): `## <program>` headings, `### <path>`
/// headings under them, and the first column (a key in backticks) and second (its type)
/// of the tables.
fn reference() -> BTreeMap<(String, String), Section> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let mut sections = BTreeMap::new();
    let mut program = String::new();
    let mut path: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            program = h.trim().to_owned();
            path = None;
        } else if let Some(h) = line.strip_prefix("### ") {
            let p = h.trim().trim_matches('`').to_owned();
            let previous = sections.insert((program.clone(), p.clone()), Section::default());
            assert!(previous.is_none(), "{program} {p}: two sections");
            path = Some(p);
        } else if let (Some(p), Some(row)) = (&path, line.strip_prefix("| `")) {
            let (key, rest) = row.split_once('`').unwrap();
            let kind = rest.split('|').nth(1).unwrap_or("").trim().to_owned();
            let section = sections.get_mut(&(program.clone(), p.clone())).unwrap();
            let previous = section.keys.insert(key.to_owned(), kind);
            assert!(previous.is_none(), "{program} {p}: `{key}` listed twice");
        }
    }
    sections
}

#[test]
fn the_reference_lists_every_key_of_every_section() {
    let reference = reference();
    let mut problems = Vec::new();
    for probe in PROBES {
        let name = format!("{} `{}`", probe.program, probe.path);
        let Some(section) = reference.get(&(probe.program.to_owned(), probe.path.to_owned()))
        else {
            problems.push(format!(
                "{name}: no `### {}` section in docs/configuration.md",
                probe.path
            ));
            continue;
        };
        let mut accepted = accepted_keys(probe);
        accepted.extend(probe.extra.iter().map(|k| (*k).to_owned()));
        let documented: BTreeSet<String> = section.keys.keys().cloned().collect();
        for key in accepted.difference(&documented) {
            problems.push(format!(
                "{name}: `{key}` is accepted but has no line in docs/configuration.md"
            ));
        }
        for key in documented.difference(&accepted) {
            problems.push(format!("{name}: `{key}` is documented but not accepted"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Each section of the reference is checked by a probe, and each key of type `section`
/// (or `list of sections`) has a section of its own: a new nested struct cannot go
/// unchecked.
#[test]
fn every_section_of_the_reference_is_probed() {
    let reference = reference();
    let probed: BTreeSet<(String, String)> = PROBES
        .iter()
        .map(|p| (p.program.to_owned(), p.path.to_owned()))
        .collect();
    let mut problems = Vec::new();
    for ((program, path), section) in &reference {
        if !probed.contains(&(program.clone(), path.clone())) {
            problems.push(format!(
                "{program} `{path}`: no probe in config_reference.rs"
            ));
        }
        for (key, kind) in &section.keys {
            let own = match kind.as_str() {
                "section" => key.clone(),
                "list of sections" => format!("{key}[]"),
                _ => continue,
            };
            let sub = if path == "top level" {
                own
            } else {
                format!("{path}.{own}")
            };
            if !reference.contains_key(&(program.clone(), sub.clone())) {
                problems.push(format!(
                    "{program} `{path}`: `{key}` is a section but `### {sub}` is missing"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The probe reading itself: a refusal names the keys of the section, and a key the
/// section has is accepted.
#[test]
fn a_probe_reads_the_keys_from_the_refusal() {
    let keys =
        serde_expected("x.zz_probe: unknown field `zz_probe`, expected one of `a`, `b_c`").unwrap();
    assert_eq!(keys, BTreeSet::from(["a".to_owned(), "b_c".to_owned()]));
    let keys = serde_expected("unknown field `zz_probe`, expected `a` or `b`").unwrap();
    assert_eq!(keys, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    assert_eq!(
        serde_expected("unknown field `zz_probe`, there are no fields"),
        Some(BTreeSet::new())
    );
    assert_eq!(serde_expected("missing field `stream_name`"), None);
    let http = PROBES
        .iter()
        .find(|p| p.program == FILES && p.path == "http")
        .unwrap();
    assert!(accepted_keys(http).contains("enabled"));
}
