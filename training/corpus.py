"""The default training corpus, built from ``../shared/data`` (see its README.md).

``python -m training.corpus pop909 PATH -o data/pop909_mma.npz [--styles N] [--seed S]
[--jobs J] [--limit-songs M] [--split train|val]``
    POP909's chord and beat labels become an MMA chart (bar ``k`` of the chart = annotated bar
    ``k``), rendered as a full band in ``N`` groove styles per song
    (:mod:`training.data.mma`); MMA's own piano is dropped and POP909's real PIANO part takes
    its place, on the same bar grid.
    Bars whose annotation does not hold 4 beats split a song into 4/4 segments. The per-song
    work is :mod:`training.data.pop909` (:class:`Segment` and :func:`four_four_segments` are
    re-exported here).
``python -m training.corpus freedoom PATH -o data/freedoom.npz [--split train|val]``
    Freedoom's General-MIDI songs, collected as by ``training.collect``.
``python -m training.corpus groove PATH -o data/groove.npz [--split train|val]``
    Drum-only phrases of the Groove MIDI Dataset's 4/4 performances (``info.csv``).

Every builder is deterministic (styles from ``--seed`` and the song id; splits by a hash of
the song id or file name), parallel (``--jobs``), shows a tqdm bar, prints a summary and writes
``X.manifest.csv``, ``X.log`` and ``X.SOURCES.md`` (source, licence, credits) beside ``X.npz``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from musegan_live.errors import ConfigError, DataFileError, MuseganLiveError
from musegan_live.representation import DRUMS
from training.collect import (
    DEFAULT_CONFIG,
    CollectConfig,
    KeepRule,
    find_midi_files,
    load_collect_config,
    read_file_result,
)
from training.data import mma
from training.data.phrase_sink import CollectSummary, ItemResult, PhraseSink, run_tasks
from training.data.pop909 import Pop909Options, build_pop909_song, pop909_song_dirs
from training.data.pop909 import Segment as Segment
from training.data.pop909 import four_four_segments as four_four_segments

logger = logging.getLogger(__name__)

#: Share of POP909 songs held out for validation (by song id), and of Freedoom files.
POP909_VAL_PERCENT = 5
FREEDOOM_VAL_PERCENT = 10


def in_holdout(key: str, percent: float) -> bool:
    """Whether ``key`` (a song id or file name) falls in the held-out ``percent`` (stable hash)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10000 < percent * 100


def choose_styles(song_id: str, styles: tuple[str, ...], n_styles: int, seed: int) -> list[str]:
    """``n_styles`` distinct styles for a song, the same for the same ``(seed, song_id)``."""
    key = int.from_bytes(hashlib.sha256(f"{seed}:{song_id}".encode()).digest()[:8], "big")
    rng = np.random.default_rng(key)
    picked = rng.choice(len(styles), size=min(n_styles, len(styles)), replace=False)
    return [styles[i] for i in sorted(picked.tolist())]


# --- builders -------------------------------------------------------------------------------------
def build_pop909(
    root: str | Path,
    output: str | Path,
    *,
    n_styles: int = 2,
    seed: int = 0,
    split: str = "train",
    jobs: int = 1,
    limit_songs: int | None = None,
    config: CollectConfig | None = None,
    mma_config: mma.MmaConfig | None = None,
    progress: bool = True,
) -> CollectSummary:
    """POP909 chords + beats -> MMA full band in ``n_styles`` styles per song, real piano kept.

    ``split``: ``train`` (songs outside the 5 % hold-out, styles from ``styles``) or ``val``
    (the held-out songs, styles from ``val_styles``). ``limit_songs``: the first M songs of the
    split, by id. Phrases are kept by ``config``'s keep rule.
    """
    root = _dataset_folder(root, "pop909")
    config = config or CollectConfig()
    mma_config = mma_config or mma.load_mma_config()
    if not mma.mma_available(mma_config.mma_command):
        raise ConfigError(
            f"'{mma_config.mma_command}' not found on PATH; install MMA "
            "(Debian: apt-get install mma)"
        )
    styles = mma_config.val_styles if split == "val" else mma_config.styles
    all_songs = pop909_song_dirs(root)
    if not all_songs:
        raise DataFileError(
            f"{root}: no POP909 song folder (NNN/ with NNN.mid, beat_midi.txt, chord_midi.txt)"
        )
    songs = [d for d in all_songs if in_holdout(d.name, POP909_VAL_PERCENT) == (split == "val")]
    songs = songs[:limit_songs] if limit_songs is not None else songs
    tasks = [(str(d), tuple(choose_styles(d.name, styles, n_styles, seed))) for d in songs]
    logger.info("pop909 %s: %d songs, %d style(s) each", split, len(tasks), n_styles)
    options = Pop909Options(seed, config.hop_bars, config.keep_rule(), mma_config)
    worker = functools.partial(_pop909_task, options=options)
    sources = _sources_pop909(root, sorted({s for _, chosen in tasks for s in chosen}), seed)
    return _build(worker, tasks, output, config, jobs, progress, "pop909", "song", sources, True)


def _pop909_task(task: tuple[str, tuple[str, ...]], options: Pop909Options) -> list[ItemResult]:
    song_dir, styles = task
    return build_pop909_song(song_dir, list(styles), options)


def build_freedoom(
    root: str | Path,
    output: str | Path,
    *,
    split: str = "train",
    jobs: int = 1,
    config: CollectConfig | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Freedoom's MIDI songs collected directly; ``val`` = the ~10 % held out by file name."""
    root = _dataset_folder(root, "freedoom")
    config = config or CollectConfig()
    files = [
        f
        for f in find_midi_files([root], config.extensions)
        if in_holdout(f.name, FREEDOOM_VAL_PERCENT) == (split == "val")
    ]
    worker = functools.partial(read_file_result, hop_bars=config.hop_bars, rule=config.keep_rule())
    sources = _sources_text(
        "Freedoom soundtrack",
        root,
        "BSD-3-Clause",
        ["COPYING.adoc", "CREDITS-MUSIC"],
        f"{split} split: files whose name hashes into the {FREEDOOM_VAL_PERCENT} % hold-out are "
        f"{'kept' if split == 'val' else 'left out'}.",
    )
    return _build(
        worker,
        [str(f) for f in files],
        output,
        config,
        jobs,
        progress,
        "freedoom",
        "file",
        sources,
        False,
    )


def build_groove(
    root: str | Path,
    output: str | Path,
    *,
    split: str = "train",
    jobs: int = 1,
    config: CollectConfig | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Drum-only phrases of the Groove MIDI Dataset's 4/4 files; keep rule: drums non-empty.

    ``train`` uses info.csv's train split, ``val`` its validation and test splits.
    """
    root = _dataset_folder(root, "groove")
    config = config or CollectConfig()
    info = root / "info.csv"
    try:
        with open(info, newline="") as f:
            rows = list(csv.DictReader(f))
        wanted = {"train"} if split == "train" else {"validation", "test"}
        files = sorted(
            str(root / r["midi_filename"])
            for r in rows
            if r["time_signature"] == "4-4" and r["split"] in wanted
        )
    except (OSError, KeyError) as err:
        raise DataFileError(
            f"{info}: cannot read the Groove file list (needs columns midi_filename, "
            f"time_signature, split): {err}"
        ) from err
    worker = functools.partial(read_file_result, hop_bars=config.hop_bars, rule=KeepRule(DRUMS, 0))
    sources = _sources_text(
        "Groove MIDI Dataset (Gillick, Roberts, Engel, Eck, Bamman: 'Learning to Groove with "
        "Inverse Sequence Transformations', ICML 2019; https://magenta.tensorflow.org/datasets/"
        "groove)",
        root,
        "CC-BY-4.0",
        ["LICENSE", "README"],
        f"4/4 performances of info.csv's {'train' if split == 'train' else 'validation+test'} "
        "split; drum-only phrases.",
    )
    return _build(
        worker,
        files,
        output,
        config,
        jobs,
        progress,
        "groove",
        "file",
        sources,
        False,
        rule_text="Drums non-empty",
    )


def _dataset_folder(path: str | Path, name: str) -> Path:
    """``path`` itself, or ``path/name`` when given the folder that holds all the datasets."""
    path = Path(path)
    if not path.is_dir():
        raise DataFileError(f"{path}: no such folder; give the {name} folder of ../shared/data")
    return path / name if (path / name).is_dir() else path


def _build(
    worker,
    tasks,
    output,
    config: CollectConfig,
    jobs: int,
    progress: bool,
    desc: str,
    unit: str,
    sources: str,
    style_column: bool,
    rule_text: str | None = None,
) -> CollectSummary:
    started = time.perf_counter()
    sink = PhraseSink()
    interrupted = run_tasks(worker, tasks, sink, jobs=jobs, progress=progress, desc=desc, unit=unit)
    paths = sink.write(output, style_column=style_column)
    sources_path = paths[0].with_suffix("").with_name(paths[0].stem + ".SOURCES.md")
    sources_path.write_text(sources)
    return sink.summary(
        paths,
        items_found=len(tasks),
        hop_bars=config.hop_bars,
        rule=rule_text or config.keep_rule().describe(),
        interrupted=interrupted,
        elapsed_seconds=time.perf_counter() - started,
    )


def _sources_text(title: str, root: Path, licence: str, files: list[str], note: str) -> str:
    lines = [
        f"# Sources of this corpus\n\n## {title}\n",
        f"- read from `{root}`",
        f"- licence: {licence}; licence and credit files: "
        + ", ".join(f"`{root / f}`" for f in files),
        f"- {note}\n",
    ]
    for name in files:
        path = root / name
        if path.is_file():
            lines.append(f"### {name}\n\n```\n{path.read_text(errors='replace').strip()}\n```\n")
    return "\n".join(lines)


def _sources_pop909(root: Path, styles: list[str], seed: int) -> str:
    text = _sources_text(
        "POP909 (Wang, Chen, Jiang, Zhang, Xu, Dai, Bin, Xia: 'POP909: A Pop-song Dataset for "
        "Music Arrangement Generation', ISMIR 2020)",
        root,
        "MIT",
        ["LICENSE"],
        "Piano track: each song's PIANO part; chords (chord_midi.txt) and beats "
        "(beat_midi.txt) drive the accompaniment.",
    )
    return text + (
        "\n## Accompaniment renders\n\nDrums, guitar, bass and strings were rendered from "
        "POP909's chord labels by MMA (Musical MIDI Accompaniment, Bob van der Poel, GPL-2; "
        f"https://www.mellowood.ca/mma/) with its standard-library groove styles "
        f"{', '.join(styles)} (seed {seed}). MMA's own piano parts were dropped.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """The ``python -m training.corpus`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m training.corpus", description="build the default corpus from ../shared/data"
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    for name in ("pop909", "freedoom", "groove"):
        p = sub.add_parser(name, help=f"phrases from the {name} folder")
        p.add_argument("path", help=f"the {name} folder (or the data folder holding it)")
        p.add_argument("-o", "--output", required=True, help="output .npz (LPD-5 sparse)")
        p.add_argument("--split", choices=("train", "val"), default="train")
        p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
        p.add_argument("--hop-bars", type=int, help="bars between phrase starts")
        p.add_argument("--config", default=str(DEFAULT_CONFIG), help="collect config YAML")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        if name != "groove":
            p.add_argument("--condition-track", help="track a kept phrase must have, or 'none'")
            p.add_argument("--min-other-tracks", type=int, help="other non-empty tracks needed")
        if name == "pop909":
            p.add_argument("--styles", type=int, default=2, help="groove styles per song")
            p.add_argument("--seed", type=int, default=0, help="seed of styles and MMA variations")
            p.add_argument("--limit-songs", type=int, help="only the first M songs of the split")
            p.add_argument("--mma-config", default=str(mma.DEFAULT_MMA_CONFIG))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not Path(args.path).is_dir():
        print(
            f"skipped: {args.path} does not exist; the {args.dataset} corpus needs the "
            f"{args.dataset} folder of ../shared/data (see its README.md)",
            file=sys.stderr,
        )
        return 0
    try:
        config = load_collect_config(
            args.config,
            hop_bars=args.hop_bars,
            condition_track=getattr(args, "condition_track", None),
            min_other_tracks=getattr(args, "min_other_tracks", None),
        )
        common = dict(split=args.split, jobs=args.jobs, config=config, progress=not args.quiet)
        if args.dataset == "pop909":
            if args.styles < 1:
                raise ConfigError("--styles must be >= 1")
            summary = build_pop909(
                args.path,
                args.output,
                n_styles=args.styles,
                seed=args.seed,
                limit_songs=args.limit_songs,
                mma_config=mma.load_mma_config(args.mma_config),
                **common,
            )
        elif args.dataset == "freedoom":
            summary = build_freedoom(args.path, args.output, **common)
        else:
            summary = build_groove(args.path, args.output, **common)
    except MuseganLiveError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(summary.format("songs" if args.dataset == "pop909" else "files"))
    return 130 if summary.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
