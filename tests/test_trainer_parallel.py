"""Data-parallel training over a CPU's cores (trainers.parallel): the same run as one process,
deterministic, resumable, and a failed rank ends it with one line."""
import sys

import pytest
import torch

import faults
from test_trainer_train import _curve, exp_file, make_corpus
from trainers import parallel
from trainers.config import TrainConfig, load_experiment
from trainers.train import TrainError, data_parallel, train_run


def with_train(p, extra):
    p.write_text(p.read_text().replace("[train]\n", f"[train]\n{extra}\n"))
    return load_experiment(p)


def test_a_share_of_the_batch_weighs_its_rows():
    """Uneven shares (5 rows over 2 ranks): the weighted share losses average to the whole batch's mean loss."""
    per_row = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])
    x = torch.arange(5 * 3).reshape(5, 3)
    batch = lambda step: (x, x + 1)  # noqa: E731
    shares = [parallel.share(batch, parallel.Group(r, 2))(0) for r in range(2)]
    assert [len(s[0]) for s in shares] == [2, 3] and [s[3] for s in shares] == [15, 15]
    assert torch.equal(torch.cat([s[0] for s in shares]), x) and torch.equal(torch.cat([s[1] for s in shares]), x + 1)
    rows = [per_row[:2], per_row[2:]]
    averaged = sum(w * r.mean() for (_, _, w, _), r in zip(shares, rows)) / 2
    assert averaged == pytest.approx(per_row.mean())
    assert parallel.share(batch, None)(0)[2:] == (1.0, 15)  # one process: the whole batch, weight 1


def test_processes_auto_splits_long_small_cpu_runs_over_the_cores():
    cpu, small, big = torch.device("cpu"), 47.8e6, 97e6
    long, short = TrainConfig(tokens=20_000_000), TrainConfig(tokens=100_000)
    assert data_parallel(long, cpu, small, 2) == 2
    assert data_parallel(short, cpu, small, 2) == 1  # not worth starting processes
    assert data_parallel(long, cpu, big, 2) == 1  # one process with every thread
    assert data_parallel(long.model_copy(update={"threads": 2}), cpu, small, 2) == 1  # threads set: one process
    assert data_parallel(long.model_copy(update={"processes": 3}), cpu, big, 2) == 3  # as configured
    with pytest.raises(TrainError, match="at least 1"):
        data_parallel(long.model_copy(update={"processes": 0}), cpu, small, 2)
    with pytest.raises(TrainError, match="CPU"):
        data_parallel(long.model_copy(update={"processes": 2}), torch.device("cuda"), small, 2)


@pytest.mark.slow
def test_data_parallel_trains_the_same_run_deterministically_and_resumes_exactly(tmp_path):
    make_corpus(tmp_path / "corpus")
    one = train_run(with_train(exp_file(tmp_path, "one"), "processes = 1"), "easy", 1, threads=1)
    dp = train_run(with_train(exp_file(tmp_path, "dp"), "processes = 2"), "easy", 1, threads=2)
    cut = with_train(exp_file(tmp_path, "cut"), "processes = 2")
    part = train_run(cut, "easy", 1, threads=2, stop_at_step=14)  # a crash between the checkpoints at 12 and 16
    resumed = train_run(cut, "easy", 1, threads=2)
    a, b, c = _curve(one["run"]), _curve(dp["run"]), _curve(resumed["run"])
    assert part["steps"] < dp["steps"] == one["steps"] and dp["tokens"] == one["tokens"]
    # the same run: batches of 4 rows ("easy" grows the context) split 2 + 2, gradients averaged
    assert [r[:2] for r in a] == [r[:2] for r in b] and len(a) > 20
    for (m, s, va), (_, _, vb) in zip(a, b):
        if m in ("train_loss", "val_loss"):
            assert vb == pytest.approx(va, rel=1e-4, abs=1e-5), (m, s)
    assert b == c  # deterministic, and a resume retraces it number for number
    for f in ("summary.json", "samples.jsonl", "checkpoint.pt"):  # rank 0 finished the run as one process would
        assert (tmp_path / "dp/easy/seed1" / f).exists(), f


def test_a_rank_that_cannot_start_ends_the_run_with_one_line():
    with pytest.raises(parallel.ParallelError, match=r"rank could not start \(exit code 3"):
        parallel.start(2, faults.rank_dies_before_joining, ())


def test_a_rank_that_dies_mid_run_is_named_in_one_line():
    hook = sys.excepthook
    group = parallel.start(2, faults.rank_dies_after_joining, ())
    assert sys.excepthook is hook  # torch's "[rank0]: " prefix would pile up over the runs of one process
    w = torch.nn.Parameter(torch.ones(3))
    (w * 2).sum().backward()
    try:
        with pytest.raises(parallel.ParallelError, match=r"data-parallel step failed: rank 1 \(exit code 3\) stopped"):
            group.procs[0].join(timeout=60)  # it is gone before the step's all-reduce
            group.average_gradients([w], torch.tensor(1.0))
    finally:
        group.close(ok=False)
