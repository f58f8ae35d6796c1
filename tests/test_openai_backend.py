"""Issue 3.1/3.4/3.5: the openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server (tests/openai_server.py) runs in its own process, injects faults on request and counts
what it receives; the assertions are on its counts, not on our own bookkeeping.
"""
import pytest
from pydantic import BaseModel

from generators.base import BackendError, Request, Sampling
from generators.openai_backend import OpenAIBackend, parse_retry_after, render_plain
from generators.registry import make_backend
from generators.structured import resolve_schema
from openai_server import REFUSAL, server_fixture

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): client timeouts and request-rate spans measured on the wall clock

server = server_fixture()
JITTER = 0.3  # seconds between a request leaving the client and the server logging it, at most (loaded CI)
# the client's timeout: generous, so that a fault-free answer on a loaded 2-core CI machine never times out (a 1 s
# timeout once did, in the clean pass below); a "hang" fault sleeps twice as long, so it always times out
TIMEOUT = 3.0
HANG = 2 * TIMEOUT


def reqs(n, max_tokens=8, **kw):
    return [Request(id=f"r{i}", messages=({"role": "user", "content": f"item-{i} write a story"},),
                    sampling=Sampling(max_tokens=max_tokens, seed=1000 + i), **kw) for i in range(n)]


def backend(server, **kw):
    opts = dict(model="tiny-test", base_url=server.url, concurrency=6, max_retries=3, timeout_s=TIMEOUT, backoff_s=0.05,
                backoff_max_s=0.2)
    opts.update(kw)
    return OpenAIBackend(**opts)


def by_prompt(log, marker):
    return [e for e in log if marker in e["prompt"]]


@pytest.mark.slow
@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_every_fault_is_handled_and_nothing_is_lost(server, http):
    requests = reqs(20)
    server.reset()
    b = backend(server, http=http)
    clean = b.generate(requests)
    assert all(c.ok and c.retries == 0 for c in clean), [(c.id, c.retries, c.error) for c in clean if c.retries or not c.ok]

    server.reset(faults=[
        {"match": "item-1 ", "fault": "429", "times": 1, "retry_after": 1},
        {"match": "item-2 ", "fault": "500", "times": 2},
        {"match": "item-3 ", "fault": "503", "times": 1},
        {"match": "item-4 ", "fault": "reset", "times": 1},
        {"match": "item-5 ", "fault": "hang", "times": 1, "seconds": HANG},
        {"match": "item-6 ", "fault": "truncated", "times": 1},
        {"match": "item-7 ", "fault": "empty"},
        {"match": "item-8 ", "fault": "refusal"},
        {"match": "item-9 ", "fault": "500"},
        {"match": "item-10 ", "fault": "reset"},
        {"match": "item-11 ", "fault": "hang", "seconds": HANG},
        {"match": "item-12 ", "fault": "429", "retry_after": 0},
        {"match": "item-13 ", "fault": "truncated"},
    ])
    got = b.generate(requests)
    b.close()
    assert [c.id for c in got] == [r.id for r in requests]  # same order, one answer each: nothing dropped
    by_id = {c.id: c for c in got}

    # transient faults: retried, and the answer is exactly the fault-free one
    for i, retries in [(1, 1), (2, 2), (3, 1), (4, 1), (5, 1), (6, 1)]:
        c = by_id[f"r{i}"]
        assert c.ok, (i, c.error)
        assert c.retries == retries
        assert c.text == clean[i].text
    # faults that do not go away: a failed completion with its kind, after exactly max_retries retries
    for i, kind in [(9, "server"), (10, "connection"), (11, "timeout"), (12, "rate_limit"), (13, "bad_response")]:
        c = by_id[f"r{i}"]
        assert not c.ok and c.error_kind == kind and c.finish_reason == "error", (i, c)
        assert c.retries == 3
        assert c.error
    # answers that are not answers: failed at once (a later run retries them), not retried now
    assert by_id["r7"].error_kind == "empty" and by_id["r7"].retries == 0
    assert by_id["r8"].error_kind == "refusal" and REFUSAL[:10] in by_id["r8"].error
    # untouched items are unchanged
    for i in [0, 14, 15, 16, 17, 18, 19]:
        assert by_id[f"r{i}"].ok and by_id[f"r{i}"].text == clean[i].text

    log = server.stats()["log"]
    for i in (9, 10, 11, 12, 13):
        assert len(by_prompt(log, f"item-{i} ")) == 4  # 1 try + max_retries, then it stops
    # Retry-After: 1 was honoured: the retry of item-1 came at least a second after the 429
    tries = by_prompt(log, "item-1 ")
    assert [t["status"] for t in tries] == [429, 200]
    assert tries[1]["t"] - tries[0]["end"] >= 1.0


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_unreachable_server_is_a_connection_failure(http):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    b = OpenAIBackend(model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_s=0.01, timeout_s=5,
                      http=http)
    got = b.generate(reqs(3))
    b.close()
    assert all(c.error_kind == "connection" and c.retries == 2 and "connection error" in c.error for c in got)


def test_retry_budget_caps_the_retries_of_the_run(server):
    server.reset(faults=[{"fault": "503"}])  # a server that is down
    b = backend(server, concurrency=2, max_retries=5, retry_budget=3)
    got = b.generate(reqs(6))
    b.close()
    assert server.stats()["requests"] == 6 + 3  # every request once, then only 3 retries in all
    assert sum(c.retries for c in got) == 3
    assert all(c.error_kind == "server" for c in got)
    assert any("retry_budget is used up" in c.error for c in got)


def test_concurrency_cap_is_honoured(server):
    server.reset(delay=0.05)
    b = backend(server, concurrency=4)
    got = b.generate(reqs(40))
    b.close()
    s = server.stats()
    assert all(c.ok for c in got) and s["requests"] == 40
    assert 2 <= s["max_in_flight"] <= 4


@pytest.mark.slow
def test_rpm_limit_is_honoured(server):
    server.reset()
    rpm = 1200  # 20 requests/s, burst of one second's worth
    b = backend(server, concurrency=64, rpm=rpm)
    got = b.generate(reqs(60))
    b.close()
    log = server.stats()["log"]
    assert all(c.ok for c in got) and len(log) == 60
    times = [e["t"] for e in log]
    rate, burst = rpm / 60, rpm / 60
    # The server stamps a request when its (single-threaded) loop reads it, so a stall of the server
    # process on a loaded machine can bunch arrivals into one instant (a window count would then read
    # above the limit): judge the limit by the span of the whole run, which a stall cannot shorten.
    # Sending 60 requests at `rate` per second after an initial `burst` takes at least this long.
    least = (len(times) - burst - 1) / rate - JITTER
    assert max(times) - min(times) >= least
    # without the limit the 60 requests arrive at once, far sooner
    server.reset()
    b = backend(server, concurrency=64)
    b.generate(reqs(60))
    b.close()
    fast = [e["t"] for e in server.stats()["log"]]
    assert len(fast) == 60 and max(fast) - min(fast) < least


@pytest.mark.slow
def test_tpm_limit_is_honoured(server):
    server.reset()
    tpm = 6000  # 100 tokens/s
    b = backend(server, concurrency=64, tpm=tpm)
    got = b.generate(reqs(30, max_tokens=8))
    b.close()
    log = server.stats()["log"]
    assert all(c.ok for c in got) and len(log) == 30
    used = [e["prompt_tokens"] + e["completion_tokens"] for e in log]
    assert sum(used) == sum(c.prompt_tokens + c.completion_tokens for c in got)
    biggest_estimate = max(len(r.messages[0]["content"]) // 4 + r.sampling.max_tokens for r in reqs(30, max_tokens=8))
    rate = burst = tpm / 60
    # The server stamps a request when its (single-threaded) loop reads it, so a stall of the server
    # process on a loaded machine can bunch arrivals into one instant: judge the limit by the span
    # of the whole run, which a stall cannot shorten. Spending sum(used) tokens at `rate` per second
    # after an initial `burst` takes at least this long.
    times = [e["t"] for e in log]
    assert max(times) - min(times) >= (sum(used) - burst - biggest_estimate) / rate - JITTER


def test_seed_and_sampling_reach_the_server_and_answers_are_deterministic(server):
    server.reset()
    b = backend(server)
    a1 = b.generate(reqs(5))
    a2 = b.generate(reqs(5))
    b.close()
    assert [c.text for c in a1] == [c.text for c in a2]
    log = server.stats()["log"]
    assert sorted(e["seed"] for e in log[:5]) == [1000, 1001, 1002, 1003, 1004]
    assert all(e["max_tokens"] == 8 for e in log)
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 and c.created_at > 0 for c in a1)


def test_completions_api_renders_chat_and_prefill(server):
    server.reset()
    r = Request(id="x", messages=({"role": "system", "content": "You tell stories."},
                                  {"role": "user", "content": "item-0 a story about a cat"}),
                sampling=Sampling(max_tokens=6, seed=3), prefill="Once upon a time")
    b = backend(server, api="completions")
    (c,) = b.generate([r])
    b.close()
    (entry,) = server.stats()["log"]
    assert entry["path"] == "/v1/completions"
    assert entry["prompt"] == render_plain(r.messages, r.prefill)
    assert entry["prompt"].endswith("Assistant: Once upon a time")
    assert c.ok and c.text.startswith("Once upon a time") and len(c.text) > len(r.prefill)

    # chat: the messages go as they are; the prefill is only in the instruction, never sent as a turn
    server.reset()
    b = backend(server, api="chat")
    (c,) = b.generate([r])
    b.close()
    (entry,) = server.stats()["log"]
    assert entry["path"] == "/v1/chat/completions"
    assert entry["prompt"] == "You tell stories.\nitem-0 a story about a cat"


class Answer(BaseModel):
    answer: int
    steps: list[str]


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"},
                                           "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
          "required": ["answer", "steps"], "additionalProperties": False}


@pytest.mark.parametrize("json_mode", ["response_format", "guided_json"])
def test_structured_output_uses_the_server_mode_and_validates(server, json_mode):
    server.reset(faults=[{"match": "item-2 ", "fault": "invalid_json"}])
    b = backend(server, json_mode=json_mode)
    got = b.generate(reqs(4, max_tokens=50, json_schema=SCHEMA))
    b.close()
    log = server.stats()["log"]
    if json_mode == "response_format":
        assert all(e["response_format"]["json_schema"]["schema"] == SCHEMA for e in log)
    else:
        assert all(e["guided_json"] == SCHEMA and e["response_format"] is None for e in log)
    for i in (0, 1, 3):
        assert got[i].ok
        Answer.model_validate_json(got[i].text)
    bad = got[2]
    assert bad.error_kind == "invalid" and "does not match the schema" in bad.error and bad.retries == 0


def test_pydantic_model_path_gives_the_schema():
    schema = resolve_schema({"pydantic": f"{__name__}:Answer"})
    assert schema == Answer.model_json_schema()
    with pytest.raises(Exception, match="cannot import"):
        resolve_schema({"pydantic": "no_such_module:Model"})
    with pytest.raises(Exception, match="not a valid JSON schema"):
        resolve_schema({"type": "no-such-type"})


def test_missing_key_and_unknown_model_are_clear_errors(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="set the OPENAI_API_KEY environment variable"):
        make_backend("openai", model="gpt-4o-mini")
    server.reset()
    b = backend(server, model="missing-model")
    with pytest.raises(BackendError, match="HTTP 404.*does not exist"):
        b.generate(reqs(3))
    b.close()
    server.reset(faults=[{"fault": "quota", "times": 1}])
    b = backend(server)
    with pytest.raises(BackendError, match="insufficient_quota"):
        b.generate(reqs(3))
    b.close()


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert parse_retry_after({}) is None
