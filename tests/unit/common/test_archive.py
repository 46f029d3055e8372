"""Content-addressed build files (model packages, the edge program, the Lambda's model archive)."""
from __future__ import annotations

import os

from ml_constructs.common.archive import write_content_addressed


def test_a_second_writer_in_the_middle_of_a_write_leaves_both_whole(tmp_path, monkeypatch):
    # GIVEN two synths writing the same archive (pytest's workers, two terminals), the second one running
    # entirely while the first is about to publish its file
    data = b"model bytes " * 1000
    replace, paths, interrupted = os.replace, [], []

    def replace_after_another_writer(source, target):
        if not interrupted:
            interrupted.append(source)
            paths.append(write_content_addressed(data, build_dir=tmp_path, file_name="model.tar.gz"))
        replace(source, target)

    monkeypatch.setattr(os, "replace", replace_after_another_writer)
    # WHEN the first one publishes
    paths.append(write_content_addressed(data, build_dir=tmp_path, file_name="model.tar.gz"))
    # THEN both get the same path to exactly those bytes, readable by everyone, and no partial file is left
    assert paths[0] == paths[1] and paths[0].read_bytes() == data
    assert [p.name for p in paths[0].parent.iterdir()] == ["model.tar.gz"]
    assert paths[0].stat().st_mode & 0o777 == 0o644
