"""``musegan-live``: the console script.

    musegan-live --in Keyboard --out DAW [options]     run the live daemon
    musegan-live ports [--backend jack]                list MIDI ports
    musegan-live play song.mid [--out DAW] [--record take.mid]   the daemon, a file as the player
    musegan-live accompany song.mid -o out.mid [--png out.png] [--wav out.wav] [--as-live]
    musegan-live generate -n 8 -o out/ [--seed N]
    musegan-live interpolate -o out/ [--rows 4 --cols 4 --corners 2 --mode slerp]

Every key of ``configs/live.yaml`` is an option (``clock.bpm`` -> ``--clock-bpm``,
``tracks.Bass.channel`` -> ``--bass-channel``), given before or after the subcommand;
``--config FILE`` reads a YAML file first and the options win over it. Any ``MuseganLiveError``
becomes one line ``musegan-live: error: ...`` on stderr and the error's exit code;
Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from musegan_live.config.live import LiveConfig, load_config
from musegan_live.config.options import OPTIONS
from musegan_live.errors import MuseganLiveError

PROG = "musegan-live"
ASSUME_4_4_HELP = ("read the file as 4/4 whatever its time-signature events say (bars of four "
                   "beats from the first signature; POP909's files mark 1/4 or 2/4)")

#: Short spellings for the options people type most, besides the generated ``--section-key``.
ALIASES: dict[str, tuple[str, ...]] = {
    "model_dir": ("--model",),
    "input.port": ("--in",),
    "output.port": ("--out",),
    "input.channel": ("--channel",),
    "input.track": ("--track",),
    "input.thru": ("--thru",),
    "clock.source": ("--clock",),
    "clock.bpm": ("--bpm",),
    "clock.send_clock": ("--send-clock",),
    "clock.loss_timeout_seconds": ("--clock-loss-timeout",),
    "output.ports": ("--ports",),
    "verbose": ("-v",),
}


def _config_options() -> argparse.ArgumentParser:
    """A parent parser with one option per configuration key (defaults suppressed, so only
    what the user typed overrides the file)."""
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = parent.add_argument_group("configuration (see configs/live.yaml)")
    group.add_argument("--config", metavar="FILE", help="read options from this YAML file first")
    for key, option in OPTIONS.items():
        flags = (option.flag, *ALIASES.get(key, ()))
        if option.kind == "bool":
            long_flags = [f for f in flags if f.startswith("--")]
            group.add_argument(
                *long_flags, dest=key, action=argparse.BooleanOptionalAction, help=option.help
            )
            short = [f for f in flags if not f.startswith("--")]
            if short:
                group.add_argument(*short, dest=key, action="store_true", help=argparse.SUPPRESS)
            continue
        metavar = "|".join(option.choices) if option.choices else option.kind.upper()
        group.add_argument(*flags, dest=key, metavar=metavar, help=option.help)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: daemon options at the top, one subparser per job."""
    options = _config_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[options],
        description="Real-time MIDI accompaniment: play one track, hear the other four.",
        epilog="Without a command, runs the live daemon (e.g. musegan-live --in Keyboard "
        "--out DAW).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ports = commands.add_parser("ports", parents=[options], help="list MIDI ports")
    ports.set_defaults(command="ports")

    play = commands.add_parser(
        "play", parents=[options],
        help="run the daemon with a MIDI file's part as the player (hear it with no keyboard)",
        description="Run the daemon with the condition part of a MIDI file (Piano; --track "
        "for another) played into it at its times: on the internal clock at the file's tempo "
        "(--bpm for another) until the file ends, or following an external clock (--clock "
        "external) from the DAW's position. The part is forwarded (thru) so it is heard with "
        "the band; --record FILE writes the take.",
    )
    play.add_argument("song", type=Path, help="MIDI file with the part to play (Piano)")
    play.add_argument("--assume-4-4", action="store_true", help=ASSUME_4_4_HELP)

    acc = commands.add_parser(
        "accompany", parents=[options],
        help="accompany a MIDI file (each phrase hears its whole part; --as-live: as the daemon)",
    )
    acc.add_argument("song", type=Path, help="MIDI file with the condition track (Piano)")
    acc.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    acc.add_argument("--png", type=Path, help="also draw the result into this PNG")
    acc.add_argument("--wav", type=Path,
                     help="also render the result to this WAV with FluidSynth (if installed)")
    acc.add_argument("--as-live", action="store_true",
                     help="play the file through the daemon's engine on a simulated clock: "
                     "each step hears only what came before it")
    acc.add_argument("--assume-4-4", action="store_true", help=ASSUME_4_4_HELP)

    gen = commands.add_parser("generate", parents=[options], help="generate phrases from nothing")
    gen.add_argument("-n", type=int, default=8, help="number of phrases (default 8)")
    gen.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")

    inter = commands.add_parser(
        "interpolate", parents=[options], help="a grid of phrases between latent vectors"
    )
    inter.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    inter.add_argument("--rows", type=int, default=4, help="grid rows (default 4)")
    inter.add_argument("--cols", type=int, default=4, help="grid columns (default 4)")
    inter.add_argument(
        "--corners",
        type=int,
        choices=(2, 4),
        default=2,
        help="2: one vector to another in reading order; 4: one per corner",
    )
    inter.add_argument(
        "--mode", choices=("slerp", "linear"), default="slerp", help="interpolation (default slerp)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        values = vars(args)
        overrides = {key: value for key, value in values.items() if key in OPTIONS}
        config = load_config(values.get("config"), overrides)
        _configure_logging(config.verbose)
        return _run(args, config)
    except MuseganLiveError as err:
        message = " ".join(str(err).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def _configure_logging(verbose: bool) -> None:
    """This package's messages at INFO (DEBUG with --verbose); other libraries' warnings only."""
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    logging.getLogger("musegan_live").setLevel(logging.DEBUG if verbose else logging.INFO)


def _run(args: argparse.Namespace, config: LiveConfig) -> int:
    command = getattr(args, "command", None)
    if command is None:
        from musegan_live.daemon.run import run_daemon

        return run_daemon(config)
    if command == "play":
        return _play(args, config)
    if command == "ports":
        from musegan_live.ports.backends import describe_ports

        print(describe_ports(config.backend))
        return 0

    from musegan_live import offline

    seed = config.seed if config.seed is not None else 0
    if command == "accompany":
        if args.wav is not None:  # before the work: a missing synth says so at once
            from musegan_live.files.audio_render import find_soundfont, fluidsynth_program

            fluidsynth_program()
            find_soundfont()
        result = offline.accompany(args.song, args.output, png=args.png, seed=seed, config=config,
                                   as_live=args.as_live, assume_4_4=args.assume_4_4)
        notes = ", ".join(f"{name} {count}" for name, count in result.notes.items())
        print(
            f"wrote {result.out_mid} ({result.n_bars} bars at {result.tempo_bpm:.1f} BPM; "
            f"notes: {notes})" + (f" and {result.png}" if result.png else "")
        )
        if args.wav is not None:
            from musegan_live.files.audio_render import render_wav

            print(f"wrote {render_wav(result.out_mid, args.wav)}")
        return 0
    if command == "generate":
        written = offline.generate(args.output, n=args.n, seed=seed, config=config)
    else:
        written = offline.interpolate(
            args.output,
            rows=args.rows,
            cols=args.cols,
            corners=args.corners,
            mode=args.mode,
            seed=seed,
            config=config,
        )
    print(f"wrote {len(written)} files to {args.output}")
    return 0


def _play(args: argparse.Namespace, config: LiveConfig) -> int:
    """``musegan-live play``: the daemon with the file's part as the player."""
    import dataclasses

    from musegan_live.daemon.file_part import FilePart
    from musegan_live.daemon.run import run_daemon

    channel = config.input.channel_index or 0
    part = FilePart.from_file(args.song, config.input.track_index, channel=channel,
                              assume_4_4=args.assume_4_4)
    clock = dataclasses.replace(config.clock, sync_start=False)  # the file is the player
    if "clock.bpm" not in vars(args):  # the file's tempo, unless --bpm says otherwise
        bpm_option = OPTIONS["clock.bpm"]
        clock = dataclasses.replace(clock, bpm=min(max(part.tempo_bpm, bpm_option.low),
                                                   bpm_option.high))
    config = config.replace(clock=clock, input=dataclasses.replace(config.input, thru=True))
    logging.getLogger(__name__).info("playing %s", part.describe())
    return run_daemon(config, file_part=part)


if __name__ == "__main__":
    sys.exit(main())
