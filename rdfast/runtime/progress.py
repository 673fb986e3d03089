"""Progress bars of long runs (tqdm): a bar opened while another is open nests below it, so
the demo's overall bar, a model's round and its batches show together; a finished nested bar
disappears, a top-level one stays."""
from __future__ import annotations

from tqdm.auto import tqdm


def bar_label(*parts) -> str:
    """``VAE k=10 · RD curve · round 2/2`` from the parts that are not None or empty."""
    return " · ".join(part for part in parts if part)


class Progress:
    """``total`` units of work under ``label``: a tqdm bar when ``enabled``, else nothing. Use it as
    a context manager so the bar closes whatever happens."""

    def __init__(self, total: int, label: str, enabled: bool, unit: str = "step"):
        self.bar = tqdm(total=total, desc=label, unit=unit, disable=not enabled, leave=None, dynamic_ncols=True,
                        mininterval=0.5)

    def set(self, done: int) -> None:
        """Start counting from ``done`` (a resumed run)."""
        self.bar.n = done
        self.bar.refresh()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def describe(self, label: str) -> None:
        """Show ``label`` as the bar's name (the step of a multi-step job now running)."""
        self.bar.set_description_str(label)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
