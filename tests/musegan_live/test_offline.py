"""Offline jobs: accompany (the live Session on a simulated clock), generate, interpolate."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from musegan_live.config.live import load_config
from musegan_live.errors import ConfigError, MidiFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.offline import (
    accompany,
    generate,
    interpolate,
    latent_grid,
    slerp,
)
from musegan_live.representation import (
    BASS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    PIANO,
    STEPS_PER_BAR,
    STRINGS,
    TRACK_NAMES,
)
from tests.midi_fixtures import Part, write_fixture_midi
from tests.musegan_live.fakes import KICK, RuleAccompanist, strings_pitch


def piano_song(tmp_path, name="song.mid", bpm=100.0):
    """Four bars: C held through bars 1-2, then E for bars 3-4, at ``bpm``."""
    notes = [(60, 0, 8, 70), (64, 8, 16, 70)]
    return write_fixture_midi(
        tmp_path / name,
        [Part(program=0, notes=notes)],
        tempo_changes=[(0, bpm)],
        time_signatures=[(0, 4, 4)],
    )


def steps_of(roll, pitch, track):
    return np.flatnonzero(roll[:, pitch - LOWEST_PITCH, track]).tolist()


def test_accompany_plays_the_file_through_the_live_session(tmp_path):
    song = piano_song(tmp_path)
    out = tmp_path / "out.mid"
    result = accompany(song, out, png=tmp_path / "out.png", accompanist=RuleAccompanist(), seed=2,
                       as_live=True)
    back = read_midi(out)
    assert back.roll.shape == (4 * STEPS_PER_BAR, 84, 5)
    assert back.tempo_bpm == pytest.approx(100.0)
    original = read_midi(song)
    assert np.array_equal(back.roll[:, :, PIANO], original.roll[:, :, PIANO])
    # as live: the guitar copies what was heard, from the step after it was heard
    assert steps_of(back.roll, 60, GUITAR) == list(range(1, 96 + 1))
    assert steps_of(back.roll, 64, GUITAR) == list(range(96 + 1, 192))
    assert steps_of(back.roll, 48, BASS)[0] == 1
    kicks = steps_of(back.roll, KICK, DRUMS)
    assert [s for s in kicks if s % 12 == 0] == list(range(0, 192, 12))
    assert len(set(np.flatnonzero(back.roll[:, :, STRINGS].any(axis=0)))) == 1
    assert (tmp_path / "out.png").stat().st_size > 1000
    assert result.n_bars == 4 and result.late_plans == 0
    assert result.notes["Piano"] == 2 and result.notes["Drums"] == 16


def test_accompany_hears_each_whole_phrase_by_default(tmp_path):
    """MuseGAN's setting: the rule model plays the chord of the phrase's last heard step, which
    with the whole phrase known is bar 3's E, from the very first step (as live it is C)."""
    song = piano_song(tmp_path)
    result = accompany(song, tmp_path / "out.mid", accompanist=RuleAccompanist(), seed=2)
    back = read_midi(tmp_path / "out.mid")
    assert steps_of(back.roll, 64, GUITAR) == list(range(192))
    assert steps_of(back.roll, 60, GUITAR) == []
    assert result.late_plans == 0 and result.notes["Drums"] == 16


def test_accompany_writes_programs_and_channels_of_the_config(tmp_path):
    song = piano_song(tmp_path)
    out = tmp_path / "out.mid"
    config = load_config(None, {"tracks.Bass.program": "35", "tracks.Bass.velocity": "77"})
    accompany(song, out, accompanist=RuleAccompanist(), config=config)
    programs = {}
    velocities = {}
    for track in mido.MidiFile(out).tracks:
        for message in track:
            if message.type == "program_change":
                programs[track.name] = message.program
            if message.type == "note_on" and message.velocity:
                velocities.setdefault(track.name, set()).add(message.velocity)
    assert programs == {"Drums": 0, "Piano": 0, "Guitar": 25, "Bass": 35, "Strings": 48}
    assert velocities["Bass"] == {77}
    assert velocities["Guitar"] == {70}  # 'follow' takes the player's dynamics


def test_accompany_is_deterministic_for_a_seed(tmp_path):
    song = piano_song(tmp_path)
    runs = []
    for i, seed in enumerate([4, 4, 5]):
        out = tmp_path / f"out{i}.mid"
        accompany(song, out, accompanist=RuleAccompanist(), seed=seed)
        runs.append(read_midi(out).roll)
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])  # the strings follow z


def test_accompany_refuses_a_file_without_the_condition_track(tmp_path):
    song = write_fixture_midi(tmp_path / "bass.mid", [Part(program=33, notes=[(40, 0, 4)])])
    with pytest.raises(MidiFileError, match="no Piano notes to accompany.*Bass.*generate"):
        accompany(song, tmp_path / "out.mid", accompanist=RuleAccompanist())
    assert not (tmp_path / "out.mid").exists()


def test_accompany_with_the_tiny_model(tmp_path, tiny_model_dir, tiny_model_threshold):
    song = piano_song(tmp_path)
    # an untrained model: let notes through
    config = load_config(None, {"threshold": f"{tiny_model_threshold:.6f}"})
    first = accompany(song, tmp_path / "a.mid", model_dir=tiny_model_dir, seed=1, config=config)
    accompany(song, tmp_path / "b.mid", model_dir=tiny_model_dir, seed=1, config=config)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    names = [t.name for t in mido.MidiFile(tmp_path / "a.mid").tracks if t.name]
    assert sorted(names) == sorted(TRACK_NAMES)
    assert all(first.notes[name] > 0 for name in TRACK_NAMES)


def test_generate_writes_what_musegan_users_expect(tmp_path):
    model = RuleAccompanist()
    written = generate(tmp_path / "gen", n=3, seed=9, accompanist=model)
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["generated.npy", "generated.png"]
        + [f"generated_{i:02d}.{ext}" for i in range(3) for ext in ("npz", "mid")]
    )
    phrases = np.load(tmp_path / "gen" / "generated.npy")
    assert phrases.shape == (3, 4, 48, 84, 5) and phrases.dtype == bool
    assert not phrases[..., PIANO].any() and not phrases[..., GUITAR].any()  # nothing heard
    z = model.sample_z(np.random.default_rng(9), 3)
    for i in range(3):
        held = np.flatnonzero(phrases[i, ..., STRINGS].any(axis=(0, 1)))
        assert held.tolist() == [strings_pitch(z[i]) - LOWEST_PITCH]
    # the condition the model saw was empty and entirely unknown
    condition, mask, _ = model.calls[0]
    assert not condition.any() and not mask.any()
    import pypianoroll

    multitrack = pypianoroll.load(tmp_path / "gen" / "generated_01.npz")
    assert multitrack.resolution == 12 and len(multitrack.tracks) == 5
    roll = read_midi(tmp_path / "gen" / "generated_01.mid").roll
    assert np.array_equal(roll[:, :, STRINGS], phrases[1, ..., STRINGS].reshape(-1, 84))


def test_generate_with_the_tiny_model(tmp_path, tiny_model_dir):
    written = generate(tmp_path, n=2, seed=0, model_dir=tiny_model_dir)
    assert len(written) == 2 + 2 * 2
    phrases = np.load(tmp_path / "generated.npy")
    assert phrases.shape == (2, 4, 48, 84, 5) and not phrases[..., PIANO].any()


def test_interpolation_grids(tmp_path):
    model = RuleAccompanist()
    written = interpolate(
        tmp_path, rows=2, cols=3, corners=2, mode="linear", seed=1, accompanist=model
    )
    assert len(written) == 2 + 2 * 6
    z = np.concatenate([call[2] for call in model.calls])
    ends = model.sample_z(np.random.default_rng(1), 2)
    assert np.allclose(z[0], ends[0]) and np.allclose(z[-1], ends[1])
    assert np.allclose(z[1:] - z[:-1], (ends[1] - ends[0]) / 5, atol=1e-6)
    phrases = np.load(tmp_path / "interpolation.npy")
    assert phrases.shape == (6, 4, 48, 84, 5)


def test_latent_grid_corners_and_slerp():
    rng = np.random.default_rng(0)
    corners = rng.standard_normal((4, 16)).astype(np.float32)
    grid = latent_grid(corners, 3, 4, "slerp").reshape(3, 4, 16)
    assert np.allclose(grid[0, 0], corners[0]) and np.allclose(grid[0, -1], corners[1])
    assert np.allclose(grid[-1, 0], corners[2]) and np.allclose(grid[-1, -1], corners[3])
    a, b = corners[0], corners[1] * (np.linalg.norm(corners[0]) / np.linalg.norm(corners[1]))
    middle = slerp(a, b, 0.5)
    assert np.linalg.norm(middle) == pytest.approx(
        np.linalg.norm(a), rel=1e-5
    )  # stays on the sphere
    assert np.allclose(slerp(a, a, 0.3), a)  # parallel vectors: no division by zero
    linear = latent_grid(corners[:2], 1, 3, "linear")
    assert np.allclose(linear[1], (corners[0] + corners[1]) / 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 1, "cols": 1}, "2 or more phrases"),
        ({"corners": 3}, "corners must be 2 or 4"),
        ({"corners": 4, "rows": 1, "cols": 5}, "at least 2x2"),
        ({"mode": "cubic"}, "linear, slerp"),
    ],
)
def test_interpolate_rejects_bad_grids(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        interpolate(tmp_path, accompanist=RuleAccompanist(), **kwargs)


def test_generate_rejects_zero_phrases(tmp_path):
    with pytest.raises(ConfigError, match="n must be at least 1"):
        generate(tmp_path, n=0, accompanist=RuleAccompanist())
