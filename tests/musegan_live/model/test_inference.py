"""``Accompanist`` and ``model_files`` on a tiny exported model (made here by code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import musegan_live.model
from musegan_live.errors import ModelError
from musegan_live.model.decoding import NoteDecoding, decode_notes
from musegan_live.model.inference import Accompanist
from musegan_live.model.model_dir import (
    check_onnx_metadata,
    default_model_dir,
    load_model_card,
)
from musegan_live.representation import PHRASE_SHAPE

torch = pytest.importorskip("torch")  # exporting the test model needs the training extra

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """An untrained tiny model with Guitar as the condition, exported; and its PyTorch net."""
    from training.checkpoint import save_checkpoint
    from training.export import export_model
    from training.model.networks import TrackConditionalGenerator
    from training.train_config import load_config

    cfg = load_config(REPO / "configs" / "train" / "tiny.yaml", ["model.condition_track=Guitar"])
    torch.manual_seed(3)
    net = TrackConditionalGenerator(cfg.model)
    # give batch norm non-trivial running statistics, as training would
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 8), (torch.rand(4, 4, 48, 84) < 0.1).float(), torch.ones(4, 4, 48))
    net.eval()
    work = tmp_path_factory.mktemp("model")
    save_checkpoint(work / "checkpoint.pt",
                    {"generator": net.state_dict(), "config": cfg.to_dict(), "step": 0})
    export_model(work / "checkpoint.pt", work / "guitar")
    return work / "guitar", net


def condition_and_mask(batch: int, seed: int, now_steps: int = 192):
    rng = np.random.default_rng(seed)
    condition = rng.random((batch, 4, 48, 84)) < 0.05
    mask = (np.arange(192) < now_steps).astype(np.float32).reshape(4, 48)
    return condition, np.broadcast_to(mask, (batch, 4, 48)).copy()


def test_accompanist_turns_a_condition_into_four_tracks(exported) -> None:
    model_dir, net = exported
    acc = Accompanist.from_dir(model_dir)
    assert acc.condition_track == 2 and acc.output_tracks == [0, 1, 3, 4]
    assert acc.latent_dim == 8 and acc.card.name == "guitar"
    condition, mask = condition_and_mask(2, seed=0, now_steps=100)
    z = acc.sample_z(np.random.default_rng(1), batch=2)
    assert z.shape == (2, 8) and z.dtype == np.float32
    probs = acc.probabilities(condition, mask, z)
    assert probs.shape == (2, 4, 48, 84, 4) and probs.dtype == np.float32
    with torch.no_grad():
        expected = net(torch.from_numpy(z), torch.from_numpy(condition).float(),
                       torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-4, rtol=0)
    notes = acc.accompany(condition, mask, z)
    assert notes.dtype == bool and np.array_equal(notes, probs >= acc.threshold)
    assert np.array_equal(acc.accompany(condition, mask, z, threshold=1e-9), np.ones_like(notes))
    phrase = acc.full_phrase(condition, notes)
    assert phrase.shape == (2, *PHRASE_SHAPE) and phrase.dtype == bool
    assert np.array_equal(phrase[..., 2], condition)
    assert np.array_equal(phrase[..., [0, 1, 3, 4]], notes)


def test_accompany_decodes_as_model_yaml_says(exported, tmp_path: Path) -> None:
    condition, mask = condition_and_mask(2, seed=4)
    z = Accompanist.from_dir(exported[0]).sample_z(np.random.default_rng(5), batch=2)
    probs = Accompanist.from_dir(exported[0]).probabilities(condition, mask, z)
    # the untrained model's probabilities sit in a narrow band: place the thresholds inside it
    start, hold = (min(float(np.quantile(probs[..., k], q)) for k in range(4)) for q in (0.9, 0.7))
    assert ((probs[..., 2] >= start).sum(axis=-1) >= 2).any()  # Bass chords to thin out
    model_dir = copy_model(exported, tmp_path)
    card_path = model_dir / "model.yaml"
    values = yaml.safe_load(card_path.read_text())
    values["threshold"] = start
    values["decoding"] = {"sustain_threshold": hold, "min_note_steps": {"Strings": 4},
                          "max_voices": {"Drums": 3, "Bass": 1}}
    card_path.write_text(yaml.safe_dump(values))
    notes = Accompanist.from_dir(model_dir).accompany(condition, mask, z)
    expected = decode_notes(probs, [0, 1, 3, 4], NoteDecoding(
        start, hold, {"Strings": 4}, {"Drums": 3, "Bass": 1}))
    assert np.array_equal(notes, expected) and notes.any()
    assert notes[..., 2].sum(axis=-1).max() == 1  # Bass (slot 2 of Drums, Piano, Bass, Strings)
    assert not np.array_equal(notes, probs >= start)


def test_unheard_steps_and_other_batch_members_do_not_matter(exported) -> None:
    acc = Accompanist.from_dir(exported[0], intra_op_threads=2)
    acc.warm_up(runs=1)
    condition, mask = condition_and_mask(3, seed=2, now_steps=60)
    z = acc.sample_z(np.random.default_rng(3), batch=3)
    changed = condition.copy()
    changed[:, 2:] = ~changed[:, 2:]  # bars 3-4 lie after step 60
    batch = acc.probabilities(condition, mask, z)
    np.testing.assert_array_equal(batch, acc.probabilities(changed, mask, z))
    single = acc.probabilities(condition[1:2], mask[1:2], z[1:2])
    np.testing.assert_allclose(batch[1:2], single, atol=1e-6, rtol=0)


def test_a_live_plan_from_the_bar_graphs_is_bar_4_of_the_whole_model(exported, tmp_path) -> None:
    model_dir, _ = exported
    acc = Accompanist.from_dir(model_dir)
    assert acc.card.bar_paths is not None
    condition, mask = condition_and_mask(1, seed=4, now_steps=160)  # bar 4 heard for 16 steps
    z = acc.sample_z(np.random.default_rng(2))
    whole = acc.probabilities(condition, mask, z)[:, -1:]
    np.testing.assert_allclose(acc.last_bar_probabilities(condition, mask, z), whole, atol=1e-5)
    # bars 1-3 again (their summaries are the kept ones now), and bar 1 changed: not the kept one
    np.testing.assert_allclose(acc.last_bar_probabilities(condition, mask, z), whole, atol=1e-5)
    changed = condition.copy()
    changed[0, 0] = ~changed[0, 0]
    np.testing.assert_allclose(acc.last_bar_probabilities(changed, mask, z),
                               acc.probabilities(changed, mask, z)[:, -1:], atol=1e-5)
    # decoded as accompany decodes the phrase, given what sounded before the bar
    before = acc.accompany(condition, mask, z)[0, 2, -1]
    np.testing.assert_array_equal(
        acc.plan_last_bar(condition, mask, z, sounding_before=before),
        decode_notes(whole, acc.output_tracks, acc.decoding, before[None])[0, 0])
    # an export without the bar graphs plans the same bar from the whole-window graphs
    older = tmp_path / "older"
    shutil.copytree(model_dir, older)
    (older / "bar_generator.onnx").unlink()
    old = Accompanist.from_dir(older)
    np.testing.assert_allclose(old.last_bar_probabilities(condition, mask, z), whole, atol=1e-5)


def test_wrong_shapes_are_explained(exported) -> None:
    acc = Accompanist.from_dir(exported[0])
    condition, mask = condition_and_mask(1, seed=0)
    with pytest.raises(ValueError, match=r"z has shape \(1, 5\)"):
        acc.probabilities(condition, mask, np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="known_mask"):
        acc.probabilities(condition, mask[:, :2], np.zeros((1, 8), np.float32))


def test_missing_directory_says_how_to_get_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist.*training.export"):
        Accompanist.from_dir(tmp_path / "nowhere")


def test_default_model_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MUSEGAN_LIVE_MODEL", raising=False)
    shipped = default_model_dir()  # package data, beside musegan_live/model
    assert shipped == Path(musegan_live.model.__file__).resolve().parent / "default"
    assert (shipped / "model.yaml").is_file() and (shipped / "encoder.onnx").is_file()
    # the repository's exported_models/default is the same model
    assert (REPO / "exported_models" / "default").resolve() == shipped
    monkeypatch.setenv("MUSEGAN_LIVE_MODEL", str(tmp_path))
    assert default_model_dir() == tmp_path


def copy_model(exported, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(exported[0], target)
    return target


def test_corrupt_onnx_is_a_model_error(exported, tmp_path: Path) -> None:
    model_dir = copy_model(exported, tmp_path)
    (model_dir / "generator.onnx").write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match="generator.onnx is not a loadable ONNX model"):
        Accompanist.from_dir(model_dir)
    with pytest.raises(ModelError, match="generator.onnx"):
        check_onnx_metadata(model_dir / "generator.onnx")


def test_mismatched_onnx_metadata_names_the_key(exported, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model_dir = copy_model(exported, tmp_path)
    model = onnx.load(str(model_dir / "encoder.onnx"))
    for prop in model.metadata_props:
        if prop.key == "musegan_live.steps_per_bar":
            prop.value = "24"
    onnx.save(model, str(model_dir / "encoder.onnx"))
    message = r"'musegan_live\.steps_per_bar' is 24 but this runtime uses 48"
    with pytest.raises(ModelError, match=message):
        check_onnx_metadata(model_dir / "encoder.onnx")
    with pytest.raises(ModelError, match=message):
        Accompanist.from_dir(model_dir)


def test_model_yaml_problems_name_the_key(exported, tmp_path: Path) -> None:
    model_dir = copy_model(exported, tmp_path)
    card_path = model_dir / "model.yaml"
    original = yaml.safe_load(card_path.read_text())

    def write(**changes) -> None:
        values = {**original, **changes}
        card_path.write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not None}))

    write(representation={**original["representation"], "n_pitches": 128})
    with pytest.raises(ModelError, match=r"'representation\.n_pitches' is 128"):
        load_model_card(model_dir)
    write(latent_dim=None)
    with pytest.raises(ModelError, match="'latent_dim' is missing"):
        load_model_card(model_dir)
    write(decoding={"sustain_threshold": 0.9})
    with pytest.raises(ModelError, match=r"model\.yaml: decoding: sustain_threshold must be in"):
        load_model_card(model_dir)
    write(latent_dim=9)  # disagrees with the generator's z input
    with pytest.raises(ModelError, match="latent_dim 9"):
        Accompanist.from_dir(model_dir)
    card_path.write_text("name: [unclosed")
    with pytest.raises(ModelError, match="cannot be read as YAML"):
        load_model_card(model_dir)
    card_path.unlink()
    with pytest.raises(ModelError, match="model.yaml is missing"):
        load_model_card(model_dir)


def test_unavailable_provider_is_a_model_error(exported) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ModelError, match="'CUDA' is not available"):
        Accompanist.from_dir(exported[0], providers=("CUDA", "CPU"))
    acc = Accompanist.from_dir(exported[0], providers=("cpu",))
    assert acc.providers == ["CPUExecutionProvider"]
