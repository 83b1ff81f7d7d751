"""Picture of a mapping: every used chip's core mesh, cores coloured by layer (left) and by
utilization, the fullest per-core limit (right)."""
from __future__ import annotations

from qblif.passes.mapping import Mapping, core_xy


def draw_mapping(m: Mapping, path) -> None:
    """Save the picture of ``m`` (PNG or any matplotlib format) to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle
    rows, cols = m.chip.core_mesh
    chips = max(m.chips, 1)
    fig, axes = plt.subplots(chips, 2, figsize=(2 * 0.45 * cols + 2.5, chips * 0.45 * rows + 1.2),
                             squeeze=False)
    order = sorted(m.pieces)
    cmap, heat = plt.get_cmap("tab20"), plt.get_cmap("viridis")
    colour = {i: cmap(k % 20) for k, i in enumerate(order)}
    for c in range(chips):
        for ax, title in zip(axes[c], ("layer", "utilization (fullest limit)")):
            ax.set_xlim(0, cols)
            ax.set_ylim(rows, 0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"chip {c}: {title}", fontsize=9)
            for k in range(m.chip.cores_per_chip):
                r, q = core_xy(m.chip, k)
                ax.add_patch(Rectangle((q, r), 0.92, 0.92, color="#eeeeee"))
    for p in m.all_pieces():
        r, q = core_xy(m.chip, p.core)
        use = max(p.use(m.chip, m.family[p.layer]).values())
        axes[p.chip][0].add_patch(Rectangle((q, r), 0.92, 0.92, color=colour[p.layer]))
        axes[p.chip][1].add_patch(Rectangle((q, r), 0.92, 0.92, color=heat(min(use, 1.0))))
    axes[0][0].legend(handles=[Patch(color=colour[i], label=f"layer {i}") for i in order],
                      fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    sm = plt.cm.ScalarMappable(cmap=heat, norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=axes[:, 1].tolist(), fraction=0.04, label="fraction of the limit")
    fig.suptitle(f"{m.chip.name}: {m.cores} cores on {m.chips} chip(s)", fontsize=10)
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
