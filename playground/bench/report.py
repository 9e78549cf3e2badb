"""The printed report: a table of the models, then each other figure against its goal, then the notes."""

from __future__ import annotations

from typing import Any

GOALS: dict[str, tuple[str, float]] = {
    "overhead_ratio": ("<=", 1.10),
    "speedup": (">=", 2.0),
    "speedup_cpu": (">=", 2.0),
    "pixels": (">=", 0.99),
    "instances": (">=", 0.95),
    "raw_rel_error": ("<=", 0.02),
    "sam_prompt": ("<=", 0.03),
    "refilter_ms": ("<=", 50.0),
    "overlay_100_masks_ms": ("<=", 60.0),
    "startup_to_page_s": ("<=", 5.0),
    "startup_ratio": ("<=", 1.3),
    "growth_mb": ("<=", 50.0),
    "request_peak_excess_mb": ("<=", 0.0),
}
"""Figure -> (comparison, goal). Only the bench judges these: tests never assert timings."""
COLUMNS = (
    ("model", None),
    ("precision", "precision"),
    ("cold load ms", "cold_load_ms"),
    ("fp32 bare ms", "fp32_bare_ms"),
    ("bare ms", "bare_forward_ms"),
    ("playground ms", "playground_ms"),
    ("overhead", "overhead_ratio"),
    ("speedup", "speedup"),
    ("speedup cpu", "speedup_cpu"),
    ("pixels", "pixels"),
    ("instances", "instances"),
    ("mask IoU", "mask_iou"),
    ("raw rel err", "raw_rel_error"),
)

RUN_COLUMNS = (
    ("model", None),
    ("run", None),
    ("playground ms", "playground_ms"),
    ("bare ms", "bare_forward_ms"),
    ("encode ms", "encode_ms"),
    ("max memory MB", "max_memory_mb"),
    ("pixels", "pixels"),
    ("instances", "instances"),
    ("mask IoU", "mask_iou"),
    ("raw rel err", "raw_rel_error"),
)


def verdict(name: str, value: float | None) -> str:
    """``met``, ``MISSED`` or ``n/a`` (no value) for figure ``name`` against its goal."""
    if value is None:
        return "n/a"
    comparison, goal = GOALS[name]
    return "met" if (value <= goal if comparison == "<=" else value >= goal) else "MISSED"


def goal_line(label: str, name: str, value: float | None) -> str:
    comparison, goal = GOALS[name]
    return f"{label}: {fmt(value)} (goal {comparison} {goal:g}: {verdict(name, value)})"


def worst(report: dict[str, Any], name: str) -> float | None:
    """The worst value of per-model figure ``name`` (an agreement field or a model field)."""
    values = [
        figures["agreement"][name] if name in figures["agreement"] else figures[name]
        for figures in report["models"].values()
    ]
    values = [value for value in values if value is not None]
    if not values:
        return None
    return max(values) if GOALS[name][0] == "<=" else min(values)


def print_report(report: dict[str, Any], notes: list[str]) -> None:
    """The models table, then one line per other figure with its goal, then the notes."""
    print(
        f"device {report['device']} · CPU {report['cpu_capability']} · torch {report['torch']} · "
        f"{report['weights']} weights · precision {report['precision']} · "
        f"{fmt(report['cpu_steal_percent'])} % of CPU time stolen by the host during the model figures"
    )
    rows = [tuple(title for title, _ in COLUMNS)]
    for key, figures in report["models"].items():
        values = {**figures, **figures["agreement"]}
        rows.append((key, values["precision"] or "-", *(fmt(values[field]) for _, field in COLUMNS[2:])))
    print_table(rows)
    print("each run on the device, against fp32 on the CPU (same weights):")
    rows = [tuple(title for title, _ in RUN_COLUMNS)]
    for key, figures in report["models"].items():
        for name, run in figures["runs"].items():
            values = {**run, **run["cpu_agreement"]}
            rows.append((key, f"{name}: {run['precision']}", *(fmt(values[field]) for _, field in RUN_COLUMNS[2:])))
    print_table(rows)
    if report["sam_encoder_ms"]:
        print("sam image encoder ms: " + ", ".join(f"{k} {fmt(v)}" for k, v in report["sam_encoder_ms"].items()))
    if first := report.get("first_click_after_upload_ms"):
        print(
            f"sam first click after upload ms (image encoded on arrival): encode {fmt(first['encode_ms'])}; "
            + "; ".join(
                f"after {d}: click {fmt(first[f'click_after_{d}_ms'])}, ratio {fmt(first[f'ratio_after_{d}'])}"
                for d in ("1s", "5s")
            )
        )
    if "first_panel_ms" in report:
        print(
            f"compare, five models: first panel {fmt(report['first_panel_ms'])} ms, all {fmt(report['all_panels_ms'])} "
            f"ms (ratio {fmt(report['first_panel_ratio'])}); bundled example after a restart: "
            f"{fmt(report['example_repeat_ms'])} ms from disk, {fmt(report['example_first_ms'])} ms on its first run "
            f"(ratio {fmt(report['example_repeat_ratio'])})"
        )
    sam, memory = report["sam_prompt"], report["memory"]
    lines = [
        ("overhead ratio (worst)", "overhead_ratio", worst(report, "overhead_ratio")),
        ("speedup over fp32 bare forward (worst)", "speedup", worst(report, "speedup")),
        ("the same in CPU time, which leaves out stolen time (worst)", "speedup_cpu", worst(report, "speedup_cpu")),
        ("semantic pixel agreement (worst)", "pixels", worst(report, "pixels")),
        ("instance agreement (worst)", "instances", worst(report, "instances")),
        ("raw output relative error (worst)", "raw_rel_error", worst(report, "raw_rel_error")),
        (
            f"sam prompt ms: first {fmt(sam['first_ms'])}, second {fmt(sam['second_ms'])}; ratio",
            "sam_prompt",
            sam["ratio"],
        ),
        ("refilter ms (100 soft masks, 1024 px)", "refilter_ms", report["refilter_ms"]),
        ("overlay ms (100 masks, 1024x1024)", "overlay_100_masks_ms", report["overlay_100_masks_ms"]),
        ("startup to page s", "startup_to_page_s", report["startup_to_page_s"]),
        ("startup ratio (app / empty gr.Blocks)", "startup_ratio", report["startup_ratio"]),
        ("memory growth MB (3rd cycle - 2nd)", "growth_mb", memory["growth_mb"]),
        (
            "request peak over RSS around it + own activation peak, MB",
            "request_peak_excess_mb",
            memory["request_peak_excess_mb"],
        ),
    ]
    for label, name, value in lines:
        print(goal_line(label, name, value))
    print(
        f"memory: budget {fmt(memory['budget_mb'])} MB, baseline {fmt(memory['baseline_mb'])} MB, "
        f"steady {fmt(memory['steady_mb'])} MB, peak {fmt(memory['peak_mb'])} MB, evictions {fmt(memory['evictions'])}"
    )
    for note in notes:
        print(f"note: {note}")


def print_table(rows: list[tuple[str, ...]]) -> None:
    """``rows`` (a title row first) in aligned columns, the first two left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.rjust(width) if i > 1 else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths)))
        print("  ".join(cells))


def fmt(value: float | None) -> str:
    """``-`` for None, whole numbers from 100 up, three significant digits below."""
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
