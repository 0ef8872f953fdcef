//! The configuration of `logtide-files`: inputs, registry, processors, output.

use std::path::{Path, PathBuf};

use logtide_config::duration;
use logtide_tail::{InputFormat, RegistryConfig, StreamFilter, TailConfig};
use serde_json::{Map, Value};

use crate::config::{
    document, invalid, load_file, read_config_file, typed, OutputConfig, OutputsConfig,
};
use crate::Error;

/// Builds a processor chain from a `processors:` list; `at` is its path for errors.
/// `add_kubernetes_metadata` starts its Kubernetes client (path-derived fields only
/// when no cluster is configured).
pub fn build_processors(
    list: &[Value],
    at: &str,
    file: &Path,
) -> Result<logtide_json::Processors, Error> {
    build_processors_with(list, at, file, &super::k8s::Started::default())
}

/// [`build_processors`] with the given processors beside the built-in ones.
pub(crate) fn build_processors_with(
    list: &[Value],
    at: &str,
    file: &Path,
    extensions: &dyn logtide_json::Extensions,
) -> Result<logtide_json::Processors, Error> {
    logtide_json::Processors::from_config_with(&Value::Array(list.to_vec()), at, extensions)
        .map_err(|e| Error::Config {
            file: file.to_owned(),
            message: e.to_string(),
        })
}

/// Checks a `processors:` list without starting anything.
fn check_processors(list: &[Value], at: &str, file: &Path) -> Result<(), Error> {
    build_processors_with(list, at, file, &super::k8s::CheckOnly).map(drop)
}

/// Loads only a `processors:` list from a configuration file: from a full logtide-files
/// configuration (validated as a whole), or from a file that holds nothing else.
pub fn load_processors(path: &Path) -> Result<logtide_json::Processors, Error> {
    let text = read_config_file(path)?;
    let value = document(&text, path, &["processors"])?;
    let is_full = value.get("inputs").is_some() || value.get("filebeat").is_some();
    if is_full {
        let config = FilesConfig::from_yaml(&text, path)?;
        return build_processors(&config.processors, "processors", path);
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OnlyProcessors {
        #[serde(default)]
        processors: Vec<Value>,
    }
    let only: OnlyProcessors = typed(value, path)?;
    build_processors(&only.processors, "processors", path)
}

/// One `inputs` entry of logtide-files (Filebeat's `container` input).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Input type: `container`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Identifies the input's registry when there are several inputs.
    #[serde(default)]
    pub id: Option<String>,
    /// Glob patterns of files to read.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// Regular expressions of paths not to read.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// `auto`, `cri` or `docker`.
    #[serde(default)]
    pub format: InputFormat,
    /// `all`, `stdout` or `stderr`.
    #[serde(default)]
    pub stream: StreamFilter,
    /// How often the globs are expanded again.
    #[serde(default = "default_scan_frequency", with = "duration")]
    pub scan_frequency: std::time::Duration,
    /// Close files that did not grow for this long.
    #[serde(default = "default_close_inactive", with = "duration")]
    pub close_inactive: std::time::Duration,
    /// Most files open at once.
    #[serde(default = "default_harvester_limit")]
    pub harvester_limit: usize,
    /// How long a deleted or rotated-away file is still read before the rest of it is
    /// given up on (counted as lost); default `5m`.
    #[serde(default = "default_close_removed_after", with = "duration")]
    pub close_removed_after: std::time::Duration,
    /// Longest line kept (Filebeat's `max_bytes`).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest entry joined from partial lines (CRI `P` lines, docker lines without a
    /// newline); the rest is cut and the entry flagged truncated. Default 16 MiB
    /// (16777216), so large entries pass whole.
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: usize,
    /// Most bytes held by all partial entries waiting for their last chunk, across all
    /// files; beyond it the oldest is emitted as partial and counted. Default 64 MiB
    /// (67108864).
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: usize,
    /// Processors of this input (run before the global ones).
    #[serde(default)]
    pub processors: Vec<Value>,
}

fn default_paths() -> Vec<String> {
    TailConfig::default().paths
}
fn default_scan_frequency() -> std::time::Duration {
    TailConfig::default().scan_frequency
}
fn default_close_inactive() -> std::time::Duration {
    TailConfig::default().close_inactive
}
fn default_close_removed_after() -> std::time::Duration {
    TailConfig::default().close_removed_after
}
fn default_harvester_limit() -> usize {
    TailConfig::default().harvester_limit
}
fn default_max_bytes() -> usize {
    TailConfig::default().max_line_bytes
}
fn default_max_entry_bytes() -> usize {
    TailConfig::default().max_entry_bytes
}
fn default_max_pending_bytes() -> usize {
    TailConfig::default().max_pending_bytes
}

impl InputConfig {
    /// The tailer configuration of this input.
    pub fn tail_config(&self) -> TailConfig {
        TailConfig {
            paths: self.paths.clone(),
            exclude_files: self.exclude_files.clone(),
            format: self.format,
            stream: self.stream,
            scan_frequency: self.scan_frequency,
            close_inactive: self.close_inactive,
            harvester_limit: self.harvester_limit,
            close_removed_after: self.close_removed_after,
            max_line_bytes: self.max_bytes,
            max_entry_bytes: self.max_entry_bytes,
            max_pending_bytes: self.max_pending_bytes,
            ..TailConfig::default()
        }
    }
}

/// The `registry` section.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// Directory of the registry.
    #[serde(default = "default_registry_path")]
    pub path: PathBuf,
    /// How often the registry is written.
    #[serde(default = "default_registry_flush", with = "duration")]
    pub flush: std::time::Duration,
    /// Entries of files gone for longer than this are removed.
    #[serde(default = "default_clean_removed", with = "duration")]
    pub clean_removed_after: std::time::Duration,
}

fn default_registry_path() -> PathBuf {
    RegistryConfig::default().path
}
fn default_registry_flush() -> std::time::Duration {
    RegistryConfig::default().flush
}
fn default_clean_removed() -> std::time::Duration {
    RegistryConfig::default().clean_removed_after
}

impl Default for RegistrySection {
    fn default() -> Self {
        let d = RegistryConfig::default();
        RegistrySection {
            path: d.path,
            flush: d.flush,
            clean_removed_after: d.clean_removed_after,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    inputs: Vec<InputConfig>,
    #[serde(default)]
    registry: RegistrySection,
    #[serde(default)]
    output: OutputsConfig,
    #[serde(default)]
    processors: Vec<Value>,
    #[serde(default, with = "duration::option")]
    shutdown_timeout: Option<std::time::Duration>,
    #[serde(default)]
    http: crate::http::HttpConfig,
}

/// The configuration of `logtide-files run`.
#[derive(Clone, Debug, PartialEq)]
pub struct FilesConfig {
    /// The inputs (at least one).
    pub inputs: Vec<InputConfig>,
    /// The registry.
    pub registry: RegistrySection,
    /// The output.
    pub output: OutputConfig,
    /// Processors applied to every event (after the input's own).
    pub processors: Vec<Value>,
    /// How long shutdown waits for in-flight events to be acknowledged.
    pub shutdown_timeout: std::time::Duration,
    /// The self-monitoring endpoint (`http.enabled`, `http.host`, `http.port`).
    pub http: crate::http::HttpConfig,
}

/// Moves Filebeat's top-level names to logtide's: `filebeat.inputs` → `inputs`,
/// `filebeat.registry.*` → `registry.*`.
fn apply_aliases(value: &mut Value) -> Result<(), String> {
    let Value::Object(root) = value else {
        return Err("the configuration must be a map of keys".into());
    };
    if let Some(Value::Object(mut fb)) = root.remove("filebeat") {
        if let Some(inputs) = fb.remove("inputs") {
            if root.insert("inputs".into(), inputs).is_some() {
                return Err("inputs and filebeat.inputs are both set".into());
            }
        }
        if let Some(Value::Object(reg)) = fb.remove("registry") {
            let target = root
                .entry("registry")
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(target) = target else {
                return Err("registry must be a map".into());
            };
            for (k, v) in reg {
                if target.insert(k.clone(), v).is_some() {
                    return Err(format!(
                        "registry.{k} and filebeat.registry.{k} are both set"
                    ));
                }
            }
        }
        if let Some(k) = fb.keys().next() {
            return Err(format!("filebeat.{k}: unknown field"));
        }
    }
    Ok(())
}

impl FilesConfig {
    /// Loads and validates a logtide-files configuration file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        load_file(path, Self::from_yaml)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, Error> {
        let bad = invalid(origin);
        let mut value = document(text, origin, &["processors"])?;
        apply_aliases(&mut value).map_err(bad)?;
        let raw: RawFiles = typed(value, origin)?;
        if raw.inputs.is_empty() {
            return Err(bad("inputs: at least one input is required".into()));
        }
        for (i, input) in raw.inputs.iter().enumerate() {
            if input.kind != "container" {
                return Err(bad(format!(
                    "inputs[{i}].type: unsupported input type {:?} (supported: container)",
                    input.kind
                )));
            }
            if input.paths.is_empty() {
                return Err(bad(format!(
                    "inputs[{i}].paths: at least one glob is required"
                )));
            }
        }
        for (i, input) in raw.inputs.iter().enumerate() {
            check_processors(
                &input.processors,
                &format!("inputs[{i}].processors"),
                origin,
            )?;
        }
        check_processors(&raw.processors, "processors", origin)?;
        let output = raw.output.choose().map_err(bad)?;
        Ok(FilesConfig {
            inputs: raw.inputs,
            registry: raw.registry,
            output,
            processors: raw.processors,
            shutdown_timeout: raw
                .shutdown_timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            http: raw.http,
        })
    }

    /// The registry configuration of input `i`: the registry path itself for the first
    /// input, a subdirectory named after the input's id for the others.
    pub fn registry_config(&self, i: usize) -> RegistryConfig {
        let path = match (i, &self.inputs[i].id) {
            (0, None) => self.registry.path.clone(),
            (_, Some(id)) if i > 0 => self.registry.path.join(id),
            (_, id) => self
                .registry
                .path
                .join(id.clone().unwrap_or_else(|| format!("input-{i}"))),
        };
        RegistryConfig {
            path,
            flush: self.registry.flush,
            clean_removed_after: self.registry.clean_removed_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConsoleConfig, KinesisConfig};

    fn load(text: &str) -> Result<FilesConfig, String> {
        FilesConfig::from_yaml(text, Path::new("test.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn http_keys_as_filebeat_has_them() {
        let c = FilesConfig::from_yaml(
            "inputs: [{type: container, paths: [/x/*.log]}]\noutput.console: {}\nhttp.enabled: true\nhttp.host: 0.0.0.0\nhttp.port: 5066",
            Path::new("f.yml"),
        )
        .unwrap();
        assert!(c.http.enabled);
        assert_eq!(c.http.address(crate::http::FILES_PORT), "0.0.0.0:5066");
        let off = FilesConfig::from_yaml(
            "inputs: [{type: container, paths: [/x/*.log]}]\noutput.console: {}",
            Path::new("f.yml"),
        )
        .unwrap();
        assert!(!off.http.enabled);
        let err = FilesConfig::from_yaml(
            "inputs: [{type: container, paths: [/x/*.log]}]\noutput.console: {}\nhttp.prot: 1",
            Path::new("f.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("http.prot"), "{err}");
    }

    #[test]
    fn minimal_and_dotted_and_nested_are_equivalent() {
        let a = load("inputs:\n  - type: container\noutput.console: {}\n").unwrap();
        let b = load("inputs:\n  - type: container\noutput:\n  console: {}\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.inputs[0].paths, ["/var/log/containers/*.log"]);
        assert_eq!(a.registry.path, PathBuf::from("/var/lib/logtide/registry"));
        assert_eq!(a.output, OutputConfig::Console(ConsoleConfig::default()));
    }

    #[test]
    fn kinesis_output_dotted_and_nested_are_equivalent() {
        let a = load("inputs:\n  - type: container\noutput.kinesis:\n  stream_name: logs\n  region: ap-northeast-1\n").unwrap();
        let b = load("inputs:\n  - type: container\noutput:\n  kinesis:\n    stream_name: logs\n    region: ap-northeast-1\n").unwrap();
        let c = load("inputs:\n  - type: container\noutput.kinesis.stream_name: logs\noutput.kinesis.region: ap-northeast-1\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let OutputConfig::Kinesis(k) = a.output else {
            panic!("{:?}", a.output)
        };
        let mut want = KinesisConfig::new("logs");
        want.region = Some("ap-northeast-1".into());
        assert_eq!(k, want);
    }

    #[test]
    fn kinesis_output_takes_every_issue_key() {
        let c = load(
            "inputs:\n  - type: container\noutput.kinesis:\n  stream_name: logs\n  region: ap-northeast-1\n  endpoint: http://127.0.0.1:5000\n  partition_key: kubernetes.pod.uid\n  max_record_bytes: 2097152\n  oversize: truncate\n  dead_letter_path: /tmp/dl\n  aggregate: false\n  compression: gzip\n",
        )
        .unwrap();
        let OutputConfig::Kinesis(k) = c.output else {
            panic!("{:?}", c.output)
        };
        assert_eq!(k.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            k.partition_key,
            logtide_kinesis::PartitionKey::Field("kubernetes.pod.uid".into())
        );
        assert_eq!(
            k.max_record_bytes,
            logtide_kinesis::MaxRecordBytes::Bytes(2 << 20)
        );
        assert_eq!(k.oversize(), logtide_kinesis::OversizePolicy::Truncate);
        assert_eq!(k.dead_letter_path, PathBuf::from("/tmp/dl"));
        assert!(!k.aggregate());
        assert_eq!(k.compression, logtide_kinesis::Compression::Gzip);
    }

    #[test]
    fn filebeat_aliases_load() {
        let c = load(
            "filebeat.inputs:\n  - type: container\n    paths: ['/x/*.log']\n    stream: stderr\nfilebeat.registry.path: /data/reg\nfilebeat.registry.flush: 5s\noutput.file:\n  path: /tmp/out\n  filename: events.ndjson\n",
        )
        .unwrap();
        assert_eq!(c.inputs[0].paths, ["/x/*.log"]);
        assert_eq!(c.inputs[0].stream, StreamFilter::Stderr);
        assert_eq!(c.registry.path, PathBuf::from("/data/reg"));
        assert_eq!(c.registry.flush, std::time::Duration::from_secs(5));
        match c.output {
            OutputConfig::File(f) => {
                assert_eq!(f.filename, "events.ndjson");
                assert_eq!(f.rotate_every_kb, 10240);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("inputs:\n  - type: container\n    pathz: []\noutput.console: {}\n", "test.yml: inputs[0].pathz: unknown field `pathz`, expected one of"),
            ("inputs:\n  - type: log\noutput.console: {}\n", "inputs[0].type: unsupported input type \"log\""),
            ("inputs:\n  - type: container\n", "output: one output must be set"),
            ("inputs:\n  - type: container\noutput.console: {}\noutput.file: {path: /x}\n", "only one output may be set, found output.console and output.file"),
            ("inputs:\n  - type: container\noutput.console: {}\noutput.kinesis: {stream_name: logs}\n", "only one output may be set, found output.console and output.kinesis"),
            ("inputs:\n  - type: container\noutput.kinesis: {stream_name: logs, shards: 2}\n", "output.kinesis.shards: unknown field `shards`"),
            ("inputs:\n  - type: container\noutput.kinesis: {region: x}\n", "output.kinesis: missing field `stream_name`"),
            ("inputs:\n  - type: container\noutput.kinesis: {stream_name: logs, max_record_bytes: 20000000}\n", "output.kinesis.max_record_bytes: 20000000 is outside"),
            ("inputs:\n  - type: container\noutput.kinesis: {stream_name: logs, oversize: drop}\n", "output.kinesis.oversize: unknown variant `drop`"),
            ("inputs:\n  - type: container\noutput.kinesis: {stream_name: 'bad name'}\n", "output.kinesis.stream_name: \"bad name\" is not a stream name"),
            ("inputs:\n  - type: container\noutput.console: {}\nregistry: {flush: soon}\n", "registry.flush: invalid duration \"soon\""),
            ("inputs:\n  - type: container\noutput.console.pretty: true\noutput:\n  console: {pretty: false}\n", "output.console.pretty: set twice"),
            ("inputs: [\n", "invalid YAML"),
            ("inputs:\n  - type: container\n    paths: ['${LOGTIDE_SURELY_UNSET_VAR}']\noutput.console: {}\n", "inputs[0].paths[0]: environment variable LOGTIDE_SURELY_UNSET_VAR is not set"),
            ("output.console: {}\n", "missing field `inputs`"),
        ];
        for (text, want) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn input_sizes_are_numbers_of_bytes_with_whole_large_entries_by_default() {
        let c = load("inputs:\n  - type: container\noutput.console: {}\n").unwrap();
        let t = c.inputs[0].tail_config();
        assert_eq!(
            (t.max_line_bytes, t.max_entry_bytes, t.max_pending_bytes),
            (4 << 20, 16 << 20, 64 << 20)
        );
        let c = load("inputs:\n  - type: container\n    max_bytes: 1048576\n    max_entry_bytes: 33554432\n    max_pending_bytes: 134217728\noutput.console: {}\n").unwrap();
        let t = c.inputs[0].tail_config();
        assert_eq!(
            (t.max_line_bytes, t.max_entry_bytes, t.max_pending_bytes),
            (1 << 20, 32 << 20, 128 << 20)
        );
        let err = load(
            "inputs:\n  - type: container\n    max_pending_bytes: 64MiB\noutput.console: {}\n",
        )
        .unwrap_err();
        assert!(err.contains("inputs[0].max_pending_bytes"), "{err}");
    }

    #[test]
    fn environment_variables_expand_with_defaults() {
        let c = load("inputs:\n  - type: container\n    paths: ['${LOGTIDE_SURELY_UNSET_VAR:/var/log/pods}/*/*.log']\noutput.console: {}\n").unwrap();
        assert_eq!(c.inputs[0].paths, ["/var/log/pods/*/*.log"]);
    }

    #[test]
    fn processor_errors_name_their_position() {
        let err = load("inputs:\n  - type: container\n    processors:\n      - drop_fields: {feilds: [a]}\noutput.console: {}\n").unwrap_err();
        assert!(
            err.contains("inputs[0].processors[0].drop_fields: unknown key \"feilds\""),
            "{err}"
        );
        let err = load("inputs:\n  - type: container\noutput.console: {}\nprocessors:\n  - drop_fields: {fields: [a]}\n  - nonsense: {}\n").unwrap_err();
        assert!(err.contains("processors[1]"), "{err}");
        let ok = load("inputs:\n  - type: container\noutput.console: {}\nprocessors:\n  - decode_json_fields: {fields: [message], target: message-json}\n").unwrap();
        assert_eq!(ok.processors.len(), 1);
    }

    #[test]
    fn several_inputs_get_their_own_registry() {
        let c = load("inputs:\n  - type: container\n  - type: container\n    id: extra\noutput.console: {}\n").unwrap();
        assert_eq!(
            c.registry_config(0).path,
            PathBuf::from("/var/lib/logtide/registry")
        );
        assert_eq!(
            c.registry_config(1).path,
            PathBuf::from("/var/lib/logtide/registry/extra")
        );
    }
}
