"""training.collect: MIDI folders -> phrases, summary, manifest, keep rule, determinism."""

from __future__ import annotations

import csv
from pathlib import Path

import mido
import numpy as np
import pytest

import training.collect as collect_module
from musegan_live.errors import ConfigError, DataFileError
from musegan_live.representation import (
    BASS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    PIANO,
    STEPS_PER_BEAT,
    STRINGS,
    load_sparse_npz,
)
from training.collect import (
    CollectConfig,
    KeepRule,
    collect,
    find_midi_files,
    load_collect_config,
    main,
)

TICKS_PER_BEAT = 480
#: (program, channel, pitch) per LPD-5 track, in track order
VOICES = {DRUMS: (0, 9, 36), PIANO: (0, 0, 60), GUITAR: (25, 1, 64), BASS: (33, 2, 40),
          STRINGS: (48, 3, 72)}


def make_song(path: Path, n_bars: int, bars_per_track: dict[int, range] | None = None,
              numerator: int = 4) -> Path:
    """A type-1 MIDI file: one track per LPD-5 instrument playing a note on every beat of the
    bars listed for it (default: every track in every bar); pitch = base + bar number."""
    bars_per_track = bars_per_track or {t: range(n_bars) for t in VOICES}
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                           mido.MetaMessage("time_signature", numerator=numerator, denominator=4)])
    midi.tracks.append(meta)
    for track, bars in bars_per_track.items():
        program, channel, base = VOICES[track]
        events = [mido.Message("program_change", channel=channel, program=program, time=0)]
        now = 0
        for bar in bars:
            for beat in range(numerator):
                start = (bar * numerator + beat) * TICKS_PER_BEAT
                pitch = base if track == DRUMS else base + bar
                events.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90,
                                           time=start - now))
                events.append(mido.Message("note_off", channel=channel, note=pitch,
                                           time=TICKS_PER_BEAT // 2))
                now = start + TICKS_PER_BEAT // 2
        midi.tracks.append(mido.MidiTrack(events))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """good (8 bars, 5 tracks), nested .MID copy with no piano, 3/4, corrupt, empty, 2-bar."""
    root = tmp_path / "midi"
    make_song(root / "a_good.mid", 8)
    no_piano = {t: range(8) for t in (DRUMS, BASS)}
    make_song(root / "sub" / "B_NOPIANO.MID", 8, no_piano)
    make_song(root / "c_waltz.midi", 8, numerator=3)
    (root / "d_corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage, not a MIDI file")
    empty = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    empty.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    empty.save(root / "e_empty.mid")
    make_song(root / "f_short.mid", 2)
    (root / "notes.txt").write_text("not MIDI, not read")
    return root


def _manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_summary_counts_every_skip_reason(midi_folder: Path, tmp_path: Path) -> None:
    summary = collect([midi_folder], tmp_path / "out" / "train.npz", jobs=1, progress=False)
    assert summary.items_found == 6
    assert summary.items_kept == 1
    assert summary.skipped == {"corrupt": 1, "not_4_4": 1, "too_short": 1,
                               "no_usable_tracks": 0, "empty": 1, "no_phrase_kept": 1}
    assert summary.n_phrases == 2
    assert summary.track_share() == {name: 1.0 for name in summary.track_share()}
    assert not summary.interrupted
    text = summary.format()
    assert "not_4_4 1" in text and "phrases 2" in text

    log_lines = summary.log.read_text().splitlines()
    reasons = {line.split("\t")[1].rsplit("/", 1)[-1]: line.split("\t")[0] for line in log_lines}
    assert reasons == {"B_NOPIANO.MID": "no_phrase_kept", "c_waltz.midi": "not_4_4",
                       "d_corrupt.mid": "corrupt", "e_empty.mid": "empty",
                       "f_short.mid": "too_short"}


def test_output_npz_and_manifest_hold_the_phrases(midi_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.npz"
    summary = collect([midi_folder], out, jobs=1, progress=False)
    assert summary.manifest == tmp_path / "train.manifest.csv"
    data = load_sparse_npz(out)
    assert data.shape == (2, 4, 48, 84, 5)
    rows = _manifest(summary.manifest)
    assert [(r["phrase_index"], Path(r["source"]).name, r["first_bar"]) for r in rows] == [
        ("0", "a_good.mid", "0"), ("1", "a_good.mid", "4")]
    dense = data.dense()
    # bar b of the song plays piano pitch 60 + b on every beat, half a beat long
    for phrase, first_bar in ((0, 0), (1, 4)):
        for bar in range(4):
            piano = dense[phrase, bar, :, :, PIANO]
            pitch = 60 + first_bar + bar - LOWEST_PITCH
            assert piano[:, pitch].sum() == 4 * STEPS_PER_BEAT // 2
            assert piano.sum() == piano[:, pitch].sum()
            assert piano[0, pitch] and not piano[STEPS_PER_BEAT // 2, pitch]


def test_keep_rule_is_honoured(tmp_path: Path) -> None:
    # piano in all 8 bars; drums only in bars 4-7: phrase 0 is piano alone
    make_song(tmp_path / "in" / "song.mid", 8, {PIANO: range(8), DRUMS: range(4, 8)})

    def first_bars(**config: object) -> list[int]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.npz"
        summary = collect([tmp_path / "in"], out, config=load_collect_config(None, **config),
                          jobs=1, progress=False)
        return [int(r["first_bar"]) for r in _manifest(summary.manifest)]

    assert first_bars(min_other_tracks=1) == [4]
    assert first_bars(min_other_tracks=0) == [0, 4]
    assert first_bars(condition_track="Drums", min_other_tracks=0) == [4]
    assert first_bars(condition_track="none", min_other_tracks=2) == [4]
    assert first_bars(condition_track="none", min_other_tracks=0) == [0, 4]
    assert first_bars(condition_track="Bass", min_other_tracks=0) == []
    assert first_bars(hop_bars=1, min_other_tracks=0) == [0, 1, 2, 3, 4]


def test_keep_rule_counts_tracks() -> None:
    nonempty = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [1, 0, 1, 1, 1]], dtype=bool)
    assert KeepRule(PIANO, 1).keep(nonempty).tolist() == [True, True, False]
    assert KeepRule(PIANO, 2).keep(nonempty).tolist() == [False, True, False]
    assert KeepRule(None, 4).keep(nonempty).tolist() == [False, False, True]


def test_two_jobs_give_the_same_output_as_one(midi_folder: Path, tmp_path: Path) -> None:
    make_song(midi_folder / "z_more.mid", 12)
    config = CollectConfig(hop_bars=2)
    one = collect([midi_folder], tmp_path / "one.npz", config=config, jobs=1, progress=False)
    two = collect([midi_folder], tmp_path / "two.npz", config=config, jobs=2, progress=False)
    assert one.n_phrases == two.n_phrases == 3 + 5
    with np.load(one.output) as a, np.load(two.output) as b:
        assert np.array_equal(a["shape"], b["shape"]) and np.array_equal(a["nonzero"], b["nonzero"])
    assert one.manifest.read_text() == two.manifest.read_text()
    assert one.log.read_text() == two.log.read_text()


def test_ctrl_c_keeps_what_was_collected(midi_folder: Path, tmp_path: Path, monkeypatch,
                                         capsys) -> None:
    real = collect_module.read_file_result
    seen: list[str] = []

    def interrupted_after_two(path: str, **kwargs):
        if len(seen) == 2:
            raise KeyboardInterrupt
        seen.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(collect_module, "read_file_result", interrupted_after_two)
    out = tmp_path / "partial.npz"
    code = main([str(midi_folder), "-o", str(out), "--jobs", "1", "--quiet"])
    assert code == 130
    assert "INTERRUPTED" in capsys.readouterr().out
    assert len(load_sparse_npz(out)) == 2  # a_good.mid was read before the interrupt
    assert len(_manifest(tmp_path / "partial.manifest.csv")) == 2


def test_cli_prints_summary_and_honours_options(midi_folder: Path, tmp_path: Path,
                                                capsys) -> None:
    out = tmp_path / "cli.npz"
    log = tmp_path / "logs" / "skipped.log"
    code = main([str(midi_folder), "-o", str(out), "--jobs", "1", "--hop-bars", "2",
                 "--condition-track", "none", "--min-other-tracks", "0", "--log", str(log),
                 "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "files found 6" in printed and "keep: >= 1 non-empty track(s)" in printed
    assert len(load_sparse_npz(out)) == 3 + 3  # a_good and B_NOPIANO, hop 2
    assert "corrupt" in log.read_text()


def test_cli_reports_bad_config_in_one_line(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("hop_bars: 4\nhop_bar: 2\n")
    code = main([str(tmp_path), "-o", str(tmp_path / "x.npz"), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code
    assert "unknown key(s) hop_bar" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("config, message", [
    ({"hop_bars": 0}, "hop_bars"),
    ({"min_other_tracks": 5}, "min_other_tracks"),
    ({"condition_track": "Flute"}, "condition_track"),
    ({"extensions": "mid"}, "extensions"),
])
def test_bad_config_values_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_collect_config(None, **config)


def test_shipped_config_loads() -> None:
    config = load_collect_config()
    assert config.hop_bars == 4 and config.keep_rule() == KeepRule(PIANO, 1)


def test_find_midi_files_recurses_any_case_and_rejects_missing(midi_folder: Path) -> None:
    names = [p.name for p in find_midi_files([midi_folder, midi_folder / "a_good.mid"])]
    assert names == ["a_good.mid", "c_waltz.midi", "d_corrupt.mid", "e_empty.mid",
                     "f_short.mid", "B_NOPIANO.MID"]
    with pytest.raises(DataFileError, match="no such file or folder"):
        find_midi_files([midi_folder / "nope"])
