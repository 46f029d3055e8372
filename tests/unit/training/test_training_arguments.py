"""``python -m training.build`` refuses impossible arguments with argparse's one-line message and exit 2.

Run in this process: the arguments are parsed before the command re-executes itself or builds anything, so
``main`` exits here exactly as the command would."""

import pytest

from training import build


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "argument --seed: must be 0 or more, got -1"),
    (["--seed", "1.5"], "argument --seed: not a whole number: '1.5'"),
    (["--out", "README.md"], "argument --out: README.md exists and is not a directory"),
])
def test_bad_arguments_are_refused_before_building(args, message, capsys, monkeypatch):
    from tests.conftest import REPO_ROOT

    monkeypatch.chdir(REPO_ROOT)
    # (a parse that let the arguments through must fail this test, not replace the test process)
    monkeypatch.setattr(build.hash_seed, "reexec_pinned", lambda *_: pytest.fail("the arguments were accepted"))
    # WHEN the build is run with a negative or fractional seed, or a file as its output directory
    with pytest.raises(SystemExit) as exited:
        build.main(args)
    # THEN argparse explains the mistake on stderr and exits 2, without a traceback or any output
    captured = capsys.readouterr()
    assert exited.value.code == 2
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
