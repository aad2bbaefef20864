"""A static HTML site per nightly: the matrix, one page per cell, a trend across nightlies.

Static files with relative links, so the nightly folder can be published as it is (CI
artifacts, a web server) and still open from disk. Jinja2 autoescapes everything that
came from a console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from harness.fsutil import atomic_write_text
from harness.nightly.model import STATUSES, Classified, Nightly
from harness.nightly.reports import LABELS, failure_text, page_name, rel, reproducer

COLOURS = {
    "new": "#e53935",
    "known": "#fb8c00",
    "harness-failure": "#6a1b9a",
    "flaky": "#fdd835",
    "fixed": "#1e88e5",
    "pass": "#43a047",
    "caught": "#2e7d32",
    "in-tree": "#80cbc4",
    "skipped": "#bdbdbd",
    "stale": "#8d6e63",
    "known-issue": "#a5d6a7",
    "known-gone": "#64b5f6",
}

BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{% block title %}{% endblock %}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #212121; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #9e9e9e; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.cell a { color: inherit; text-decoration: none; display: block; }
td.cell .small { color: inherit; }
pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.small { font-size: 0.85em; color: #424242; }
{% for s, c in colours.items() %}.s-{{ s }} { background: {{ c }};
{%- if s in ("new", "harness-failure", "caught", "fixed", "pass") %} color: white;{% endif %} }
{% endfor %}
</style></head>
<body>
<nav class="small"><a href="{{ up }}index.html">matrix</a> |
<a href="{{ up }}trend.html">trend</a> | <a href="{{ up }}mail.txt">mail</a> |
<a href="{{ up }}junit.xml">junit.xml</a> | <a href="{{ up }}kcidb.json">kcidb.json</a></nav>
{% block body %}{% endblock %}
</body></html>
"""

INDEX = """{% extends "base" %}
{% block title %}nightly {{ n.ref }}: {{ headline }}{% endblock %}
{% block body %}
<h1>nightly {{ n.ref }}</h1>
<p id="headline" data-exit="{{ n.exit_code }}"><b>{{ headline }}</b></p>
<p class="small">tree {{ n.tree }} at <code>{{ n.commit[:12] }}</code> ({{ n.subject }}),
kernel {{ n.version }}; started {{ n.started.strftime("%Y-%m-%d %H:%M UTC") }}{% if minutes %},
took {{ minutes }} min{% endif %}.</p>
{% for note in n.notes %}<p class="small">{{ note }}</p>{% endfor %}
{% if n.harness_failures %}<h2>Harness failures outside the matrix</h2><ul>
{% for f in n.harness_failures %}<li><pre>{{ f }}</pre></li>{% endfor %}</ul>{% endif %}
<table id="matrix">
<thead><tr><th>target \\ scenario</th>
{% for s in scenarios %}<th>{{ s }}</th>{% endfor %}</tr></thead>
<tbody>
{% for t in targets %}<tr><th>{{ t }}</th>
{% for s in scenarios %}{% set c = grid.get((t, s)) %}
{% if c %}<td class="cell s-{{ c.status }}" data-status="{{ c.status }}"
 data-cell="{{ c.cell.key }}" title="{{ c.reason }}">
<a href="{{ page(c) }}"><b>{{ labels[c.status] }}</b>
{% if c.title %}<br><span class="small">{{ c.title }}</span>{% endif %}
{% if c.tests %}<br><span class="small tests">{{ c.tests|length }} tests:
{% for s, k in test_counts(c).items() %}{{ k }} {{ labels.get(s, s) }}{{ ", " if not loop.last }}
{% endfor %}</span>{% endif %}</a></td>
{% else %}<td class="cell"></td>{% endif %}
{% endfor %}</tr>
{% endfor %}
</tbody></table>
<p class="small">{% for s in statuses %}<span class="s-{{ s }}">&nbsp;{{ labels[s] }}&nbsp;</span>
{% endfor %}</p>
{% for s, heading in sections %}{% set these = by_status.get(s, []) %}{% if these %}
<h2>{{ heading }} ({{ these|length }})</h2><ul>
{% for c in these %}<li><a href="{{ page(c) }}">{{ c.cell.key }}</a>:
{{ c.title or c.reason }}{% if c.title and c.reason %} <span class="small">({{ c.reason }})</span>
{% endif %}{% if c.bisection %}<br>
<span class="small">bisect: {{ c.bisection.summary.splitlines()[0] }}</span>{% endif %}</li>
{% endfor %}</ul>{% endif %}{% endfor %}
{% set changed = test_changes(cells) %}{% if changed %}
<h2>Kernel tests that changed tonight ({{ changed|length }})</h2>
<table id="kernel-tests"><tr><th>cell</th><th>test</th><th>status</th><th>why</th></tr>
{% for c, t in changed %}<tr><td><a href="{{ page(c) }}">{{ c.cell.key }}</a></td>
<td><code>{{ t.path }}</code></td>
<td class="s-{{ t.status }}">{{ labels.get(t.status, t.status) }}</td>
<td class="small">{{ t.reason }}</td></tr>
{% endfor %}</table>{% endif %}
{% endblock %}
"""

CELL = """{% extends "base" %}
{% block title %}{{ c.cell.key }}: {{ labels[c.status] }} on {{ n.ref }}{% endblock %}
{% block body %}
<h1>{{ c.cell.key }} on {{ n.ref }}</h1>
<p><span class="s-{{ c.status }}" id="status">&nbsp;{{ labels[c.status] }}&nbsp;</span>
{{ c.title }}</p>
{% if c.reason %}<p>{{ c.reason }}</p>{% endif %}
{% if c.previous %}<p class="small">previous: {{ labels.get(c.previous.status, c.previous.status) }}
on {{ c.previous.ref }}{% if c.previous.title %}: {{ c.previous.title }}{% endif %}</p>{% endif %}
<p class="small">reproduce: <code>{{ repro }}</code></p>
{% if c.bisection %}<h2>Bisection</h2><pre>{{ c.bisection.summary }}</pre>
{% if c.bisection.folder %}<p><a href="{{ up }}{{ rel(c.bisection.folder) }}/">bisect folder</a>
</p>{% endif %}{% endif %}
<h2>Runs</h2>
<table id="attempts"><tr><th>#</th><th>verdict</th><th>summary</th><th>build</th><th>boot</th>
<th>where</th><th>logs</th></tr>
{% for a in c.attempts %}<tr><td>{{ loop.index }}</td><td>{{ a.verdict }}</td>
<td>{{ a.summary }}</td><td>{{ a.build_seconds }} s</td><td>{{ a.boot_seconds }} s</td>
<td>{{ a.where }}</td><td>
{% if a.results_dir %}{% set d = up ~ rel(a.results_dir) %}
<a href="{{ d }}/console.log">console.log</a> <a href="{{ d }}/build.log">build.log</a>
<a href="{{ d }}/report.txt">report.txt</a> <a href="{{ d }}/metadata.json">metadata.json</a>
{% endif %}</td></tr>
{% endfor %}</table>
{% if c.tests %}<h2>Kernel tests ({{ c.tests|length }})</h2>
<table id="tests"><tr><th>test</th><th>status</th><th>result</th><th>why</th></tr>
{% for t in tests_sorted(c) %}<tr data-status="{{ t.status }}"><td><code>{{ t.path }}</code></td>
<td class="s-{{ t.status }}">{{ labels.get(t.status, t.status) }}</td><td>{{ t.result }}</td>
<td class="small">{{ t.reason }}{% for title in t.reports %}<br>{{ title }}{% endfor %}</td></tr>
{% endfor %}</table>{% endif %}
{% for r in reports %}
<h2 class="report">{{ r.get("title", "") }}</h2>
<p class="small">type {{ r.get("type", "") }}
{%- for key in ("comm", "pid", "cpu", "tainted", "version", "hardware") %}
{%- if r.get(key) is not none %}, {{ key }} {{ r.get(key) }}{% endif %}{% endfor %}</p>
{% if r.get("frames") %}<table class="trace"><tr><th>function</th><th>source</th></tr>
{% for f in r.get("frames") %}{% for i in f.get("inlined") or [] %}
<tr class="small"><td>&nbsp;&nbsp;{{ i.get("function") }} [inline]</td>
<td>{{ i.get("file") }}:{{ i.get("line") }}</td></tr>{% endfor %}
<tr><td>{% if f.get("reliable") == false %}? {% endif %}{{ location(f) }}</td>
<td>{% if f.get("file") %}{{ f.get("file") }}{% if f.get("line") %}:{{ f.get("line") }}{% endif %}
{% endif %}</td></tr>
{% endfor %}</table>{% endif %}
<pre>{{ r.get("text", "") }}</pre>
{% else %}<h2>Output</h2><pre>{{ text }}</pre>
{% endfor %}
{% endblock %}
"""

TREND = """{% extends "base" %}
{% block title %}trend: {{ n.tree }}{% endblock %}
{% block body %}
<h1>Trend of {{ n.tree }}</h1>
<table id="trend"><thead><tr><th>nightly</th><th>commit</th>
{% for k in keys %}<th>{{ k }}</th>{% endfor %}</tr></thead><tbody>
{% for night in nights %}<tr><th><a href="../{{ folder_name(night.folder) }}/index.html">
{{ night.ref }}</a><br><span class="small">{{ night.started[:16] }}</span></th>
<td><code>{{ night.commit_hash[:12] }}</code></td>
{% for k in keys %}{% set cell = night.cells.get(k) %}
{% if cell %}<td class="cell s-{{ cell.status }}" data-status="{{ cell.status }}"
 title="{{ cell.title }}">{{ labels.get(cell.status, cell.status) }}</td>
{% else %}<td></td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endblock %}
"""


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"base": BASE, "index": INDEX, "cell": CELL, "trend": TREND}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(colours=COLOURS, labels=LABELS, statuses=STATUSES,
                       test_counts=_test_counts, test_changes=_test_changes,
                       tests_sorted=_tests_sorted)  # fmt: skip
    return env


def _test_counts(c: Classified) -> dict[str, int]:
    from harness.nightly.kerneltests import counts

    n = counts(c.tests)
    return {s: n[s] for s in STATUSES if s in n}


def _tests_sorted(c: Classified) -> list[Any]:
    """The cell's kernel tests, the ones that need reading first (STATUSES order)."""
    return sorted(c.tests, key=lambda t: STATUSES.index(t.status) if t.status in STATUSES else 99)


def _test_changes(cells: list[Classified]) -> list[tuple[Classified, Any]]:
    """The kernel tests a lab reads first: new, fixed and flaky ones."""
    order = {"new": 0, "fixed": 1, "flaky": 2}
    hits = [(c, t) for c in cells for t in c.tests if t.status in order]
    return sorted(hits, key=lambda ct: order[ct[1].status])


def _location(f: dict[str, Any]) -> str:
    text = f.get("function", "?")
    if f.get("offset") is not None:
        text += f"+{f['offset']:#x}"
        if f.get("size") is not None:
            text += f"/{f['size']:#x}"
    if f.get("module"):
        text += f" [{f['module']}]"
    return text


def headline(cells: list[Classified], exit_code: int | None) -> str:
    from harness.nightly.classify import counts

    n = counts(cells)
    words = [
        f"{n['new']} new regression{'s' if n['new'] != 1 else ''}",
        f"{n['known']} known",
        f"{n['fixed']} fixed",
        f"{n['flaky']} flaky",
    ]
    canaries = [c for c in cells if c.cell.canary]
    if canaries:
        ok = sum(c.status in ("caught", "in-tree") for c in canaries)
        words.append(f"canaries {ok}/{len(canaries)}")
    if n["stale"]:
        words.append(f"{n['stale']} STALE (needs a port)")
    if n["known-issue"] or n["fixed?"]:
        words.append(
            f"{n['known-issue']} known issue(s)"
            + (f", {n['fixed?']} fixed?" if n["fixed?"] else "")
        )
    if n["harness-failure"] or exit_code == 3:
        words.append(f"{n['harness-failure']} HARNESS FAILURE(S)")
    return ", ".join(words)


def write_site(
    nightly: Nightly, cells: list[Classified], trend: list[dict[str, Any]]
) -> list[Path]:
    """index.html, trend.html and cells/*.html in the nightly folder; returns the pages."""
    env = _env()
    folder = nightly.folder
    (folder / "cells").mkdir(exist_ok=True)
    targets = list(dict.fromkeys(c.cell.target for c in cells))
    scenarios = list(dict.fromkeys(c.cell.scenario for c in cells))
    by_status: dict[str, list[Classified]] = {}
    for c in cells:
        by_status.setdefault(c.status, []).append(c)
    minutes = ""
    if nightly.finished:
        minutes = f"{(nightly.finished - nightly.started).total_seconds() / 60:.1f}"
    sections = [
        ("new", "New regressions"),
        ("harness-failure", "Harness failures"),
        ("fixed", "Fixed"),
        ("known", "Still failing (known)"),
        ("flaky", "Flaky"),
        ("in-tree", "Canaries already in the tree"),
    ]
    pages = [folder / "index.html"]
    atomic_write_text(
        pages[0],
        env.get_template("index").render(
            n=nightly,
            cells=cells,
            targets=targets,
            scenarios=scenarios,
            grid={(c.cell.target, c.cell.scenario): c for c in cells},
            by_status=by_status,
            sections=sections,
            page=page_name,
            up="",
            headline=headline(cells, nightly.exit_code),
            minutes=minutes,
        ),
    )
    for c in cells:
        a = c.final
        page = folder / page_name(c)
        atomic_write_text(
            page,
            env.get_template("cell").render(
                n=nightly,
                c=c,
                up="../",
                reports=a.reports if a else [],
                text=failure_text(c),
                repro=reproducer(nightly, c),
                rel=lambda p: rel(nightly, Path(p)),
                location=_location,
            ),
        )
        pages.append(page)
    keys = list(dict.fromkeys(k for night in trend for k in night["cells"]))
    atomic_write_text(
        (folder / "trend.html"),
        env.get_template("trend").render(
            n=nightly,
            nights=list(reversed(trend)),
            keys=keys,
            up="",
            folder_name=lambda p: Path(p).name,
        ),
    )
    pages.append(folder / "trend.html")
    return pages
