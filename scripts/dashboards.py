#!/usr/bin/env python3
"""Embed the CloudWatch dashboards of infra/dashboards/*.json in template.yaml.

The JSON files are the source of truth. Each becomes an
AWS::CloudWatch::Dashboard whose DashboardBody is the file under `!Sub`, so
the placeholders ${AWS::Region}, ${AWS::StackName}, ${MetricsNamespace} and
${IncidentsTopicName} in the files are filled in at deploy time. With them
comes a managed policy granting read access to these dashboards only, and
outputs (the policy's ARN, the dashboards' console URLs).

The generated text sits between marker comments, at the end of Resources
and at the end of Outputs; nothing else in the template is touched, so
concurrent edits elsewhere survive a `--write`.

    python3 scripts/dashboards.py --write   # render into template.yaml
    python3 scripts/dashboards.py --check   # exit 1 if template.yaml is out of date

Standard library only.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DASHBOARDS = ROOT / "infra" / "dashboards"

# (file stem, logical id, dashboard name suffix), in template order.
DASHBOARD_FILES = [
    ("authentication", "AuthenticationDashboard", "authentication"),
    ("performance", "PerformanceDashboard", "performance"),
    ("security", "SecurityDashboard", "security"),
]

# What `!Sub` may fill in: pseudo parameters and template parameters.
ALLOWED_PLACEHOLDERS = {"AWS::Region", "AWS::StackName", "MetricsNamespace", "IncidentsTopicName"}

# The log groups the security dashboard's Logs Insights widget reads (its
# readers need logs:StartQuery on them): logical ids of AWS::Logs::LogGroup.
QUERIED_LOG_GROUPS = ["LogMetricsLogGroup", "ComponentProbeLogGroup", "AlertEvaluatorLogGroup"]

BEGIN = "  # BEGIN generated dashboards (scripts/dashboards.py)"
END = "  # END generated dashboards"
BEGIN_OUT = "  # BEGIN generated dashboard outputs (scripts/dashboards.py)"
END_OUT = "  # END generated dashboard outputs"


class Failure(Exception):
    pass


def body_lines(path):
    """The dashboard body, one widget per line, indented for the template."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise Failure(f"{path.relative_to(ROOT)}: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("widgets"), list):
        raise Failure(f"{path.relative_to(ROOT)}: expected an object with a `widgets` array")
    text = json.dumps(doc, ensure_ascii=False)
    for name in re.findall(r"\$\{([^}]*)\}", text):
        if name.startswith("!") or name not in ALLOWED_PLACEHOLDERS:
            raise Failure(
                f"{path.relative_to(ROOT)}: placeholder ${{{name}}} is not one of "
                + ", ".join(sorted(ALLOWED_PLACEHOLDERS))
            )
    compact = dict(separators=(", ", ": "), ensure_ascii=False)
    head = {k: v for k, v in doc.items() if k != "widgets"}
    opening = json.dumps(head, **compact)[:-1]
    lines = [opening + (", " if head else "") + '"widgets": [']
    widgets = doc["widgets"]
    for i, w in enumerate(widgets):
        lines.append("  " + json.dumps(w, **compact) + ("," if i + 1 < len(widgets) else ""))
    lines.append("]}")
    return ["        " + line for line in lines]


def resources_block():
    out = [
        BEGIN,
        "  # Rendered from infra/dashboards/*.json by `python3 scripts/dashboards.py --write`:",
        "  # edit those files, not this block (`--check` in `make test` fails when it is stale).",
    ]
    for stem, logical_id, suffix in DASHBOARD_FILES:
        out += [
            f"  {logical_id}:",
            "    Type: AWS::CloudWatch::Dashboard",
            "    Properties:",
            f"      DashboardName: !Sub ${{AWS::StackName}}-{suffix}",
            "      DashboardBody: !Sub |",
            *body_lines(DASHBOARDS / f"{stem}.json"),
            "",
        ]
    out += [
        "  # Read access to these dashboards only. Attach it to the team's roles",
        "  # (output DashboardReadPolicyArn).",
        "  DashboardReadPolicy:",
        "    Type: AWS::IAM::ManagedPolicy",
        "    Properties:",
        "      Description: !Sub Read-only access to the ${AWS::StackName} monitoring dashboards and the metrics and logs they show",
        "      PolicyDocument:",
        '        Version: "2012-10-17"',
        "        Statement:",
        "          - Sid: ReadTheseDashboards",
        "            Effect: Allow",
        "            Action: cloudwatch:GetDashboard",
        "            Resource:",
        *[
            f"              - !Sub arn:${{AWS::Partition}}:cloudwatch::${{AWS::AccountId}}:dashboard/${{{logical_id}}}"
            for _, logical_id, _ in DASHBOARD_FILES
        ],
        "          - Sid: ListDashboardsAndReadMetrics",
        "            Effect: Allow",
        "            Action:",
        "              - cloudwatch:ListDashboards",
        "              - cloudwatch:GetMetricData",
        "              - cloudwatch:GetMetricStatistics",
        "              - cloudwatch:ListMetrics",
        "            # These four actions support no resource-level permissions (and",
        "            # no namespace condition): IAM accepts only \"*\" for them. They",
        "            # read metrics and dashboard names, never change anything.",
        '            Resource: "*"',
        "          - Sid: QueryIncidentLogs",
        "            Effect: Allow",
        "            Action: logs:StartQuery",
        "            Resource:",
        *[f"              - !GetAtt {group}.Arn" for group in QUERIED_LOG_GROUPS],
        "          - Sid: ReadQueryResults",
        "            Effect: Allow",
        "            Action:",
        "              - logs:GetQueryResults",
        "              - logs:StopQuery",
        "            # Query ids, not log groups: these actions support no resource-level",
        "            # permissions, so \"*\"; a query can only have been started on the",
        "            # log groups above.",
        '            Resource: "*"',
        END,
    ]
    return out


def outputs_block():
    out = [
        BEGIN_OUT,
        "  DashboardReadPolicyArn:",
        "    Description: Managed policy granting read access to the monitoring dashboards (attach to the team's roles)",
        "    Value: !Ref DashboardReadPolicy",
    ]
    for _, logical_id, suffix in DASHBOARD_FILES:
        out += [
            f"  {logical_id}Url:",
            f"    Description: CloudWatch dashboard ({suffix})",
            f"    Value: !Sub https://${{AWS::Region}}.console.aws.amazon.com/cloudwatch/home?region=${{AWS::Region}}#dashboards/dashboard/${{{logical_id}}}",
        ]
    out.append(END_OUT)
    return out


def top_level_index(lines, key):
    for i, line in enumerate(lines):
        if line.rstrip() == f"{key}:":
            return i
    raise Failure(f"template.yaml has no top-level `{key}:`")


def section_end(lines, start):
    """Index after the last non-blank line of the top-level section at `start`."""
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i] and not lines[i][0].isspace() and not lines[i].startswith("#"):
            end = i
            break
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def replace_block(lines, begin, end, block, section):
    """`lines` with the marked block replaced, or appended to `section`."""
    starts = [i for i, line in enumerate(lines) if line.rstrip() == begin]
    ends = [i for i, line in enumerate(lines) if line.rstrip() == end]
    if len(starts) > 1 or len(ends) > 1 or len(starts) != len(ends):
        raise Failure(f"template.yaml: expected one pair of markers `{begin.strip()}` / `{end.strip()}`")
    if starts:
        s, e = starts[0], ends[0]
        if e < s:
            raise Failure(f"template.yaml: `{end.strip()}` comes before `{begin.strip()}`")
        return lines[:s] + block + lines[e + 1 :]
    at = section_end(lines, top_level_index(lines, section))
    return lines[:at] + [""] + block + lines[at:]


def render(text):
    lines = text.split("\n")
    lines = replace_block(lines, BEGIN, END, resources_block(), "Resources")
    lines = replace_block(lines, BEGIN_OUT, END_OUT, outputs_block(), "Outputs")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="render the dashboards into template.yaml")
    mode.add_argument("--check", action="store_true", help="fail if template.yaml is out of date")
    args = parser.parse_args()
    try:
        current = TEMPLATE.read_text(encoding="utf-8")
        wanted = render(current)
    except Failure as e:
        print(f"dashboards.py: {e}", file=sys.stderr)
        return 2
    if args.check:
        if wanted != current:
            print(
                "dashboards.py: template.yaml is out of date with infra/dashboards/*.json;"
                " run `python3 scripts/dashboards.py --write`",
                file=sys.stderr,
            )
            return 1
        print(f"dashboards.py: template.yaml embeds the {len(DASHBOARD_FILES)} dashboards of infra/dashboards")
        return 0
    if wanted != current:
        TEMPLATE.write_text(wanted, encoding="utf-8")
        print("dashboards.py: template.yaml updated")
    else:
        print("dashboards.py: template.yaml already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
