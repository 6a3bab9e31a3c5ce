#!/usr/bin/env python3
"""Checks a running xover control API against docs/openapi.json.

  check-openapi.py DOC SOCKET KIND [--call "METHOD PATH [JSON]"]...

KIND is `vm` or `broker` (the paths whose x-socket is KIND). Every GET
path of KIND is called (path parameters take their `example`), then each
--call in order. Each answer's status must be one the document lists for
that operation, and its body must match that response's schema. Then an
unknown path must get a documented Error with 404, a malformed request a
400, and the API must still answer. Prints one line per call; exits 1 on
the first mismatch.
"""
import http.client
import json
import socket
import sys

import jsonschema


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def fail(message):
    print(f"FAIL: openapi: {message}")
    sys.exit(1)


def call(sock, method, path, body=None):
    conn = UnixConnection(sock)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    raw = response.read().decode()
    conn.close()
    return response.status, response.getheader("Content-Type", ""), raw


def validate(doc, schema, value, where):
    """Why `value` does not match `schema` (None if it does), by jsonschema
    (Debian's python3-jsonschema). The schema is checked inside a root that
    carries the document's components, so its "#/components/..." $refs
    resolve as they do in the document."""
    root = dict(schema, components=doc.get("components", {}))
    errors = sorted(jsonschema.Draft7Validator(root).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
    return f"{where}{path}: {e.message}"


def operation_for(doc, method, path):
    """The document's operation for a concrete path (templates match any segment)."""
    parts = path.split("?")[0].split("/")
    for template, item in doc["paths"].items():
        tparts = template.split("/")
        if len(tparts) == len(parts) and all(t == p or t.startswith("{") for t, p in zip(tparts, parts)):
            if method.lower() in item:
                return template, item, item[method.lower()]
    return None, None, None


def check(doc, sock, kind, method, path, body=None):
    template, item, op = operation_for(doc, method, path)
    if op is None:
        fail(f"{method} {path} is not in the document")
    if item.get("x-socket") != kind:
        fail(f"{method} {path} belongs to the {item.get('x-socket')} API, not {kind}")
    status, ctype, raw = call(sock, method, path, body)
    documented = op["responses"]
    if str(status) not in documented:
        fail(f"{method} {path}: status {status} is not documented ({', '.join(documented)}): {raw.strip()}")
    contents = documented[str(status)].get("content", {})
    content = contents.get("application/json")
    if "text/plain" in ctype and "text/plain" in contents:
        pass  # a documented text reply (e.g. GET /status?format=text)
    elif content:
        if "application/json" not in ctype:
            fail(f"{method} {path}: {status} with Content-Type '{ctype}', not JSON")
        problem = validate(doc, content["schema"], json.loads(raw), "body")
        if problem:
            fail(f"{method} {path}: {status}: {problem}")
    elif raw.strip():
        fail(f"{method} {path}: {status} has a body the document does not describe: {raw.strip()}")
    print(f"ok: {method} {path} -> {status} ({op['operationId']})")
    return status, raw


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        print(__doc__)
        sys.exit(2)
    doc_path, sock, kind = args[:3]
    calls = []
    rest = args[3:]
    while rest:
        if rest[0] != "--call" or len(rest) < 2:
            fail(f"unknown argument {rest[0]}")
        words = rest[1].split(" ", 2)
        calls.append((words[0], words[1], words[2] if len(words) > 2 else None))
        rest = rest[2:]
    with open(doc_path) as f:
        doc = json.load(f)

    for template, item in doc["paths"].items():
        if item.get("x-socket") != kind or "get" not in item:
            continue
        path = template
        for param in item["get"].get("parameters", []):
            if param["in"] == "path":
                path = path.replace("{" + param["name"] + "}", str(param["example"]))
        check(doc, sock, kind, "GET", path)
    for method, path, body in calls:
        check(doc, sock, kind, method, path, body)

    error_schema = {"$ref": "#/components/schemas/Error"}
    status, _, raw = call(sock, "GET", "/no/such/endpoint")
    if status != 404 or validate(doc, error_schema, json.loads(raw), "body"):
        fail(f"an unknown path got {status}: {raw.strip()}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(sock)
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = b""
        while True:  # the headers, then Content-Length bytes of body
            chunk = s.recv(4096)
            reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if not chunk or (length and len(body) >= length[0]):
                break
        reply = reply.decode(errors="replace")
    if not reply.startswith("HTTP/1.1 400") or '"error"' not in reply:
        fail(f"a malformed request got: {reply!r}")
    if call(sock, "GET", next(p for p, i in doc["paths"].items() if i.get("x-socket") == kind and "{" not in p and "get" in i))[0] != 200:
        fail("the API stopped answering after bad requests")
    print(f"ok: {kind} API matches {doc_path}; unknown paths get 404, malformed requests 400, and it still answers")


if __name__ == "__main__":
    main()
