#!/usr/bin/env python3
"""The walk-through `make run` prints: the bundled sample traffic through
log-metrics, the incidents it raised, their delivery by incident-notifier to a
local receiver, the security responder's dry-run record, and a resolution
reaching the same channels.

Runs against the functions served by `cargo lambda watch` (scripts/run.sh) and
the local stack (env from `scripts/stack.sh env`). Every step prints one
progress line; a failing step exits non-zero with the reason.

    demo.py --port 9000 --work .local/run/demo --receiver-log FILE \
            --signing-key-file FILE [--sample events/demo/traffic.log]
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

QUEUE = "blindspotx-incidents-local"
TEXT_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")
JSON_TS = re.compile(r'"timestamp":"([^"]+)"')
# What the security-responder's SNS subscription lets through (template.yaml).
RESPONDER_FILTER = {"category": "security", "severity": "critical"}


class StepFailed(Exception):
    pass


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_json_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fmt_json_ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def records(sample: Path) -> list[str]:
    """The sample's records: a line that starts neither a JSON record nor a
    Python text record continues the one before (tracebacks)."""
    out: list[str] = []
    for line in sample.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if line.startswith("{") or TEXT_TS.match(line) or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


def record_time(rec: str) -> datetime:
    m = TEXT_TS.match(rec)
    if m:
        return datetime.strptime(f"{m[1]}.{m[2]}", "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    m = JSON_TS.search(rec)
    if not m:
        raise StepFailed(f"sample record without a timestamp: {rec[:80]}")
    return parse_json_ts(m[1])


def rebase(rec: str, shift: timedelta) -> tuple[datetime, str]:
    """The record moved by `shift`: alert windows run on event time, so the
    sample must look recent."""
    t = record_time(rec) + shift
    if TEXT_TS.match(rec):
        stamp = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"
        return t, TEXT_TS.sub(stamp, rec, count=1)
    return t, JSON_TS.sub(f'"timestamp":"{fmt_json_ts(t)}"', rec, count=1)


def subscription_event(sample: Path, out: Path) -> int:
    """A CloudWatch Logs subscription event carrying the sample, newest record
    a few seconds ago."""
    recs = records(sample)
    newest = max(record_time(r) for r in recs)
    shift = datetime.now(timezone.utc) - timedelta(seconds=5) - newest
    events = []
    for i, rec in enumerate(recs):
        t, moved = rebase(rec, shift)
        events.append({"id": f"{int(t.timestamp() * 1000)}{i:06d}", "timestamp": int(t.timestamp() * 1000), "message": moved})
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/blindspotx/auth-service",
        "logStream": "demo",
        "subscriptionFilters": ["blindspotx-monitoring"],
        "logEvents": events,
    }
    packed = base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()
    out.write_text(json.dumps({"awslogs": {"data": packed}}), encoding="utf-8")
    return len(events)


def invoke(port: int, function: str, event: Path) -> dict:
    cmd = [
        "cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
        function, "--data-file", str(event), "--output-format", "json",
    ]
    try:
        # The first call of a function waits for cargo lambda watch to build it.
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as e:
        raise StepFailed(f"{function} did not answer within 15 min (still compiling? see .local/run/watch.log)") from e
    if done.returncode != 0:
        raise StepFailed(f"cargo lambda invoke {function} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    try:
        return json.loads(done.stdout)
    except ValueError as e:
        raise StepFailed(f"{function} answered something that is not JSON ({e}): {done.stdout[:300]}") from e


def drain_incidents(sqs) -> list[dict]:
    """Every incident waiting in the queue subscribed to the incidents topic
    (raw delivery: the body is the published message, the SNS message
    attributes are the queue message's), deleted as read."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    found: list[dict] = []
    quiet = 0
    while quiet < 2:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            quiet += 1
            continue
        for m in got:
            found.append(
                {
                    "MessageId": m["MessageId"],
                    "Message": m["Body"],
                    "MessageAttributes": {
                        k: {"Type": v.get("DataType", "String"), "Value": v.get("StringValue")}
                        for k, v in m.get("MessageAttributes", {}).items()
                    },
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def sns_event(note: dict, topic_arn: str) -> dict:
    """The incident as Lambda receives it from an SNS subscription."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:local-demo",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": note["MessageId"],
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": note["Message"],
                    "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "SignatureVersion": "1",
                    "Signature": "local",
                    "SigningCertUrl": "https://example.invalid/cert.pem",
                    "UnsubscribeUrl": "https://example.invalid/unsubscribe",
                    "MessageAttributes": note["MessageAttributes"],
                },
            }
        ]
    }


def attrs(note: dict) -> dict:
    return {k: v.get("Value") for k, v in note.get("MessageAttributes", {}).items()}


def verify_signature(entry: dict, key: bytes) -> str:
    headers = entry["headers"]
    sig, ts = headers.get("x-blindspotx-signature"), headers.get("x-blindspotx-timestamp")
    if not sig or not ts:
        return "unsigned"
    want = "sha256=" + hmac.new(key, f"{ts}.{entry['raw']}".encode(), hashlib.sha256).hexdigest()
    return "HMAC-SHA256 signature verifies" if hmac.compare_digest(sig, want) else "SIGNATURE MISMATCH"


def slack_summary(body: dict) -> str:
    texts = []
    for block in body.get("blocks", []):
        text = block.get("text")
        if isinstance(text, dict):
            texts.append(text.get("text", ""))
        for f in block.get("fields", []) or []:
            texts.append(f.get("text", ""))
    line = " | ".join(t.replace("\n", " ") for t in texts if t)
    return (line or body.get("text", ""))[:240]


def delivery_summary(entry: dict, key: bytes) -> str:
    """One line for a request the local receiver got, by channel."""
    body = entry["body"]
    if not isinstance(body, dict):
        return "(not a JSON object)"
    path = entry["path"]
    if path.startswith("/slack"):
        return f"(Slack Block Kit): {slack_summary(body)}"
    if path.startswith("/teams"):
        card = (body.get("attachments") or [{}])[0].get("content", {})
        headline = (card.get("body") or [{}])[0].get("text", "")
        return f"(Teams Adaptive Card {card.get('version')}): {headline}"
    if path.startswith("/pagerduty"):
        return (f"(PagerDuty Events v2): event_action={body.get('event_action')} "
                f"dedup_key={body.get('dedup_key')} severity={body.get('payload', {}).get('severity')}")
    return f"(signed webhook, {verify_signature(entry, key)}): {body.get('rule')} {body.get('status')}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--receiver-log", type=Path, required=True)
    ap.add_argument("--signing-key-file", type=Path, required=True)
    ap.add_argument("--sample", type=Path, default=Path("events/demo/traffic.log"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    topic_arn = os.environ["INCIDENTS_TOPIC_ARN"]
    started = time.time()

    say("  [demo 1/6] drain old incidents from the queue (earlier runs)")
    old = drain_incidents(sqs)
    if old:
        say(f"    {len(old)} old message(s) dropped")

    event = args.work / "subscription-event.json"
    n = subscription_event(args.sample, event)
    say(f"  [demo 2/6] log-metrics: {n} records of {args.sample} (normal traffic, a brute-force burst, "
        "an API error spike, a drift detection) as one CloudWatch Logs subscription event")
    out = invoke(args.port, "log-metrics", event)
    say("    " + json.dumps(out)[:600])

    say(f"  [demo 3/6] incidents in the SQS queue {QUEUE} (subscribed to the incidents topic)")
    notes = drain_incidents(sqs)
    deadline = time.time() + 15
    while not notes and out.get("alerts_published", 0) > 0 and time.time() < deadline:
        notes = drain_incidents(sqs)
    # Every incident the demo has seen, for the runs in which the earlier
    # ones are still firing.
    saved = args.work / "incidents.json"
    earlier = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else []
    known = {n["MessageId"] for n in notes}
    saved.write_text(json.dumps(notes + [n for n in earlier if n["MessageId"] not in known]), encoding="utf-8")
    if not notes and not earlier:
        raise StepFailed("no incident reached the queue: see .local/run/watch.log for log-metrics' errors")
    if not notes:
        # The windows still hold an earlier run's burst: those incidents are
        # firing and fire no second time until they resolve. Deliver the
        # earlier run's incidents again instead, which shows that a
        # redelivered message notifies nobody twice and revokes nothing twice.
        notes = earlier
        say("    no new incident in the queue (the earlier run's are still firing; they resolve after "
            "their quiet period): redelivering the earlier incidents instead")
    for note in notes:
        a = attrs(note)
        inc = json.loads(note["Message"])
        say(f"    {a.get('status', '?'):8} {a.get('severity', '?'):8} {a.get('category', '?'):11} "
            f"{inc.get('rule')} key={inc.get('key')} count={inc.get('count')}/{inc.get('threshold')} "
            f"in {inc.get('window_seconds')}s  runbook {inc.get('runbook_url')}")

    say("  [demo 4/6] incident-notifier: each incident as SNS delivers it (routing: infra/notifier/routing.toml)")
    for i, note in enumerate(notes):
        path = args.work / f"sns-incident-{i}.json"
        path.write_text(json.dumps(sns_event(note, topic_arn)), encoding="utf-8")
        summary = invoke(args.port, "incident-notifier", path)
        inc = json.loads(note["Message"])
        say(f"    {inc.get('rule')}/{inc.get('key')}: delivered={summary.get('delivered')} "
            f"already_delivered={summary.get('already_delivered')} suppressed={summary.get('suppressed')} "
            f"not_configured={summary.get('not_configured')}")
    key = args.signing_key_file.read_bytes().strip()
    entries = []
    if args.receiver_log.exists():
        for line in args.receiver_log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if datetime.fromisoformat(entry["time"]).timestamp() >= started:
                entries.append(entry)
    say(f"    the local receiver got {len(entries)} request(s) (all of them in {args.receiver_log}):")
    for entry in entries:
        say(f"      POST {entry['path']} {delivery_summary(entry, key)}")
    if not entries:
        say("    nothing new: every delivery was made by the earlier run (one delivery marker per "
            "incident, transition and channel)")
    elif not any(e["path"].startswith("/slack") for e in entries):
        raise StepFailed("no Slack-shaped message reached the receiver")

    say("  [demo 5/6] security-responder (SNS filter policy: category=security, severity=critical; dry-run)")
    def critical_security(note: dict) -> bool:
        a = attrs(note)
        return all(a.get(k) == v for k, v in RESPONDER_FILTER.items())

    targets = [n for n in notes if critical_security(n)]
    if not targets:
        # brute_force is still firing from an earlier run (its episode lasts
        # until it is quiet): deliver that one again; the responder must
        # recognise it and do nothing twice.
        targets = [n for n in earlier if critical_security(n)][:1]
        if targets:
            say("    no new critical security incident (an earlier one is still firing); redelivering it")
    responded = 0
    for i, note in enumerate(targets):
        path = args.work / f"sns-responder-{i}.json"
        path.write_text(json.dumps(sns_event(note, topic_arn)), encoding="utf-8")
        summary = invoke(args.port, "security-responder", path)
        if summary.get("rejected"):
            say(f"    refused (nothing done): {summary['rejected']}")
        if summary.get("duplicates"):
            responded += 1
            say(f"    incident {json.loads(note['Message']).get('id')}: handled before, nothing done again")
        for rec in summary.get("responses", []):
            responded += 1
            say(f"    security incident {rec['incident_id']} ({rec['rule']}, key {rec['key']}), mode {rec['mode']}, "
                f"revoker {rec['revoker']}:")
            if rec.get("decision"):
                say(f"      decision: {rec['decision']}")
            for act in rec.get("actions", []):
                say(f"      {act['action']} {act['target']}: {act['status']}"
                    + (f" ({act['decision']})" if act.get("decision") else "")
                    + f" - {act['detail']}"
                    + (f" (undo: {act['undo']})" if act.get("undo") else ""))
            for note_text in rec.get("notes", []):
                say(f"      note: {note_text}")
            say(f"      stored as pk=RESPONSE#{rec['incident_id']} sk=ACTIONS in table {os.environ.get('TABLE_NAME')}")
    if responded == 0:
        raise StepFailed("no critical security incident reached the security responder")
    resolution(args, sqs, topic_arn, key)
    return 0


# The quiet period of brute_force (infra/alerts/default.toml), the longest
# of the rules a burst of failed logins against one user raises.
QUIET_SECONDS = 600


def resolution(args, sqs, topic_arn: str, key: bytes) -> None:
    """A burst of failed logins against a user of its own, placed just
    over the quiet period in the past: log-metrics fires its incidents (the
    windows run on event time), the alert-evaluator resolves them at once
    (nothing followed the burst), and incident-notifier delivers the
    resolutions to the channels that got the firing."""
    say("  [demo 6/6] resolution: a burst against another user, ended "
        f"{QUIET_SECONDS + 60} s ago; alert-evaluator resolves its incidents, incident-notifier delivers them")
    user = f"5e7a0000-0000-4000-8000-{int(time.time()):012d}"
    end = datetime.now(timezone.utc) - timedelta(seconds=QUIET_SECONDS + 60)
    events = []
    for i in range(12):
        t = end - timedelta(seconds=5 * (11 - i))
        rec = json.dumps({
            "timestamp": fmt_json_ts(t), "level": "WARNING", "logger": "security",
            "message": "Authentication attempt", "user_id": user, "ip_address": "198.51.100.77",
            "success": False, "method": "password", "endpoint": "/api/auth/login", "duration_ms": 31.0,
        }, separators=(",", ":"))
        events.append({"id": f"{int(t.timestamp() * 1000)}{i:06d}", "timestamp": int(t.timestamp() * 1000), "message": rec})
    body = {
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/blindspotx/auth-service",
        "logStream": "demo-resolution", "subscriptionFilters": ["blindspotx-monitoring"], "logEvents": events,
    }
    event = args.work / "subscription-event-resolution.json"
    packed = base64.b64encode(gzip.compress(json.dumps(body).encode())).decode()
    event.write_text(json.dumps({"awslogs": {"data": packed}}), encoding="utf-8")
    out = invoke(args.port, "log-metrics", event)
    scheduled = args.work / "scheduled.json"
    scheduled.write_text(json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}), encoding="utf-8")
    evaluated = invoke(args.port, "alert-evaluator", scheduled)
    say(f"    log-metrics: {out.get('alert_transitions')} incident(s) fired; alert-evaluator: "
        + json.dumps(evaluated)[:300])
    # The burst's incidents, firing then resolved (the periodic evaluator of
    # `make run` may have resolved them first: the queue has them either way).
    notes: list[dict] = []
    deadline = time.time() + 20
    while time.time() < deadline:
        notes += [n for n in drain_incidents(sqs) if of_the_burst(n)]
        if any(attrs(n).get("status") == "resolved" for n in notes):
            break
        time.sleep(1)
    resolved = [n for n in notes if attrs(n).get("status") == "resolved"]
    if not resolved:
        raise StepFailed("no resolution reached the incidents queue: see .local/run/evaluator.log")
    started = time.time()
    for i, note in enumerate(sorted(notes, key=lambda n: attrs(n).get("status") == "resolved")):
        inc = json.loads(note["Message"])
        path = args.work / f"sns-resolution-{i}.json"
        path.write_text(json.dumps(sns_event(note, topic_arn)), encoding="utf-8")
        summary = invoke(args.port, "incident-notifier", path)
        say(f"    {attrs(note).get('status', '?'):8} {inc.get('rule')} key={inc.get('key')}: "
            f"delivered={summary.get('delivered')} already_delivered={summary.get('already_delivered')}")
    got = []
    if args.receiver_log.exists():
        for line in args.receiver_log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if datetime.fromisoformat(entry["time"]).timestamp() >= started - 1:
                got.append(entry)
    shown = 0
    for entry in got:
        if "resolv" in json.dumps(entry["body"]).lower():
            shown += 1
            say(f"      POST {entry['path']} {delivery_summary(entry, key)}")
    if shown == 0:
        raise StepFailed("no resolution reached the local receiver (Slack, webhook, PagerDuty)")


def of_the_burst(note: dict) -> bool:
    """An incident of the resolution burst: the rules that key failed
    logins by user (the burst's one user fails 12 times in a minute)."""
    inc = json.loads(note["Message"])
    return inc.get("rule") in {"brute_force", "auth_failures_by_user"}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StepFailed as e:
        say(f"  demo failed: {e}")
        sys.exit(1)
