"""The musegan-live command line: subcommands, options -> LiveConfig, one-line errors."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from musegan_live import cli
from musegan_live.config.options import OPTIONS
from musegan_live.files.midi_write import write_midi
from musegan_live.representation import TRACK_NAMES
from tests.midi_fixtures import Part, write_fixture_midi


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("musegan-live: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def daemon_calls(monkeypatch):
    """Replace the daemon by a recorder of the config it was given."""
    import musegan_live.daemon.run

    calls = []

    def fake_run_daemon(config, *, file_part=None):
        calls.append(config)
        fake_run_daemon.file_part = file_part
        return 0

    monkeypatch.setattr(musegan_live.daemon.run, "run_daemon", fake_run_daemon)
    return calls


def test_accompany_writes_four_generated_tracks_and_a_png(
    tmp_path, capsys, tiny_model_dir, tiny_model_threshold
):
    song = write_fixture_midi(
        tmp_path / "song.mid",
        [Part(program=0, notes=[(60 + 2 * i, i, i + 1, 80) for i in range(16)])],
    )
    out, png = tmp_path / "out.mid", tmp_path / "out.png"
    code, stdout, err = run(
        capsys,
        "accompany",
        song,
        "-o",
        out,
        "--png",
        png,
        "--model-dir",
        tiny_model_dir,
        "--threshold",
        f"{tiny_model_threshold:.6f}",
        "--seed",
        "3",
    )
    assert code == 0, err
    assert f"wrote {out}" in stdout and str(png) in stdout
    tracks = {t.name: t for t in mido.MidiFile(out).tracks if t.name}
    assert sorted(tracks) == sorted(TRACK_NAMES)
    channels = {name: {m.channel for m in t if m.type == "note_on"} for name, t in tracks.items()}
    assert channels["Drums"] == {9}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_and_interpolate_with_the_tiny_model(tmp_path, capsys, tiny_model_dir):
    code, stdout, err = run(
        capsys, "generate", "-n", "2", "-o", tmp_path / "gen", "--model", tiny_model_dir
    )
    assert code == 0, err
    assert "wrote 6 files" in stdout
    assert (tmp_path / "gen" / "generated_01.mid").exists()
    code, stdout, err = run(
        capsys,
        "--model-dir",
        tiny_model_dir,
        "interpolate",
        "-o",
        tmp_path / "int",
        "--rows",
        "2",
        "--cols",
        "2",
        "--corners",
        "4",
    )
    assert code == 0, err
    assert "wrote 10 files" in stdout


def test_bad_yaml_is_one_line_and_exit_2(tmp_path, capsys, daemon_calls):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clock:\n  bpm: [120\n")
    code, _, err = run(capsys, "--config", bad)
    assert code == 2
    assert_one_line_error(err, str(bad), "not valid YAML")
    assert daemon_calls == []


def test_unknown_key_is_one_line_and_exit_2(tmp_path, capsys, daemon_calls):
    bad = tmp_path / "live.yaml"
    bad.write_text("clock:\n  bmp: 120\n")
    code, _, err = run(capsys, "--config", bad, "--in", "Keys")
    assert code == 2
    assert_one_line_error(err, "unknown key 'clock.bmp'", "did you mean 'bpm'")


def test_bad_option_value_is_one_line_and_exit_2(capsys, daemon_calls):
    code, _, err = run(capsys, "--bass-channel", "17")
    assert code == 2
    assert_one_line_error(err, "--bass-channel", "tracks.Bass.channel", "1..16")


def test_missing_model_dir_is_one_line(tmp_path, capsys):
    song = write_fixture_midi(tmp_path / "song.mid", [Part(notes=[(60, 0, 4)])])
    code, _, err = run(
        capsys,
        "accompany",
        song,
        "-o",
        tmp_path / "out.mid",
        "--model-dir",
        tmp_path / "no-such-model",
    )
    assert code == 1
    assert_one_line_error(err, "no-such-model")
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.parametrize("damage", ["truncated generator", "mismatched constants"])
def test_broken_model_is_one_line_and_keeps_the_user_files(
    tmp_path, capsys, tiny_model_dir, damage
):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    if damage == "truncated generator":
        data = (model / "generator.onnx").read_bytes()
        (model / "generator.onnx").write_bytes(data[: len(data) // 3])
        expected = "generator.onnx"
    else:  # a model trained for 96 steps per bar must be refused, naming the constant
        card = (model / "model.yaml").read_text()
        (model / "model.yaml").write_text(card.replace("steps_per_bar: 48", "steps_per_bar: 96"))
        expected = "steps_per_bar"
    song = write_fixture_midi(tmp_path / "song.mid", [Part(notes=[(60, 0, 4)])])
    before = song.read_bytes()
    out = tmp_path / "out.mid"
    code, _, err = run(capsys, "accompany", song, "-o", out, "--model-dir", model)
    assert code == 1
    assert_one_line_error(err, expected)
    assert song.read_bytes() == before and not out.exists()


def test_daemon_options_reach_the_config(tmp_path, capsys, daemon_calls):
    config_file = tmp_path / "live.yaml"
    config_file.write_text("clock:\n  bpm: 90\n  source: internal\ninput:\n  thru: true\n")
    code, _, err = run(
        capsys,
        "--config",
        config_file,
        "--in",
        "Keyboard",
        "--out",
        "DAW",
        "--bpm",
        "132",
        "--no-thru",
        "--channel",
        "2",
        "--bass-channel",
        "7",
        "--drums-velocity",
        "110",
        "--strings-latency-ms",
        "-5",
        "--replan",
        "bar",
        "--ports",
        "per_track",
        "--send-clock",
        "--clock-loss-timeout",
        "2",
        "--providers",
        "CPUExecutionProvider",
    )
    assert code == 0, err
    (config,) = daemon_calls
    assert config.input.port == "Keyboard" and config.output.port == "DAW"
    assert config.clock.bpm == 132.0 and config.clock.source == "internal"  # file kept
    assert config.input.thru is False and config.input.channel == 2
    assert config.track("Bass").channel == 7 and config.track("Drums").velocity == 110
    assert config.track("Strings").latency_ms == -5.0
    assert config.replan == "bar" and config.output.per_track
    assert config.clock.send_clock and config.clock.loss_timeout_seconds == 2.0


def test_play_runs_the_daemon_with_the_files_part_at_the_files_tempo(
    tmp_path, capsys, daemon_calls
):
    import musegan_live.daemon.run

    song = tmp_path / "song.mid"
    write_midi(song, np.pad(np.ones((48, 1, 1), bool), ((0, 48), (36, 47), (1, 3))),
               tempo_bpm=96.0)
    code, _, err = run(capsys, "play", song, "--out", "DAW")
    assert code == 0, err
    config = daemon_calls[-1]
    assert config.clock.bpm == pytest.approx(96.0) and not config.clock.sync_start
    assert config.input.thru and config.output.port == "DAW"
    part = musegan_live.daemon.run.run_daemon.file_part
    assert part.n_bars == 1 and part.ons == {0: [(60, 100)]}  # trailing silence is cut
    code, _, err = run(capsys, "play", song, "--bpm", "140")
    assert code == 0 and daemon_calls[-1].clock.bpm == 140.0
    code, _, err = run(capsys, "play", tmp_path / "missing.mid")
    assert code != 0
    assert_one_line_error(err, "missing.mid")


def test_every_config_key_has_a_command_line_option():
    parser = cli.build_parser()
    dests = {action.dest for action in parser._actions}
    assert set(OPTIONS) <= dests
    for option in OPTIONS.values():
        assert option.flag in parser._option_string_actions


def test_ports_lists_through_the_ports_module(monkeypatch, capsys):
    import musegan_live.ports.backends

    seen = []
    monkeypatch.setattr(
        musegan_live.ports.backends,
        "describe_ports",
        lambda backend: seen.append(backend) or "in: Keys\nout: Synth",
    )
    code, stdout, _ = run(capsys, "ports", "--backend", "jack")
    assert code == 0 and seen == ["jack"] and "out: Synth" in stdout


def test_ctrl_c_exits_130_quietly(monkeypatch, capsys):
    import musegan_live.daemon.run

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(musegan_live.daemon.run, "run_daemon", interrupted)
    code, stdout, err = run(capsys)
    assert code == 130 and stdout == "" and err == ""


def test_verbose_turns_on_debug_logging(capsys, daemon_calls):
    package_logger = logging.getLogger("musegan_live")
    level = package_logger.level
    try:
        assert run(capsys, "-v")[0] == 0
        assert package_logger.level == logging.DEBUG and daemon_calls[0].verbose
        assert run(capsys)[0] == 0
        assert package_logger.level == logging.INFO
    finally:
        package_logger.setLevel(level)


def test_the_installed_console_script(tmp_path):
    script = shutil.which("musegan-live", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: 1\n")
    result = subprocess.run(
        [script, "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unknown key 'nonsense'")
