"""Issue 3.1/3.4/3.7 end to end: the generation runner and the CLI on the openai backend, real server.

Failed requests are stored as failed rows with their error; a re-run sends only those again and
leaves every stored answer byte for byte as it was. The CLI's stage table shows the usage and cost.
"""
import pyarrow.compute as pc
import pytest

from conftest import run_cli
from corpora import Corpus
from generators.config import BackendConfig, GenerationConfig, SamplingConfig
from generators.registry import make_backend
from tinyschool.stages.generate import run_generation
from openai_server import server_fixture

pytestmark = pytest.mark.serial  # run alone (scripts/test.sh): client timeouts on the wall clock

server = server_fixture()


def config(server, **backend):
    b = dict(name="openai", model="tiny-test", base_url=server.url, concurrency=4, max_retries=0, timeout_s=10,
             backoff_s=0.05)
    b.update(backend)
    return GenerationConfig(template="tinystories", vocabulary="default", count=12, seed=7, shard_size=4,
                            sampling=SamplingConfig(max_tokens=10), backend=BackendConfig(**b))


def generate(corpus, cfg, name="openai-run"):
    return run_generation(corpus, name, cfg, lambda: make_backend(cfg.backend.name, **cfg.backend.options()))


def rows(corpus):
    out = {}
    for _, t in corpus.iter_stage("raw"):
        for r in t.to_pylist():
            out[r["id"]] = r
    return out


def test_decoding_biases_the_server_cannot_apply_are_named_in_a_warning(server, tmp_path, capsys):
    cfg = config(server)
    generate(Corpus(tmp_path / "plain"), cfg)
    assert "cannot bias" not in capsys.readouterr().out
    cfg = cfg.model_copy(update={"count": 4, "sampling": SamplingConfig(max_tokens=10, vocab_bias=6.0, echo_bias=10.0)})
    generate(Corpus(tmp_path / "biased"), cfg)
    out = capsys.readouterr().out
    assert "warning: backend openai cannot bias" in out and "[sampling] vocab_bias, echo_bias are not applied" in out


def test_failed_rows_are_stored_and_a_rerun_retries_only_them(server, tmp_path):
    corpus = Corpus(tmp_path / "corpus")
    cfg = config(server)
    server.reset(faults=[{"fault": "500", "times": 2}, {"fault": "refusal", "times": 1}])
    stats = generate(corpus, cfg)
    first = rows(corpus)
    assert len(first) == 12 and stats.requests == 12  # nothing dropped: 12 planned, 12 rows
    failed = {i: r for i, r in first.items() if r["error"] is not None}
    assert sorted(r["error_kind"] for r in failed.values()) == ["refusal", "server", "server"]
    assert all(r["text"] == "" and r["finish_reason"] == "error" for r in failed.values())
    assert stats.failed == 3 and dict(stats.failed_by_kind) == {"server": 2, "refusal": 1} and stats.ok == 9
    assert not corpus.is_complete("raw")

    server.reset()
    stats2 = generate(corpus, cfg)
    log = server.stats()["log"]
    assert len(log) == 3  # only the failed ones went out again
    assert {e["prompt"] for e in log} == {failed[i]["prompt"] for i in failed}
    assert stats2.requests == 3 and stats2.reused == 9 and stats2.ok == 3
    second = rows(corpus)
    assert all(r["error"] is None for r in second.values())
    for i, r in first.items():
        if i not in failed:
            assert second[i] == r  # stored answers untouched (text, tokens, created_at...)
    assert corpus.is_complete("raw")

    server.reset()
    stats3 = generate(corpus, cfg)
    assert server.stats()["requests"] == 0 and stats3.requests == 0 and stats3.reused == 12


def test_invalid_structured_answers_are_failed_rows_and_retried_later(server, tmp_path):
    template = tmp_path / "qa.toml"
    template.write_text('''
name = "qa"
prompt = "item-{{ n }} answer as JSON"

[slots.n]
source = "int"
min = 0
max = 1000000

[json_schema]
type = "object"
required = ["answer", "reason"]
additionalProperties = false
[json_schema.properties.answer]
type = "integer"
[json_schema.properties.reason]
type = "string"
''')
    cfg = config(server).model_copy(update={"template": str(template), "vocabulary": None, "count": 6})
    corpus = Corpus(tmp_path / "corpus")
    server.reset(faults=[{"fault": "invalid_json", "times": 2}])
    stats = generate(corpus, cfg, name="qa")
    assert dict(stats.failed_by_kind) == {"invalid": 2}
    bad = [r for r in rows(corpus).values() if r["error"]]
    assert all("does not match the schema" in r["error"] for r in bad)
    assert all(e["response_format"]["type"] == "json_schema" for e in server.stats()["log"])
    server.reset()
    stats = generate(corpus, cfg, name="qa")
    assert server.stats()["requests"] == 2  # invalid answers never entered the cache
    assert stats.ok == 2 and all(r["error"] is None for r in rows(corpus).values())


@pytest.mark.slow
def test_cli_stage_table_shows_usage_failures_and_cost(server, tmp_path):
    out = tmp_path / "corpus"
    recipe = tmp_path / "remote.toml"
    recipe.write_text(f'''
name = "remote"
template = "tinystories"
count = 8
seed = 3
shard_size = 4
out = "{out}"

[sampling]
max_tokens = 12

[backend]
name = "openai"
model = "tiny-test"
base_url = "{server.url}"
concurrency = 4
max_retries = 2
backoff_s = 0.05
price_input_per_m = 1000.0
price_output_per_m = 2000.0
''')
    server.reset(faults=[{"fault": "503", "times": 2}, {"fault": "empty", "times": 1}])
    res = run_cli("generate", recipe)
    assert res.returncode == 1, res.stderr  # some requests failed: stored, reported, and the exit code says so
    assert "requests failed; they are stored with their error" in res.stdout
    log = server.stats()["log"]
    ok = [e for e in log if e["status"] == 200 and e["fault"] is None]
    text = res.stdout
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃|").split("│") if c.strip()]
        if len(cells) == 2:
            table[cells[0]] = cells[1]
    assert table["requests sent"] == "8" and table["succeeded"] == "7" and table["failed"] == "1"
    assert table["failed: empty"] == "1" and table["retries"] == "2"
    tokens_in = sum(e["prompt_tokens"] for e in log)
    tokens_out = sum(e["completion_tokens"] for e in log)
    assert tokens_out == sum(e["completion_tokens"] for e in ok)  # the empty answer has no output tokens
    assert table["input tokens"] == str(tokens_in) and table["output tokens"] == str(tokens_out)
    assert table["cost (USD)"] == f"{tokens_in / 1e6 * 1000 + tokens_out / 1e6 * 2000:.4f}"

    # a second run: the failed one is retried; the answers of the first run are not asked again
    server.reset()
    res = run_cli("generate", recipe)
    assert res.returncode == 0, res.stderr
    assert server.stats()["requests"] == 1
    stored = Corpus(out)
    assert stored.count("raw") == 8
    assert sum(pc.sum(pc.is_valid(t["error"])).as_py() or 0 for _, t in stored.iter_stage("raw", ["error"])) == 0
