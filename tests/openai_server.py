"""A real OpenAI-compatible HTTP server for tests and benchmarks (chat-completions + completions, no streaming).

Run it as its own process so it never shares an event loop (or the GIL) with the client under test:

    python tests/openai_server.py [--port 0] [--delay 0]      # prints `PORT <n>` once it listens

Answers come from a deterministic text source: the same model, messages, prefill and seed give the
same words. With `response_format` json_schema (or vLLM's `guided_json`) the answer is a JSON object
matching the schema.

Faults are injected through a control endpoint, as a list of rules tried in order on each request:

    POST /_control/reset   {"faults": [{"fault": "429", "times": 2, "match": "item-3 ", "retry_after": 1}],
                            "delay": 0.0}
    GET  /_control/stats   {"requests": n, "max_in_flight": m, "log": [{"t": .., "end": .., "path": ..,
                            "prompt": .., "status": .., "fault": .., "prompt_tokens": .., "completion_tokens": ..}]}

A rule applies to a request whose prompt text contains `match` (every request when absent) while its
`times` lasts (forever when absent). Faults: 429 (with Retry-After), 500, 503, reset (the connection is
aborted), hang (no answer for `seconds`), truncated (a 200 whose JSON body is cut short), empty (empty
content), refusal (a refusal text), quota (429 insufficient_quota), invalid_json (an answer that does not match the schema),
surrogates (an answer whose JSON carries lone surrogate escapes, "\\udcff\\ud800", as some servers send).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from typing import Any

WORDS = ("the cat dog sun ran big small happy tree ball red blue jumped saw little girl boy mom park "
         "played friend found box toy sky bird sang soft warm day night moon star went home").split()
REFUSAL = "I'm sorry, but I can't help with that request."

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


def _prompt_of(body: dict) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content") or "") for m in body["messages"])
    p = body.get("prompt", "")
    return p if isinstance(p, str) else "\n".join(map(str, p))


def _rng(body: dict) -> random.Random:
    key = json.dumps([body.get("model"), _prompt_of(body), body.get("seed"), body.get("temperature"),
                      body.get("top_p")], sort_keys=True)
    return random.Random(hashlib.sha256(key.encode()).digest())


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _from_schema(schema: dict, rng: random.Random, depth: int = 0) -> Any:
    """A value matching a (simple) JSON schema: object/array/string/integer/number/boolean/enum."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    t = schema.get("type", "object")
    if isinstance(t, list):
        t = t[0]
    if t == "object":
        props = schema.get("properties", {})
        return {k: _from_schema(v, rng, depth + 1) for k, v in props.items()}
    if t == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        return [_from_schema(schema.get("items", {"type": "string"}), rng, depth + 1) for _ in range(n)]
    if t == "integer":
        lo, hi = int(schema.get("minimum", 0)), int(schema.get("maximum", 100))
        return rng.randint(lo, hi)
    if t == "number":
        return round(rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 100))), 3)
    if t == "boolean":
        return rng.random() < 0.5
    if t == "null":
        return None
    return _words(rng, 3)


def _schema_of(body: dict) -> dict | None:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return (rf.get("json_schema") or {}).get("schema") or {}
    if body.get("guided_json") is not None:
        g = body["guided_json"]
        return json.loads(g) if isinstance(g, str) else g
    return None


class FakeOpenAI:
    """The server state: fault rules, counters and the request log."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.faults: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.log: list[dict] = []
        self.t0 = time.monotonic()

    def reset(self, cfg: dict) -> None:
        self.faults = [dict(f) for f in cfg.get("faults", [])]
        self.delay = float(cfg.get("delay", 0.0))
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.log = []

    def stats(self) -> dict:
        return {"requests": self.requests, "max_in_flight": self.max_in_flight, "in_flight": self.in_flight,
                "log": self.log}

    def pick_fault(self, prompt: str) -> dict | None:
        for f in self.faults:
            if f.get("match") is not None and f["match"] not in prompt:
                continue
            if "times" in f:
                if f["times"] <= 0:
                    continue
                f["times"] -= 1
            return f
        return None

    def answer(self, path: str, body: dict, fault: str | None) -> tuple[dict, int, int]:
        rng = _rng(body)
        max_tokens = int(body.get("max_tokens") or 16)
        prompt = _prompt_of(body)
        prompt_tokens = max(1, len(prompt.split()))
        schema = _schema_of(body)
        if fault == "empty":
            text = ""
        elif fault == "refusal":
            text = REFUSAL
        elif schema is not None:
            value = _from_schema(schema, rng)
            if fault == "invalid_json":
                value = {"unexpected": True} if isinstance(value, dict) else {"not": "matching"}
                if not schema.get("properties"):
                    value = "not json at all {"
            text = json.dumps(value) if not isinstance(value, str) or fault != "invalid_json" else value
        else:
            text = _words(rng, max(1, min(max_tokens, 12)))
        if fault == "surrogates":  # json.dumps writes these as the escapes "\udcff\ud800"
            text = text + " \udcff\ud800 " + _words(rng, 2)
        completion_tokens = len(text.split()) if text else 0
        finish = "stop" if completion_tokens < max_tokens else "length"
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        rid = hashlib.sha1(f"{self.requests}".encode()).hexdigest()[:12]
        now = int(time.time())
        if path.endswith("/chat/completions"):
            return {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": now, "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": usage}, prompt_tokens, completion_tokens
        return {"id": f"cmpl-{rid}", "object": "text_completion", "created": now, "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": finish, "logprobs": None, "text": text}],
                "usage": usage}, prompt_tokens, completion_tokens


def _response(status: int, body: bytes, headers: dict[str, str] | None = None, content_length: int | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Content-Type: application/json",
            f"Content-Length: {len(body) if content_length is None else content_length}", "Connection: keep-alive"]
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> bytes:
    return _response(status, json.dumps({"error": {"message": message, "type": "server_error", "code": code}}).encode(),
                     headers)


async def handle(state: FakeOpenAI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            raw = await reader.readexactly(n) if n else b""
            path = path.split("?", 1)[0]
            if path.startswith("/_control/"):
                if path == "/_control/reset":
                    state.reset(json.loads(raw or b"{}"))
                    writer.write(_response(200, b'{"ok": true}'))
                else:
                    writer.write(_response(200, json.dumps(state.stats()).encode()))
                await writer.drain()
                continue
            if method != "POST" or not (path.endswith("/chat/completions") or path.endswith("/completions")):
                writer.write(_error(404, f"no route {method} {path}"))
                await writer.drain()
                continue
            try:
                body = json.loads(raw)
            except ValueError:
                writer.write(_error(400, "body is not JSON"))
                await writer.drain()
                continue
            if not body.get("model") or body.get("model") == "missing-model":
                status = 400 if not body.get("model") else 404
                writer.write(_error(status, f"the model {body.get('model')!r} does not exist", "model_not_found"))
                await writer.drain()
                continue
            state.requests += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            prompt = _prompt_of(body)
            entry = {"t": time.monotonic() - state.t0, "path": path, "prompt": prompt, "status": 200, "fault": None,
                     "prompt_tokens": 0, "completion_tokens": 0, "seed": body.get("seed"),
                     "response_format": body.get("response_format"), "guided_json": body.get("guided_json"),
                     "max_tokens": body.get("max_tokens")}
            state.log.append(entry)
            rule = state.pick_fault(prompt)
            fault = str(rule["fault"]) if rule else None
            entry["fault"] = fault
            try:
                if state.delay:
                    await asyncio.sleep(state.delay)
                if fault == "hang":
                    await asyncio.sleep(float(rule.get("seconds", 30)))
                if fault == "reset":
                    entry["status"] = 0
                    writer.transport.abort()
                    return
                if fault == "429":
                    entry["status"] = 429
                    ra = rule.get("retry_after", 1)
                    writer.write(_error(429, "Rate limit reached, retry later", "rate_limit_exceeded",
                                        {"Retry-After": str(ra)}))
                elif fault == "quota":
                    entry["status"] = 429
                    writer.write(_error(429, "You exceeded your current quota", "insufficient_quota"))
                elif fault in ("500", "503"):
                    entry["status"] = int(fault)
                    writer.write(_error(int(fault), "the server had an error"))
                else:
                    payload, pt, ct = state.answer(path, body, fault)
                    entry["prompt_tokens"], entry["completion_tokens"] = pt, ct
                    data = json.dumps(payload).encode()
                    if fault == "truncated":
                        data = data[: len(data) // 2]
                    writer.write(_response(200, data))
                await writer.drain()
            finally:
                state.in_flight -= 1
                entry["end"] = time.monotonic() - state.t0
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 (the peer may have gone already)
            pass


async def serve(port: int, delay: float) -> None:
    state = FakeOpenAI(delay)
    server = await asyncio.start_server(lambda r, w: handle(state, r, w), "127.0.0.1", port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class ServerProcess:
    """Start the server in its own process; `url` is the OpenAI base_url; `reset`/`stats` drive it."""

    def __init__(self, delay: float = 0.0):
        import os
        import subprocess

        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--delay", str(delay)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"test server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def _call(self, path: str, payload: dict | None = None) -> dict:
        import urllib.request

        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def reset(self, faults: list[dict] | None = None, delay: float = 0.0) -> None:
        self._call("/_control/reset", {"faults": faults or [], "delay": delay})

    def stats(self) -> dict:
        return self._call("/_control/stats")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def server_fixture():
    """A pytest fixture (module scope): one server process per test module, reset before each use."""
    import pytest

    @pytest.fixture(scope="module")
    def server():
        with ServerProcess() as s:
            yield s

    return server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    a = ap.parse_args(argv)
    try:
        import uvloop  # type: ignore  # optional: faster loop when installed

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(a.port, a.delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
