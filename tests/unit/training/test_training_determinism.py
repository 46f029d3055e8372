"""Rebuilding gives byte-identical files; a changed model gets a new version."""

import json

VERSION_FOLDERS = ("fraud-detector", "fraud-detector-v2")


def _snapshot(out):
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in files}


def test_rebuild_is_byte_identical_whatever_the_callers_hash_seed(
    artifacts, build_into, tmp_path
):
    # GIVEN a second output folder holding a stale file from an older build
    second = tmp_path / "again"
    (second / "fraud-detector").mkdir(parents=True)
    (second / "fraud-detector" / "stale.txt").write_text("old")
    # WHEN building again from a shell with a different PYTHONHASHSEED
    build_into(second, hash_seed="123")
    # THEN every file matches the first build byte for byte, and the stale file is gone
    first, again = _snapshot(artifacts), _snapshot(second)
    assert sorted(first) == sorted(again)
    assert len(first) == 2 * 9
    for name in first:
        assert first[name] == again[name], name


def test_a_different_seed_gives_new_content_versions(artifacts, build_into, tmp_path):
    # WHEN the model is rebuilt from other data
    build_into(tmp_path, "--seed", "7")
    # THEN each version's content hash changes, so a deployment would see a new model
    for folder in VERSION_FOLDERS:
        before = json.loads((artifacts / folder / "metadata.json").read_text())["model_version"]
        after = json.loads((tmp_path / folder / "metadata.json").read_text())["model_version"]
        assert before.split("-")[0] == after.split("-")[0]
        assert before != after
