"""The checks behind deploy/validate; run that script, which installs the tools.

Renders deploy/k8s with kustomize, validates every object against the Kubernetes
API's JSON schemas (strict: unknown fields are errors) and docker-compose.yml
against the Compose Specification's schema, checks that the objects refer to one
another correctly, and that every service in services/ and the web front ends are
deployed by both; then checks the Grafana dashboard with deploy/grafana/check.py
(against the metric names in deploy/grafana/metrics.txt). Prints each problem with
the object and field at fault and exits 1, or prints a summary and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import importlib_resources
import jsonschema
import yaml
from referencing import Registry, Resource

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None

# Crates in services/ that are not deployed as services of their own.
NOT_SERVICES = {"kit", "devservers", "helpdesk"}
# Deployed beside the services in both Kubernetes and compose.
FRONT_ENDS = ["web"]
# HELPDESK_ADMIN_ADDR: where each service serves Prometheus metrics.
METRICS_PORT = 9464
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


def field_path(path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def schema_errors(validator, instance) -> list[tuple[str, str]]:
    """(field, message) for every schema violation, unknown fields named one by one."""
    out = []
    for err in validator.iter_errors(instance):
        base = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = set(err.schema.get("properties", {}))
            patterns = list(err.schema.get("patternProperties", {}))
            unknown = [k for k in err.instance
                       if k not in known and not any(re.search(p, k) for p in patterns)]
            for key in unknown:
                out.append((field_path(base + [key]), "unknown field"))
            if unknown:
                continue
        if err.context:
            # oneOf / anyOf: the alternative that got furthest says most.
            best = jsonschema.exceptions.best_match(err.context)
            out.append((field_path(base), f"{err.message.splitlines()[0][:160]} ({best.message[:160]})"))
        else:
            out.append((field_path(base), err.message[:300]))
    return sorted(set(out))


# --- which services the repository builds -------------------------------------------

def cargo_bins(cargo_toml: Path) -> set[str]:
    text = cargo_toml.read_text()
    if tomllib is not None:
        data = tomllib.loads(text)
        package = data.get("package", {}).get("name")
        bins = {b.get("name") for b in data.get("bin", []) if b.get("name")}
    else:  # enough for these Cargo.toml files
        m = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
        package = m.group(1) if m else None
        bins = set(re.findall(r'^\[\[bin\]\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S))
    if package and (cargo_toml.parent / "src" / "main.rs").is_file():
        bins.add(package)
    return bins


def repo_services(root: Path) -> list[str]:
    out = []
    for d in sorted((root / "services").iterdir()):
        if d.name in NOT_SERVICES or not (d / "Cargo.toml").is_file():
            continue
        if f"helpdesk-{d.name}" in cargo_bins(d / "Cargo.toml"):
            out.append(d.name)
    return out


# --- Kubernetes -----------------------------------------------------------------------

class KubeSchemas:
    def __init__(self, version: str) -> None:
        self.version = version
        self.minor = ".".join(version.split(".")[:2])
        base = importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        self.dir = base.joinpath(f"v{version}-local-strict")
        if not self.dir.joinpath("_definitions.json").is_file():
            have = sorted(p.name for p in base.iterdir())
            raise SystemExit(f"deploy/validate: kubernetes-validate has no strict schemas for "
                             f"Kubernetes {version} (it has {', '.join(have)})")
        defs = json.loads(self.dir.joinpath("_definitions.json").read_text())
        self.registry = Resource.from_contents(defs) @ Registry()
        self.validators: dict[tuple[str, str], object] = {}

    def validator(self, api_version: str, kind: str):
        key = (api_version, kind)
        if key not in self.validators:
            # rbac.authorization.k8s.io/v1 -> rbac-v1; v1 -> v1 (kubernetes-validate's names)
            group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            f = self.dir.joinpath(f"{kind.lower()}-{group_version}.json")
            if not f.is_file():
                self.validators[key] = None
            else:
                schema = json.loads(f.read_text())
                registry = Resource.from_contents(schema) @ self.registry
                self.validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self.validators[key]


def source_files(k8s: Path, root: Path) -> dict[tuple[str, str], str]:
    """(kind, name) -> the file in deploy/k8s that defines it, for messages."""
    out = {}
    for f in sorted(k8s.glob("*.yaml")):
        try:
            for doc in yaml.safe_load_all(f.read_text()):
                if isinstance(doc, dict) and "kind" in doc:
                    name = (doc.get("metadata") or {}).get("name")
                    out.setdefault((doc["kind"], name), display(f, root))
        except yaml.YAMLError:
            pass  # kustomize reports it
    return out


def display(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def matches(selector: dict | None, labels: dict) -> bool:
    """A label selector (matchLabels / matchExpressions) against a label set."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_template(obj: dict) -> dict:
    return (obj.get("spec") or {}).get("template") or {}


def containers(obj: dict) -> list[dict]:
    spec = pod_template(obj).get("spec") or {}
    return (spec.get("containers") or []) + (spec.get("initContainers") or [])


def container_ports(obj: dict) -> tuple[set[str], set[int]]:
    names, numbers = set(), set()
    for c in containers(obj):
        for p in c.get("ports") or []:
            if p.get("name"):
                names.add(p["name"])
            if p.get("containerPort") is not None:
                numbers.add(p["containerPort"])
    return names, numbers


def env_of(container: dict) -> dict:
    return {e.get("name"): e for e in container.get("env") or []}


def check_kubernetes(objs, where, schemas: KubeSchemas, services, problems: Problems) -> dict:
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objs:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        w = where(obj)
        if not kind or not obj.get("apiVersion") or not name:
            problems.add(w, "an object needs apiVersion, kind and metadata.name")
            continue
        if name in by_kind.setdefault(kind, {}):
            problems.add(w, "defined twice")
        by_kind[kind][name] = obj
        v = schemas.validator(obj["apiVersion"], kind)
        if v is None:
            problems.add(w, f"apiVersion {obj['apiVersion']} has no kind {kind} in Kubernetes "
                            f"{schemas.minor}")
            continue
        for path, msg in schema_errors(v, obj):
            problems.add(w, f"{path}: {msg}")

    workloads = [o for k in WORKLOAD_KINDS for o in by_kind.get(k, {}).values()]

    def pods(selector):
        return [w for w in workloads
                if matches(selector, (pod_template(w).get("metadata") or {}).get("labels") or {})]

    configmaps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})

    def keys(obj):
        return set(obj.get("data") or {}) | set(obj.get("stringData") or {}) | set(obj.get("binaryData") or {})

    # Workloads: what their containers refer to.
    for wl in workloads:
        w = where(wl)
        spec = (wl.get("spec") or {})
        labels = (pod_template(wl).get("metadata") or {}).get("labels") or {}
        if "selector" in spec and not matches(spec["selector"], labels):
            problems.add(w, "spec.selector does not match spec.template.metadata.labels")
        names, numbers = container_ports(wl)
        volumes = {v.get("name"): v for v in (pod_template(wl).get("spec") or {}).get("volumes") or []}
        claims = {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
        for i, c in enumerate((pod_template(wl).get("spec") or {}).get("containers") or []):
            cpath = f"spec.template.spec.containers[{i}]"
            for j, ef in enumerate(c.get("envFrom") or []):
                for ref, table, what in (("configMapRef", configmaps, "ConfigMap"),
                                         ("secretRef", secrets, "Secret")):
                    r = ef.get(ref)
                    if r and not r.get("optional") and r.get("name") not in table:
                        problems.add(w, f"{cpath}.envFrom[{j}].{ref}: no {what} {r.get('name')}")
            for j, e in enumerate(c.get("env") or []):
                vf = e.get("valueFrom") or {}
                for ref, table, what in (("configMapKeyRef", configmaps, "ConfigMap"),
                                         ("secretKeyRef", secrets, "Secret")):
                    r = vf.get(ref)
                    if r and not r.get("optional"):
                        if r.get("name") not in table:
                            problems.add(w, f"{cpath}.env[{j}] ({e.get('name')}): no {what} {r.get('name')}")
                        elif r.get("key") not in keys(table[r["name"]]):
                            problems.add(w, f"{cpath}.env[{j}] ({e.get('name')}): {what} {r['name']} "
                                            f"has no key {r.get('key')}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(probe) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = (p.get(handler) or {}).get("port")
                    if isinstance(port, str) and port not in names:
                        problems.add(w, f"{cpath}.{probe}.{handler}.port: no container port named {port}")
                    if isinstance(port, int) and port not in numbers:
                        problems.add(w, f"{cpath}.{probe}.{handler}.port: {port} is not a container port")
            for j, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes and m.get("name") not in claims:
                    problems.add(w, f"{cpath}.volumeMounts[{j}]: no volume {m.get('name')}")

    # Services: selectors and named target ports.
    for svc in by_kind.get("Service", {}).values():
        w = where(svc)
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            continue
        targets = pods({"matchLabels": sel})
        if not targets:
            problems.add(w, f"spec.selector {sel} matches no pods")
            continue
        for i, p in enumerate((svc.get("spec") or {}).get("ports") or []):
            tp = p.get("targetPort", p.get("port"))
            for t in targets:
                names, numbers = container_ports(t)
                if (isinstance(tp, str) and tp not in names) or (isinstance(tp, int) and tp not in numbers):
                    problems.add(w, f"spec.ports[{i}].targetPort: {where(t)} has no container port {tp}")

    # PodDisruptionBudgets and NetworkPolicies select pods; autoscalers name a target.
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        if not pods((pdb.get("spec") or {}).get("selector")):
            problems.add(where(pdb), "spec.selector matches no pods")
    for np in by_kind.get("NetworkPolicy", {}).values():
        w = where(np)
        spec = np.get("spec") or {}
        selected = pods(spec.get("podSelector") or {})
        if not selected:
            problems.add(w, "spec.podSelector matches no pods")
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(spec.get(direction) or []):
                for j, peer in enumerate(rule.get(peers_key) or []):
                    if "podSelector" in peer and "namespaceSelector" not in peer and not pods(peer["podSelector"]):
                        problems.add(w, f"spec.{direction}[{i}].{peers_key}[{j}].podSelector matches no pods")
                for j, port in enumerate(rule.get("ports") or []):
                    name = port.get("port")
                    if direction == "ingress" and isinstance(name, str):
                        for t in selected:
                            if name not in container_ports(t)[0]:
                                problems.add(w, f"spec.ingress[{i}].ports[{j}].port: {where(t)} has no "
                                                f"container port named {name}")
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("name") not in by_kind.get(ref.get("kind"), {}):
            problems.add(where(hpa), f"spec.scaleTargetRef: no {ref.get('kind')} {ref.get('name')}")

    # Ingress backends.
    for ing in by_kind.get("Ingress", {}).values():
        for i, rule in enumerate((ing.get("spec") or {}).get("rules") or []):
            for j, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
                b = (path.get("backend") or {}).get("service") or {}
                f = f"spec.rules[{i}].http.paths[{j}].backend.service"
                svc = by_kind.get("Service", {}).get(b.get("name"))
                if svc is None:
                    problems.add(where(ing), f"{f}.name: no Service {b.get('name')}")
                    continue
                port = b.get("port") or {}
                ports = (svc.get("spec") or {}).get("ports") or []
                if "number" in port and port["number"] not in {p.get("port") for p in ports}:
                    problems.add(where(ing), f"{f}.port.number: Service {b['name']} has no port {port['number']}")
                if "name" in port and port["name"] not in {p.get("name") for p in ports}:
                    problems.add(where(ing), f"{f}.port.name: Service {b['name']} has no port {port['name']}")

    # Every service and front end is deployed.
    for name in services + FRONT_ENDS:
        dep = by_kind.get("Deployment", {}).get(name)
        if dep is None:
            problems.add(where({"kind": "Deployment", "metadata": {"name": name}}),
                         f"missing: {name} has no Deployment named {name}")
        if name not in by_kind.get("Service", {}):
            problems.add(where({"kind": "Service", "metadata": {"name": name}}),
                         f"missing: {name} has no Service named {name}")
        if dep is None:
            continue
        labels = (pod_template(dep).get("metadata") or {}).get("labels") or {}
        if not any(matches((p.get("spec") or {}).get("selector"), labels)
                   for p in by_kind.get("PodDisruptionBudget", {}).values()):
            problems.add(where(dep), "no PodDisruptionBudget selects its pods")
        if name in FRONT_ENDS:
            continue
        if not any(matches((n.get("spec") or {}).get("podSelector") or {}, labels)
                   for n in by_kind.get("NetworkPolicy", {}).values()):
            problems.add(where(dep), "no NetworkPolicy selects its pods")
        cs = (pod_template(dep).get("spec") or {}).get("containers") or []
        main = next((c for c in cs if (c.get("command") or [None])[0] == f"helpdesk-{name}"), None)
        if main is None:
            problems.add(where(dep), f"spec.template.spec.containers: no container runs helpdesk-{name}")
            continue
        i = cs.index(main)
        cpath = f"spec.template.spec.containers[{i}]"
        admin = (env_of(main).get("HELPDESK_ADMIN_ADDR") or {}).get("value")
        if not admin:
            problems.add(where(dep), f"{cpath}.env: HELPDESK_ADMIN_ADDR is not set")
        elif not admin.endswith(f":{METRICS_PORT}"):
            problems.add(where(dep), f"{cpath}.env HELPDESK_ADMIN_ADDR: {admin} is not on port {METRICS_PORT}")
        if not any(p.get("name") == "metrics" and p.get("containerPort") == METRICS_PORT
                   for p in main.get("ports") or []):
            problems.add(where(dep), f"{cpath}.ports: no port named metrics on {METRICS_PORT}")
        ann = (pod_template(dep).get("metadata") or {}).get("annotations") or {}
        want = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics"}
        for k, v in want.items():
            if ann.get(k) != v:
                problems.add(where(dep), f"spec.template.metadata.annotations.{k}: should be {v!r}, "
                                         f"is {ann.get(k)!r}")
        svc = by_kind.get("Service", {}).get(name)
        if svc is not None and not any(p.get("name") == "metrics" and p.get("port") == METRICS_PORT
                                       for p in (svc.get("spec") or {}).get("ports") or []):
            problems.add(where(svc), f"spec.ports: no port named metrics on {METRICS_PORT}")
    return by_kind


# --- docker compose -------------------------------------------------------------------

def check_compose(path: Path, root: Path, schema_path: Path, services, problems: Problems) -> dict:
    label = display(path, root)
    if not path.is_file():
        problems.add(label, "missing")
        return {}
    try:
        compose = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        problems.add(label, f"not valid YAML: {e}")
        return {}
    schema = json.loads(schema_path.read_text())
    # The Compose Specification is draft-07 (its $schema lacks the trailing "#"
    # that jsonschema looks for).
    if "draft-07" not in schema.get("$schema", ""):
        raise SystemExit(f"deploy/validate: {schema_path} is not a draft-07 schema")
    cls = jsonschema.Draft7Validator
    cls.check_schema(schema)
    for field, msg in schema_errors(cls(schema), compose):
        problems.add(label, f"{field}: {msg}")
    defined = (compose or {}).get("services") or {}
    for name, svc in defined.items():
        deps = (svc or {}).get("depends_on") or []
        for dep in (deps if isinstance(deps, list) else list(deps)):
            if dep not in defined:
                problems.add(label, f"services.{name}.depends_on: no service {dep}")
    for name in services + FRONT_ENDS:
        svc = defined.get(name)
        if svc is None:
            problems.add(label, f"services.{name}: missing ({name} is not in docker-compose.yml)")
            continue
        if name in FRONT_ENDS:
            continue
        cmd = svc.get("command")
        first = cmd[0] if isinstance(cmd, list) and cmd else (cmd.split()[0] if isinstance(cmd, str) and cmd else None)
        if first != f"helpdesk-{name}":
            problems.add(label, f"services.{name}.command: should run helpdesk-{name}, runs {first}")
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        if not str(env.get("HELPDESK_ADMIN_ADDR") or "").endswith(f":{METRICS_PORT}"):
            problems.add(label, f"services.{name}.environment.HELPDESK_ADMIN_ADDR: should be "
                                f"0.0.0.0:{METRICS_PORT}, is {env.get('HELPDESK_ADMIN_ADDR')!r}")
    return defined


def check_dashboard(root: Path, problems: Problems) -> str:
    """Runs deploy/grafana/check.py on the dashboard; returns its summary line."""
    command = [sys.executable, "deploy/grafana/check.py",
               "--known", "deploy/grafana/metrics.txt", "deploy/grafana/helpdesk.json"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        # The first line names the file and counts; the rest are the problems.
        for line in lines[1:] or lines or [f"exited {done.returncode}"]:
            problems.add("deploy/grafana/helpdesk.json", line)
        return ""
    return done.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--kubernetes-version", required=True)
    ap.add_argument("--compose-schema", type=Path, required=True)
    ap.add_argument("--compose-schema-source", default="")
    ap.add_argument("--k8s", type=Path, help="the kustomization to check (default deploy/k8s)")
    ap.add_argument("--compose", type=Path, help="the compose file to check (default docker-compose.yml)")
    args = ap.parse_args()
    root = args.root.resolve()
    k8s = (args.k8s or root / "deploy" / "k8s").resolve()
    compose_file = (args.compose or root / "docker-compose.yml").resolve()
    problems = Problems()

    services = repo_services(root)
    if not services:
        problems.add("services/", "no service found (no directory builds a helpdesk-<name> binary)")

    kubectl_version = subprocess.run([args.kubectl, "version", "--client", "-o", "json"],
                                     capture_output=True, text=True, check=True)
    versions = json.loads(kubectl_version.stdout)
    rendered = subprocess.run([args.kubectl, "kustomize", str(k8s)], capture_output=True, text=True)
    objs = []
    if rendered.returncode != 0:
        problems.add(display(k8s, root), "kustomize failed: " + rendered.stderr.strip())
    else:
        objs = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    sources = source_files(k8s, root)

    def where(obj):
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        f = sources.get((kind, name))
        return f"{f} ({kind}/{name})" if f else f"{display(k8s, root)} ({kind}/{name})"

    schemas = KubeSchemas(args.kubernetes_version)
    check_kubernetes(objs, where, schemas, services, problems)
    defined = check_compose(compose_file, root, args.compose_schema, services, problems)
    dashboard = check_dashboard(root, problems)

    if problems.items:
        print(f"deploy/validate: {len(problems.items)} problem(s):", file=sys.stderr)
        for p in problems.items:
            print(f"  {p}", file=sys.stderr)
        return 1
    kinds: dict[str, int] = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    print("deploy/validate: ok")
    print(f"  {display(k8s, root)}: {len(objs)} objects rendered by kustomize {versions.get('kustomizeVersion')} "
          f"(kubectl {versions['clientVersion']['gitVersion']}), valid against the Kubernetes "
          f"{schemas.minor} schemas (strict)")
    print("    " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    print(f"  {display(compose_file, root)}: {len(defined)} services, valid against the Compose Specification"
          + (f" ({args.compose_schema_source})" if args.compose_schema_source else ""))
    print(f"  services: {', '.join(services)} and {', '.join(FRONT_ENDS)}: deployed in both")
    print(f"  {dashboard}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
