#!/usr/bin/env python3
"""The Python half of scripts/bench.sh: seeding users, reading load generators' output and
printing the results table. Standard library only, so a fresh machine needs nothing but
python3.

    bench.py seed --port P --count N --ids-file F   wait for /health, create N users, save ids
    bench.py wrk SCENARIO OUTPUT_FILE               one result row from wrk's WRKJSON line
    bench.py oha SCENARIO JSON_FILE                 one result row from oha's JSON summary
    bench.py table ROWS_FILE                        print the rows as a table

A row is a tab-separated line: scenario, tool, requests/s, p50, p99, p99.9 (microseconds),
errors (transport errors and timeouts, plus responses with a status of 400 or more, or for
the miss scenario, responses other than its 404).
"""

import argparse
import http.client
import json
import re
import sys
import time
import uuid


def wait_healthy(port, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            res = conn.getresponse()
            body = res.read()
            conn.close()
            if res.status == 200:
                return
            last = f"status {res.status}: {body[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    sys.exit(f"bench.py: the server on port {port} is not healthy after {timeout}s ({last})")


def seed(args):
    wait_healthy(args.port, args.wait)
    # Names and emails carry a run nonce, so seeding one server twice makes no duplicates.
    nonce = uuid.uuid4().hex[:8]
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    ids = []
    start = time.monotonic()
    for i in range(args.count):
        body = json.dumps({"name": f"Seed User {i}", "email": f"seed-{nonce}-{i}@example.com"})
        conn.request("POST", "/users", body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        if res.status != 201:
            sys.exit(f"bench.py: seeding POST /users got {res.status}: {data[:300]!r}")
        ids.append(json.loads(data)["data"]["id"])
    conn.close()
    with open(args.ids_file, "w") as f:
        f.write("\n".join(ids))
        f.write("\n")
    took = time.monotonic() - start
    print(f"seeded {len(ids)} users in {took:.1f}s ({len(ids) / max(took, 1e-9):.0f}/s)")


def emit(scenario, tool, rps, p50, p99, p999, errors):
    print("\t".join([scenario, tool, f"{rps:.0f}", f"{p50:.0f}", f"{p99:.0f}", f"{p999:.0f}",
                     str(int(errors))]))


def wrk_row(args):
    text = open(args.file, errors="replace").read()
    m = re.search(r"^WRKJSON (\{.*\})\s*$", text, re.M)
    if not m:
        tail = "\n".join(text.splitlines()[-15:])
        sys.exit(f"bench.py: no WRKJSON line in wrk's output ({args.file}):\n{tail}")
    r = json.loads(m.group(1))
    errors = sum(r[k] for k in ("connect_err", "read_err", "write_err", "timeout"))
    # A scenario that expects an error status (miss: 404) counts the statuses it did not expect;
    # the others count every status of 400 or more.
    unexpected = r.get("unexpected", -1)
    errors += unexpected if unexpected >= 0 else r["status_err"]
    emit(args.scenario, "wrk", r["rps"], r["p50_us"], r["p99_us"], r["p999_us"], errors)


def oha_row(args):
    r = json.load(open(args.file))
    summary = r.get("summary", {})
    pct = r.get("latencyPercentiles", {})

    def us(*keys):
        # oha reports seconds; key spellings have varied between versions ("p99.9", "p99_9").
        for k in keys:
            if pct.get(k) is not None:
                return pct[k] * 1e6
        return float("nan")

    bad_status = sum(n for code, n in r.get("statusCodeDistribution", {}).items()
                     if int(code) >= 400)
    # Requests still in flight when the -z deadline passes are cut off and reported as
    # "aborted due to deadline": an artefact of how the run ends, not a failure of the server.
    transport = sum(n for what, n in r.get("errorDistribution", {}).items()
                    if "deadline" not in what)
    emit(args.scenario, "oha", summary.get("requestsPerSec", 0.0), us("p50"), us("p99"),
         us("p99.9", "p99_9", "p999"), bad_status + transport)


def fmt_us(text):
    v = float(text)
    if v != v:  # NaN: the tool did not report it
        return "-"
    if v >= 1000:
        return f"{v / 1000:.2f}ms"
    return f"{v:.0f}us"


def table(args):
    head = ["scenario", "tool", "req/s", "p50", "p99", "p99.9", "errors"]
    rows = []
    for line in open(args.file):
        f = line.rstrip("\n").split("\t")
        if len(f) != 7:
            continue
        rows.append([f[0], f[1], f"{float(f[2]):,.0f}", fmt_us(f[3]), fmt_us(f[4]),
                     fmt_us(f[5]), f[6]])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    left = {0, 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--ids-file", required=True)
    s.add_argument("--wait", type=float, default=30, help="seconds to wait for /health")
    s.set_defaults(run=seed)
    for tool, run in (("wrk", wrk_row), ("oha", oha_row)):
        s = sub.add_parser(tool)
        s.add_argument("scenario")
        s.add_argument("file")
        s.set_defaults(run=run)
    s = sub.add_parser("table")
    s.add_argument("file")
    s.set_defaults(run=table)
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
