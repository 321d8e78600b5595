"""Shared pieces of the benchmark harnesses: the machine line and docs/benchmarks.md sections.

Each harness owns one section of docs/benchmarks.md, fenced by a pair of
``<!-- name -->`` markers, and replaces only that section when it runs with
``--report``; the other sections stay as they were.
"""
from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Dict, Optional, Sequence


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python, torch version (no GPU use)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch_version = ""
    return (f"{os.cpu_count()} CPU cores ({cpu}), no GPU, "
            f"CPython {platform.python_version()}{torch_version}")


def median_spread(values: Sequence[float]) -> str:
    """``"median (min-max)"`` of ``values`` with one decimal, e.g. ``"12.3 (11.9-13.0)"``.

    Raises:
        ValueError: if ``values`` is empty.
    """
    if not values:
        raise ValueError("median_spread needs at least one value")
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def threshold_plot(path: Path, xs: Sequence[float], series: Dict[str, Sequence[float]],
                   shipped: float, xlabel: str, ylabel: str, title: str,
                   legend: str = "lower left") -> None:
    """Saves a line plot of each of ``series`` (label -> one value per x) against the
    thresholds ``xs``, with a dotted line at the ``shipped`` one, as ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (label, ys), marker in zip(series.items(), "os^v"):
        ax.plot(xs, ys, marker=marker, label=label)
    ax.axvline(shipped, color="grey", linestyle=":", label=f"shipped ({shipped})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.legend(loc=legend, fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def publish(section: str, mark: str, report: Optional[Path], *also: Path) -> None:
    """Prints ``section``; with ``report``, replaces its part of that file (``write_section``).

    ``also``: other files the run wrote (plots), named in the closing line.
    """
    print(section)
    if report:
        write_section(report, mark, section)
        print(f"wrote {' and '.join(str(p) for p in (report, *also))}")


def write_section(path: Path, mark: str, section: str) -> None:
    """Replaces the text between the two ``mark`` lines of ``path`` with ``section``.

    ``section`` must itself start and end with ``mark``. When ``path`` has no
    such section, it is appended; when ``path`` does not exist, it is created
    with a "# Benchmarks" title.

    Raises:
        ValueError: if ``section`` is not fenced by ``mark``.
    """
    if not (section.startswith(mark) and section.rstrip().endswith(mark)):
        raise ValueError(f"the section has to start and end with {mark!r}")
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if mark in text:
        head, _, rest = text.partition(mark)
        _, _, tail = rest.partition(mark)
        text = head + section.rstrip() + tail
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text)
