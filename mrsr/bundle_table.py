"""The bundles side by side, from their metadata: ``mrsr bundles``' table and ``mrsr demo``'s ranking.

Reads each bundle's ``configs/metadata.json`` (``eval_metrics``: the scores ``evaluate.json``
stored) through :mod:`mrsr.bundle`'s public functions; loads no network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mrsr.bundle import SUFFIX, bundle_scales, list_bundles, read_metadata

__all__ = [
    "SCORE_KEYS",
    "bundle_name",
    "bundle_rows",
    "format_bundle_table",
    "rank_bundles",
    "harm_note",
]

#: the stored scores ``mrsr bundles`` shows, per scale
SCORE_KEYS = ("psnr", "ssim", "psnr_zerofill", "psnr_bicubic", "worst_margin", "worst_image", "do_no_harm")
SCORES_NOTE = (
    "Scores: the default output (data consistency on), mean over the test images of data_manifests/real_data.json, "
    "and its smallest margin over zerofill on any one image (see each docs/README.md)."
)


def bundle_name(bundle: str | os.PathLike) -> str:
    """A bundle's short name, its folder's less ``_mr_sr``.

    >>> bundle_name("bundles/msrn_mr_sr")
    'msrn'
    """
    name = Path(bundle).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def _scores(bundle: str | os.PathLike, key: str) -> dict[str, Any]:
    """The stored scores of ``bundle`` at scale ``key`` (``"x2"``); empty if it has none."""
    return read_metadata(bundle).get("eval_metrics", {}).get(key, {})


def bundle_rows() -> list[dict[str, Any]]:
    """One row per bundle: name, version, folder (relative to the working folder when inside it),
    the scales it ships weights for, and its stored scores per scale (:data:`SCORE_KEYS`)."""
    rows = []
    for bundle in list_bundles():
        meta = read_metadata(bundle)
        where = bundle.relative_to(Path.cwd()) if bundle.is_relative_to(Path.cwd()) else bundle
        metrics = {k: {m: v[m] for m in SCORE_KEYS if m in v} for k, v in meta.get("eval_metrics", {}).items()}
        rows.append({"bundle": bundle_name(bundle), "version": meta.get("version"), "path": str(where),
                     "scales": bundle_scales(bundle), "eval_metrics": metrics})  # fmt: skip
    return rows


def _margin(m: dict[str, Any]) -> str:
    return f"{m['worst_margin']:+.2f} dB ({m['worst_image']})" if "worst_margin" in m else "n/a"


def _harm_line(name: str, scale: int, m: dict[str, Any]) -> str:
    return (f"{name} at x{scale} is worse than zerofill by {-m['worst_margin']:.2f} dB on {m['worst_image']}, even "
            "with data consistency: on scans like it, zerofill is the safer choice.")  # fmt: skip


def format_bundle_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`bundle_rows`: weights, test PSNR with its margins over zerofill and
    bicubic, and the worst image's margin over zerofill per scale; then a note and a line per bundle
    and scale that does harm.

    >>> format_bundle_table([])
    'No bundles found: set $MRSR_BUNDLES to a folder of <name>_mr_sr bundles.'
    """
    if not rows:
        return "No bundles found: set $MRSR_BUNDLES to a folder of <name>_mr_sr bundles."
    scales = sorted({int(k[1:]) for r in rows for k in r["eval_metrics"]})
    head = "| bundle | version | weights |" + "".join(
        f" x{s} test PSNR (vs zerofill, bicubic) | x{s} worst image vs zerofill |" for s in scales)  # fmt: skip
    lines = [head + " folder |", "|---|---|---|" + "---|---|" * len(scales) + "---|"]
    harms = []
    for r in rows:
        cells = []
        for s in scales:
            m = r["eval_metrics"].get(f"x{s}")
            if not m:
                cells.append(" not scored | |")
                continue
            margins = f"({m['psnr'] - m['psnr_zerofill']:+.2f}, {m['psnr'] - m['psnr_bicubic']:+.2f})"
            cells.append(f" {m['psnr']:.2f} dB {margins} | {_margin(m)} |")
            if not m.get("do_no_harm", True):
                harms.append(_harm_line(r["bundle"], s, m))
        weights = ", ".join(f"x{s}" for s in r["scales"]) or "none"
        lines.append(f"| {r['bundle']} | {r['version']} | {weights} |{''.join(cells)} {r['path']} |")
    return "\n".join([*lines, "", SCORES_NOTE, *(f"- {line}" for line in harms)])


def rank_bundles(scale: int) -> tuple[list[tuple[float, str]], list[str]]:
    """The bundles with weights for ``scale``, split by their stored scores.

    Returns:
        ``(scored, harmful)``: ``(test PSNR, name)`` of those that do no harm on any test image
        (no more than 0.1 dB below zerofill; a bundle not scored counts as harmless, at -inf dB),
        and the names of those that do.
    """
    scored, harmful = [], []
    for bundle in list_bundles():
        if int(scale) not in bundle_scales(bundle):
            continue
        metrics = _scores(bundle, f"x{int(scale)}")
        if not metrics.get("do_no_harm", True):
            harmful.append(bundle_name(bundle))
        else:
            scored.append((metrics.get("psnr", float("-inf")), bundle_name(bundle)))
    return scored, harmful


def harm_note(bundle: str | os.PathLike, scale: int) -> str | None:
    """One line if ``bundle`` does harm at ``scale`` on some test image (from its stored scores), else ``None``."""
    m = _scores(bundle, f"x{int(scale)}")
    if m.get("do_no_harm", True):
        return None
    return (f"{bundle} at x{int(scale)} is worse than zerofill by {-m['worst_margin']:.2f} dB on the test image "
            f"{m['worst_image']}, even with data consistency (see `mrsr bundles`)")  # fmt: skip
