#!/usr/bin/python3
"""fake_firecracker.py - a stand-in `firecracker` binary that validates every
API request noid sends against the official Firecracker API spec.

Firecracker cannot run on our machines (it needs /dev/kvm), so noid's
Firecracker backend (server/vmm/firecracker.c) is checked against this
program instead.  The backend starts it exactly as it would start firecracker
(`<bin> --api-sock firecracker.sock --id noid-<instance id>`, detached, cwd =
the VM directory, stdin = the serial.in FIFO) and talks to it over the Unix
API socket.

What it checks, for every request:
  * HTTP framing as Firecracker's micro_http server accepts it (CRLF lines,
    Content-Length bodies, no chunked encoding, no Expect, JSON content type,
    the 51200-byte default payload limit);
  * method + path against the spec's `paths` (path parameters included);
  * the JSON body against the referenced `definitions` schema: type,
    required, properties, enum, minimum/maximum, items, $ref,
    additionalProperties.  Objects are closed unless the schema says
    additionalProperties (Firecracker's request structs are serde
    deny_unknown_fields).  Fields whose spec description calls them
    deprecated are violations too;
  * the rules the spec states in prose (virtio-block drives need path_on_host
    and is_read_only; snapshot/load takes exactly one of mem_backend and
    mem_file_path; the body's drive_id matches the path; SMT vCPU counts);
  * Firecracker's state machine where it matters: pre-boot configuration only
    before InstanceStart, /snapshot/load only on a fresh process, PATCH /vm
    and /snapshot/create only after boot, snapshots only while paused;
  * what real Firecracker refuses at request time: missing kernel, initrd,
    disk, log or snapshot files, an existing vsock socket path.
Responses are the spec's success code (204, or 200 with a body that matches
the spec's schema) or 400 {"fault_message": ...}.

It also plays the parts of the VM the backend relies on: the vsock socket
(uds_path) answers "CONNECT <port>\\n" with "OK <n>\\n" once the VM runs;
/snapshot/create writes small snapshot and memory files, and /snapshot/load
re-opens the disks and re-binds the vsock socket named in them, relative to
the new working directory, as Firecracker does.

Every request, violation and event is appended as one JSON line to the file
named by $FC_CONTRACT_REPORT.  The spec is $FC_SPEC, else firecracker.yaml
next to this file.  The process runs until it is killed.

What this cannot prove: that a real guest boots, that Firecracker's
behaviour beyond its API spec (timing, error wording, snapshot format)
matches, or that the kernel and disk images are usable by Firecracker.

Needs only Debian's python3 and python3-yaml.
"""

import fcntl
import json
import os
import re
import socket
import stat
import sys
import threading
import time

try:
    import yaml
except ImportError:
    sys.stderr.write("fake_firecracker: python3-yaml is not installed\n")
    sys.exit(3)

MAX_PAYLOAD = 51200  # Firecracker's default --http-api-max-payload-size
MAX_HEADER = 8192
VSOCK_FIRST_LOCAL_PORT = 1 << 30  # where Firecracker's host-side ports start
VSOCK_LINE_MAX = 64
VSOCK_WAIT_RUNNING_S = 30
ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")  # firecracker --id
RESOURCE_ID_RE = re.compile(r"^[A-Za-z0-9_]+$")  # drive_id, iface_id, ...

# Flags real firecracker accepts (v1.x); anything else makes it exit.
KNOWN_FLAGS_WITH_VALUE = {
    "api-sock", "id", "config-file", "log-path", "level", "module", "metrics-path",
    "seccomp-filter", "start-time-us", "start-time-cpu-us", "parent-cpu-time-us",
    "http-api-max-payload-size", "mmds-size-limit", "describe-snapshot",
}
KNOWN_FLAGS_BOOL = {
    "no-api", "show-level", "show-log-origin", "boot-timer", "no-seccomp", "version",
    "help", "snapshot-version", "enable-pci",
}

# Schema keywords this validator understands.  A spec that uses another one
# makes the fake refuse to start rather than silently accept anything.
SCHEMA_KEYWORDS = {
    "type", "required", "properties", "enum", "minimum", "maximum", "items", "$ref",
    "additionalProperties", "description", "default", "format", "example", "readOnly",
}

# Firecracker's runtime controller refuses these once the VM has started,
# beyond the operations whose summary says "Pre-boot only".
EXTRA_PREBOOT = {("PUT", "/logger"), ("PUT", "/metrics"), ("PUT", "/serial"),
                 ("PUT", "/hotplug/memory"), ("PUT", "/balloon")}
# ... and these are refused before it has started.
EXTRA_POSTBOOT = {("PATCH", "/vm")}
# Configuring these keeps the process "fresh" (snapshot/load still allowed).
FRESH_KEEPING = {("PUT", "/logger"), ("PUT", "/metrics")}

REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           413: "Payload Too Large", 500: "Internal Server Error"}


class Violation(Exception):
    """The request breaks the spec (or the state machine): our bug."""


class Refused(Exception):
    """A well-formed request real Firecracker would refuse (missing file...)."""


# ---------------------------------------------------------------- reporting

class Report:
    def __init__(self, path, instance_id):
        self.path = path
        self.id = instance_id
        self.lock = threading.Lock()

    def emit(self, kind, **fields):
        rec = {"kind": kind, "pid": os.getpid(), "id": self.id, "t": round(time.time(), 3)}
        rec.update(fields)
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        if not self.path:
            return
        with self.lock:
            # one write(2) per line with O_APPEND: lines of several fakes
            # sharing one report never interleave
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


# ------------------------------------------------------------ the validator

class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        if self.doc.get("swagger") != "2.0":
            raise SystemExit("fake_firecracker: %s is not a swagger 2.0 spec" % path)
        self.version = str(self.doc["info"]["version"])
        self.defs = self.doc["definitions"]
        self.routes = []
        for template, ops in self.doc["paths"].items():
            names = re.findall(r"{([^}]+)}", template)
            rx = "^" + re.sub(r"\\\{[^\\]*\\\}", "([^/]+)", re.escape(template)) + "$"
            self.routes.append((template, re.compile(rx), names, ops))
        for name, schema in self.defs.items():
            self._check_keywords(schema, "definitions/" + name)

    def _check_keywords(self, schema, where):
        if not isinstance(schema, dict):
            return
        unknown = set(schema) - SCHEMA_KEYWORDS
        if unknown:
            raise SystemExit("fake_firecracker: %s uses schema keywords this validator does "
                             "not know: %s" % (where, sorted(unknown)))
        for pname, p in (schema.get("properties") or {}).items():
            self._check_keywords(p, where + "." + pname)
        if isinstance(schema.get("items"), dict):
            self._check_keywords(schema["items"], where + "[]")
        if isinstance(schema.get("additionalProperties"), dict):
            self._check_keywords(schema["additionalProperties"], where + ".*")

    def route(self, path):
        for template, rx, names, ops in self.routes:
            m = rx.match(path)
            if m:
                return template, dict(zip(names, m.groups())), ops
        return None, None, None

    def resolve(self, schema):
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/definitions/"):
                raise SystemExit("fake_firecracker: unsupported $ref %s" % ref)
            schema = self.defs[ref[len("#/definitions/"):]]
            seen += 1
            if seen > 32:
                raise SystemExit("fake_firecracker: $ref loop at %s" % ref)
        return schema

    @staticmethod
    def is_deprecated(prop_schema, target):
        for s in (prop_schema, target):
            if "deprecated" in str(s.get("description", "")).lower():
                return True
        return False

    def validate(self, schema, value, where, errors):
        """Append to errors every way value breaks schema."""
        target = self.resolve(schema)
        t = target.get("type")
        if t == "object" or (t is None and "properties" in target):
            if not isinstance(value, dict):
                errors.append("%s: expected an object, got %s" % (where, type_name(value)))
                return
            props = target.get("properties") or {}
            for req in target.get("required") or []:
                if req not in value:
                    errors.append("%s: required property '%s' is missing" % (where, req))
            extra = target.get("additionalProperties", False)
            for k, v in value.items():
                if k in props:
                    ps = props[k]
                    pt = self.resolve(ps)
                    if self.is_deprecated(ps, pt):
                        errors.append("%s.%s: deprecated in the spec" % (where, k))
                    self.validate(ps, v, "%s.%s" % (where, k), errors)
                elif extra is True:
                    continue
                elif isinstance(extra, dict):
                    self.validate(extra, v, "%s.%s" % (where, k), errors)
                else:
                    errors.append("%s: unknown property '%s'" % (where, k))
            return
        if t == "array":
            if not isinstance(value, list):
                errors.append("%s: expected an array, got %s" % (where, type_name(value)))
                return
            for i, item in enumerate(value):
                self.validate(target.get("items", {}), item, "%s[%d]" % (where, i), errors)
            return
        if t == "string":
            if not isinstance(value, str):
                errors.append("%s: expected a string, got %s" % (where, type_name(value)))
                return
        elif t == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append("%s: expected an integer, got %s" % (where, type_name(value)))
                return
            fmt = target.get("format")
            bits = {"int32": 31, "int64": 63}.get(fmt)
            if bits and not -(1 << bits) <= value < (1 << bits):
                errors.append("%s: %d does not fit %s" % (where, value, fmt))
        elif t == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                errors.append("%s: expected a number, got %s" % (where, type_name(value)))
                return
        elif t == "boolean":
            if not isinstance(value, bool):
                errors.append("%s: expected a boolean, got %s" % (where, type_name(value)))
                return
        elif t is not None:
            raise SystemExit("fake_firecracker: unsupported schema type %s" % t)
        if "enum" in target and value not in target["enum"]:
            errors.append("%s: %r is not one of %s" % (where, value, target["enum"]))
        if "minimum" in target and value < target["minimum"]:
            errors.append("%s: %r is below the minimum %r" % (where, value, target["minimum"]))
        if "maximum" in target and value > target["maximum"]:
            errors.append("%s: %r is above the maximum %r" % (where, value, target["maximum"]))


def type_name(v):
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(v), type(v).__name__)


# ---------------------------------------------------------- the fake VMM

class Fake:
    def __init__(self, spec, report, instance_id, api_sock):
        self.spec = spec
        self.report = report
        self.id = instance_id
        self.api_sock = api_sock
        self.lock = threading.Lock()
        self.phase = "fresh"  # fresh | configuring | running | paused
        self.config = {"machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "smt": False,
                                          "track_dirty_pages": False},
                       "drives": {}}
        self.vsock_listener = None
        self.vsock_ports = VSOCK_FIRST_LOCAL_PORT
        self.started_by = None

    # ---- HTTP ------------------------------------------------------------

    def serve(self):
        if os.path.lexists(self.api_sock):
            self.report.emit("violation", method="-", path="-",
                             reason="API socket path %s already exists (firecracker exits: "
                                    "address in use)" % self.api_sock)
            sys.stderr.write("Failed to open the API socket: address in use\n")
            sys.exit(1)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.api_sock)
        srv.listen(16)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.handle_conn, args=(conn,), daemon=True).start()

    def handle_conn(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
                    if len(buf) > MAX_HEADER:
                        self.http_violation(conn, "request head exceeds %d bytes" % MAX_HEADER)
                        return
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                if b"\r\n\r\n" not in buf:
                    self.http_violation(conn, "header lines must end in CRLF")
                    return
                head, buf = buf.split(b"\r\n\r\n", 1)
                try:
                    method, target, headers = parse_head(head)
                except Violation as v:
                    self.http_violation(conn, str(v))
                    return
                length = headers.get("content-length")
                problems = []
                if "transfer-encoding" in headers:
                    problems.append("Transfer-Encoding is not supported by Firecracker")
                if "expect" in headers:
                    problems.append("Expect: %s is not used with Firecracker"
                                    % headers["expect"])
                n = 0
                if length is not None:
                    if not re.fullmatch(r"[0-9]+", length):
                        self.http_violation(conn, "bad Content-Length %r" % length)
                        return
                    n = int(length)
                if n > MAX_PAYLOAD:
                    self.http_violation(conn, "body of %d bytes exceeds Firecracker's %d-byte "
                                        "limit" % (n, MAX_PAYLOAD))
                    return
                while len(buf) < n:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:n], buf[n:]
                if body and "json" not in headers.get("content-type", ""):
                    problems.append("a body needs Content-Type: application/json (got %r)"
                                    % headers.get("content-type"))
                status, reply = self.dispatch(method, target, body, problems)
                close = headers.get("connection", "").lower() == "close"
                send_response(conn, status, reply, close)
                if close:
                    return
        except (ConnectionError, OSError):
            return
        finally:
            conn.close()

    def http_violation(self, conn, reason):
        self.report.emit("violation", method="-", path="-", reason="HTTP: " + reason)
        try:
            send_response(conn, 400, {"fault_message": reason}, True)
        except OSError:
            pass

    def dispatch(self, method, target, raw, problems):
        """Validate and execute one request; returns (status, reply body)."""
        body = None
        rec = {"method": method, "path": target}
        if raw:
            try:
                body = json.loads(raw)
                rec["body"] = body
            except ValueError:
                rec["body_raw"] = raw.decode("utf-8", "replace")
                problems.append("body is not valid JSON")
        with self.lock:
            try:
                if problems:
                    raise Violation("; ".join(problems))
                status, reply = self.execute(method, target, body, raw != b"")
                rec.update(status=status, outcome="ok")
                self.report.emit("request", **rec)
                return status, reply
            except Violation as v:
                rec.update(status=400, outcome="violation", reason=str(v))
                self.report.emit("request", **rec)
                self.report.emit("violation", method=method, path=target, reason=str(v))
                return 400, {"fault_message": str(v)}
            except Refused as r:
                rec.update(status=400, outcome="refused", reason=str(r))
                self.report.emit("request", **rec)
                self.report.emit("refused", method=method, path=target, reason=str(r))
                return 400, {"fault_message": str(r)}

    def execute(self, method, target, body, has_body):
        if "?" in target or "#" in target:
            raise Violation("Firecracker's API takes no query string: %s" % target)
        template, params, ops = self.spec.route(target)
        if template is None:
            raise Violation("no such path in the spec: %s" % target)
        op = ops.get(method.lower())
        if op is None:
            raise Violation("%s is not allowed on %s (spec allows %s)"
                            % (method, template, ", ".join(m.upper() for m in ops)))
        body_param = None
        for p in op.get("parameters", []):
            if p.get("in") == "path":
                v = params.get(p["name"])
                if not v or not RESOURCE_ID_RE.match(v):
                    raise Violation("path parameter %s=%r: API resource ids are letters, "
                                    "digits and '_'" % (p["name"], v))
            elif p.get("in") == "body":
                body_param = p
        if body_param is None and has_body:
            raise Violation("%s %s takes no body" % (method, template))
        if body_param is not None:
            schema = body_param["schema"]
            target_schema = self.spec.resolve(schema)
            if not has_body:
                if body_param.get("required") or target_schema.get("required"):
                    raise Violation("%s %s needs a body" % (method, template))
            else:
                errors = []
                self.spec.validate(schema, body, "body", errors)
                if errors:
                    raise Violation("; ".join(errors))
        success = sorted(c for c in op["responses"] if isinstance(c, int) and c < 300)
        code = success[0] if success else 204
        configures = self.check_phase(method, template, op, body)
        reply = self.apply(method, template, params, body or {})
        if configures and self.phase == "fresh":
            self.phase = "configuring"
        if code == 200:
            schema = op["responses"][200].get("schema")
            if schema is not None:
                errors = []
                self.spec.validate(schema, reply, "reply", errors)
                if errors:
                    self.report.emit("fake-error", method=method, path=target,
                                     reason="reply breaks the spec: " + "; ".join(errors))
        return code, (reply if code == 200 else None)

    # ---- the state machine ---------------------------------------------------

    def check_phase(self, method, template, op, body):
        """Raise Violation if the phase forbids the request; return whether a
        success ends the process's "fresh" phase."""
        summary = op.get("summary", "")
        key = (method, template)
        booted = self.phase in ("running", "paused")
        preboot = "Pre-boot only" in summary or key in EXTRA_PREBOOT
        postboot = "Post-boot only" in summary or key in EXTRA_POSTBOOT
        if template == "/actions":
            action = body.get("action_type")
            preboot = action == "InstanceStart"
            postboot = action == "SendCtrlAltDel"
        if template == "/snapshot/load":
            if self.phase != "fresh":
                raise Violation("/snapshot/load is only accepted on a fresh process (phase "
                                "is %s: something other than the logger or metrics was "
                                "configured, or the VM already runs)" % self.phase)
            return False
        if preboot and booted:
            raise Violation("%s %s is not supported after the microVM started"
                            % (method, template))
        if postboot and not booted:
            raise Violation("%s %s is not supported before the microVM started"
                            % (method, template))
        return preboot and key not in FRESH_KEEPING and template != "/actions"

    # ---- effects -------------------------------------------------------------

    def apply(self, method, template, params, body):
        handler = {
            ("GET", "/"): self.get_instance,
            ("GET", "/version"): lambda p, b: {"firecracker_version": self.spec.version},
            ("GET", "/machine-config"): lambda p, b: dict(self.config["machine-config"]),
            ("GET", "/vm/config"): self.get_vm_config,
            ("PUT", "/logger"): self.put_logger,
            ("PUT", "/metrics"): self.put_metrics,
            ("PUT", "/machine-config"): self.put_machine_config,
            ("PUT", "/boot-source"): self.put_boot_source,
            ("PUT", "/drives/{drive_id}"): self.put_drive,
            ("PUT", "/vsock"): self.put_vsock,
            ("PUT", "/entropy"): self.put_entropy,
            ("PUT", "/actions"): self.put_action,
            ("PATCH", "/vm"): self.patch_vm,
            ("PUT", "/snapshot/create"): self.snapshot_create,
            ("PUT", "/snapshot/load"): self.snapshot_load,
        }.get((method, template))
        if handler is None:
            if method == "GET":
                raise Refused("GET %s is valid but not modelled by the contract validator"
                              % template)
            self.report.emit("note", reason="%s %s is valid but not modelled; answered 204"
                             % (method, template))
            return None
        return handler(params, body)

    def get_instance(self, params, body):
        state = {"fresh": "Not started", "configuring": "Not started",
                 "running": "Running", "paused": "Paused"}[self.phase]
        return {"app_name": "Firecracker", "id": self.id, "state": state,
                "vmm_version": self.spec.version}

    def get_vm_config(self, params, body):
        out = {"machine-config": dict(self.config["machine-config"]),
               "drives": list(self.config["drives"].values())}
        for k in ("boot-source", "logger", "metrics", "vsock", "entropy"):
            if k in self.config:
                out[k] = self.config[k]
        return out

    def put_logger(self, params, body):
        if "log_path" in body:
            need_file(body["log_path"], "log_path")  # opened without O_CREAT
        self.config["logger"] = body

    def put_metrics(self, params, body):
        need_file(body["metrics_path"], "metrics_path")
        self.config["metrics"] = body

    def put_machine_config(self, params, body):
        if body.get("smt") and body["vcpu_count"] != 1 and body["vcpu_count"] % 2:
            raise Violation("with smt the vCPU count must be 1 or even (spec)")
        if body.get("huge_pages") == "2M" and body["mem_size_mib"] % 2:
            raise Violation("with 2M huge pages mem_size_mib must be even (spec)")
        if body["mem_size_mib"] < 1:
            raise Refused("mem_size_mib must be at least 1")
        # "All parameters that are optional and are not specified are set to
        # their default values"
        mc = {"smt": False, "track_dirty_pages": False}
        mc.update(body)
        self.config["machine-config"] = mc

    def put_boot_source(self, params, body):
        need_file(body["kernel_image_path"], "kernel_image_path")
        if "initrd_path" in body:
            need_file(body["initrd_path"], "initrd_path")
        self.config["boot-source"] = body

    def put_drive(self, params, body):
        if body["drive_id"] != params["drive_id"]:
            raise Violation("the drive_id in the body (%r) differs from the path's (%r)"
                            % (body["drive_id"], params["drive_id"]))
        if "socket" in body:
            for k in ("path_on_host", "is_read_only", "io_engine", "rate_limiter"):
                if k in body:
                    raise Violation("%s must be omitted for a vhost-user drive (spec)" % k)
        else:
            for k in ("path_on_host", "is_read_only"):
                if k not in body:
                    raise Violation("%s is required for a virtio-block drive (spec)" % k)
            need_file(body["path_on_host"], "path_on_host")
        if body["is_root_device"]:
            for d in self.config["drives"].values():
                if d["is_root_device"] and d["drive_id"] != body["drive_id"]:
                    raise Refused("a root device is already configured (%s)" % d["drive_id"])
        self.config["drives"][body["drive_id"]] = body

    def put_vsock(self, params, body):
        self.bind_vsock(body["uds_path"])
        self.config["vsock"] = body

    def put_entropy(self, params, body):
        self.config["entropy"] = body

    def put_action(self, params, body):
        action = body["action_type"]
        if action == "InstanceStart":
            if "boot-source" not in self.config:
                raise Refused("Cannot start microvm without kernel configuration.")
            self.phase = "running"
            serial("[fake firecracker %s] InstanceStart: a real guest would boot here"
                   % self.id)
            self.started_by = "boot"

    def patch_vm(self, params, body):
        self.phase = "paused" if body["state"] == "Paused" else "running"

    def snapshot_create(self, params, body):
        if self.phase != "paused":
            raise Refused("Cannot create a snapshot: the microVM is not paused")
        if body.get("snapshot_type") == "Diff" and \
                not self.config["machine-config"].get("track_dirty_pages"):
            raise Refused("Diff snapshots need track_dirty_pages")
        state = {"fake_firecracker_snapshot": 1, "config": self.get_vm_config(None, None),
                 "spec_version": self.spec.version}
        for key, content in (("snapshot_path", json.dumps(state)),
                             ("mem_file_path", "fake guest memory of %d MiB\n"
                              % self.config["machine-config"]["mem_size_mib"])):
            path = body[key]
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise Refused("%s: directory %s does not exist" % (key, parent))
            with open(path, "w") as f:
                f.write(content)

    def snapshot_load(self, params, body):
        if ("mem_backend" in body) == ("mem_file_path" in body):
            raise Violation("exactly one of mem_backend and mem_file_path must be present "
                            "(spec)")
        need_file(body["snapshot_path"], "snapshot_path")
        if "mem_backend" in body:
            mb = body["mem_backend"]
            if mb["backend_type"] == "File":
                need_file(mb["backend_path"], "mem_backend.backend_path")
        else:
            need_file(body["mem_file_path"], "mem_file_path")
        try:
            with open(body["snapshot_path"]) as f:
                state = json.load(f)
            saved = state["config"]
        except (ValueError, KeyError, OSError):
            raise Refused("%s is not a snapshot" % body["snapshot_path"])
        # Firecracker re-opens the disks and re-binds the vsock socket by the
        # paths stored in the snapshot: relative ones resolve against our cwd
        reopened = []
        for d in saved.get("drives", []):
            if "path_on_host" in d:
                need_file(d["path_on_host"], "drive %s (from the snapshot)" % d["drive_id"])
                reopened.append(os.path.abspath(d["path_on_host"]))
        uds = (body.get("vsock_override") or {}).get("uds_path") or \
            (saved.get("vsock") or {}).get("uds_path")
        if uds:
            self.bind_vsock(uds)
        self.config.update({k: v for k, v in saved.items() if k != "drives"})
        self.config["drives"] = {d["drive_id"]: d for d in saved.get("drives", [])}
        self.phase = "running" if body.get("resume_vm") else "paused"
        self.started_by = "snapshot"
        self.report.emit("restored", drives=reopened,
                         vsock=os.path.abspath(uds) if uds else None,
                         mem_backend=body.get("mem_backend"))
        serial("[fake firecracker %s] snapshot loaded" % self.id)

    # ---- vsock -----------------------------------------------------------------

    def bind_vsock(self, uds_path):
        if self.vsock_listener is not None:
            self.vsock_listener.close()
            self.vsock_listener = None
        if os.path.lexists(uds_path):
            raise Refused("vsock uds_path %s already exists (address in use)" % uds_path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(uds_path)
        except OSError as e:
            s.close()
            raise Refused("cannot bind vsock uds_path %s: %s" % (uds_path, e))
        s.listen(16)
        self.vsock_listener = s
        threading.Thread(target=self.vsock_accept, args=(s,), daemon=True).start()

    def vsock_accept(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self.vsock_conn, args=(conn,), daemon=True).start()

    def vsock_conn(self, conn):
        """Host-initiated vsock connection: "CONNECT <port>\\n" -> "OK <n>\\n"."""
        try:
            conn.settimeout(10)
            line = b""
            while not line.endswith(b"\n"):
                c = conn.recv(1)
                if not c:
                    return
                line += c
                if len(line) > VSOCK_LINE_MAX:
                    break
            m = re.fullmatch(rb"CONNECT ([0-9]+)\n", line)
            if not m:
                self.report.emit("violation", method="vsock", path="-",
                                 reason="bad vsock handshake line %r" % line)
                return
            port = int(m.group(1))
            # a paused or not yet started VM does not answer: wait for it
            deadline = time.time() + VSOCK_WAIT_RUNNING_S
            while self.phase != "running":
                if time.time() > deadline:
                    return
                time.sleep(0.01)
            with self.lock:
                local = self.vsock_ports
                self.vsock_ports += 1
            # recorded before answering: the caller may SIGKILL us right after
            self.report.emit("vsock", port=port, local_port=local)
            conn.sendall(b"OK %d\n" % local)
            conn.settimeout(None)
            while conn.recv(65536):  # the guest side: swallow, never answer
                pass
        except OSError:
            pass
        finally:
            conn.close()


def need_file(path, what):
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise Refused("%s %s cannot be opened (cwd %s)" % (what, path, os.getcwd()))


def serial(text):
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError:
        pass


def parse_head(head):
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise Violation("non-ASCII request head")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise Violation("bad request line %r" % lines[0])
    headers = {}
    for ln in lines[1:]:
        if ":" not in ln:
            raise Violation("bad header line %r" % ln)
        k, v = ln.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return parts[0], parts[1], headers


def send_response(conn, status, body, close):
    # like micro_http: a 204 carries no Content-Length and the connection
    # stays open, so a client reading until EOF would hang
    head = "HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: %s\r\n" % (
        status, REASONS.get(status, ""), "close" if close else "keep-alive")
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(payload)
    conn.sendall(head.encode() + b"\r\n" + payload)


def fd_target(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        return None


def parse_args(argv):
    opts = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            return None, "unexpected argument %r" % a
        name = a[2:]
        if name in KNOWN_FLAGS_BOOL:
            opts[name] = True
            i += 1
        elif name in KNOWN_FLAGS_WITH_VALUE:
            if i + 1 >= len(argv):
                return None, "%s needs a value" % a
            opts[name] = argv[i + 1]
            i += 2
        else:
            return None, "firecracker has no flag %s" % a
    return opts, None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    spec_path = os.environ.get("FC_SPEC") or os.path.join(here, "firecracker.yaml")
    spec = Spec(spec_path)
    opts, err = parse_args(sys.argv[1:])
    report = Report(os.environ.get("FC_CONTRACT_REPORT"), (opts or {}).get("id"))
    if err:
        report.emit("violation", method="argv", path="-", reason=err)
        sys.stderr.write("fake_firecracker: %s\n" % err)
        return 1
    if opts.get("version"):
        print("Firecracker v%s (contract validator)" % spec.version)
        return 0
    instance_id = opts.get("id", "anonymous-instance")
    if not ID_RE.match(instance_id):
        report.emit("violation", method="argv", path="-",
                    reason="--id %r: 1-64 letters, digits or '-'" % instance_id)
        sys.stderr.write("Invalid instance ID\n")
        return 1
    if "api-sock" not in opts:
        report.emit("violation", method="argv", path="-",
                    reason="no --api-sock: firecracker would use /run/firecracker.socket")
        return 1
    st = os.fstat(0)
    report.emit("start", argv=sys.argv, cwd=os.getcwd(), spec=spec_path,
                spec_version=spec.version,
                stdin=fd_target(0), stdin_is_fifo=stat.S_ISFIFO(st.st_mode),
                stdin_rdwr=fcntl.fcntl(0, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR,
                stdout=fd_target(1), stderr=fd_target(2), sid=os.getsid(0))
    Fake(spec, report, instance_id, opts["api-sock"]).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
