"""Where the members of a ``seeds=[...]`` job write: the folder a ``seed=k`` job would have, so a
later sweep of ``seed=k`` jobs finds them done; each member gets its own logger; whether a job's
members can train as one stacked model, read from the config alone (:func:`vectorize_refusal`)."""

from __future__ import annotations

import pytest

from ablate import job_id
from ablate.members import ELEMENTWISE_NAMES, NOT_VECTORIZABLE, Member, member_dirname, vectorize_refusal
from ablate.results import load_sweep, read_record
from tests.support import run_ablate


def _ablate(*args, cwd):
    proc = run_ablate(args, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --- whether members can be one stacked model ------------------------------------------------------

def test_the_table_of_built_in_families_is_what_the_families_say():
    import ablate.models
    from ablate.optim import ELEMENTWISE

    for name, why in NOT_VECTORIZABLE.items():
        family = getattr(ablate.models, name)
        assert bool(getattr(family, "vectorizable", False)) == (why is None), name
        assert getattr(family, "not_vectorizable_because", None) == why, name
    assert set(NOT_VECTORIZABLE) == {n for n in ablate.models.__all__ if isinstance(getattr(ablate.models, n), type)
                                     and hasattr(getattr(ablate.models, n), "vectorizable")}
    assert ELEMENTWISE_NAMES == tuple(c.__name__ for c in ELEMENTWISE)


SEEDS, RATES = [Member(0), Member(1)], [Member(0, 0.1), Member(0, 0.2)]


@pytest.mark.parametrize("overrides,members,refusal", [
    ([], SEEDS, None),
    (["optimizer=adamw"], RATES, None),
    (["model=resnet", "optimizer=momentum"], RATES, None),
    (["model=rnn"], SEEDS, "model=rnn cannot be vectorized (torch.func.vmap has no batching rule"),
    (["model=transformer"], SEEDS, "model=transformer cannot be vectorized (vmap runs scaled_dot_product_attention"),
    (["vectorize=false"], SEEDS, "vectorize=false"),
    (["trainer.devices=2"], SEEDS, "vectorized seeds train on one device"),
    (["+trainer.gradient_clip_val=1.0"], SEEDS, "trainer.gradient_clip_val clips the norm of all members"),
    (["scheduler=plateau"], SEEDS, "scheduler=plateau follows one monitored metric"),
    (["optimizer._target_=torch.optim.Adagrad"], SEEDS, None),
    (["optimizer._target_=torch.optim.Adagrad"], RATES,
     "optimizer=Adagrad takes no per-member learning rate (ablate.optim.MemberRates needs SGD, Adam, AdamW, RMSprop)"),
    (["optimizer._target_=torch.optim.adam.Adam"], RATES, None),
], ids=["mlp", "adamw-rates", "resnet-momentum-rates", "rnn", "transformer", "vectorize-false", "devices",
        "clipping", "plateau", "adagrad-seeds", "adagrad-rates", "module-path"])
def test_vectorize_refusal_says_why_from_the_config(compose_cfg, overrides, members, refusal):
    got = vectorize_refusal(compose_cfg(overrides), members)
    assert got == refusal if refusal is None else got.startswith(refusal), got


# --- where members write ---------------------------------------------------------------------------


def test_member_dirname_is_hydras_override_dirname_of_the_seed_job():
    task = ["model.depth=2", "seeds=[0,1]", "+experiment=x", "budget=smoke"]
    assert member_dirname(task, 1) == "+experiment=x,budget=smoke,model.depth=2,seed=1"
    assert member_dirname(task, 0, exclude_keys=["budget"], kv_sep=":") == "+experiment:x,model.depth:2,seed:0"
    assert member_dirname(["seed=4", "seeds=[1]"], 1) == "seed=1"


def test_members_land_where_seed_jobs_would_and_a_seed_sweep_skips_them(tmp_path):
    sweep = tmp_path / "sweep"
    common = ["budget=smoke", "model.width=16", "report=false", f"hydra.sweep.dir={sweep}"]
    _ablate("-m", "seeds=[0,1]", *common, cwd=tmp_path)
    members = {r["seed"]: r for r in load_sweep(sweep)}
    assert sorted(members) == [0, 1] and all(r["vectorized"]["members"] == 2 for r in members.values())
    for seed, record in members.items():
        # Hydra's sweepers write a boolean override back as `False`, as the seed=k job below gets it
        assert record["overrides"] == {"budget": "smoke", "model.width": "16", "report": "False", "seed": str(seed)}
        assert record["run_id"] == job_id(f"budget=smoke,model.width=16,report=False,seed={seed}")
        # each member logged to its own CSV, as a run of its own would
        csv = (sweep / record["run_id"] / "logs" / "metrics.csv").read_text().splitlines()
        assert csv[0].split(",")[:2] and len(csv) == 1 + 2 + 1      # header, 2 epochs, the test row
    proc = _ablate("-m", "seed=0,1", *common, cwd=tmp_path)
    assert proc.stderr.count("already done") + proc.stdout.count("already done") == 2
    again = {r["seed"]: r for r in load_sweep(sweep)}
    assert again == members                                          # found, not redone
    assert {p.parent.name for p in sweep.rglob("record.json")} == {r["run_id"] for r in members.values()}


def test_each_member_is_a_wandb_run_of_its_own(tmp_path):
    _ablate("budget=smoke", "model.width=16", "logger=wandb", "seeds=[0,1]", f"hydra.run.dir={tmp_path / 'run'}",
            cwd=tmp_path)
    records = load_sweep(tmp_path / "run")
    ids = {r["wandb"]["id"] for r in records}
    assert len(records) == 2 and len(ids) == 2
    for record in records:
        folder = tmp_path / "run" / record["run_id"]
        (offline,) = (folder / "wandb").glob("offline-run-*")
        assert offline.name.endswith(record["wandb"]["id"])
        assert read_record(folder)["status"] == "ok"
