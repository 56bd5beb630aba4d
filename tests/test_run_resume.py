"""A run root made by an earlier version (no ``score``/``templates`` sections in its manifest)
resumes with the same command; a changed setting is still refused."""
import json

import pytest

from eksfold.config import InferConfig, RunConfig
from eksfold.errors import ConfigError
from eksfold.run import MANIFEST, Run
from eksfold.targets import Target

TARGETS = [Target("t1", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ")]


def _make_old(root):
    Run.create(str(root), TARGETS, RunConfig())
    manifest = json.loads((root / MANIFEST).read_text())
    for section in ("score", "templates"):       # what a manifest of the previous version lacks
        manifest["config"].pop(section)
    manifest["config"]["infer"].pop("settings")   # a field added later inside a section
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_an_older_run_root_resumes(tmp_path):
    _make_old(tmp_path)
    run = Run.create(str(tmp_path), TARGETS, RunConfig())
    assert run.config.infer.preset == RunConfig().infer.preset


def test_a_changed_setting_is_still_refused(tmp_path):
    _make_old(tmp_path)
    with pytest.raises(ConfigError, match="other targets or settings"):
        Run.create(str(tmp_path), TARGETS, RunConfig(infer=InferConfig(preset="model_2")))
