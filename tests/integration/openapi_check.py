#!/usr/bin/python3
"""openapi_check.py — hold noid-server's answers and route table to
docs/openapi.yaml.

  openapi_check.py check OPENAPI_YAML EXCHANGES [--require-all]
      Check every recorded exchange (lib.sh's http() appends them) against
      the document: the request's method and path must match an operation
      (path templates as the server matches them, x-noid-route for the
      '{+path}' rest-of-URL parameter) or get one of x-noid-unrouted's
      answers; the status must be documented for it; the Content-Type must
      be one the response lists (no body where it lists none); a JSON body
      must validate against the response's schema (JSON Schema draft
      2020-12, $refs resolved in the document).  Exit 1 naming method, path,
      status and the schema error of each violation.  --require-all: also
      fail if an operation of the document got no request.

  openapi_check.py lint OPENAPI_YAML ROUTES_C
      What the npm validator does not check: every schema is valid draft
      2020-12, every $ref resolves, every path template's parameters are
      declared, every /v1 operation documents 401, 429 and 500, and the
      document's (method, path) pairs are exactly the route table of
      server/api/routes.c.

EXCHANGES holds records of a header line
  METHOD <TAB> STATUS <TAB> CONTENT-TYPE <TAB> BODY-LENGTH <TAB> PATH <LF>
followed by BODY-LENGTH bytes of body (CONTENT-TYPE "-" when there was
none).  Uses Debian's python3-yaml and python3-jsonschema only."""

import json
import re
import sys
import urllib.parse
import warnings

try:
    import yaml
    import jsonschema
except ImportError as e:
    sys.exit(f"openapi_check: {e}: install python3-yaml and python3-jsonschema "
             "(scripts/deps.sh does)")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_doc(path):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as f:
        return yaml.load(f, Loader=loader)


def pointer_get(doc, ref):
    if not ref.startswith("#"):
        raise KeyError(f"only local $refs are used here, not {ref}")
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def deref(doc, node):
    """node with $ref objects followed (response objects, parameters)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer_get(doc, node["$ref"])
        seen += 1
        if seen > 20:
            raise ValueError("$ref loop")
    return node


def route_regex(route):
    """The server's matcher (routes.c): '{x}' is one non-empty segment;
    '{+x}' right after a literal is the rest of the path, empty or from a
    '/'."""
    out = ""
    for tok in re.split(r"(\{\+?[^}]+\})", route):
        if tok.startswith("{+"):
            out += "(?:/.*)?"
        elif tok.startswith("{"):
            out += "[^/]+"
        else:
            out += re.escape(tok)
    return re.compile(out + r"\Z", re.S)


class Doc:
    def __init__(self, path):
        self.path = path
        self.doc = load_doc(path)
        self.routes = []  # (compiled regex, path key, path item)
        for key, item in self.doc.get("paths", {}).items():
            route = item.get("x-noid-route", key)
            self.routes.append((route_regex(route), key, item))
        warnings.simplefilter("ignore", DeprecationWarning)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.format_checker = jsonschema.FormatChecker()

    def operation(self, method, path):
        """(where, responses) for a request: the operation's, or the
        document's x-noid-unrouted answers when no operation takes it."""
        raw = path.split("?", 1)[0]
        decoded = urllib.parse.unquote(raw, errors="surrogateescape")
        path_known = False
        for rx, key, item in self.routes:
            if not rx.match(decoded):
                continue
            op = item.get(method.lower())
            if op is not None:
                return f"{method.upper()} {key}", op.get("responses", {})
            path_known = True
        unrouted = self.doc.get("x-noid-unrouted", {}).get("responses", {})
        what = "a method the path does not have" if path_known else "no such endpoint"
        return f"({what})", unrouted

    def validate(self, schema, value):
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver,
                                            format_checker=self.format_checker)
        err = jsonschema.exceptions.best_match(v.iter_errors(value))
        if err is None:
            return None
        where = "$" + "".join(f"[{p!r}]" for p in err.absolute_path)
        return f"{err.message} (at {where})"


def read_exchanges(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        fields = data[pos:nl].decode("utf-8", "surrogateescape").split("\t", 4)
        if len(fields) != 5:
            raise ValueError(f"{path}: malformed record header at byte {pos}")
        method, status, ctype, length, req_path = fields
        length = int(length)
        body = data[nl + 1:nl + 1 + length]
        pos = nl + 1 + length
        yield method, req_path, status, ctype, body


def check_one(d, method, req_path, status, ctype, body):
    """None, or what is wrong with this exchange."""
    where, responses = d.operation(method, req_path)
    resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if resp is None:
        return (f"status {status} is not documented for {where} "
                f"(documented: {', '.join(sorted(responses)) or 'none'})")
    resp = deref(d.doc, resp)
    content = resp.get("content")
    media = (ctype.split(";", 1)[0].strip().lower() if ctype not in ("", "-") else "")
    if method.upper() == "HEAD":
        return None  # no body to check
    if not content:
        if body:
            return f"{where} documents no body for {status}, got {len(body)} bytes ({media or 'no Content-Type'})"
        return None
    if not media:
        if body:
            return f"{len(body)} bytes of body without a Content-Type"
        return None
    if media not in content:
        return (f"Content-Type {media} is not documented for {where} {status} "
                f"(documented: {', '.join(content)})")
    schema = content[media].get("schema")
    if media != "application/json" or schema is None:
        return None
    try:
        value = json.loads(body)
    except ValueError as e:
        return f"the body is not JSON ({e}): {body[:200]!r}"
    err = d.validate(schema, value)
    if err:
        return f"the body does not match the schema: {err}; body: {body[:300].decode('utf-8', 'replace')}"
    return None


def cmd_check(doc_path, exchanges, require_all=False):
    d = Doc(doc_path)
    bad = n = 0
    seen = set()
    for method, req_path, status, ctype, body in read_exchanges(exchanges):
        if status == "000":
            continue  # no answer at all (curl could not connect)
        n += 1
        seen.add(d.operation(method, req_path)[0])
        why = check_one(d, method, req_path, status, ctype, body)
        if why:
            bad += 1
            print(f"openapi: {method} {req_path} -> {status}: {why}", file=sys.stderr)
    if require_all:
        for key, item in d.doc.get("paths", {}).items():
            for method in METHODS:
                if method in item and f"{method.upper()} {key}" not in seen:
                    bad += 1
                    print(f"openapi: no request exercised {method.upper()} {key}", file=sys.stderr)
    if bad:
        print(f"openapi: {bad} problems in {n} responses checked against {doc_path}",
              file=sys.stderr)
        return 1
    print(f"openapi: {n} responses match {doc_path}"
          + (f" ({len(seen)} operations and answers)" if require_all else ""))
    return 0


# ---- lint ----

def walk(node, ptr=""):
    yield ptr, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{ptr}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{ptr}/{i}")


def parse_routes_c(path):
    text = open(path, encoding="utf-8").read()
    table = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if not table:
        raise ValueError(f"{path}: no 'routes[] = {{ ... }};' table found")
    body = re.sub(r"/\*.*?\*/", "", table.group(1), flags=re.S)
    routes = set(re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"', body))
    if not routes:
        raise ValueError(f"{path}: the route table has no entries I can read")
    return routes


def cmd_lint(doc_path, routes_c):
    d = Doc(doc_path)
    doc = d.doc
    errors = []
    # every $ref resolves; every schema is valid draft 2020-12
    for ptr, node in walk(doc):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            try:
                pointer_get(doc, node["$ref"])
            except (KeyError, IndexError, ValueError) as e:
                errors.append(f"{ptr}: $ref {node['$ref']} does not resolve ({e})")
        parent = ptr.rsplit("/", 1)
        if (ptr.endswith("/schema") or (len(parent) == 2 and parent[0] == "/components/schemas")) \
                and isinstance(node, dict):
            try:
                jsonschema.Draft202012Validator.check_schema(node)
            except jsonschema.exceptions.SchemaError as e:
                errors.append(f"{ptr}: not a valid JSON Schema: {e.message}")
    # operations: path parameters declared, the shared answers documented
    documented = set()
    for key, item in doc.get("paths", {}).items():
        route = item.get("x-noid-route", key)
        if route.replace("{+", "{") != key:
            errors.append(f"paths {key}: x-noid-route {route} names other parameters")
        want = set(re.findall(r"\{\+?([^}]+)\}", key))
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            documented.add((method.upper(), route))
            params = [deref(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            have = {p["name"] for p in params if p.get("in") == "path"}
            if want != have:
                errors.append(f"{method.upper()} {key}: path parameters declared {sorted(have)}, "
                              f"the template has {sorted(want)}")
            codes = set(op.get("responses", {}))
            needs = {"500"}
            if op.get("security", doc.get("security")):
                needs |= {"401", "429"}
            if needs - codes:
                errors.append(f"{method.upper()} {key}: does not document "
                              f"{', '.join(sorted(needs - codes))}")
    # the route table, both ways
    routes = parse_routes_c(routes_c)
    for m, r in sorted(routes - documented):
        errors.append(f"{routes_c}: route {m} {r} is missing from the document")
    for m, r in sorted(documented - routes):
        errors.append(f"the document has {m} {r}, which is not in {routes_c}")
    for e in errors:
        print(f"openapi lint: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"openapi lint: {len(documented)} operations, all {len(routes)} routes of "
          f"{routes_c} documented, schemas valid")
    return 0


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "check" and argv[4:] in ([], ["--require-all"]):
        return cmd_check(argv[2], argv[3], argv[4:] == ["--require-all"])
    if len(argv) == 4 and argv[1] == "lint":
        return cmd_lint(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
