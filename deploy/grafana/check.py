#!/usr/bin/env python3
"""Checks a Grafana dashboard of the helpdesk platform without Grafana or a network.

    python3 deploy/grafana/check.py --known deploy/grafana/metrics.txt deploy/grafana/helpdesk.json

For each dashboard file it checks that:

- it is valid JSON, with panels, and schemaVersion 39 or later;
- panel ids are unique (rows and the panels inside collapsed rows included);
- every panel lies inside the 24-column grid and no two panels overlap;
- every panel other than a row has a `${datasource}` data source, a unit, and
  targets each with a refId (unique in the panel) and a non-empty `expr`, and so
  does each of its targets' data source;
- every histogram_quantile() reads a `_bucket` series and keeps `le`;
- every metric named in an expression (and in the template variables' queries) is
  known: names matching `(helpdesk|rpc)_[a-z_]+` outside label matchers,
  grouping clauses and strings, with `_bucket`, `_sum` and `_count` stripped,
  must be among the names given by `--known FILE` (one name per line, `#`
  comments) or `--metric NAME`.

Python 3 standard library only. Prints a summary and exits 0, or names each
problem and exits 1 (2 for bad arguments or unreadable files).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

GRID_COLUMNS = 24
MIN_SCHEMA_VERSION = 39
DATASOURCE = "${datasource}"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# A metric of the platform: the name alone, not part of a longer identifier.
METRIC = re.compile(r"(?<![A-Za-z0-9_:])(?:helpdesk|rpc)_[a-z_]+(?![A-Za-z0-9_:])")
# What in PromQL names labels rather than metrics, removed before looking for metrics.
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# Grafana's own variables ($__rate_interval, ${job}, [[x]]).
VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]")


def metric_names(expr: str) -> set[str]:
    """The platform metrics an expression reads, histogram suffixes stripped."""
    text = STRING.sub('""', expr)
    text = VARIABLE.sub("x", text)
    text = MATCHERS.sub("{}", text)
    text = GROUPING.sub("", text)
    names = set()
    for name in METRIC.findall(text):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def all_panels(panels: list) -> list[dict]:
    """Top-level panels and those held by collapsed rows."""
    out = []
    for p in panels:
        if not isinstance(p, dict):
            continue
        out.append(p)
        out.extend(q for q in p.get("panels") or [] if isinstance(q, dict))
    return out


def label(p: dict) -> str:
    return f"panel {p.get('id')!r} ({p.get('title') or p.get('type') or 'untitled'})"


def datasource_uid(ds) -> str | None:
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_layout(panels: list[dict], problems: list[str]) -> None:
    placed = []
    for p in panels:
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            problems.append(f"{label(p)}: gridPos needs integer x, y, w and h, has {g!r}")
            continue
        if g["w"] <= 0 or g["h"] <= 0 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > GRID_COLUMNS:
            problems.append(f"{label(p)}: gridPos {g} is outside the {GRID_COLUMNS}-column grid")
        for q, h in placed:
            if overlaps(g, h):
                problems.append(f"{label(p)}: gridPos {g} overlaps {label(q)} at {h}")
        placed.append((p, g))


def check_panel(p: dict, problems: list[str], used: dict[str, set[str]]) -> int:
    """Checks one panel that is not a row; returns its number of targets."""
    if datasource_uid(p.get("datasource")) != DATASOURCE:
        problems.append(f"{label(p)}: data source should be {DATASOURCE}, is {p.get('datasource')!r}")
    unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
    if not unit:
        problems.append(f"{label(p)}: no unit (fieldConfig.defaults.unit)")
    targets = p.get("targets")
    if not isinstance(targets, list) or not targets:
        problems.append(f"{label(p)}: no targets")
        return 0
    refs = set()
    for i, t in enumerate(targets):
        where = f"{label(p)} target {t.get('refId') or i}"
        ref = t.get("refId")
        if not ref:
            problems.append(f"{where}: no refId")
        elif ref in refs:
            problems.append(f"{where}: refId used twice in the panel")
        refs.add(ref)
        if "datasource" in t and datasource_uid(t["datasource"]) != DATASOURCE:
            problems.append(f"{where}: data source should be {DATASOURCE}, is {t['datasource']!r}")
        expr = t.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{where}: no expr")
            continue
        if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
            problems.append(f"{where}: unbalanced brackets in {expr!r}")
        if "histogram_quantile" in expr and ("_bucket" not in expr or not re.search(r"\ble\b", expr)):
            problems.append(f"{where}: histogram_quantile needs a _bucket series grouped by le: {expr!r}")
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    return len(targets)


def check_variables(dash: dict, problems: list[str], used: dict[str, set[str]]) -> list[str]:
    names = []
    for v in (dash.get("templating") or {}).get("list") or []:
        name = v.get("name")
        names.append(name)
        if v.get("type") == "query":
            q = v.get("query")
            text = q.get("query", "") if isinstance(q, dict) else (q or "")
            for metric in metric_names(text):
                used.setdefault(metric, set()).add(f"variable {name!r}")
    if "datasource" not in names:
        problems.append("templating: no variable named datasource")
    else:
        ds = next(v for v in dash["templating"]["list"] if v.get("name") == "datasource")
        if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append("templating: the datasource variable should be of type datasource, query prometheus")
    return names


def load_known(files: list[Path], metrics: list[str]) -> set[str]:
    known = set()
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                known.add(line)
    for m in metrics:
        known.update(n.strip() for n in m.split(",") if n.strip())
    return known


def check(path: Path, known: set[str] | None) -> tuple[list[str], str]:
    problems: list[str] = []
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [f"not valid JSON: {e}"], ""
    if not isinstance(dash, dict) or not isinstance(dash.get("panels"), list):
        return ["no panels list at the top level"], ""
    version = dash.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion should be {MIN_SCHEMA_VERSION} or later, is {version!r}")

    panels = all_panels(dash["panels"])
    seen: dict = {}
    for p in panels:
        pid = p.get("id")
        if not isinstance(pid, int):
            problems.append(f"{label(p)}: id should be an integer")
        elif pid in seen:
            problems.append(f"{label(p)}: id {pid} is also {label(seen[pid])}'s")
        else:
            seen[pid] = p
    # Collapsed rows keep their panels' positions as if expanded: lay out each set apart.
    check_layout([p for p in dash["panels"] if isinstance(p, dict)], problems)
    for row in dash["panels"]:
        if isinstance(row, dict) and row.get("type") == "row" and row.get("panels"):
            check_layout([q for q in row["panels"] if isinstance(q, dict)], problems)

    used: dict[str, set[str]] = {}
    variables = check_variables(dash, problems, used)
    ntargets = 0
    nrows = 0
    for p in panels:
        if p.get("type") == "row":
            nrows += 1
            continue
        ntargets += check_panel(p, problems, used)

    if known is not None:
        for name in sorted(set(used) - known):
            places = sorted(used[name])
            more = f" and {len(places) - 3} more" if len(places) > 3 else ""
            problems.append(f"unknown metric {name} (in {', '.join(places[:3])}{more})")
    summary = (f"{len(panels) - nrows} panels in {nrows} rows, {ntargets} queries, "
               f"{len(used)} metrics" + (" (all known)" if known is not None else " (not compared: no --known or --metric)")
               + f", variables: {', '.join(map(str, variables))}")
    return problems, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboards", nargs="+", type=Path, help="dashboard JSON files")
    ap.add_argument("--known", action="append", type=Path, default=[], metavar="FILE",
                    help="file of known metric names, one a line (may be repeated)")
    ap.add_argument("--metric", action="append", default=[], metavar="NAME",
                    help="a known metric name, or several separated by commas (may be repeated)")
    args = ap.parse_args()
    try:
        known = load_known(args.known, args.metric) if (args.known or args.metric) else None
    except OSError as e:
        print(f"deploy/grafana/check.py: {e}", file=sys.stderr)
        return 2
    failed = False
    for path in args.dashboards:
        try:
            problems, summary = check(path, known)
        except OSError as e:
            print(f"deploy/grafana/check.py: {e}", file=sys.stderr)
            return 2
        if problems:
            failed = True
            print(f"{path}: {len(problems)} problem(s):", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
        else:
            print(f"{path}: ok, {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
