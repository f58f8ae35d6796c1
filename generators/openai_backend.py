"""The `openai` backend: any OpenAI-compatible endpoint (OpenAI, a vLLM or llama.cpp server, Ollama).

One `AsyncOpenAI` client (one httpx connection pool) per backend, driven by a private event loop
inside the synchronous `generate(requests)`. Per item:

    concurrency slot -> RPM/TPM token buckets -> one attempt under a total timeout -> classify

The client's own retries are off (`max_retries=0`); ours are: 429 waits for `Retry-After` (and
pauses every worker, since the limit is shared), 5xx / connection errors / timeouts / unreadable
answers back off exponentially with jitter, up to `max_retries` retries. An answer that is empty,
a refusal, or (with a schema) invalid JSON is a failed completion of kind empty / refusal /
invalid; so is an item whose retries ran out (`max_retries` per request, `retry_budget` for the
whole run). Nothing is dropped: every request gets a Completion. Auth or unknown-model errors
(401/403/404) and an exhausted quota stop the run with a BackendError: every item would fail.

`api = "chat"` sends the messages as they are; the prefill is not sent as a partial assistant
message (OpenAI does not continue one), so a template states its prefill in the instruction
("Begin the story with ..."), and the answer is stored as the model wrote it.
`api = "completions"` renders the chat as a plain-text prompt ending in the prefill and stores
prefill + continuation, like the local backend.
"""
from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from corpora.schema import replace_surrogates
from generators import structured
from generators.base import BackendError, Completion, OnResult, Request
from generators.ratelimit import RateLimiter, estimate_tokens

REFUSAL = re.compile(r"^\W*(I'm sorry|I am sorry|I apologi[sz]e|I cannot|I can't|I can not|I won't|I will not|"
                     r"I'm unable|I am unable|I'm not able|As an AI)\b", re.I)
REFUSAL_MAX_CHARS = 400  # a long answer that happens to start with "I'm sorry" is a story, not a refusal
RETRYABLE = {"rate_limit", "server", "connection", "timeout", "bad_response"}
OPENAI_HOSTS = ("api.openai.com",)


def render_plain(messages: Sequence[dict[str, str]], prefill: str = "") -> str:
    """The chat as one plain-text prompt for the completions API, ending where the answer starts."""
    label = {"system": "System", "user": "User", "assistant": "Assistant"}
    parts = [f"{label.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant: " + prefill


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Failure(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.message, self.retry_after = kind, message, retry_after


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str = "gpt-4o-mini", base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 api: str = "chat", concurrency: int = 32, rpm: float | None = None, tpm: float | None = None,
                 max_retries: int = 6, timeout_s: float = 60.0, backoff_s: float = 1.0, backoff_max_s: float = 60.0,
                 max_retry_after_s: float = 600.0, json_mode: str = "response_format",
                 extra_body: dict[str, Any] | None = None, http: str = "auto", retry_budget: int | None = None,
                 **_: Any):
        try:
            import openai  # noqa: F401
        except ImportError:
            raise BackendError("backend 'openai' needs the openai package: pip install openai") from None
        if api not in ("chat", "completions"):
            raise BackendError(f"backend openai: api must be 'chat' or 'completions' (got {api!r})")
        if json_mode not in ("response_format", "guided_json", "none"):
            raise BackendError(f"backend openai: json_mode must be response_format, guided_json or none (got {json_mode!r})")
        self.model, self.base_url, self.api = model, base_url, api
        self.api_key = os.environ.get(api_key_env)
        if not self.api_key:
            if base_url is None:
                raise BackendError(f"backend openai: set the {api_key_env} environment variable "
                                   "(or set base_url to a local server)")
            self.api_key = "EMPTY"  # local servers (vLLM, llama.cpp, Ollama) accept any key
        self.concurrency = int(concurrency)
        self.rpm, self.tpm = rpm, tpm
        self.max_retries = int(max_retries)
        # retries left for the whole run (None: no cap beyond max_retries per request); a dead server
        # then fails the rest fast, as rows a later run retries, instead of backing off on every item
        self.retries_left = None if retry_budget is None else int(retry_budget)
        self.timeout_s = float(timeout_s)
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.json_mode = json_mode
        self.extra_body = dict(extra_body or {})
        self.http = http  # auto (aiohttp when installed) | aiohttp | httpx
        # repetition_penalty is not an OpenAI parameter (OpenAI rejects it); other servers take it in the body
        self.send_repetition_penalty = base_url is not None and not any(h in base_url for h in OPENAI_HOSTS)
        self._path = "/chat/completions" if api == "chat" else "/completions"
        self._loop = asyncio.new_event_loop()
        self._client = None
        self._limiter: RateLimiter | None = None
        self._pause_until = 0.0
        self._jitter = random.Random()

    # -- the synchronous face ------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], progress: Any = None, on_result: OnResult | None = None) -> list[Completion]:
        if not requests:
            return []
        return self._run(self._generate(list(requests), progress, on_result))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._client is not None:
            self._run(self._client.close())
            self._client = None
        self._loop.close()

    def _run(self, coro):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coro)
        # called from code that already runs an event loop (a notebook): drive ours from a helper thread
        with ThreadPoolExecutor(1) as ex:
            return ex.submit(self._loop.run_until_complete, coro).result()

    # -- the async core ------------------------------------------------------------------------------

    def _ensure_client(self):
        if self._client is None:
            import openai

            limits = _limits(self.concurrency)
            http_client = None
            if self.http in ("auto", "aiohttp"):
                try:  # aiohttp's pool stays flat at hundreds of connections; httpx's scans every idle one per request
                    import aiohttp  # noqa: F401

                    http_client = openai.DefaultAioHttpClient(limits=limits, timeout=self.timeout_s)
                except (ImportError, RuntimeError, AttributeError):  # no aiohttp, or an openai without it
                    if self.http == "aiohttp":
                        raise BackendError("backend openai: http = 'aiohttp' needs aiohttp and openai>=1.88") from None
            if http_client is None:
                http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.timeout_s)
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                                              timeout=self.timeout_s, http_client=http_client)
            self._limiter = RateLimiter(self.rpm, self.tpm)
            self._post_takes_content = "content" in inspect.signature(self._client.post).parameters
        return self._client

    async def _generate(self, requests: list[Request], progress: Any, on_result: OnResult | None = None) -> list[Completion]:
        self._ensure_client()
        sem = asyncio.Semaphore(self.concurrency)
        fatal: list[BaseException] = []

        async def one(r: Request) -> Completion:
            c = await self._one(r, sem, fatal)
            if on_result is not None:
                on_result(c)
            if progress is not None:
                progress(1)
            return c

        out = await asyncio.gather(*(one(r) for r in requests))
        if fatal:
            raise fatal[0]
        return list(out)

    async def _one(self, r: Request, sem: asyncio.Semaphore, fatal: list) -> Completion:
        loop = asyncio.get_running_loop()
        estimate = estimate_tokens("".join(m["content"] for m in r.messages) + r.prefill) + r.sampling.max_tokens
        attempt = 0
        while True:
            t0 = time.monotonic()
            try:
                async with sem:
                    if fatal:
                        raise _Failure("aborted", f"not sent: {fatal[0]}")
                    wait = self._pause_until - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if self._limiter.active:
                        await self._limiter.acquire(estimate)
                    t0 = time.monotonic()
                    try:
                        async with asyncio.timeout(self.timeout_s):
                            resp = await self._send(r)
                    except BaseException:
                        if self._limiter.active:
                            self._limiter.settle(estimate, 0)
                        raise
                c = self._completion(r, resp)
                if self._limiter.active:
                    self._limiter.settle(estimate, c.prompt_tokens + c.completion_tokens)
                c.latency_s = time.monotonic() - t0
                c.retries = attempt
                return structured.check(r, c)
            except _Failure as f:
                failure = f
            except BackendError as e:
                fatal.append(e)
                failure = _Failure("aborted", str(e))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 (every exception becomes this item's error, never the batch's)
                failure = self._classify(e)
                if isinstance(failure, BackendError):
                    fatal.append(failure)
                    failure = _Failure("aborted", str(failure))
            retryable = failure.kind in RETRYABLE and attempt < self.max_retries and self.retries_left != 0
            if failure.kind == "rate_limit" and failure.retry_after is not None and failure.retry_after > self.max_retry_after_s:
                retryable = False
            if not retryable:
                msg = failure.message
                if failure.kind in RETRYABLE and self.retries_left == 0 and attempt < self.max_retries:
                    msg += " (the run's retry_budget is used up)"
                return Completion(id=r.id, finish_reason="error", error=msg, error_kind=failure.kind,
                                  retries=attempt, latency_s=time.monotonic() - t0, created_at=time.time())
            if failure.retry_after is not None:
                delay = failure.retry_after + self._jitter.uniform(0, 0.1 * failure.retry_after + 0.01)
                # the limit is shared by every request: all workers hold off, not just this one
                self._pause_until = max(self._pause_until, loop.time() + failure.retry_after)
            else:
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** attempt) * self._jitter.uniform(0.5, 1.0)
            attempt += 1
            if self.retries_left is not None:
                self.retries_left -= 1
            await asyncio.sleep(delay)

    def _body(self, r: Request) -> dict[str, Any]:
        s = r.sampling
        body: dict[str, Any] = {"model": self.model, "temperature": s.temperature, "top_p": s.top_p,
                                "max_tokens": s.max_tokens, "seed": s.seed}
        if self.api == "chat":
            body["messages"] = list(r.messages)
        else:
            body["prompt"] = render_plain(r.messages, r.prefill)
        if s.stop:
            body["stop"] = list(s.stop)
        if s.min_tokens:  # not OpenAI's API: servers that accept it (vLLM's) honour it, others answer with an error
            body["min_tokens"] = s.min_tokens
        if self.send_repetition_penalty and s.repetition_penalty != 1.0:
            body["repetition_penalty"] = s.repetition_penalty
        if r.json_schema is not None:
            if self.json_mode == "response_format":
                body["response_format"] = structured.response_format(r.json_schema)
            elif self.json_mode == "guided_json":
                body["guided_json"] = r.json_schema
        body.update(self.extra_body)
        return body

    async def _send(self, r: Request) -> dict[str, Any]:
        # The request body is built here and the answer parsed from its JSON bytes: the client's typed
        # request transform and response models cost more CPU per request than everything else here
        # together (see bench/generate_openai.py). Auth, base_url, the connection pool and the typed
        # HTTP errors are still the openai client's.
        payload = json.dumps(self._body(r), ensure_ascii=False).encode()  # bytes: the client neither copies nor re-encodes
        if self._post_takes_content:
            raw = await self._client.post(self._path, content=payload, cast_to=bytes)  # JSON is the default type
        else:  # older openai releases: bytes go as the body
            raw = await self._client.post(self._path, body=payload, cast_to=bytes)
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise _Failure("bad_response", f"the server answered with JSON that is not an object: {str(data)[:100]}")
        return data

    def _completion(self, r: Request, resp: dict[str, Any]) -> Completion:
        choices = resp.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise _Failure("bad_response", "the server answered without choices")
        choice = choices[0]
        usage = resp.get("usage") or {}
        if self.api == "chat":
            msg = choice.get("message") or {}
            body = msg.get("content") or ""
            refusal = msg.get("refusal")
            text = body
        else:
            body = choice.get("text") or ""
            refusal = None
            text = r.prefill + body
        if not isinstance(body, str):
            raise _Failure("bad_response", f"the answer's content is not text: {str(body)[:100]}")
        # JSON escapes such as "\udcff" decode to lone surrogates, which UTF-8 (the cache, Parquet) cannot
        # hold: they become U+FFFD here, where the text arrives, and are counted
        body, replaced = replace_surrogates(body)
        text, _ = replace_surrogates(text)
        if isinstance(refusal, str):
            refusal = replace_surrogates(refusal)[0]
        pt = usage.get("prompt_tokens")
        ct = usage.get("completion_tokens")
        if pt is None:
            pt = estimate_tokens("".join(m["content"] for m in r.messages) + r.prefill)
        if ct is None:
            ct = estimate_tokens(body) if body else 0
        finish = choice.get("finish_reason") or "stop"
        c = Completion(id=r.id, text=text, finish_reason=finish, prompt_tokens=int(pt), completion_tokens=int(ct),
                       created_at=time.time(), extra={"response_id": resp.get("id")})
        if replaced:
            c.extra["replaced_surrogates"] = replaced
        if refusal:
            c.error, c.error_kind = f"refusal: {refusal}", "refusal"
        elif finish == "content_filter":
            c.error, c.error_kind = "the server's content filter stopped the answer", "refusal"
        elif not body.strip():
            c.error, c.error_kind = "empty answer", "empty"
        elif len(body) <= REFUSAL_MAX_CHARS and REFUSAL.match(body):
            c.error, c.error_kind = f"refusal: {body.strip()[:200]}", "refusal"
        if c.error:
            c.finish_reason = "error"
        return c

    def _classify(self, e: Exception) -> _Failure | BackendError:
        import openai

        if isinstance(e, (TimeoutError, asyncio.TimeoutError, openai.APITimeoutError)):
            # the aiohttp transport reports a refused or dropped connection as a connect timeout
            conn = _connection_cause(e)
            if conn is not None:
                return _Failure("connection", f"connection error: {type(conn).__name__}: {conn}")
            return _Failure("timeout", f"no answer within {self.timeout_s:g} s")
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            detail = _error_message(e)
            if status == 429:
                code = _error_code(e)
                if code == "insufficient_quota":  # billing, not rate: every later request would fail too
                    return BackendError(f"backend openai: HTTP 429 insufficient_quota: {detail} (check the plan and billing)")
                return _Failure("rate_limit", f"HTTP 429: {detail}", parse_retry_after(e.response.headers))
            if status in (401, 403):
                return BackendError(f"backend openai: HTTP {status} from {self.base_url or 'api.openai.com'}: {detail} "
                                    "(check the API key)")
            if status == 404:
                return BackendError(f"backend openai: HTTP 404 from {self.base_url or 'api.openai.com'}: {detail} "
                                    f"(check model {self.model!r} and base_url)")
            if status == 408:
                return _Failure("timeout", f"HTTP 408: {detail}")
            if status >= 500 or status == 409:
                return _Failure("server", f"HTTP {status}: {detail}", parse_retry_after(e.response.headers)
                                if status == 503 else None)
            return _Failure("client", f"HTTP {status}: {detail}")
        if isinstance(e, openai.APIConnectionError):
            cause = _connection_cause(e) or next(iter(list(_chain(e))[1:]), e)
            return _Failure("connection", f"connection error: {type(cause).__name__}: {cause}")
        if isinstance(e, (ValueError, openai.APIResponseValidationError)):  # JSONDecodeError is a ValueError
            return _Failure("bad_response", f"unreadable answer: {type(e).__name__}: {e}")
        return _Failure("error", f"{type(e).__name__}: {e}")


def _chain(e: BaseException):
    """The exception and its causes (an explicit cause first, else the implicit context)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)


def _connection_cause(e: BaseException) -> BaseException | None:
    """The refused/reset/dropped connection behind an error, if that is what it was."""
    for x in _chain(e):
        if isinstance(x, OSError) and not isinstance(x, TimeoutError):
            return x
        if type(x).__name__ in ("ServerDisconnectedError", "ClientConnectorError", "ClientOSError"):
            return x
    return None


def _error_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return str(getattr(e, "message", e))[:300]


def _error_code(e: Any) -> str | None:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err.get("code") or err.get("type")
    return getattr(e, "code", None)


def _limits(n: int):
    """Connection limits in the HTTP library the installed openai client uses (httpx, or httpx2 lately)."""
    import openai._base_client as base

    http = getattr(base, "httpx2", None) or getattr(base, "httpx")
    return http.Limits(max_connections=n, max_keepalive_connections=n)
