"""training-loss.png: the loss per optimizer step of each training run."""

from __future__ import annotations

from pathlib import Path


def plot_losses(ordered: list[tuple[str, dict]], path: Path) -> bool:
    """Loss per step, one line per training run (the MLM head warm-up dashed); False when nothing was logged."""
    if not any(r.get("losses") or r.get("head_losses") for _, r in ordered):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for name, run in ordered:
        losses, head = run.get("losses") or [], run.get("head_losses") or []
        color = None
        if losses:
            color = ax.plot(range(1, len(losses) + 1), losses, lw=1.2, label=f"{name} ({run.get('recipe', '?')})")[0].get_color()
        if head:
            ax.plot(range(1, len(head) + 1), head, lw=1, ls="--", color=color,
                    label=f"{name}: MLM head warm-up (encoder frozen)")
    ax.set_yscale("log")
    # Plain numbers on the log axis: the losses span a few units, where 10^x labels would say nothing.
    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title("Training loss per step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
