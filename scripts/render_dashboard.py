#!/usr/bin/env python3
"""Render a CloudWatch dashboard body's layout as an SVG picture.

The picture in the README is drawn from the committed dashboard JSON
(infra/dashboards/*.json): every widget at its grid place, with its title,
its kind and the metrics or query it reads. It shows no data: none exists
offline, and a mock-up with invented curves would not be true.

    python3 scripts/render_dashboard.py infra/dashboards/security.json docs/images/security-dashboard.svg
"""
import json
import re
import sys
from html import escape

CELL = 44  # pixels per grid column (CloudWatch's grid is 24 columns wide)
ROW = 34  # pixels per grid row
PAD = 6


def metric_names(widget):
    text = json.dumps(widget.get("properties", {}))
    names = re.findall(r'MetricName=\\*"([A-Za-z_]+)', text)
    if not names:
        props = widget.get("properties", {})
        for m in props.get("metrics", []):
            names += [x for x in m if isinstance(x, str) and re.fullmatch(r"[A-Z][A-Za-z]+|[a-z_]+_total|[a-z_]+", x)][:1]
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def wrap(text, width):
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    if line:
        lines.append(line)
    return lines


def render(body, title):
    widgets = body["widgets"]
    height = max(w["y"] + w["height"] for w in widgets) * ROW + 60
    width = 24 * CELL
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#f4f5f7"/>',
        f'<text x="{PAD}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{PAD}" y="42" font-size="11" fill="#555">Layout of the committed dashboard body, '
        "drawn by scripts/render_dashboard.py: widget places, titles and sources; no data.</text>",
    ]
    for w in widgets:
        x, y = w["x"] * CELL + PAD / 2, w["y"] * ROW + 52
        ww, hh = w["width"] * CELL - PAD, w["height"] * ROW - PAD
        props = w.get("properties", {})
        out.append(f'<rect x="{x}" y="{y}" width="{ww}" height="{hh}" rx="4" fill="#fff" stroke="#c5c9d0"/>')
        chars = int(ww / 6.4)
        if w["type"] == "text":
            first = props.get("markdown", "").splitlines()[0].lstrip("# ")
            out.append(f'<text x="{x + 8}" y="{y + 24}" font-size="14" font-weight="bold">{escape(first)}</text>')
            continue
        ty = y + 18
        for line in wrap(props.get("title", ""), chars)[:2]:
            out.append(f'<text x="{x + 8}" y="{ty}" font-size="12" font-weight="bold">{escape(line)}</text>')
            ty += 15
        kind = "Logs Insights table" if w["type"] == "log" else props.get("view", "timeSeries")
        out.append(f'<text x="{x + 8}" y="{ty + 4}" font-size="10" fill="#777">{escape(kind)}</text>')
        ty += 22
        sources = metric_names(w) if w["type"] == "metric" else wrap(props.get("query", "").split("|")[-1], chars)
        for line in sources[:5]:
            out.append(f'<text x="{x + 8}" y="{ty}" font-size="10" fill="#1f5fa8">{escape(line[:chars])}</text>')
            ty += 13
        if w["type"] == "metric":
            base = y + hh - 10
            out.append(f'<line x1="{x + 8}" y1="{base}" x2="{x + ww - 8}" y2="{base}" stroke="#c5c9d0"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        body = json.load(f)
    name = src.rsplit("/", 1)[-1].removesuffix(".json")
    with open(dst, "w") as f:
        f.write(render(body, f"CloudWatch dashboard <stack>-{name} (infra/dashboards/{name}.json)"))


if __name__ == "__main__":
    main()
