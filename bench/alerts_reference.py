#!/usr/bin/env python3
"""Reference sliding-window count for `replay --alerts`: slow, obviously right.

Usage: bench/alerts_reference.py CORPUS REPLAY_ALERTS_JSONL

Reads a corpus written by ../shared/bench/gen_logs.py, extracts the alert
signals of five default rules straight from the records (not through the
project's rules), and computes every incident transition by the definition
in the alert rules' documentation:

- a rule fires at the first signal that makes >= threshold signals of one
  key fall within a closed interval of `window` seconds, with count = the
  signals in that interval;
- it resolves at last signal + quiet period (default: the window) once a
  later signal, or the end of the input, passes that time; count = the
  signals of the episode;
- a later episode starts afresh.

Then it compares with replay's output for those rules: the same multiset of
(rule, status, at, count). Keys are left out (replay pseudonymizes IPs).
Exit status 1 on any difference, with the first ones printed.
"""

import collections
import json
import re
import sys
from datetime import datetime, timezone

# rule: (threshold, window s, quiet s). auth_failures and api_errors count
# across the service (the guide's ALERT_CONFIG has no grouping); the others
# per address, user or route.
RULES = {
    "auth_failures": (5, 300, 300),
    "auth_failures_by_ip": (5, 300, 300),
    "brute_force": (10, 120, 600),
    "api_errors": (10, 60, 60),
    "api_errors_by_endpoint": (10, 60, 60),
}

# The one text wording of a failed authentication gen_logs.py writes.
TEXT = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) - [\w.]+ - [A-Z]+ - Invalid state parameter: ")


def ms(ts):
    dt = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


def route(endpoint):
    import re

    path = re.split(r"[?#]", endpoint, maxsplit=1)[0]

    def is_id(seg):
        if seg.isdigit():
            return True
        if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", seg):
            return True
        return len(seg) >= 16 and re.fullmatch(r"[0-9a-fA-F]+", seg) and any(c.isdigit() for c in seg)

    return "/".join(":id" if is_id(s) else s for s in path.split("/"))


def signals(corpus):
    """(rule, key, time ms) in file order, and the last event time."""
    out = []
    last = None
    with open(corpus, encoding="utf-8", errors="replace") as f:
        for line in f:
            text = TEXT.match(line)
            if text:
                dt = datetime.strptime(text.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
                t = int(dt.timestamp()) * 1000 + int(text.group(2))
                last = t if last is None else max(last, t)
                out.append(("auth_failures", "", t))
                continue
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if not isinstance(r, dict) or "timestamp" not in r:
                continue
            t = ms(r["timestamp"])
            last = t if last is None else max(last, t)
            logger, message = r.get("logger"), r.get("message")
            failed_login = logger == "security" and message == "Authentication attempt" and r.get("success") is False
            failed_validation = (
                logger == "security"
                and message == "Token operation"
                and r.get("operation") == "validate"
                and r.get("status") == "failure"
            )
            if failed_login or failed_validation:
                out.append(("auth_failures", "", t))
                if isinstance(r.get("ip_address"), str):
                    out.append(("auth_failures_by_ip", r["ip_address"], t))
                # A signal without a user counts in no per-user rule.
                if isinstance(r.get("user_id"), str):
                    out.append(("brute_force", r["user_id"], t))
            if logger == "performance" and message == "API request completed":
                code = r.get("status_code")
                if isinstance(code, (int, float)) and not isinstance(code, bool) and code >= 500:
                    out.append(("api_errors", "", t))
                    out.append(("api_errors_by_endpoint", route(r.get("endpoint", "")), t))
    return out, last


def transitions(sigs, end):
    by_key = collections.defaultdict(list)
    for rule, key, t in sigs:
        by_key[(rule, key)].append(t)
    out = []
    for (rule, _key), times in by_key.items():
        threshold, window, quiet = RULES[rule]
        window *= 1000
        quiet *= 1000
        times.sort()
        recent = collections.deque()
        firing, count, last = False, 0, None
        for t in times:
            if firing and t > last + quiet:
                out.append((rule, "resolved", last + quiet, count))
                firing = False
            recent.append(t)
            while t - recent[0] > window:
                recent.popleft()
            if firing:
                count += 1
                last = t
            elif len(recent) >= threshold:
                firing, count, last = True, len(recent), t
                out.append((rule, "firing", t, count))
        if firing and last + quiet <= end:
            out.append((rule, "resolved", last + quiet, count))
    return out


def main():
    corpus, replayed = sys.argv[1], sys.argv[2]
    sigs, last = signals(corpus)
    end = max((t for _, _, t in sigs), default=last or 0)
    expected = collections.Counter(transitions(sigs, end))
    got = collections.Counter()
    with open(replayed, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            if j["rule"] in RULES:
                got[(j["rule"], j["status"], ms(j["at"]), j["count"])] += 1
    missing = expected - got
    extra = got - expected
    by_rule = collections.Counter((r, s) for (r, s, _, _) in expected.elements())
    print("alerts reference: " + ", ".join(f"{r} {s} {n}" for (r, s), n in sorted(by_rule.items())))
    if missing or extra:
        for item in sorted(missing.elements())[:10]:
            print("  missing from replay:", item)
        for item in sorted(extra.elements())[:10]:
            print("  not in the reference:", item)
        print(f"alerts reference: MISMATCH ({sum(missing.values())} missing, {sum(extra.values())} extra)")
        sys.exit(1)
    print(f"alerts reference: replay --alerts agrees ({sum(expected.values())} transitions)")


if __name__ == "__main__":
    main()
