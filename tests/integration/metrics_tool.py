#!/usr/bin/python3
"""metrics_tool.py — an independent reader of the Prometheus text format
(version 0.0.4) for test_metrics.sh: it parses what GET /metrics answered,
strictly, and fails (exit 1, the reason on stderr) on anything the format
does not allow or that does not add up.

  scrape URL OUT_JSON
      GET URL (the Content-Type must be text/plain; version=0.0.4), parse
      it, write {"name{label=\"v\",...}": value, ...} to OUT_JSON
  get JSON SERIES
      print the value of SERIES (name and labels as written) from OUT_JSON;
      exit 1 when it is missing
  prom-query URL QUERY
      query a Prometheus server's HTTP API (/api/v1/query); print the
      value of the single result, or nothing when there is none

Checks: every sample belongs to a family declared by a "# TYPE" line
before it (histograms: name_bucket/_sum/_count), each family is declared
once with a "# HELP" line, no sample appears twice, counters are >= 0,
label names and values are well formed (escapes: \\\\, \\", \\n only),
histogram buckets grow with le, end with le="+Inf" equal to _count.
"""
import json
import math
import re
import sys
import urllib.parse
import urllib.request

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise Bad(f"bad value {s!r}")


def parse_labels(s, i, lineno):
    """Labels from s[i] == '{'; returns ([(name, value)], index after '}')."""
    labels = []
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Bad(f"line {lineno}: bad label name at {s[i:]!r}")
        name = m.group(0)
        i = m.end()
        if s[i : i + 2] != '="':
            raise Bad(f"line {lineno}: expected =\" after {name}")
        i += 2
        value = []
        while s[i] != '"':
            if s[i] == "\\":
                esc = s[i + 1]
                if esc not in '\\"n':
                    raise Bad(f"line {lineno}: bad escape \\{esc}")
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif s[i] == "\n":
                raise Bad(f"line {lineno}: raw newline in a label value")
            else:
                value.append(s[i])
                i += 1
        i += 1
        if any(n == name for n, _ in labels):
            raise Bad(f"line {lineno}: label {name} twice")
        labels.append((name, "".join(value)))
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise Bad(f"line {lineno}: expected , or }} at {s[i:]!r}")


def key(name, labels):
    if not labels:
        return name
    inner = ",".join(
        '%s="%s"' % (n, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for n, v in labels
    )
    return "%s{%s}" % (name, inner)


def parse(text):
    if not text.endswith("\n"):
        raise Bad("the text does not end with a newline")
    types, helps, samples = {}, set(), {}
    current = None
    hist = {}  # (family, labels without le) -> [(le, value)], plus _count
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line[7:].split(" ", 1)[0]
            if not NAME.fullmatch(name) or name in helps:
                raise Bad(f"line {lineno}: bad or repeated HELP for {name}")
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or not NAME.fullmatch(parts[0]) or parts[1] not in TYPES:
                raise Bad(f"line {lineno}: bad TYPE line {line!r}")
            if parts[0] in types:
                raise Bad(f"line {lineno}: family {parts[0]} declared twice")
            if parts[0] not in helps:
                raise Bad(f"line {lineno}: family {parts[0]} has no HELP")
            types[parts[0]] = parts[1]
            current = parts[0]
            continue
        if line.startswith("#") or not line.strip():
            raise Bad(f"line {lineno}: unexpected line {line!r}")
        m = NAME.match(line)
        if not m:
            raise Bad(f"line {lineno}: no metric name in {line!r}")
        name, i = m.group(0), m.end()
        labels = []
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line + "\n", i, lineno)
        if line[i : i + 1] != " ":
            raise Bad(f"line {lineno}: expected a space before the value")
        rest = line[i + 1 :].split(" ")
        if len(rest) not in (1, 2):
            raise Bad(f"line {lineno}: bad value/timestamp {line[i + 1:]!r}")
        value = parse_value(rest[0])
        family = name
        if current and types[current] == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                if name == current + suffix:
                    family = current
        if family != current:
            raise Bad(f"line {lineno}: sample {name} outside its family ({current})")
        k = key(name, labels)
        if k in samples:
            raise Bad(f"line {lineno}: sample {k} twice")
        samples[k] = value
        kind = types[current]
        if kind == "counter" and not value >= 0:
            raise Bad(f"line {lineno}: counter {k} is {value}")
        if kind == "histogram":
            base = tuple(l for l in labels if l[0] != "le")
            entry = hist.setdefault((current, base), {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                le = [v for n, v in labels if n == "le"]
                if len(le) != 1:
                    raise Bad(f"line {lineno}: bucket without le")
                entry["buckets"].append((parse_value(le[0]), value))
            elif name.endswith("_count"):
                entry["count"] = value
    for (family, base), e in hist.items():
        b = e["buckets"]
        if not b or b[-1][0] != math.inf:
            raise Bad(f"{family}{dict(base)}: no le=\"+Inf\" bucket at the end")
        for (le1, v1), (le2, v2) in zip(b, b[1:]):
            if not le2 > le1 or v2 < v1:
                raise Bad(f"{family}{dict(base)}: buckets not cumulative at le={le2}")
        if e["count"] != b[-1][1]:
            raise Bad(f"{family}{dict(base)}: _count {e['count']} != +Inf bucket {b[-1][1]}")
    return samples


def main():
    cmd = sys.argv[1]
    if cmd == "scrape":
        with urllib.request.urlopen(sys.argv[2], timeout=30) as r:
            ctype = r.headers.get("Content-Type", "")
            body = r.read().decode("utf-8")
        if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
            raise Bad(f"Content-Type is {ctype!r}")
        samples = parse(body)
        with open(sys.argv[3], "w") as f:
            json.dump(samples, f, indent=0)
    elif cmd == "get":
        with open(sys.argv[2]) as f:
            samples = json.load(f)
        if sys.argv[3] not in samples:
            print(f"no series {sys.argv[3]}", file=sys.stderr)
            sys.exit(1)
        v = samples[sys.argv[3]]
        print(int(v) if v == int(v) else v)
    elif cmd == "prom-query":
        url = sys.argv[2] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[3]})
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        if doc.get("status") != "success":
            raise Bad(f"query failed: {doc}")
        result = doc["data"]["result"]
        if len(result) > 1:
            raise Bad(f"more than one series: {result}")
        if result:
            print(result[0]["value"][1])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except Bad as e:
        print(f"metrics_tool: {e}", file=sys.stderr)
        sys.exit(1)
