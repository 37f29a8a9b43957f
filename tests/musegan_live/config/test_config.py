"""LiveConfig: configs/live.yaml, command-line overrides, and the errors a user sees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musegan_live.config.live import default_config, load_config
from musegan_live.config.options import OPTIONS
from musegan_live.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
LIVE_YAML = REPO / "configs" / "live.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_yaml_holds_exactly_the_defaults():
    shipped = load_config(LIVE_YAML)
    assert shipped.replace(source="") == default_config().replace(source="")


def test_shipped_yaml_names_and_comments_every_key():
    lines = LIVE_YAML.read_text(encoding="utf-8").splitlines()
    keys_in_file = set()
    stack: list[tuple[int, str]] = []
    for line in lines:
        match = re.match(r"^( *)([A-Za-z_]+):(.*)$", line)
        if not match:
            continue
        indent, name, rest = len(match[1]), match[2], match[3]
        stack = [(i, n) for i, n in stack if i < indent]
        key = ".".join([n for _, n in stack] + [name])
        if rest.strip():  # a value: must carry a comment
            assert "#" in rest, f"configs/live.yaml: {key} has no comment"
            keys_in_file.add(key)
        else:
            stack.append((indent, name))
    assert keys_in_file == set(OPTIONS)


def test_defaults_follow_general_midi():
    config = default_config()
    channels = {t.name: t.channel for t in config.tracks}
    assert channels["Drums"] == 10
    assert len(set(channels.values())) == 5
    assert config.input.track == "Piano" and config.input.channel is None
    assert config.replan == "beat" and config.intra_op_threads == 1
    assert config.output_tracks == (0, 2, 3, 4)
    assert config.output_ports() == ("musegan-live",)


def test_file_values_are_read(tmp_path):
    path = write(
        tmp_path,
        """
clock: {source: internal, bpm: 96.5, send_clock: true}
input: {channel: 3, thru: yes}
tracks:
  bass: {channel: 7, velocity: 90, latency_ms: -12}
replan: bar
providers: [CUDAExecutionProvider, CPUExecutionProvider]
""",
    )
    config = load_config(path)
    assert config.clock.source == "internal" and config.clock.bpm == 96.5
    assert config.clock.send_clock is True
    assert config.input.channel == 3 and config.input.channel_index == 2
    assert config.input.thru is True
    bass = config.track("Bass")
    assert (bass.channel, bass.velocity, bass.latency_ms) == (7, 90, -12.0)
    assert config.replan == "bar"
    assert config.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert config.source == str(path)


def test_command_line_text_is_parsed_and_wins_over_the_file(tmp_path):
    path = write(tmp_path, "clock:\n  bpm: 90\n")
    config = load_config(
        path,
        {
            "clock.bpm": "140",
            "input.channel": "any",
            "tracks.drums.velocity": "follow",
            "tracks.Guitar.velocity": "64",
            "input.thru": "on",
            "providers": "CPUExecutionProvider",
            "seed": "7",
            "threshold": "0.3",
            "record": "take.mid",
            "model_dir": "null",
        },
    )
    assert config.clock.bpm == 140.0
    assert config.input.channel is None
    assert config.track(0).follows_player
    assert config.track("guitar").velocity == 64
    assert config.input.thru is True
    assert config.providers == ("CPUExecutionProvider",)
    assert config.seed == 7 and config.threshold == 0.3
    assert config.record == Path("take.mid") and config.model_dir is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("clock:\n  bmp: 120\n",
         ["clock.bmp", "did you mean 'bpm'", "bpm, count_in_beats, loss_timeout_seconds"]),
        ("colour: red\n", ["'colour'", "allowed keys", "clock"]),
        ("tracks:\n  Flute: {channel: 5}\n", ["Flute", "Drums, Piano, Guitar, Bass, Strings"]),
        ("tracks:\n  Bass: {chanel: 5}\n", ["tracks.Bass.chanel", "channel"]),
    ],
)
def test_unknown_keys_are_named_with_the_allowed_ones(tmp_path, text, names):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for name in names:
        assert name in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("clock:\n  bpm: fast\n", "clock.bpm", "20..300"),
        ("clock:\n  bpm: 1000\n", "clock.bpm", "20..300"),
        ("backend: midi\n", "backend", "auto, jack, alsa"),
        ("replan: bars\n", "replan", "bar, beat, step"),
        ("input:\n  channel: 17\n", "input.channel", "'any' or a channel 1..16"),
        ("input:\n  track: Flute\n", "input.track", "Drums, Piano, Guitar, Bass, Strings"),
        ("input:\n  thru: maybe\n", "input.thru", "true or false"),
        ("tracks:\n  Bass:\n    velocity: loud\n", "tracks.Bass.velocity", "'follow' or"),
        ("tracks:\n  Bass:\n    program: 128\n", "tracks.Bass.program", "0..127"),
        ("tracks:\n  Bass:\n    channel: 2.5\n", "tracks.Bass.channel", "1..16"),
        ("threshold: 1.0\n", "threshold", "strictly between 0 and 1"),
        ("providers: []\n", "providers", "non-empty list"),
        ("intra_op_threads: 0\n", "intra_op_threads", "1..64"),
        ("verbose: null\n", "verbose", "true or false"),
        ("output:\n  ports: many\n", "output.ports", "single, per_track"),
    ],
)
def test_bad_values_name_key_file_and_allowed_values(tmp_path, text, key, allowed):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: {key} must be" in message
    assert allowed in message
    assert "\n" not in message


def test_bad_command_line_value_names_the_option():
    with pytest.raises(ConfigError) as info:
        load_config(None, {"tracks.Bass.latency_ms": "soon"})
    assert "--bass-latency-ms" in str(info.value)
    assert "tracks.Bass.latency_ms" in str(info.value)
    with pytest.raises(ConfigError, match="unknown option 'clock.bmp'.*did you mean"):
        load_config(None, {"clock.bmp": "120"})


def test_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.yaml")
    syntax = r"not valid YAML at line \d+, column \d+: .*fix the syntax"
    with pytest.raises(ConfigError, match=syntax):
        load_config(write(tmp_path, "clock:\n  bpm: [120\n"))
    with pytest.raises(ConfigError, match="must hold a mapping of options, not a list"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="clock must be a mapping"):
        load_config(write(tmp_path, "clock: 120\n"))
    assert load_config(write(tmp_path, "# nothing set\n")).replace(source="") == (
        default_config().replace(source="")
    )


def test_output_channels_must_not_collide_on_one_port(tmp_path):
    with pytest.raises(ConfigError, match="Guitar.channel and tracks.Bass.channel are both 2"):
        load_config(None, {"tracks.Bass.channel": "2"})
    # The player's track does not sound unless thru is on ...
    load_config(None, {"tracks.Piano.channel": "2"})
    with pytest.raises(ConfigError, match="Piano.channel .* both 2"):
        load_config(None, {"tracks.Piano.channel": "2", "input.thru": "true"})
    # ... and with one port per track, channels may repeat.
    config = load_config(None, {"tracks.Bass.channel": "2", "output.ports": "per_track"})
    assert config.track("Bass").channel == config.track("Guitar").channel


def test_per_track_ports_layout():
    config = load_config(
        None, {"output.ports": "per_track", "output.port": "Band", "input.thru": "true"}
    )
    assert config.output_ports() == (
        "Band Drums",
        "Band Guitar",
        "Band Bass",
        "Band Strings",
        "Band Piano",
    )
    assert [config.port_index_of(t) for t in (0, 2, 3, 4, 1)] == [0, 1, 2, 3, 4]
    single = default_config()
    assert {single.port_index_of(t) for t in (0, 2, 3, 4)} == {0}


def test_cli_flag_names_cover_every_key_once():
    flags = [option.flag for option in OPTIONS.values()]
    assert len(flags) == len(set(flags))
    assert OPTIONS["clock.bpm"].flag == "--clock-bpm"
    assert OPTIONS["tracks.Bass.latency_ms"].flag == "--bass-latency-ms"
