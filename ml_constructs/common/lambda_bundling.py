"""Python Lambda packages built without Docker: pip fetches manylinux wheels for the function's platform.

CDK bundles an asset locally when ``BundlingOptions.local.try_bundle`` returns True; if it returned
False CDK would fall back to Docker, which this project never needs (and CI does not have). So
:class:`LocalPipBundling` either builds the package or raises :class:`BundlingError` with pip's output.

The package is ``pip install --no-deps --platform <manylinux tags> --implementation cp --python-version
3.12 --only-binary=:all: --no-compile --target <out> -r requirements.txt`` (a pinned, complete closure),
pruned of tests and tools, plus the source folder. Dependencies are cached under
``~/.cache/ml-deploy-patterns/lambda-deps/`` (``$XDG_CACHE_HOME`` if set, shared by every clone) keyed by
the requirements, platform and recipe, so repeated synths copy instead of re-installing; the
asset hash is computed from the same inputs (not the output), so CDK skips bundling entirely when
``cdk.out`` already holds the staged asset and a synth never changes the hash by itself.

The package ships no locally compiled bytecode by default: ``.pyc`` bytes depend on which CPython 3.12
release (if any) the build machine has, so the same commit would give different packages, asset hashes
and function versions on different machines. The cost is paid at cold start (bench/serverless.py
measures both). ``compile_bytecode=True`` opts in; the compiling release is then part of the hash.

CDK bundles only the stacks the CLI selects (the ``aws:cdk:bundling-stacks`` context): none for ``cdk ls``,
one for ``cdk synth -e StackName``; :class:`LocalPipBundling` is never called for the others.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from ml_constructs.common.archive import files_under

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Shared by every clone of the project on this machine (as pip's and uv's caches are): entries are keyed by
#: everything that goes into them, so a fresh clone copies the dependencies instead of installing them again.
USER_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-deploy-patterns"
DEFAULT_CACHE_DIR = USER_CACHE_DIR / "lambda-deps"
LAMBDA_PYTHON_VERSION = "3.12"
Architecture = Literal["arm64", "x86_64"]
#: pip matches ``--platform`` tags exactly (it does not widen manylinux_2_28 to older glibc levels), so
#: every level the Lambda Python 3.12 runtime (Amazon Linux 2023, glibc 2.34) can load is listed.
#: onnxruntime ships only manylinux_2_28 wheels; pydantic-core only manylinux_2_17/2014 ones.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
}
MACHINE_NAMES = {"arm64": "aarch64", "x86_64": "x86_64"}
#: Removed after install (paths relative to the package root; ``**/`` patterns match at any depth).
#: onnxruntime's tools/quantization/transformers are model-conversion utilities, and
#: ``capi/libonnxruntime.so.*`` is the C API library for non-Python users: the Python binding
#: (``onnxruntime_pybind11_state*.so``) links the runtime statically and does not load it (its ELF
#: NEEDED entries list only libc/libstdc++/libgcc/libm/libdl/librt/libpthread).
DEFAULT_PRUNED: tuple[str, ...] = (
    "bin", "**/__pycache__", "**/*.pyc", "**/tests", "numpy/f2py", "numpy/_pyinstaller",
    "onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/transformers", "onnxruntime/datasets",
    "onnxruntime/backend", "onnxruntime/capi/libonnxruntime.so.*",
)
#: Bump when the way packages are built changes: it is part of the cache key and the asset hash.
RECIPE_REVISION = "1"
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
PIP_TIMEOUT_S = 900
#: Where Lambda unpacks the package: compiled code names its source files there, not on the build machine.
LAMBDA_TASK_ROOT = "/var/task"


class BundlingError(RuntimeError):
    """The Lambda package could not be built; the message says why (pip's own output included)."""


@dataclass(frozen=True, kw_only=True)
class LambdaPackageSpec:
    """What goes into one Lambda package: a source folder and its pinned requirements, for one platform."""

    source_dir: Path
    architecture: Architecture = "arm64"
    python_version: str = LAMBDA_PYTHON_VERSION
    requirements_file: str = "requirements.txt"
    cache_dir: Path = DEFAULT_CACHE_DIR
    pruned: tuple[str, ...] = field(default=DEFAULT_PRUNED)
    compile_bytecode: bool = False
    """Ship ``.pyc`` files compiled by a local CPython of the runtime's version, when there is one.

    Off by default, so the package's bytes (and the asset hash, and the function version) are the same
    on every build machine. /var/task is read-only, so without them every cold start compiles the imported
    modules again: bench/serverless.py reports the cold start with and without. When on, the package has
    bytecode only where a CPython of the runtime's minor version is installed, and the compiling release
    is part of the asset hash (see :meth:`asset_hash`); other Python versions' bytecode is never shipped."""

    def __post_init__(self) -> None:
        problems = []
        if not Path(self.source_dir).is_dir():
            problems.append(f"source_dir {self.source_dir} is not a folder")
        elif not self.requirements_path.is_file():
            problems.append(f"{self.requirements_path} not found (pin the function's dependencies there)")
        if self.architecture not in PLATFORM_TAGS:
            problems.append(f"architecture {self.architecture!r} is not one of {', '.join(PLATFORM_TAGS)}")
        if not re.fullmatch(r"3\.\d+", self.python_version):
            problems.append(f"python_version {self.python_version!r} is not like 3.12")
        if problems:
            raise BundlingError("invalid Lambda package: " + "; ".join(problems))

    @property
    def requirements_path(self) -> Path:
        return Path(self.source_dir) / self.requirements_file

    @property
    def platforms(self) -> tuple[str, ...]:
        return PLATFORM_TAGS[self.architecture]

    def dependencies_key(self) -> str:
        """Identifies an installed dependency set: requirements, platform, Python, pruning, recipe, bytecode."""
        return self._recipe_hash(bytecode=self.bytecode_tag)

    def asset_hash(self) -> str:
        """The asset hash: the recipe, the bytecode tag, and every source file's name and bytes (never the output).

        The bytecode tag is in it because the ``.pyc`` files are part of the package's bytes: CDK and
        cdk-assets treat equal hashes as equal content (an asset already published under a hash is never
        uploaded again), so a package without bytecode, or compiled by another 3.12 release (marshal output
        may differ between releases), gets a hash of its own and publishes a function version of its own.
        """
        digest = hashlib.sha256(self._recipe_hash(bytecode=self.bytecode_tag).encode())
        for name, path in files_under(Path(self.source_dir)).items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def _recipe_hash(self, *, bytecode: str) -> str:
        recipe = {"requirements": self.requirements_path.read_text(), "platforms": self.platforms,
                  "python": self.python_version, "pruned": self.pruned, "revision": RECIPE_REVISION,
                  "bytecode": bytecode}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    @property
    def bytecode_interpreter(self) -> str | None:
        """The local CPython that compiles the package's bytecode, or None (no bytecode shipped)."""
        probe = probe_interpreter(self.python_version) if self.compile_bytecode else None
        return probe[0] if probe else None

    @property
    def bytecode_tag(self) -> str:
        """``cpython-3.12.1`` (the compiling interpreter's release) when bytecode is compiled, else ``none``.

        Part of the dependency cache key and of the asset hash."""
        if not self.compile_bytecode:
            return "none"
        probe = probe_interpreter(self.python_version)
        return f"cpython-{probe[1]}" if probe else "none"

    def pip_command(self, target: Path) -> list[str]:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-compile",
                   "--implementation", "cp", "--python-version", self.python_version]
        for tag in self.platforms:
            command += ["--platform", tag]
        return command + ["--target", str(target), "--requirement", str(self.requirements_path),
                          "--disable-pip-version-check", "--no-input", "--quiet"]


def install_dependencies(spec: LambdaPackageSpec) -> Path:
    """The pruned dependency folder for ``spec``, installed once into the cache and reused afterwards."""
    cached = Path(spec.cache_dir) / spec.dependencies_key()
    if cached.is_dir():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cached.name[:12]}-", dir=cached.parent))
    try:
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            result = subprocess.run(spec.pip_command(staging), capture_output=True, text=True, env=env,
                                    timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise BundlingError(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
        if result.returncode != 0:
            raise BundlingError(
                f"pip could not install {spec.requirements_path} for {spec.architecture} / CPython "
                f"{spec.python_version} (exit {result.returncode}). Every requirement needs a binary wheel for "
                f"one of {', '.join(spec.platforms)}.\n{result.stderr.strip() or result.stdout.strip()}")
        prune(staging, spec.pruned)
        if spec.bytecode_interpreter:
            compile_bytecode(spec.bytecode_interpreter, staging, [staging])
        problems = check_package(staging, architecture=spec.architecture, python_version=spec.python_version)
        if problems:
            raise BundlingError("the installed dependencies do not fit the function:\n  " + "\n  ".join(problems))
        try:
            staging.rename(cached)
        except OSError:  # another process finished the same install first; theirs is identical
            if not cached.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cached


def prune(root: Path, patterns: tuple[str, ...]) -> None:
    """Delete every path under ``root`` matching ``patterns`` (glob syntax, relative to ``root``)."""
    for pattern in patterns:
        for path in sorted(root.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


def build_package(spec: LambdaPackageSpec, output_dir: Path) -> None:
    """Fill ``output_dir`` with the dependencies and the source files: exactly what Lambda will run."""
    output_dir = Path(output_dir)
    dependencies = install_dependencies(spec)
    shutil.copytree(dependencies, output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
    sources = files_under(Path(spec.source_dir))
    clashes = sorted(name for name in sources if (dependencies / name).exists())
    if clashes:
        raise BundlingError(f"source files would overwrite bundled dependencies: {', '.join(clashes)}")
    for name, path in sources.items():
        target = output_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    if spec.bytecode_interpreter:
        compile_bytecode(spec.bytecode_interpreter, output_dir,
                         [output_dir / name for name in sources if name.endswith(".py")])
    size = sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file())
    if size > LAMBDA_UNZIPPED_LIMIT_BYTES:
        raise BundlingError(f"the package unzips to {size / 2**20:.0f} MiB; Lambda allows "
                            f"{LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB")


def compile_bytecode(interpreter: str, root: Path, paths: list[Path]) -> None:
    """Compile ``paths`` (files or folders under ``root``) with ``interpreter`` into ``__pycache__``.

    ``unchecked-hash`` pycs are used without comparing the source's mtime, which a zip does not keep
    faithfully (2-second resolution, local time); ``-s``/``-p`` make tracebacks name /var/task paths.
    """
    if not paths:
        return
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
               "-s", str(root), "-p", LAMBDA_TASK_ROOT, *map(str, paths)]
    # A fixed hash seed: frozenset constants are marshalled in iteration order, which follows string hashes.
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False,
                            env={**env, "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        raise BundlingError(f"{interpreter} could not compile the package:\n{(result.stdout + result.stderr).strip()}")


def _link_or_copy(source: str, target: str) -> str:
    # Hard links make the copy from the cache nearly free; across file systems, copy.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def wheel_tags(package_dir: Path) -> dict[str, list[str]]:
    """``{dist-info folder: [Tag lines of its WHEEL file]}`` for every installed distribution."""
    tags = {}
    for wheel in sorted(Path(package_dir).glob("*.dist-info/WHEEL")):
        tags[wheel.parent.name] = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines()
                                   if line.startswith("Tag:")]
    return tags


def check_package(package_dir: Path, *, architecture: str, python_version: str) -> list[str]:
    """Problems that would stop the package from loading on the function's runtime (empty when fine)."""
    problems = []
    machine = MACHINE_NAMES[architecture]
    for dist, tags in wheel_tags(package_dir).items():
        if not any(_tag_runs(tag, machine=machine, python_version=python_version) for tag in tags):
            problems.append(f"{dist}: wheel tags {', '.join(tags) or '(none)'} do not run on CPython "
                            f"{python_version} / manylinux {machine}")
    suffix = f".cpython-{python_version.replace('.', '')}.pyc"
    wrong_python = [str(path.relative_to(package_dir)) for path in Path(package_dir).rglob("*.pyc")
                    if not (path.name.endswith(suffix) and path.parent.name == "__pycache__")]
    if wrong_python:
        problems.append(f"bytecode for another Python than {python_version}: {', '.join(wrong_python[:5])}")
    return problems


def _tag_runs(tag: str, *, machine: str, python_version: str) -> bool:
    interpreter, abi, platform_tag = tag.split("-")
    if platform_tag == "any":
        return interpreter.startswith("py3") or interpreter == "py2.py3"
    if not (platform_tag.startswith("manylinux") and platform_tag.endswith(machine)):
        return False
    target = "cp" + python_version.replace(".", "")
    if abi == "abi3":  # the stable ABI: built for this minor version or an older one
        return interpreter.startswith("cp3") and int(interpreter[3:]) <= int(target[3:])
    return interpreter == target and abi in (target, "none")


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundling:
    """CDK local bundling with pip: builds the package in ``output_dir`` and never falls back to Docker."""

    def __init__(self, spec: LambdaPackageSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, *, image: Any = None, **_options: Any) -> bool:
        build_package(self.spec, Path(output_dir))
        return True


def lambda_code(spec: LambdaPackageSpec) -> lambda_.Code:
    """The function's code asset: bundled locally with pip, hashed from its inputs (stable across synths)."""
    runtime = lambda_.Runtime(f"python{spec.python_version}", lambda_.RuntimeFamily.PYTHON)
    return lambda_.Code.from_asset(
        str(spec.source_dir), asset_hash_type=cdk.AssetHashType.CUSTOM, asset_hash=spec.asset_hash(),
        bundling=cdk.BundlingOptions(image=runtime.bundling_image, local=LocalPipBundling(spec)))


def host_architecture() -> Architecture | None:
    """This machine's architecture in Lambda's terms, or None if Lambda has no such architecture."""
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower())  # type: ignore[return-value]


def find_interpreter(version: str = LAMBDA_PYTHON_VERSION) -> str | None:
    """The path of a working CPython ``version`` here (``pythonX.Y`` on PATH, then pyenv's versions), or None.

    It compiles the package's bytecode, and smoke-tests a bundle when it matches the function's platform.
    """
    probe = probe_interpreter(version)
    return probe[0] if probe else None


@lru_cache(maxsize=None)
def probe_interpreter(version: str = LAMBDA_PYTHON_VERSION) -> tuple[str, str] | None:
    """``(path, release)`` of a working CPython ``version`` here, e.g. ``("/usr/bin/python3.12", "3.12.1")``."""
    command = shutil.which(f"python{version}") or f"python{version}"
    attempts: list[dict[str, str]] = [{}]
    pyenv = shutil.which("pyenv")
    if pyenv:  # a pyenv shim runs only with a selected version
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=60,
                                check=False).stdout.split()
        attempts += [{"PYENV_VERSION": name} for name in listed if name == version or name.startswith(version + ".")]
    probe = "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"
    for extra in attempts:
        try:
            result = subprocess.run([command, "-c", probe], capture_output=True, text=True, timeout=60, check=False,
                                    env={**os.environ, **extra})
        except OSError:
            continue
        lines = result.stdout.split()
        if result.returncode == 0 and len(lines) == 2 and lines[1].rsplit(".", 1)[0] == version:
            return lines[0], lines[1]
    return None
