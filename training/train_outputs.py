"""What a training run writes besides checkpoints: the loss log, its plot, and samples.

- ``losses.csv``: ``step, d_loss, g_loss, wasserstein, gp, lr, steps_per_s`` (means over the
  ``log.log_every`` steps before ``step``); ``validation.csv``: ``step, val_wasserstein``.
- ``losses.png``: both plotted against the step.
- ``samples/step_NNNNNNN.npz`` (LPD-5 sparse) and, when the runtime's writers are installed,
  ``.png`` and ``.mid``: rows of real phrases, then the generator's accompaniment of the same
  conditions with full, half (2 bars) and no knowledge of the condition.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import torch

from musegan_live.model.decoding import decode_notes
from musegan_live.representation import (
    N_TRACKS,
    STEPS_PER_PHRASE,
    TRACK_NAMES,
    phrases_to_steps,
    save_sparse_npz,
)
from training.data.dataset import PhraseSampler, known_mask_from_now
from training.model.networks import Discriminator, TrackConditionalGenerator
from training.train_config import Config

logger = logging.getLogger(__name__)

LOSS_COLUMNS = ["step", "d_loss", "g_loss", "wasserstein", "gp", "lr", "steps_per_s"]
SAMPLE_TEMPO_BPM = 100.0


class LossLog:
    """Accumulates per-step losses, appends their means to ``losses.csv``, plots them.

    On resume the rows after ``resume_step`` (written after the checkpoint) are dropped, so the
    log never holds a step twice.
    """

    def __init__(self, out_dir: Path, resume_step: int = 0) -> None:
        self.path = out_dir / "losses.csv"
        self.val_path = out_dir / "validation.csv"
        self.plot_path = out_dir / "losses.png"
        self.rows = self._read(self.path, resume_step)
        self.val_rows = self._read(self.val_path, resume_step)
        self._rewrite(self.path, LOSS_COLUMNS, self.rows)
        self._rewrite(self.val_path, ["step", "val_wasserstein"], self.val_rows)
        self._sums = np.zeros(4)
        self._count = 0

    @staticmethod
    def _read(path: Path, resume_step: int) -> list[dict[str, float]]:
        if resume_step == 0 or not path.exists():
            return []
        with path.open(newline="") as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        return [r for r in rows if r["step"] <= resume_step]

    @staticmethod
    def _rewrite(path: Path, columns: list[str], rows: list[dict[str, float]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row[k]) for k in columns})

    def add(self, d_loss: float, g_loss: float, wasserstein: float, gp: float) -> None:
        """Record one generator step's losses (the last critic step's d values)."""
        self._sums += (d_loss, g_loss, wasserstein, gp)
        self._count += 1

    def flush(self, step: int, lr: float, steps_per_s: float) -> dict[str, float]:
        """Append the means since the last flush as the row for ``step``; return it."""
        means = self._sums / max(1, self._count)
        row = dict(zip(LOSS_COLUMNS, [step, *means.tolist(), lr, steps_per_s], strict=True))
        self._sums[:] = 0
        self._count = 0
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row[k]) for k in LOSS_COLUMNS])
        return row

    def note_validation(self, step: int, val_wasserstein: float | None) -> None:
        if val_wasserstein is None:
            return
        self.val_rows.append({"step": step, "val_wasserstein": val_wasserstein})
        with self.val_path.open("a", newline="") as f:
            csv.writer(f).writerow([step, _fmt(val_wasserstein)])

    def plot(self) -> None:
        """Write ``losses.png`` (losses, Wasserstein estimates, gradient penalty vs. step)."""
        if not self.rows:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in self.rows]
        fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
        axes[0].plot(steps, [r["d_loss"] for r in self.rows], label="critic loss")
        axes[0].plot(steps, [r["g_loss"] for r in self.rows], label="generator loss")
        axes[1].plot(steps, [r["wasserstein"] for r in self.rows], label="train")
        if self.val_rows:
            axes[1].plot([r["step"] for r in self.val_rows],
                         [r["val_wasserstein"] for r in self.val_rows], "o-", label="validation")
        axes[1].set_ylabel("Wasserstein estimate")
        axes[2].plot(steps, [r["gp"] for r in self.rows])
        axes[2].set_ylabel("gradient penalty")
        axes[2].set_xlabel("generator step")
        for ax in axes[:2]:
            ax.legend()
        fig.tight_layout()
        tmp = self.plot_path.with_name(self.plot_path.stem + ".partial.png")
        fig.savefig(tmp, dpi=80)
        plt.close(fig)
        tmp.replace(self.plot_path)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


@torch.no_grad()
def write_samples(
    out_dir: Path,
    step: int,
    net: TrackConditionalGenerator,
    critic: Discriminator,
    sampler: PhraseSampler,
    validation: PhraseSampler | None,
    cfg: Config,
    device: torch.device,
) -> float | None:
    """Write this step's sample files; return the validation Wasserstein estimate (or None).

    The conditions, ``z`` and validation batch are the same at every call (fixed seeds), so
    successive sample files show the same music getting better. Runs the nets in eval mode
    (batch-norm running statistics: what the exported model will do).
    """
    n = cfg.log.n_samples
    source = validation or sampler
    rng = np.random.default_rng(cfg.train.seed + 12345)
    batch = source.sample(n, rng, condition_dropout=0.0)
    real = torch.from_numpy(batch.phrases).to(device).float()
    condition = real[..., net.condition_track]
    z = torch.randn(n, cfg.model.latent_dim, generator=torch.Generator().manual_seed(7)).to(device)
    was_training = net.training
    net.eval()
    decoding = cfg.model.note_decoding()  # decoded as the exported model will be
    rows = [real]
    for now_steps in (STEPS_PER_PHRASE, STEPS_PER_PHRASE // 2, 0):
        mask = torch.from_numpy(known_mask_from_now(np.full(n, now_steps))).to(device)
        probabilities = net(z, condition, mask).float().cpu().numpy()
        tracks = torch.from_numpy(decode_notes(probabilities, net.output_tracks, decoding))
        tracks = tracks.to(device)
        shown = condition if now_steps else torch.zeros_like(condition)
        rows.append(net.full_phrase(shown, tracks.float()))
    rolls = torch.cat(rows).bool().cpu().numpy()  # [4n, 4, 48, 84, 5]

    density = rolls.reshape(4, n, -1, N_TRACKS).mean(axis=(1, 2))
    logger.info("step %d note density per track (real / full / half / none): %s", step,
                "; ".join(f"{TRACK_NAMES[t]} " + "/".join(f"{x:.4f}" for x in density[:, t])
                          for t in range(N_TRACKS)))
    stem = out_dir / "samples" / f"step_{step:07d}"
    save_sparse_npz(stem.with_suffix(".npz"), rolls)
    try:
        from musegan_live.files.roll_files import save_png
    except ImportError:
        logger.debug("musegan_live.files.roll_files not available: no sample PNG")
    else:
        save_png(stem.with_suffix(".png"), rolls, tracks=list(range(N_TRACKS)))
    try:
        from musegan_live.files.midi_write import write_midi
    except ImportError:
        logger.debug("musegan_live.files.midi_write not available: no sample MIDI")
    else:
        write_midi(stem.with_suffix(".mid"), phrases_to_steps(rolls), tracks=list(range(N_TRACKS)),
                   tempo_bpm=SAMPLE_TEMPO_BPM)

    val_w = None
    if validation is not None:
        val_rng = np.random.default_rng(cfg.train.seed + 54321)
        vb = validation.sample(min(64, cfg.train.batch_size), val_rng)
        v_real = torch.from_numpy(vb.phrases).to(device).float()
        v_cond = v_real[..., net.condition_track]
        v_mask = torch.from_numpy(vb.known_mask).to(device)
        v_z = torch.randn(len(v_real), cfg.model.latent_dim,
                          generator=torch.Generator().manual_seed(8)).to(device)
        v_fake = net.full_phrase(v_cond, net(v_z, v_cond, v_mask))
        val_w = float(critic(v_real).mean() - critic(v_fake).mean())
    net.train(was_training)
    return val_w
