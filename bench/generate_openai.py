"""Overhead of the openai backend: requests/s through OpenAIBackend vs a bare AsyncOpenAI loop.

Both drive the same test server (tests/openai_server.py, its own process, instant answers) at the
same concurrency, with the same httpx connection limits, on the same requests. The bare loop is the
least a client can do: one AsyncOpenAI client, a semaphore, gather. Ours adds everything the backend
does per request (retry loop, total timeout, rate-limit hooks, answer classification, Completion
records) and is fed in the runner's chunk size (2 x concurrency), as `run_generation` feeds it.
Runs alternate (bare, ours, bare, ours...) and the best of each is reported.

    python bench/generate_openai.py [--requests 4000] [--concurrency 256] [--rounds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from generators.base import Request, Sampling  # noqa: E402
from generators.openai_backend import OpenAIBackend, _limits  # noqa: E402
from openai_server import ServerProcess  # noqa: E402

MODEL = "bench-model"


def make_requests(n: int) -> list[Request]:
    return [Request(id=f"r{i}", messages=({"role": "user", "content": f"item-{i} write a tiny story"},),
                    sampling=Sampling(max_tokens=8, seed=i)) for i in range(n)]


class Bare:
    """The reference: a plain AsyncOpenAI loop, one client reused across rounds."""

    def __init__(self, url: str, concurrency: int, transport: str):
        import openai

        self.loop = asyncio.new_event_loop()
        limits = _limits(concurrency)
        cls = openai.DefaultAioHttpClient if transport == "aiohttp" else openai.DefaultAsyncHttpxClient
        self.client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=60,
                                         http_client=cls(limits=limits, timeout=60))
        self.concurrency = concurrency

    def run(self, requests: list[Request]) -> list[str]:
        async def main():
            sem = asyncio.Semaphore(self.concurrency)

            async def one(r: Request) -> str:
                async with sem:
                    s = r.sampling
                    resp = await self.client.chat.completions.create(
                        model=MODEL, messages=list(r.messages), max_tokens=s.max_tokens, seed=s.seed,
                        temperature=s.temperature, top_p=s.top_p)
                    return resp.choices[0].message.content

            return await asyncio.gather(*(one(r) for r in requests))

        return self.loop.run_until_complete(main())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def run_ours(b: OpenAIBackend, requests: list[Request], chunk: int) -> list[str]:
    out = []
    for i in range(0, len(requests), chunk):
        out.extend(b.generate(requests[i:i + chunk]))
    assert all(c.ok for c in out), next(c.error for c in out if not c.ok)
    return [c.text for c in out]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bare-transport", choices=["aiohttp", "httpx"], default="aiohttp",
                    help="HTTP transport of the bare loop (the backend uses aiohttp when installed, as here)")
    a = ap.parse_args(argv)
    reqs = make_requests(a.requests)
    warm = make_requests(a.concurrency * 2)
    with ServerProcess() as server:
        bare = Bare(server.url, a.concurrency, a.bare_transport)
        ours = OpenAIBackend(model=MODEL, base_url=server.url, concurrency=a.concurrency, max_retries=3, timeout_s=60)
        chunk = 2 * a.concurrency
        bare.run(warm)
        run_ours(ours, warm, chunk)
        best_bare = best_ours = 0.0
        cpu_bare, cpu_ours = [], []
        for rnd in range(a.rounds):
            t, c = time.perf_counter(), time.process_time()
            ref_texts = bare.run(reqs)
            r_bare = len(reqs) / (time.perf_counter() - t)
            cpu_bare.append((time.process_time() - c) / len(reqs) * 1000)
            t, c = time.perf_counter(), time.process_time()
            our_texts = run_ours(ours, reqs, chunk)
            r_ours = len(reqs) / (time.perf_counter() - t)
            cpu_ours.append((time.process_time() - c) / len(reqs) * 1000)
            assert our_texts == ref_texts, "the backend's answers differ from the bare loop's"
            best_bare, best_ours = max(best_bare, r_bare), max(best_ours, r_ours)
            print(f"round {rnd + 1}: bare AsyncOpenAI {r_bare:7.0f} req/s ({cpu_bare[-1]:.2f} ms CPU/req)   "
                  f"OpenAIBackend {r_ours:7.0f} req/s ({cpu_ours[-1]:.2f} ms CPU/req)", flush=True)
        stats = server.stats()
        bare.close()
        ours.close()
    print(f"{a.requests} requests per run at concurrency {a.concurrency} (bare loop on {a.bare_transport}); "
          f"server saw max {stats['max_in_flight']} in flight in the last run; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"best: bare {best_bare:.0f} req/s, ours {best_ours:.0f} req/s ({best_ours / best_bare:.2f}x)")
    print(json.dumps({"metric": "requests_per_s", "ours": round(best_ours), "reference": round(best_bare),
                      "ratio": round(best_ours / best_bare, 3), "target": 0.9, "target_min_rps": 1000}))


if __name__ == "__main__":
    main()
