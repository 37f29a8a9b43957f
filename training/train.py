"""``python -m training.train``: learn the track-conditional generator with WGAN-GP.

    python -m training.train --config configs/train/NAME.yaml [--set key=value ...]
        [--resume runs/NAME/checkpoint.pt] [--out runs/NAME] [--max-minutes M] [--device cpu]
    torchrun --nproc_per_node=N -m training.train --config ...      # data-parallel on N GPUs

Writes into ``--out`` (default ``runs/<config name>``): ``checkpoint.pt`` (every
``log.checkpoint_every`` steps, on Ctrl-C / SIGTERM, at ``--max-minutes`` and at the end),
``config.yaml`` (the resolved config), ``losses.csv`` and ``losses.png``, and ``samples/``
(``step_NNNNNNN.npz`` always; ``.png`` and ``.mid`` when ``musegan_live.files.roll_files`` and
``musegan_live.files.midi_write`` are installed). A "step" is one generator update, preceded by
``train.n_critic`` critic updates.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import re
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel

from musegan_live.errors import ConfigError, MuseganLiveError
from training.checkpoint import load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from training.data.dataset import Batch, NowDistribution, PhraseSampler
from training.ema import CHECKPOINT_KEY, decay_at, make_average, update_average
from training.model.losses import critic_loss, generator_loss, kl_to_prior, reconstruction_loss
from training.model.networks import Discriminator, TrackConditionalGenerator, count_parameters
from training.model.posterior import BandPosterior, draw
from training.train_config import Config, apply_override, config_from_dict, load_config
from training.train_outputs import LossLog, write_samples

logger = logging.getLogger("training.train")


def lr_factor(step: int, cfg: Config) -> float:
    """Multiplier of the base learning rates after ``step`` generator steps.

    Both schedulers are advanced once per *generator* step, so ``train.steps`` in the config is
    the length of the schedule. (MuseGAN stepped one shared counter from both optimizers, so its
    decay ran n_critic+1 = 6 times faster than its config said.)
    """
    t = cfg.train
    if step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps))
    if t.lr_schedule == "linear":
        return 1.0 - (1.0 - t.final_lr_fraction) * progress
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return t.final_lr_fraction + (1.0 - t.final_lr_fraction) * cosine


def to_device(batch: Batch, condition_track: int, device: torch.device):
    """(real phrases for the critic, condition, known_mask) as float tensors on ``device``.

    For examples whose condition was dropped the critic sees an empty condition track in the
    real phrase as well as in the fake one: nobody played, so only the four generated tracks
    are judged (instead of asking G to match a condition it was never shown).
    """
    real = torch.from_numpy(batch.phrases).to(device, non_blocking=True).float()
    keep = torch.from_numpy(~batch.dropped).to(device).float().view(-1, 1, 1, 1)
    real[..., condition_track] *= keep
    condition = real[..., condition_track]
    known_mask = torch.from_numpy(batch.known_mask).to(device)
    return real, condition, known_mask


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="YAML config (configs/train/*.yaml); default: the checkpoint's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value parsed as YAML (repeatable)")
    p.add_argument("--resume", help="continue from this checkpoint.pt")
    p.add_argument("--out", help="run directory (default runs/<config name>)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop cleanly (with a checkpoint) after this many minutes")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = p.parse_args(argv)
    if not args.config and not args.resume:
        p.error("give --config (a new run) or --resume (continue one)")
    return args


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - the loop reads top to bottom
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    # --- distributed setup: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK ------------------------
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world = 0, 1
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    main_process = rank == 0

    # --- config: a file (plus --set), or the checkpoint's own (plus --set) -------------------
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    if args.config:
        cfg = load_config(args.config, args.set)
    else:
        values = copy.deepcopy(checkpoint["config"])
        for assignment in args.set:
            apply_override(values, assignment)
        cfg = config_from_dict(values)
    run_name = Path(args.config).stem if args.config else Path(args.resume).parent.name
    out_dir = Path(args.out or Path("runs") / run_name)
    if cfg.train.batch_size % world:
        raise ConfigError(
            f"train.batch_size {cfg.train.batch_size} must divide by the {world} processes"
        )
    batch_size = cfg.train.batch_size // world  # train.batch_size is the global batch
    if cfg.train.cpu_threads:
        torch.set_num_threads(cfg.train.cpu_threads)

    # --- randomness: model init is seeded alike everywhere (DDP also broadcasts rank 0's
    # weights); data and noise differ per rank so the ranks do not see the same batches.
    torch.manual_seed(cfg.train.seed)
    net = TrackConditionalGenerator(cfg.model).to(device)
    critic = Discriminator(cfg.model).to(device)
    # the conditional VAE's q(z | band) (training/model/posterior.py): with train.kl_weight > 0,
    # G reconstructs every example from a z drawn from it, so z learns to mean something
    posterior = (BandPosterior(cfg.model.latent_dim).to(device) if cfg.train.kl_weight > 0
                 else None)
    torch.manual_seed(cfg.train.seed + 1000 * rank)
    data_rng = np.random.default_rng(cfg.train.seed + 1000 * rank)
    condition_track = net.condition_track

    # --- optimizers: Adam with WGAN-GP's betas (0.5, 0.9); one LambdaLR per optimizer, both
    # advanced once per generator step.
    betas = tuple(cfg.train.adam_betas)
    g_params = list(net.parameters()) + (list(posterior.parameters()) if posterior else [])
    opt_g = torch.optim.Adam(g_params, lr=cfg.train.lr_generator, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.train.lr_discriminator, betas=betas)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lambda s: lr_factor(s, cfg))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lambda s: lr_factor(s, cfg))
    step = 0
    if checkpoint is not None:
        try:
            net.load_state_dict(checkpoint["generator"])
            critic.load_state_dict(checkpoint["discriminator"])
            if posterior is not None:
                posterior.load_state_dict(checkpoint["posterior"])
        except KeyError as err:
            raise ConfigError(
                f"{args.resume} was trained without train.kl_weight (no posterior to resume); "
                f"resume with --set train.kl_weight=0 or start a new run"
            ) from err
        except RuntimeError as err:
            raise ConfigError(
                f"{args.resume} does not fit the model in this config (sizes or condition track "
                f"differ); resume without --config or with the same model section: {err}"
            ) from err
        opt_g.load_state_dict(checkpoint["opt_generator"])
        opt_d.load_state_dict(checkpoint["opt_discriminator"])
        sched_g.load_state_dict(checkpoint["sched_generator"])
        sched_d.load_state_dict(checkpoint["sched_discriminator"])
        step = int(checkpoint["step"])
        # the config's learning rates and schedule rule, not the checkpoint's: a resumed run may
        # go on with another rate (--set train.lr_generator=...), e.g. to fine-tune gently
        for sched, base_lr in ((sched_g, cfg.train.lr_generator),
                               (sched_d, cfg.train.lr_discriminator)):
            sched.base_lrs = [base_lr] * len(sched.base_lrs)
            for group in sched.optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(step, cfg)
        if world == 1:  # per-rank streams differ; a single process can continue exactly
            restore_rng_states(checkpoint["rng"], data_rng)
        logger.info("resumed %s at step %d (lr %.3g)", args.resume, step,
                    opt_g.param_groups[0]["lr"])

    # --- the moving average of E+G that export ships (training/ema.py); a run resumed from a
    # checkpoint without one starts it from the current weights.
    average = None
    if cfg.train.ema_decay > 0:
        average = make_average(net)
        if checkpoint is not None and CHECKPOINT_KEY in checkpoint:
            average.load_state_dict(checkpoint[CHECKPOINT_KEY])
    del checkpoint

    # --- data ---------------------------------------------------------------------------------
    sources = [(f.path, f.weight, f.transpose_semitones) for f in cfg.data.train]
    now = NowDistribution(cfg.data.live_mask_share, cfg.data.full_mask_share,
                          cfg.data.on_beat_share, cfg.data.after_beat_steps)
    # transposition multiplies small corpora (Freedoom: 266 phrases) without teaching new harmony
    # a key change at a bar line: songs seldom jump (C then F#), a player may, and a band that
    # never heard it hesitates between the two keys and falls silent
    sampler = PhraseSampler(sources, condition_track, cfg.data.condition_dropout, now,
                            transpose_semitones=cfg.data.transpose_semitones,
                            modulation_share=cfg.data.modulation_share)
    validation = (PhraseSampler([(cfg.data.validation, 1.0)], condition_track, 0.0)
                  if cfg.data.validation else None)

    # --- wrapping: DDP for several processes; torch.compile for E+G only, because the critic
    # needs double backward (the gradient penalty), which compiled graphs do not support.
    raw_net, raw_critic = net, critic
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(net, device_ids=ids)
        critic = DistributedDataParallel(critic, device_ids=ids)
    if cfg.train.compile:
        net = torch.compile(net)
    use_bf16 = cfg.train.bf16 and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        logger.info("E+G %d parameters, D %d; %d phrases; device %s x%d; out %s",
                    count_parameters(raw_net), count_parameters(raw_critic), len(sampler),
                    device, world, out_dir)
    loss_log = LossLog(out_dir, resume_step=step) if main_process else None

    def checkpoint_now(reason: str) -> None:
        if not main_process:
            return
        state = {
            "generator": raw_net.state_dict(), "discriminator": raw_critic.state_dict(),
            "opt_generator": opt_g.state_dict(), "opt_discriminator": opt_d.state_dict(),
            "sched_generator": sched_g.state_dict(), "sched_discriminator": sched_d.state_dict(),
            "step": step, "config": cfg.to_dict(), "rng": rng_states(data_rng),
        }
        if average is not None:
            state[CHECKPOINT_KEY] = average.state_dict()
        if posterior is not None:
            state["posterior"] = posterior.state_dict()
        save_checkpoint(out_dir / "checkpoint.pt", state)
        logger.info("checkpoint at step %d (%s): %s", step, reason, out_dir / "checkpoint.pt")
        if cfg.log.keep_checkpoints:  # snapshots to choose from later (a GAN never settles)
            save_checkpoint(out_dir / f"checkpoint_{step:07d}.pt", state)

    # --- stopping: the first Ctrl-C / SIGTERM asks the loop to finish its step and save; a
    # second Ctrl-C aborts at once. Under DDP the ranks agree on stopping through an all-reduce.
    stop = {"reason": ""}

    def on_signal(signum, _frame):
        if stop["reason"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["reason"] = signal.Signals(signum).name
        logger.warning("%s: finishing this step, then saving a checkpoint", stop["reason"])

    previous_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline = (time.monotonic() + args.max_minutes * 60 if args.max_minutes is not None
                else math.inf)

    progress = None
    if main_process and cfg.log.progress_bar:
        from tqdm import tqdm

        progress = tqdm(total=cfg.train.steps, initial=step, unit="step", dynamic_ncols=True)
    tick_time, tick_step = time.perf_counter(), step
    net.train()
    critic.train()
    try:
        while step < cfg.train.steps:
            # --- critic: n_critic updates on fresh batches. G's output is produced without a
            # graph (only D learns here); the real condition goes next to it.
            # During the first train.recon_only_steps, E+G learn from the reconstruction term
            # alone and the critic waits: such steps cost a fifth of a full one on a CPU, and
            # what to play along with (harmony, the heard past) is learned there; the critic then
            # teaches what real parts sound like (crisp notes instead of a blur of probabilities).
            adversarial = step >= cfg.train.recon_only_steps
            for _ in range(cfg.train.n_critic if adversarial else 0):
                real, condition, known_mask = to_device(
                    sampler.sample(batch_size, data_rng), condition_track, device)
                z = torch.randn(batch_size, cfg.model.latent_dim, device=device)
                with torch.no_grad(), autocast():
                    fake = raw_net.full_phrase(condition, net(z, condition, known_mask).float())
                with autocast():
                    d = critic_loss(critic, real, fake, cfg.train.gp_lambda,
                                    cfg.train.drift_epsilon, penalty_critic=raw_critic)
                opt_d.zero_grad(set_to_none=True)
                d.total.backward()
                opt_d.step()

            # --- generator: one update through a frozen critic. The unwrapped critic is used
            # so DDP does not wait for critic gradients that are never computed. The
            # reconstruction term pulls G's tracks toward the real band of the same phrase: it
            # is what teaches "play along with what was heard" fastest per CPU minute, while the
            # critic keeps the notes crisp instead of a blur of probabilities.
            batch = sampler.sample(batch_size, data_rng)
            real, condition, known_mask = to_device(batch, condition_track, device)
            real_band = real[..., raw_net.output_tracks]
            dropped = torch.from_numpy(batch.dropped).to(device)
            if posterior is not None:
                # z from q(z | this band): the band can be reconstructed for every example,
                # also those that heard nothing (z tells which of the many fitting bands)
                mean, log_var = posterior(real_band, dropped)
                z = draw(mean, log_var)
                keep = torch.ones_like(dropped)
            else:  # without a posterior there is nothing to rebuild a dropped example from
                z = torch.randn(batch_size, cfg.model.latent_dim, device=device)
                keep = ~dropped
            raw_critic.requires_grad_(False)
            with autocast():
                tracks = net(z, condition, known_mask).float()
                g_loss = (generator_loss(raw_critic, raw_net.full_phrase(condition, tracks))
                          if adversarial else torch.zeros((), device=device))
                if cfg.train.recon_weight > 0:
                    g_loss = g_loss + cfg.train.recon_weight * reconstruction_loss(
                        tracks, real_band, keep)
                if posterior is not None:
                    # the KL is in nats per example, the BCE a mean per cell: scaled per cell
                    # so kl_weight 1 is the VAE's evidence bound (beta = 1)
                    g_loss = g_loss + (cfg.train.recon_weight * cfg.train.kl_weight
                                       / real_band[0].numel()) * kl_to_prior(mean, log_var)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            raw_critic.requires_grad_(True)
            if average is not None:
                update_average(average, raw_net, decay_at(step + 1, cfg.train.ema_decay))
            sched_g.step()
            with warnings.catch_warnings():
                # in the reconstruction-only phase the critic's optimizer has not stepped yet;
                # its schedule still advances with the generator steps (that is the intent)
                warnings.filterwarnings(
                    "ignore", re.escape("Detected call of `lr_scheduler.step()`"))
                sched_d.step()
            step += 1

            # --- bookkeeping (rank 0 logs, samples and saves) ---------------------------------
            if loss_log is not None:
                if adversarial:
                    loss_log.add(d.total.item(), g_loss.item(), d.wasserstein.item(),
                                 d.gradient_penalty.item())
                else:  # no critic yet: its columns stay 0
                    loss_log.add(0.0, g_loss.item(), 0.0, 0.0)
            if progress is not None:
                progress.update(1)
            if main_process and step % cfg.log.log_every == 0:
                now = time.perf_counter()
                rate = (step - tick_step) / (now - tick_time)
                tick_time, tick_step = now, step
                row = loss_log.flush(step, sched_g.get_last_lr()[0], rate)
                if progress is not None:
                    progress.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}",
                                         w=f"{row['wasserstein']:.3f}")
            if main_process and (step % cfg.log.sample_every == 0 or step == cfg.train.steps):
                # the samples show what export will ship: the average when there is one
                shown = raw_net if average is None else average
                val_w = write_samples(out_dir, step, shown, raw_critic, sampler, validation, cfg,
                                      device)
                loss_log.note_validation(step, val_w)
                loss_log.plot()
            if step % cfg.log.checkpoint_every == 0 and step < cfg.train.steps:
                checkpoint_now("periodic")

            # --- stop early on a signal or the time box; all ranks stop at the same step
            flag = torch.tensor(float(bool(stop["reason"]) or time.monotonic() > deadline))
            if distributed:
                flag = flag.to(device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0:
                stop["reason"] = stop["reason"] or f"--max-minutes {args.max_minutes}"
                break
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if progress is not None:
            progress.close()

    checkpoint_now(stop["reason"] or "finished")
    if loss_log is not None:
        loss_log.plot()
    if distributed:
        dist.destroy_process_group()
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point: errors of this project become one line on stderr and an exit code."""
    try:
        return main(argv)
    except MuseganLiveError as err:
        print(f"training.train: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(cli())
