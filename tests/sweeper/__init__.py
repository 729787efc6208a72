"""Tests of src/hydra_plugins/ablate_sweeper. Not named ``tests/hydra_plugins``: with ``tests/`` on
PYTHONPATH (as test_scale puts it) a regular package of that name would shadow Hydra's ``hydra_plugins``
namespace and hide every installed launcher (submitit, joblib)."""
