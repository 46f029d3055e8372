"""The pictures ops commands draw (--plot): matplotlib without a display, written as PNG or refused in one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ops.cli import UsageError


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: commands run on servers and in CI, where there is no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, path: Path, *, dpi: int = 100) -> None:
    """Write ``figure`` to ``path``; a path that cannot be written is a usage error (exit 2), never a traceback."""
    import matplotlib.pyplot as plt

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=dpi)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
