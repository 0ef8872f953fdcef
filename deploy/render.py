#!/usr/bin/env python3
"""Renders the Helm chart into deploy/manifests/ and lints it, with Helm's own engine.

    python3 deploy/render.py           # write deploy/manifests/*.yaml
    python3 deploy/render.py --check   # fail if deploy/manifests/ differs from the chart

Helm's template engine and linter come from the helm-python-sdk package (Helm's Go SDK
behind a C interface; no helm binary, no cluster):
`python3 -m pip install helm-python-sdk==0.2.2`. The output is what
`helm template logtide deploy/helm/logtide --namespace logtide` prints, one file per
template, without the `# Source:` lines.

deploy/manifests/<template>.yaml: the chart with its default values.
deploy/manifests/extras/servicemonitor.yaml: the ServiceMonitor the chart adds with
`serviceMonitor.enabled=true` (for clusters running the Prometheus Operator).
deploy/variants/relay-alerts.yaml: the RBAC, configurations and relay the chart renders
with `relay.alerts.enabled=true` (apply deploy/crds/ first); not part of manifests/.
"""

import argparse
import difflib
import sys
from pathlib import Path

from helm_python import chart as helm_chart

DEPLOY = Path(__file__).resolve().parent
CHART = DEPLOY / "helm" / "logtide"
MANIFESTS = DEPLOY / "manifests"
VARIANTS = DEPLOY / "variants"
RELEASE = "logtide"
NAMESPACE = "logtide"
HEADER = (
    "# Rendered from deploy/helm/logtide ({values}) by deploy/render.py:\n"
    "# edit the chart, then run `python3 deploy/render.py`.\n"
)


def render(values):
    chart = helm_chart.Chart.load(str(CHART))
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    out = {}
    for source, text in rendered.items():
        name = Path(source).name
        if name.startswith("_") or not name.endswith(".yaml"):
            continue
        body = "\n".join(line.rstrip() for line in text.strip().splitlines())
        if body:
            out[name] = body + "\n"
    return out


def wanted():
    files = {}
    for name, body in render(None).items():
        files[MANIFESTS / name] = HEADER.format(values="default values") + body
    monitored = render({"serviceMonitor": {"enabled": True}})
    files[MANIFESTS / "extras" / "servicemonitor.yaml"] = (
        HEADER.format(values="serviceMonitor.enabled=true") + monitored["servicemonitor.yaml"]
    )
    alerting = render(ALERTS)
    files[VARIANTS / "relay-alerts.yaml"] = HEADER.format(
        values="relay.alerts.enabled=true"
    ) + "---\n".join(alerting[name] for name in ("rbac.yaml", "configmaps.yaml", "relay.yaml"))
    return files


def crd_problems():
    """The chart's CRD (crds/) must be the one deploy/crds/ ships for kubectl users."""
    shipped = (DEPLOY / "crds" / "logalertrule.yaml").read_text().split("\n---\n")[0]
    chart = (CHART / "crds" / "logalertrule.yaml").read_text()
    if shipped.rstrip("\n") != chart.rstrip("\n"):
        return ["crds/logalertrule.yaml differs from deploy/crds/logalertrule.yaml's CRD"]
    return []


ALERTS = {"relay": {"alerts": {"enabled": True, "namespace": "monitoring"}}}


def lint():
    problems = crd_problems()
    for values in (None, {"serviceMonitor": {"enabled": True}}, ALERTS):
        report = helm_chart.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        for message in report.get("messages", []):
            # 1 = info (such as "icon is recommended"); 2 = warning; 3 = error.
            if message["severity"] >= 2:
                problems.append(f"{message['path']}: {message['error']}")
        problems.extend(report.get("errors", []))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with deploy/manifests/ instead of writing"
    )
    args = parser.parse_args()

    problems = lint()
    for problem in problems:
        print(f"helm lint: {problem}", file=sys.stderr)
    if problems:
        return 1

    files = wanted()
    existing = {p for d in (MANIFESTS, VARIANTS) if d.exists() for p in d.rglob("*.yaml")}
    stale = sorted(existing - set(files))
    if args.check:
        differs = False
        for path, body in sorted(files.items()):
            current = path.read_text() if path.exists() else ""
            if current != body:
                differs = True
                rel = path.relative_to(DEPLOY.parent)
                sys.stderr.writelines(
                    difflib.unified_diff(
                        current.splitlines(True), body.splitlines(True), str(rel), "chart"
                    )
                )
        for path in stale:
            differs = True
            print(f"{path.relative_to(DEPLOY.parent)}: not rendered by the chart", file=sys.stderr)
        if differs:
            print("deploy/manifests/ differs from the chart: run python3 deploy/render.py",
                  file=sys.stderr)
            return 1
        print(f"deploy/manifests/ matches the chart ({len(files)} files); helm lint passed")
        return 0
    for path in stale:
        path.unlink()
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    print(f"wrote {len(files)} files under deploy/manifests/; helm lint passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
