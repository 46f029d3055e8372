"""A changed model gets a new version (byte-identical rebuilds: test_training_cpu_determinism.py)."""

import json

VERSION_FOLDERS = ("fraud-detector", "fraud-detector-v2")


def test_a_different_seed_gives_new_content_versions(artifacts, build_into, tmp_path):
    # WHEN the model is rebuilt from other data
    build_into(tmp_path, "--seed", "7")
    # THEN each version's content hash changes, so a deployment would see a new model
    for folder in VERSION_FOLDERS:
        before = json.loads((artifacts / folder / "metadata.json").read_text())["model_version"]
        after = json.loads((tmp_path / folder / "metadata.json").read_text())["model_version"]
        assert before.split("-")[0] == after.split("-")[0]
        assert before != after
