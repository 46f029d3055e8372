"""Byte-reproducible archives: the same inputs always give the same bytes, so asset hashes are stable.

An asset whose hash changes on every synth redeploys on every ``cdk deploy``; tar and gzip both
embed timestamps, owners and (for gzip) the file name unless told not to.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip header can hold


def _sorted_members(members: Mapping[str, Path]) -> list[tuple[str, Path]]:
    return sorted(members.items())


def deterministic_tar_gz(members: Mapping[str, Path]) -> bytes:
    """A gzip'd tar of ``{archive name: source file}`` with fixed mtime, owner and mode."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, source in _sorted_members(members):
            data = source.read_bytes()
            info = tarfile.TarInfo(arcname)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def deterministic_zip(members: Mapping[str, Path]) -> bytes:
    """A deflated zip of ``{archive name: source file}`` with fixed timestamps and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, source in _sorted_members(members):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return buffer.getvalue()


def files_under(folder: Path, *, prefix: str = "") -> dict[str, Path]:
    """Every file below ``folder`` keyed by its archive name, skipping caches and bytecode."""
    return {
        prefix + path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def write_content_addressed(data: bytes, *, build_dir: Path, file_name: str) -> Path:
    """Write ``data`` to ``build_dir/<sha256 prefix>/file_name`` (once) and return the path."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = build_dir / digest / file_name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # A partial file of this process's own: two synths at once (pytest's workers, two terminals) would
        # otherwise write into one partial file and could publish a mix of both writes.
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{file_name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(partial, 0o644)  # mkstemp's 0600 would make the asset unreadable to other users
            os.replace(partial, target)  # atomic; a concurrent writer wrote the same bytes
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return target
