//! The log path matcher: what a container log file's path says about the container that
//! wrote it. The layouts and the matching policy are documented on [`match_log_path`], so
//! that rustdoc shows them.

use std::path::Path;

use serde::Serialize;

/// The metadata one log file's path carries; `None` where its layout does not say.
///
/// Serializes as a JSON object with exactly the keys `pod`, `namespace`, `container`,
/// `container_id`, `pod_uid` and `restart_count` (a decimal string), `null` where unknown.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LogPathInfo {
    /// Pod name.
    pub pod: Option<String>,
    /// Namespace of the pod.
    pub namespace: Option<String>,
    /// Container name, as in the pod spec.
    pub container: Option<String>,
    /// Container id (64 hex digits, without a runtime prefix such as `containerd://`).
    pub container_id: Option<String>,
    /// Pod UID.
    pub pod_uid: Option<String>,
    /// How many times the container had restarted when it wrote this file. Serialized as
    /// a decimal string, as Kubernetes metadata values are (`"0"`).
    #[serde(serialize_with = "decimal_string")]
    pub restart_count: Option<u32>,
    /// Which layout the path matched. Not serialized.
    #[serde(skip)]
    pub layout: LogPathLayout,
}

/// The path layouts [`match_log_path`] recognises; its documentation shows each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogPathLayout {
    /// Kubelet's symlink: `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`.
    ContainerLink,
    /// Kubelet's container log file:
    /// `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<n>.log[.<YYYYMMDD-HHMMSS>]`.
    PodLog,
    /// Docker's json-file log: `/var/lib/docker/containers/<id>/<id>-json.log[.<k>]`.
    DockerJson,
    /// A file in a pod volume: `/var/lib/kubelet/pods/<pod uid>/volumes/<plugin>/<volume>/…`.
    PodVolume,
}

/// Reads the pod, namespace, container, container id, pod uid and restart count from a
/// log file's path, or returns `None` when the path matches none of the layouts below.
/// Never touches the file system and never panics.
///
/// Kubelet and the docker daemon name log files after the pod and container they belong
/// to. These layouts are recognised (`<…>` is any prefix, see below):
///
/// | layout ([`LogPathLayout`]) | path | gives |
/// |---|---|---|
/// | [`ContainerLink`](LogPathLayout::ContainerLink) | `<…>/containers/<pod>_<namespace>_<container>-<id>.log` | pod, namespace, container, container id |
/// | [`PodLog`](LogPathLayout::PodLog) | `<…>/pods/<namespace>_<pod>_<pod uid>/<container>/<n>.log` and rotated `<n>.log.<YYYYMMDD-HHMMSS>` | pod, namespace, container, pod uid, restart count |
/// | [`DockerJson`](LogPathLayout::DockerJson) | `<…>/containers/<id>/<id>-json.log` and rotated `<id>-json.log.<k>` | container id |
/// | [`PodVolume`](LogPathLayout::PodVolume) | `<…>/pods/<pod uid>/volumes/<plugin>/<volume>/…/<file>` | pod uid |
///
/// On a default node these are `/var/log/containers` (kubelet's symlinks),
/// `/var/log/pods` (the files the container runtime writes for kubelet), `/var/lib/docker/containers`
/// (docker's json-file driver) and `/var/lib/kubelet/pods` (pod volumes, for files an
/// application writes to an `emptyDir`, as Filebeat's `resource_type: pod` reads them).
///
/// # Matching policy
///
/// - The path is read as written: no file system access, no normalisation. Only the
///   trailing components are checked, up to and including the directory that names the
///   layout (`containers` or `pods`); whatever comes before it is not looked at. So
///   `/host/var/log/pods/…`, a relative `pods/…` and a docker data root elsewhere match,
///   while a file under any other directory (`/var/log/other/<id>.log`,
///   `/invalid/dir/<ns>_<pod>_<uid>/<container>/0.log`) or a bare file name does not.
/// - Both `/` and `\` separate components, so paths from Windows nodes
///   (`C:\ProgramData\Docker\containers\…`, `C:\var\log\pods\…`) match as well. None of
///   the checked components may contain either character, so this changes nothing for the
///   components a layout reads.
/// - Every component a layout reads is validated as Kubernetes validates the value:
///   namespaces and container names are DNS-1123 labels (lowercase letters, digits and
///   `-`, alphanumeric at both ends, at most 63 bytes), pod names DNS-1123 subdomains
///   (labels joined by `.`, at most 253 bytes). Container ids are exactly 64 lowercase
///   hex digits, and in the docker layout the directory and the file name carry the same
///   id. An empty, `.` or `..` component where a layout reads one never matches.
/// - A pod uid is any non-empty run of ASCII letters, digits and `-`: kubelet uses the
///   pod's UID verbatim, which is a UUID for pods from the API server, a 32-digit hex hash
///   for static pods, or whatever a static pod's manifest sets.
/// - Restart counts are decimal without leading zeros (as kubelet writes them) and must
///   fit a `u32`; rotation timestamps are exactly `YYYYMMDD-HHMMSS`; docker rotation
///   numbers are decimal from 1, without leading zeros.
/// - Compressed rotated files (`0.log.20240101-120000.gz`, `<id>-json.log.1.gz`) do not
///   match: their content is gzip, not log lines, and no tailer reads them.
/// - Kubelet cuts a symlink name longer than 255 bytes, which removes the container id;
///   such a name does not match.
///
/// # Example
///
/// ```
/// use logtide_k8s_meta::{match_log_path, LogPathLayout};
///
/// let info = match_log_path("/var/log/pods/prod_web-0_49cc7c1fd3702c40b2686ea7486091d3/nginx/3.log")
///     .expect("a kubelet pod log");
/// assert_eq!(info.layout, LogPathLayout::PodLog);
/// assert_eq!(info.restart_count, Some(3));
/// assert!(match_log_path("/var/log/syslog").is_none());
/// ```
pub fn match_log_path(path: impl AsRef<Path>) -> Option<LogPathInfo> {
    match_bytes(path.as_ref().as_os_str().as_encoded_bytes())
}

/// The last four components of a path, file name first; `None` where the path is shorter.
type Tail<'a> = [Option<&'a [u8]>; 4];

fn match_bytes(path: &[u8]) -> Option<LogPathInfo> {
    let mut components = path.rsplit(|&b| is_separator(b));
    let tail: Tail<'_> = std::array::from_fn(|_| components.next());
    container_link(&tail)
        .or_else(|| docker_json(&tail))
        .or_else(|| pod_log(&tail))
        .or_else(|| pod_volume(path))
}

fn is_separator(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// `containers/<pod>_<namespace>_<container>-<64 hex id>.log`
fn container_link(tail: &Tail<'_>) -> Option<LogPathInfo> {
    let [Some(file), Some(b"containers"), ..] = *tail else {
        return None;
    };
    let stem = file.strip_suffix(b".log")?;
    let (head, id) = stem.split_at_checked(stem.len().checked_sub(CONTAINER_ID_LEN)?)?;
    let head = head.strip_suffix(b"-")?;
    let [pod, namespace, container] = split3(head, b'_')?;
    if !(is_dns_subdomain(pod)
        && is_dns_label(namespace)
        && is_dns_label(container)
        && is_container_id(id))
    {
        return None;
    }
    Some(LogPathInfo {
        pod: Some(text(pod)?),
        namespace: Some(text(namespace)?),
        container: Some(text(container)?),
        container_id: Some(text(id)?),
        pod_uid: None,
        restart_count: None,
        layout: LogPathLayout::ContainerLink,
    })
}

/// `containers/<64 hex id>/<64 hex id>-json.log[.<k>]`
fn docker_json(tail: &Tail<'_>) -> Option<LogPathInfo> {
    let [Some(file), Some(dir), Some(b"containers"), _] = *tail else {
        return None;
    };
    let rest = file.strip_prefix(dir)?.strip_prefix(b"-json.log")?;
    let rotation_ok = match rest.strip_prefix(b".") {
        None => rest.is_empty(),
        Some(k) => k.first().is_some_and(|&b| b != b'0') && is_digits(k),
    };
    if !(rotation_ok && is_container_id(dir)) {
        return None;
    }
    Some(LogPathInfo {
        pod: None,
        namespace: None,
        container: None,
        container_id: Some(text(dir)?),
        pod_uid: None,
        restart_count: None,
        layout: LogPathLayout::DockerJson,
    })
}

/// `pods/<namespace>_<pod>_<pod uid>/<container>/<n>.log[.<YYYYMMDD-HHMMSS>]`
fn pod_log(tail: &Tail<'_>) -> Option<LogPathInfo> {
    let [Some(file), Some(container), Some(pod_dir), Some(b"pods")] = *tail else {
        return None;
    };
    let [namespace, pod, uid] = split3(pod_dir, b'_')?;
    let dot = file.iter().position(|&b| b == b'.')?;
    let (count, rest) = file.split_at(dot);
    let rotation_ok = match rest.strip_prefix(b".log")? {
        b"" => true,
        [b'.', stamp @ ..] => is_rotation_timestamp(stamp),
        _ => false,
    };
    if !(rotation_ok
        && is_dns_label(namespace)
        && is_dns_subdomain(pod)
        && is_pod_uid(uid)
        && is_dns_label(container))
    {
        return None;
    }
    Some(LogPathInfo {
        pod: Some(text(pod)?),
        namespace: Some(text(namespace)?),
        container: Some(text(container)?),
        container_id: None,
        pod_uid: Some(text(uid)?),
        restart_count: Some(restart_count(count)?),
        layout: LogPathLayout::PodLog,
    })
}

/// `pods/<pod uid>/volumes/<plugin>/<volume>/…/<file>`, at the first `pods` directory
/// that has this shape.
fn pod_volume(path: &[u8]) -> Option<LogPathInfo> {
    let parts: Vec<&[u8]> = path.split(|&b| is_separator(b)).collect();
    let start = (0..parts.len()).find(|&i| match &parts[i..] {
        [b"pods", uid, b"volumes", _plugin, _volume, _file, ..] => is_pod_uid(uid),
        _ => false,
    })?;
    // The plugin and volume directories, anything below them and the file name.
    let below = &parts[start + 3..];
    if below.iter().any(|p| matches!(*p, b"" | b"." | b"..")) {
        return None;
    }
    Some(LogPathInfo {
        pod: None,
        namespace: None,
        container: None,
        container_id: None,
        pod_uid: Some(text(parts[start + 1])?),
        restart_count: None,
        layout: LogPathLayout::PodVolume,
    })
}

const CONTAINER_ID_LEN: usize = 64;

/// Splits at `sep` into exactly three parts.
fn split3(s: &[u8], sep: u8) -> Option<[&[u8]; 3]> {
    let mut parts = s.split(|&b| b == sep);
    let three = [parts.next()?, parts.next()?, parts.next()?];
    parts.next().is_none().then_some(three)
}

/// The bytes as a `String`; every caller has checked that they are ASCII.
fn text(s: &[u8]) -> Option<String> {
    std::str::from_utf8(s).ok().map(str::to_owned)
}

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Decimal, no leading zeros, fits a `u32`.
fn decimal_string<S: serde::Serializer>(n: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.collect_str(n),
        None => s.serialize_none(),
    }
}

fn restart_count(s: &[u8]) -> Option<u32> {
    if !is_digits(s) || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `YYYYMMDD-HHMMSS`, kubelet's suffix for a rotated file.
fn is_rotation_timestamp(s: &[u8]) -> bool {
    s.len() == 15 && s[8] == b'-' && is_digits(&s[..8]) && is_digits(&s[9..])
}

fn is_container_id(s: &[u8]) -> bool {
    s.len() == CONTAINER_ID_LEN && s.iter().all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_pod_uid(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Lowercase letters, digits and `-`, alphanumeric at both ends; no length limit.
fn is_label_chars(s: &[u8]) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    s.first().is_some_and(alnum)
        && s.last().is_some_and(alnum)
        && s.iter().all(|b| alnum(b) || *b == b'-')
}

/// A DNS-1123 label: at most 63 bytes.
fn is_dns_label(s: &[u8]) -> bool {
    s.len() <= 63 && is_label_chars(s)
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 bytes in all.
fn is_dns_subdomain(s: &[u8]) -> bool {
    s.len() <= 253 && s.split(|&b| b == b'.').all(is_label_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
    const UUID: &str = "005f3b90-4b9d-12f8-acf0-31020a840133";

    /// `(path, expected)` where expected is `(pod, namespace, container, container id,
    /// pod uid, restart count)`, or `None` for no match.
    type Expected<'a> = Option<(
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<u32>,
    )>;

    fn check(path: &str, want: Expected<'_>) {
        let got = match_log_path(path).map(|i| {
            (
                i.pod,
                i.namespace,
                i.container,
                i.container_id,
                i.pod_uid,
                i.restart_count,
            )
        });
        let want = want.map(|(p, n, c, id, uid, r)| {
            let own = |s: Option<&str>| s.map(str::to_owned);
            (own(p), own(n), own(c), own(id), own(uid), r)
        });
        assert_eq!(got, want, "path {path:?}");
    }

    #[test]
    fn container_links() {
        let link = |name: &str| format!("/var/log/containers/{name}");
        let ok = |pod, ns, c| Some((Some(pod), Some(ns), Some(c), Some(CID), None, None));
        let cases: Vec<(String, Expected<'_>)> = vec![
            (
                link(&format!(
                    "kube-proxy-4d7nt_kube-system_kube-proxy-{CID}.log"
                )),
                ok("kube-proxy-4d7nt", "kube-system", "kube-proxy"),
            ),
            (
                link(&format!("web.v1-0_prod_nginx-{CID}.log")),
                ok("web.v1-0", "prod", "nginx"),
            ),
            (link(&format!("a_b_c-{CID}.log")), ok("a", "b", "c")),
            (
                format!("/host/var/log/containers/p_ns_side-car-{CID}.log"),
                ok("p", "ns", "side-car"),
            ),
            (
                format!(r"C:\var\log\containers\p_ns_c-{CID}.log"),
                ok("p", "ns", "c"),
            ),
            (format!("containers/p_ns_c-{CID}.log"), ok("p", "ns", "c")),
            // Malformed.
            (link("pod_ns_container_01234567.log"), None),
            (link(&format!("pod_ns_container_{CID}.log")), None),
            (link(&format!("pod_ns_container{CID}.log")), None),
            (link(&format!("pod_ns_c-{}.log", &CID[1..])), None),
            (link(&format!("pod_ns_c-0{CID}.log")), None),
            (link(&format!("pod_ns_c-{}.log", CID.to_uppercase())), None),
            (link(&format!("pod_ns_c-{}g.log", &CID[1..])), None),
            (link(&format!("pod_ns_c-{CID}.log.1")), None),
            (link(&format!("pod_ns_c-{CID}")), None),
            (link(&format!("pod_ns_c-{CID}.LOG")), None),
            (link(&format!("_ns_c-{CID}.log")), None),
            (link(&format!("pod__c-{CID}.log")), None),
            (link(&format!("pod_ns_-{CID}.log")), None),
            (link(&format!("pod_ns-{CID}.log")), None),
            (link(&format!("pod_ns_c_d-{CID}.log")), None),
            (link(&format!("Pod_ns_c-{CID}.log")), None),
            (link(&format!("pod_ns.x_c-{CID}.log")), None),
            (link(&format!("pod_ns_c.x-{CID}.log")), None),
            (link(&format!("pod-_ns_c-{CID}.log")), None),
            (link(&format!("pod..a_ns_c-{CID}.log")), None),
            (link(&format!("pod_ns_c--{CID}.log")), None),
            (link(&format!("pod_{}_c-{CID}.log", "n".repeat(64))), None),
            (link(&format!("{}_ns_c-{CID}.log", "p".repeat(254))), None),
            (link(&format!("-{CID}.log")), None),
            (link(&format!("{CID}.log")), None),
            (link(".log"), None),
            (link(""), None),
            (format!("/var/log/other/p_ns_c-{CID}.log"), None),
            (format!("p_ns_c-{CID}.log"), None),
        ];
        for (path, want) in cases {
            check(&path, want);
        }
        let long = "n".repeat(63);
        check(
            &link(&format!("p_{long}_c-{CID}.log")),
            Some((
                Some("p"),
                Some(long.as_str()),
                Some("c"),
                Some(CID),
                None,
                None,
            )),
        );
    }

    #[test]
    fn pod_logs() {
        let pods = |rest: &str| format!("/var/log/pods/{rest}");
        let ok =
            |pod, ns, c, uid, n| Some((Some(pod), Some(ns), Some(c), None, Some(uid), Some(n)));
        let cases: Vec<(String, Expected<'_>)> = vec![
            (
                pods(&format!("namespace_pod-name_{UUID}/container/0.log")),
                ok("pod-name", "namespace", "container", UUID, 0),
            ),
            (
                pods(&format!("ns_p_{UUID}/c/0.log.20220221-210912")),
                ok("p", "ns", "c", UUID, 0),
            ),
            (
                pods("some_kube-scheduler-kind-control-plane_49cc7c1fd3702c40b2686ea7486091d3/kube-scheduler44/1.log"),
                ok("kube-scheduler-kind-control-plane", "some", "kube-scheduler44", "49cc7c1fd3702c40b2686ea7486091d3", 1),
            ),
            (
                pods("sandbox0-ns_sandbox0-name_sandbox0-uid/sandbox0-container0-name/1.log"),
                ok("sandbox0-name", "sandbox0-ns", "sandbox0-container0-name", "sandbox0-uid", 1),
            ),
            (
                pods(&format!("ns_web.v1-0_{UUID}/c/4294967295.log")),
                ok("web.v1-0", "ns", "c", UUID, u32::MAX),
            ),
            (
                pods(&format!("ns_p_{UUID}/c/12.log.20240101-120000")),
                ok("p", "ns", "c", UUID, 12),
            ),
            (
                format!(r"C:\var\log\pods\ns_p_{UUID}\c\0.log"),
                ok("p", "ns", "c", UUID, 0),
            ),
            (
                format!("/mnt/host/var/log/pods/ns_p_{UUID}/c/0.log"),
                ok("p", "ns", "c", UUID, 0),
            ),
            (format!("pods/ns_p_{UUID}/c/0.log"), ok("p", "ns", "c", UUID, 0)),
            // Malformed.
            (pods(&format!("ns_p_{UUID}/c/0.log.20220221-210526.gz")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.gz")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.20220221210526")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.2022022-2105266")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.20220221-21052")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.20220221-2105266")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.20220221-21052x")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.tmp")), None),
            (pods(&format!("ns_p_{UUID}/c/0.log.")), None),
            (pods(&format!("ns_p_{UUID}/c/0.logx")), None),
            (pods(&format!("ns_p_{UUID}/c/0")), None),
            (pods(&format!("ns_p_{UUID}/c/.log")), None),
            (pods(&format!("ns_p_{UUID}/c/01.log")), None),
            (pods(&format!("ns_p_{UUID}/c/-1.log")), None),
            (pods(&format!("ns_p_{UUID}/c/+1.log")), None),
            (pods(&format!("ns_p_{UUID}/c/4294967296.log")), None),
            (pods(&format!("ns_p_{UUID}/c/c_0.log")), None),
            (pods(&format!("ns_p_{UUID}/c/3/real.log")), None),
            // A container named like a layout directory.
            (
                pods(&format!("ns_p_{UUID}/containers/0.log")),
                ok("p", "ns", "containers", UUID, 0),
            ),
            (
                pods(&format!("ns_p_{UUID}/pods/0.log")),
                ok("p", "ns", "pods", UUID, 0),
            ),
            (pods(&format!("ns_p_{UUID}/C/0.log")), None),
            (pods(&format!("ns_p_{UUID}/c.d/0.log")), None),
            (pods(&format!("ns_p_{UUID}//0.log")), None),
            (pods(&format!("ns_p_{UUID}/c/")), None),
            (pods(&format!("ns_p_{UUID}/c")), None),
            (pods(&format!("{UUID}/container/0.log")), None),
            (pods(&format!("ns_{UUID}/c/0.log")), None),
            (pods(&format!("ns_p_{UUID}_x/c/0.log")), None),
            (pods(&format!("_p_{UUID}/c/0.log")), None),
            (pods(&format!("ns__{UUID}/c/0.log")), None),
            (pods("ns_p_/c/0.log"), None),
            (pods("ns_p_u.id/c/0.log"), None),
            (pods(&format!("corp.logging_p_{UUID}/c/0.log")), None),
            (pods(&format!("corp.logging_p_{UUID}/c/datafile")), None),
            (pods(&format!("ns_P_{UUID}/c/0.log")), None),
            (pods("other"), None),
            (format!("/invalid/dir/namespace_pod-name_{UUID}/container/0.log"), None),
            (format!("/var/log/pod/ns_p_{UUID}/c/0.log"), None),
        ];
        for (path, want) in cases {
            check(&path, want);
        }
    }

    #[test]
    fn docker_json_files() {
        let docker = |rest: &str| format!("/var/lib/docker/containers/{rest}");
        let ok = Some((None, None, None, Some(CID), None, None));
        let cases: Vec<(String, Expected<'_>)> = vec![
            (docker(&format!("{CID}/{CID}-json.log")), ok),
            (docker(&format!("{CID}/{CID}-json.log.1")), ok),
            (docker(&format!("{CID}/{CID}-json.log.10")), ok),
            (
                format!(r"C:\ProgramData\Docker\containers\{CID}\{CID}-json.log"),
                ok,
            ),
            (format!("/data/docker/containers/{CID}/{CID}-json.log"), ok),
            // Malformed.
            (docker("01234567/89abcdef-json.log"), None),
            (docker("01234567/01234567-json.log"), None),
            (
                docker(&format!("{CID}/{}-json.log", CID.replace('0', "1"))),
                None,
            ),
            (
                docker(&format!("{0}/{0}-json.log", CID.to_uppercase())),
                None,
            ),
            (docker(&format!("{CID}/{CID}-json.log.0")), None),
            (docker(&format!("{CID}/{CID}-json.log.01")), None),
            (docker(&format!("{CID}/{CID}-json.log.1.gz")), None),
            (docker(&format!("{CID}/{CID}-json.log.")), None),
            (docker(&format!("{CID}/{CID}-json.logs")), None),
            (docker(&format!("{CID}/{CID}.log")), None),
            (docker(&format!("{CID}/config.v2.json")), None),
            (docker(&format!("{CID}/local-logs/container.log")), None),
            (docker(&format!("{CID}/{CID}-json.log/x")), None),
            (format!("/var/lib/docker/{CID}/{CID}-json.log"), None),
            (format!("{CID}/{CID}-json.log"), None),
        ];
        for (path, want) in cases {
            check(&path, want);
        }
    }

    #[test]
    fn pod_volumes() {
        let ok = Some((None, None, None, None, Some(UUID), None));
        let cases: Vec<(String, Expected<'_>)> = vec![
            (
                format!("/var/lib/kubelet/pods/{UUID}/volumes/kubernetes.io~empty-dir/applogs/server.log"),
                ok,
            ),
            (
                format!(r"C:\var\lib\kubelet\pods\{UUID}\volumes\kubernetes.io~empty-dir\applogs\server.log"),
                ok,
            ),
            (
                format!("/var/lib/kubelet/pods/{UUID}/volumes/kubernetes.io~empty-dir/logs/a/b/app.txt"),
                ok,
            ),
            // Malformed.
            (
                format!("/invalid/dir/{UUID}/volumes/kubernetes.io~empty-dir/applogs/server.log"),
                None,
            ),
            (format!("/var/lib/kubelet/pods/{UUID}/volumes/kubernetes.io~empty-dir/applogs"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/volumes/kubernetes.io~empty-dir/applogs/"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/volumes/x//f"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/volumes/x/v/../../../../../etc/passwd"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/volumes/x/./f"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/containers/c/1234abcd"), None),
            (format!("/var/lib/kubelet/pods/{UUID}/etc-hosts"), None),
            ("/var/lib/kubelet/pods/u.id/volumes/x/v/f".to_owned(), None),
            ("/var/lib/kubelet/pods//volumes/x/v/f".to_owned(), None),
        ];
        for (path, want) in cases {
            check(&path, want);
        }
    }

    #[test]
    fn other_paths() {
        for path in [
            "",
            "/",
            "//",
            "\\",
            ".log",
            "/var/log/messages",
            "/var/log/containers",
            "/var/log/containers/",
            "/var/log/pods",
            "/var/log/pods/",
            "/var/lib/docker/containers/",
            "containers",
            "pods",
        ] {
            check(path, None);
        }
        check(&format!("/var/log/other/{CID}.log"), None);
    }

    #[test]
    fn layouts_are_reported() {
        let layout = |p: String| match_log_path(p).map(|i| i.layout);
        assert_eq!(
            layout(format!("/var/log/containers/p_ns_c-{CID}.log")),
            Some(LogPathLayout::ContainerLink)
        );
        assert_eq!(
            layout(format!("/var/log/pods/ns_p_{UUID}/c/0.log")),
            Some(LogPathLayout::PodLog)
        );
        assert_eq!(
            layout(format!("/var/lib/docker/containers/{CID}/{CID}-json.log")),
            Some(LogPathLayout::DockerJson)
        );
        assert_eq!(
            layout(format!("/var/lib/kubelet/pods/{UUID}/volumes/p/v/f.log")),
            Some(LogPathLayout::PodVolume)
        );
    }

    #[test]
    fn serializes_with_six_keys() {
        let info = match_log_path(format!("/var/log/pods/ns_p_{UUID}/c/7.log")).unwrap();
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::json!({
                "pod": "p", "namespace": "ns", "container": "c", "container_id": null,
                "pod_uid": UUID, "restart_count": "7"
            })
        );
        assert_eq!(serde_json::to_string(&None::<LogPathInfo>).unwrap(), "null");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_prefix_is_not_looked_at() {
        use std::os::unix::ffi::OsStrExt;
        let mut raw = b"/\xff\xfe/var/log/pods/".to_vec();
        raw.extend_from_slice(format!("ns_p_{UUID}/c/0.log").as_bytes());
        let path = Path::new(std::ffi::OsStr::from_bytes(&raw));
        assert_eq!(match_log_path(path).and_then(|i| i.restart_count), Some(0));
        let mut raw = b"/var/log/pods/ns_p_\xff/c/0.log".to_vec();
        raw.push(b'\x80');
        assert_eq!(match_log_path(std::ffi::OsStr::from_bytes(&raw)), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A DNS-1123 label of `1..=max` bytes.
        fn label(max: usize) -> impl Strategy<Value = String> {
            let inner = max.saturating_sub(2);
            prop_oneof![
                "[a-z0-9]",
                (
                    "[a-z0-9]",
                    proptest::string::string_regex(&format!("[-a-z0-9]{{0,{inner}}}")).unwrap(),
                    "[a-z0-9]"
                )
                    .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
            ]
        }

        fn subdomain() -> impl Strategy<Value = String> {
            proptest::collection::vec(label(20), 1..5).prop_map(|ls| ls.join("."))
        }

        fn container_id() -> impl Strategy<Value = String> {
            "[0-9a-f]{64}"
        }

        fn pod_uid() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[0-9a-f]{32}",
                "[A-Za-z0-9-]{1,40}",
            ]
        }

        /// Some prefix ending in a separator, with the separator the rest uses.
        fn prefix() -> impl Strategy<Value = (String, char)> {
            (
                proptest::collection::vec("[A-Za-z0-9._ ~-]{1,8}", 0..4),
                prop::bool::ANY,
                prop::bool::ANY,
            )
                .prop_map(|(dirs, windows, absolute)| {
                    let sep = if windows { '\\' } else { '/' };
                    let mut s = String::new();
                    if absolute {
                        s.push(sep);
                    }
                    for d in dirs {
                        s.push_str(&d);
                        s.push(sep);
                    }
                    (s, sep)
                })
        }

        fn timestamp() -> impl Strategy<Value = Option<String>> {
            proptest::option::of("[0-9]{8}-[0-9]{6}")
        }

        proptest! {
            #[test]
            fn container_links_round_trip(
                (pre, sep) in prefix(),
                pod in subdomain(),
                ns in label(63),
                c in label(63),
                id in container_id(),
            ) {
                let path = format!("{pre}containers{sep}{pod}_{ns}_{c}-{id}.log");
                let info = match_log_path(&path).expect("matches");
                prop_assert_eq!(info.layout, LogPathLayout::ContainerLink);
                prop_assert_eq!(info.pod, Some(pod));
                prop_assert_eq!(info.namespace, Some(ns));
                prop_assert_eq!(info.container, Some(c));
                prop_assert_eq!(info.container_id, Some(id));
                prop_assert_eq!(info.pod_uid, None);
                prop_assert_eq!(info.restart_count, None);
            }

            #[test]
            fn pod_logs_round_trip(
                (pre, sep) in prefix(),
                ns in label(63),
                pod in subdomain(),
                uid in pod_uid(),
                c in label(63),
                n in any::<u32>(),
                stamp in timestamp(),
            ) {
                let rotated = stamp.map(|s| format!(".{s}")).unwrap_or_default();
                let path = format!("{pre}pods{sep}{ns}_{pod}_{uid}{sep}{c}{sep}{n}.log{rotated}");
                let info = match_log_path(&path).expect("matches");
                prop_assert_eq!(info.layout, LogPathLayout::PodLog);
                prop_assert_eq!(info.pod, Some(pod));
                prop_assert_eq!(info.namespace, Some(ns));
                prop_assert_eq!(info.container, Some(c));
                prop_assert_eq!(info.container_id, None);
                prop_assert_eq!(info.pod_uid, Some(uid));
                prop_assert_eq!(info.restart_count, Some(n));
                // Compressed, the same file is not matched.
                prop_assert_eq!(match_log_path(format!("{path}.gz")), None);
            }

            #[test]
            fn docker_json_round_trip(
                (pre, sep) in prefix(),
                id in container_id(),
                k in proptest::option::of(1u32..),
            ) {
                let rotated = k.map(|k| format!(".{k}")).unwrap_or_default();
                let path = format!("{pre}containers{sep}{id}{sep}{id}-json.log{rotated}");
                let info = match_log_path(&path).expect("matches");
                prop_assert_eq!(info.layout, LogPathLayout::DockerJson);
                prop_assert_eq!(info.container_id, Some(id));
                prop_assert_eq!(
                    (info.pod, info.namespace, info.container, info.pod_uid, info.restart_count),
                    (None, None, None, None, None)
                );
            }

            #[test]
            fn pod_volumes_round_trip(
                (pre, sep) in prefix(),
                uid in pod_uid(),
                below in proptest::collection::vec("[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,10}", 3..6),
            ) {
                let below = below.join(&sep.to_string());
                let path = format!("{pre}pods{sep}{uid}{sep}volumes{sep}{below}");
                let info = match_log_path(&path).expect("matches");
                prop_assert_eq!(info.layout, LogPathLayout::PodVolume);
                prop_assert_eq!(info.pod_uid, Some(uid));
            }

            #[test]
            fn arbitrary_strings_do_not_panic(s in any::<String>()) {
                let _ = match_log_path(&s);
            }

            #[test]
            fn near_misses_do_not_panic(
                s in "[/\\\\_.a-f0-9-]{0,40}(containers|pods|volumes|log|json)?[/\\\\_.a-f0-9-]{0,80}"
            ) {
                let _ = match_log_path(&s);
            }

            #[cfg(unix)]
            #[test]
            fn arbitrary_bytes_do_not_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
                use std::os::unix::ffi::OsStrExt;
                let _ = match_log_path(std::ffi::OsStr::from_bytes(&b));
            }
        }
    }
}
