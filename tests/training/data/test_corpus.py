"""training.corpus and training.data.mma: charts, splits, corpora from code-made fake datasets."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from musegan_live.errors import ConfigError, MidiFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.representation import BASS, DRUMS, LOWEST_PITCH, PIANO, load_sparse_npz
from tests.training.data.test_collect import make_song
from training import corpus
from training.collect import CollectConfig
from training.data import mma

needs_mma = pytest.mark.skipif(shutil.which("mma") is None,
                               reason="MMA is not installed (Debian: apt-get install mma)")
SECONDS_PER_BEAT = 0.5  # the fake songs play at 120 bpm
TICKS_PER_BEAT = 480
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


# --- chord labels and charts (no MMA needed) --------------------------------------------------
@pytest.mark.parametrize("label, name", [
    ("C:maj", "C"), ("A:min7", "Am7"), ("C:maj/3", "C/E"), ("Bb:min/b3", "Bbm/Db"),
    ("F#:sus4(b7)", "F#7sus4"), ("Eb:hdim7", "Ebm7b5"), ("G:7/b7", "G7/F"), ("D:maj6", "D6"),
    ("C#:minmaj7", "C#mM7"), ("Ab:maj7/7", "Abmaj7/G"), ("N", None),
])
def test_chord_labels_become_mma_names(label: str, name: str | None) -> None:
    assert mma.mma_chord_name(label) == name


def test_bad_chord_root_is_refused() -> None:
    with pytest.raises(ValueError, match="no root"):
        mma.mma_chord_name("H:maj")


def test_chords_follow_the_labels_beat_by_beat() -> None:
    spans = [mma.ChordSpan(0.0, 1.0, "C:maj"), mma.ChordSpan(1.0, 2.1, "A:min"),
             mma.ChordSpan(2.1, 4.0, "N")]
    grid = np.array([[0.0, 0.5, 1.0, 1.5, 2.0], [2.0, 2.5, 3.0, 3.5, 4.0]])
    bars = mma.chords_per_beat(spans, grid)
    assert bars == [["C", "C", "Am", "Am"], [None, None, None, None]]
    text = mma.chart_text(bars, groove="8BeatSus", tempo_bpm=120, seed=3)
    assert text.splitlines()[1:] == ["RndSeed 3", "Tempo 120.00", "Groove 8BeatSus",
                                     "1 C / Am /", "2 z / / /"]


def test_segments_split_at_bars_that_are_not_four_beats() -> None:
    beats, downbeats = _beats_of(FIRST_SONG)
    segments = corpus.four_four_segments(beats, downbeats)
    assert segments == [corpus.Segment(0, 1, 8), corpus.Segment(9, 35, 4)]
    waltz_beats = [0.5 * i for i in range(40)]
    with pytest.raises(MidiFileError, match="not a 4/4 song") as err:
        corpus.four_four_segments(waltz_beats, waltz_beats[::3])
    assert err.value.reason == "not_4_4"


def test_splits_and_styles_are_deterministic() -> None:
    ids = [f"{i:03d}" for i in range(1, 2001)]
    held = [i for i in ids if corpus.in_holdout(i, 5)]
    assert 60 <= len(held) <= 140  # ~5 %
    assert held == [i for i in ids if corpus.in_holdout(i, 5)]
    styles = ("a", "b", "c", "d", "e")
    picks = corpus.choose_styles("007", styles, 2, seed=1)
    assert picks == corpus.choose_styles("007", styles, 2, seed=1) and len(set(picks)) == 2
    assert len({tuple(corpus.choose_styles(i, styles, 2, seed=1)) for i in ids[:50]}) > 3


def test_mma_config_rejects_unknown_keys_and_shared_styles(tmp_path: Path) -> None:
    config = mma.load_mma_config()
    assert config.styles and config.val_styles
    assert mma.ProgramRule(0, 7, None) in config.program_map
    bad = tmp_path / "bad.yaml"
    bad.write_text("styles: [A]\nval_styles: [B]\nprogram_map: []\nstyle: C\n")
    with pytest.raises(ConfigError, match="unknown key"):
        mma.load_mma_config(bad)
    bad.write_text("styles: [A, B]\nval_styles: [b]\n")
    with pytest.raises(ConfigError, match="both"):
        mma.load_mma_config(bad)


def test_remap_drops_mapped_programs_but_keeps_drums(tmp_path: Path) -> None:
    src = make_song(tmp_path / "band.mid", 4)  # all five tracks; piano is program 0
    rules = (mma.ProgramRule(0, 7, None), mma.ProgramRule(48, 48, 2))  # strings -> guitar
    ticks_per_beat, first_tick = mma.remap_programs(src, tmp_path / "out.mid", rules)
    assert (ticks_per_beat, first_tick) == (TICKS_PER_BEAT, 0)
    roll = read_midi(tmp_path / "out.mid").roll
    assert roll.any(axis=(0, 1)).tolist() == [True, False, True, True, False]
    assert roll[:, 72 - LOWEST_PITCH, 2].any()  # the strings' pitch now sounds as guitar


# --- fake POP909 ------------------------------------------------------------------------------
#: beats per annotated bar and whether a pickup beat comes first. Song 1: a pickup, 8 bars of
#: 4, one bar of 2, 4 bars of 4; song 2: 8 plain bars.
FIRST_SONG = {"pickup": True, "bars": [4] * 8 + [2] + [4] * 4}
SECOND_SONG = {"pickup": False, "bars": [4] * 8}


def _beats_of(song: dict) -> tuple[list[float], list[float]]:
    beats, downbeats, beat = [], [], 0
    if song["pickup"]:
        beats.append(0.0)
        beat = 1
    for n in song["bars"]:
        downbeats.append(beat * SECONDS_PER_BEAT)
        beats.extend((beat + i) * SECONDS_PER_BEAT for i in range(n))
        beat += n
    beats.append(beat * SECONDS_PER_BEAT)  # the end of the last bar
    return beats, downbeats


def _chord(bar: int) -> str:
    return "C:maj" if bar % 2 == 0 else "G:maj"


def make_pop909_song(root: Path, song_id: str, song: dict) -> Path:
    """NNN/NNN.mid (MELODY, BRIDGE, PIANO; all program 0), beat_midi.txt, chord_midi.txt.

    The piano plays pitch 48 + bar for the first two beats of each annotated bar; the melody
    plays pitch 96, which must never reach the Piano track.
    """
    folder = root / song_id
    folder.mkdir(parents=True)
    beats, downbeats = _beats_of(song)
    with open(folder / "beat_midi.txt", "w") as f:
        for i, t in enumerate(beats):
            f.write(f"{t} {float(i % 2 == 0)} {float(t in downbeats)}\n")
    with open(folder / "chord_midi.txt", "w") as f:
        ends = downbeats[1:] + [beats[-1]]
        f.write(f"0.0\t{downbeats[0]}\tN\n")
        for bar, (start, end) in enumerate(zip(downbeats, ends, strict=True)):
            f.write(f"{start}\t{end}\t{_chord(bar)}\n")
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500000),
        mido.MetaMessage("time_signature", numerator=2, denominator=4),  # wrong, as in POP909
    ]))
    for channel, name in enumerate(("MELODY", "BRIDGE", "PIANO")):
        events = [mido.MetaMessage("track_name", name=name),
                  mido.Message("program_change", channel=channel, program=0)]
        now = 0
        for bar, start_seconds in enumerate(downbeats):
            start = round(start_seconds / SECONDS_PER_BEAT * TICKS_PER_BEAT)
            pitch = {"MELODY": 96, "BRIDGE": 90, "PIANO": 48 + bar}[name]
            events.append(mido.Message("note_on", channel=channel, note=pitch, velocity=80,
                                       time=start - now))
            events.append(mido.Message("note_off", channel=channel, note=pitch,
                                       time=2 * TICKS_PER_BEAT))
            now = start + 2 * TICKS_PER_BEAT
        midi.tracks.append(mido.MidiTrack(events))
    midi.save(folder / f"{song_id}.mid")
    return folder


def _song_ids(n_train: int, n_val: int) -> tuple[list[str], list[str]]:
    ids = [f"{i:03d}" for i in range(1, 500)]
    return ([i for i in ids if not corpus.in_holdout(i, corpus.POP909_VAL_PERCENT)][:n_train],
            [i for i in ids if corpus.in_holdout(i, corpus.POP909_VAL_PERCENT)][:n_val])


@needs_mma
def test_pop909_band_keeps_the_real_piano_on_the_annotated_bars(tmp_path: Path) -> None:
    (first, second), (held_out,) = _song_ids(2, 1)
    root = tmp_path / "pop909"
    make_pop909_song(root, first, FIRST_SONG)
    make_pop909_song(root, second, SECOND_SONG)
    make_pop909_song(root, held_out, SECOND_SONG)
    config = mma.load_mma_config()
    one_style = mma.MmaConfig(styles=config.styles[:1], val_styles=config.val_styles[:1],
                              program_map=config.program_map)
    out = tmp_path / "pop.npz"
    summary = corpus.build_pop909(root, out, n_styles=1, seed=0, jobs=1, progress=False,
                                  config=CollectConfig(), mma_config=one_style)
    assert (summary.items_found, summary.items_kept, summary.n_phrases) == (2, 2, 3 + 2)
    with open(summary.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(Path(r["source"]).parent.name, int(r["first_bar"])) for r in rows] == [
        (first, 0), (first, 4), (first, 9), (second, 0), (second, 4)]
    assert {r["style"] for r in rows} == {config.styles[0]}
    data = load_sparse_npz(out).dense()
    assert data.any(axis=(1, 2, 3)).all(), "every phrase has all five tracks"
    for phrase, row in zip(data, rows, strict=True):
        for bar in range(4):
            annotated_bar = int(row["first_bar"]) + bar
            expected = np.zeros((48, 84), dtype=bool)
            expected[:24, 48 + annotated_bar - LOWEST_PITCH] = True  # two beats, 12 steps each
            assert np.array_equal(phrase[bar, :, :, PIANO], expected), (row, bar)
            # the band plays the chart's chord of this annotated bar: the bass sits on its tones
            bass_pitches = np.flatnonzero(phrase[bar, :, :, BASS].any(axis=0)) + LOWEST_PITCH
            root_pc = PITCH_CLASS[_chord(annotated_bar)[0]]
            tones = {root_pc, (root_pc + 4) % 12, (root_pc + 7) % 12}
            assert len(bass_pitches) and set((bass_pitches % 12).tolist()) <= tones
    assert "MIT" in (tmp_path / "pop.SOURCES.md").read_text()

    val = corpus.build_pop909(root, tmp_path / "val.npz", n_styles=1, split="val", jobs=1,
                              progress=False, config=CollectConfig(), mma_config=one_style)
    with open(val.manifest, newline="") as f:
        val_rows = list(csv.DictReader(f))
    assert {(Path(r["source"]).parent.name, r["style"]) for r in val_rows} == {
        (held_out, config.val_styles[0])}


@needs_mma
def test_pop909_song_without_piano_track_is_skipped_with_its_reason(tmp_path: Path) -> None:
    (song_id,), _ = _song_ids(1, 0)
    folder = make_pop909_song(tmp_path, song_id, SECOND_SONG)
    midi = mido.MidiFile(folder / f"{song_id}.mid")
    midi.tracks = [t for t in midi.tracks if t.name != "PIANO"]
    midi.save(folder / f"{song_id}.mid")
    config = mma.load_mma_config()
    options = corpus.Pop909Options(0, 4, CollectConfig().keep_rule(), config)
    results = corpus.build_pop909_song(str(folder), list(config.styles[:1]), options)
    assert [(r.reason, r.n_phrases) for r in results] == [("no_usable_tracks", 0)]
    assert "no track named PIANO" in results[0].message


@needs_mma
def test_unknown_groove_stops_the_build_with_a_config_error(tmp_path: Path) -> None:
    ids, _ = _song_ids(2, 0)
    for song_id in ids:
        make_pop909_song(tmp_path / "pop909", song_id, SECOND_SONG)
    config = mma.load_mma_config()
    bad = mma.MmaConfig(styles=("NoSuchGroove",), val_styles=("AlsoMissing",),
                        program_map=config.program_map)
    with pytest.raises(ConfigError, match="does not know this groove"):
        corpus.build_pop909(tmp_path, tmp_path / "x.npz", n_styles=1, jobs=2, progress=False,
                            mma_config=bad)


def test_freedoom_split_holds_out_files_by_name(tmp_path: Path) -> None:
    names = [f"d_map{i:02d}.mid" for i in range(40)]
    held = [n for n in names if corpus.in_holdout(n, corpus.FREEDOOM_VAL_PERCENT)]
    assert held, "the fake folder needs at least one held-out file"
    for name in names[:8] + held[:1]:
        make_song(tmp_path / "freedoom" / name, 4)
    sizes = {}
    sources = {}
    for split in ("train", "val"):
        summary = corpus.build_freedoom(tmp_path, tmp_path / f"{split}.npz", split=split, jobs=1,
                                        progress=False)
        with open(summary.manifest, newline="") as f:
            sources[split] = {Path(r["source"]).name for r in csv.DictReader(f)}
        sizes[split] = summary.items_found
        assert "BSD-3-Clause" in (tmp_path / f"{split}.SOURCES.md").read_text()
    assert sources["val"] == {held[0]}
    assert sources["train"] == set(names[:8]) - {held[0]}
    assert sizes["train"] + sizes["val"] == len(set(names[:8] + held[:1]))


def test_groove_gives_drum_only_phrases_of_4_4_files(tmp_path: Path) -> None:
    root = tmp_path / "groove"
    rows = [("d1/1_rock_120_beat_4-4.mid", "4-4", "train"),
            ("d1/2_funk_100_beat_4-4.mid", "4-4", "validation"),
            ("d1/3_waltz_90_beat_3-4.mid", "3-4", "train")]
    root.mkdir()
    with open(root / "info.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["drummer", "midi_filename", "time_signature", "split"])
        for name, meter, split in rows:
            writer.writerow(["d1", name, meter, split])
            make_song(root / name, 8, {DRUMS: range(8)}, numerator=3 if meter == "3-4" else 4)
    summary = corpus.build_groove(root, tmp_path / "groove.npz", jobs=1, progress=False)
    assert (summary.items_found, summary.n_phrases) == (1, 2)
    tracks = load_sparse_npz(tmp_path / "groove.npz").dense().any(axis=(0, 1, 2, 3))
    assert tracks.tolist() == [True, False, False, False, False]
    val = corpus.build_groove(root, tmp_path / "gval.npz", split="val", jobs=1, progress=False)
    assert (val.items_found, val.n_phrases) == (1, 2)


def test_cli_skips_a_missing_dataset_with_a_message(tmp_path: Path, capsys) -> None:
    code = corpus.main(["pop909", str(tmp_path / "absent"), "-o", str(tmp_path / "x.npz")])
    assert code == 0
    assert "skipped" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
