"""D09: a different ONNX under a catalog name is refused on load against catalog.toml's contract,
naming the file and the expected contract; a live switch to it keeps the running swapper."""

from __future__ import annotations

import shutil
import time

import pytest

from livecam.errors import ModelError
from livecam.inference.catalog import load_catalog
from livecam.inference.contract import check_contract, graph_io
from livecam.inference.models import ModelLoader
from livecam.inference.store import ModelStore, write_hash_file


def _impostor(standins_dir, tmp_path, name, real):
    """A models dir where `name` is really the file of `real`, with a matching .hash (self-attesting)."""
    d = tmp_path / "models"
    shutil.copytree(standins_dir, d)
    spec = load_catalog().get(name)
    shutil.copy(standins_dir / f"{real}.onnx", d / spec.file)
    write_hash_file(d / spec.file)
    return d


@pytest.mark.parametrize("name,real", [("hyperswap_1a_256", "arcface_w600k_r50"), ("scrfd_2.5g", "2dfan4"),
                                       ("2dfan4", "2d106det"), ("xseg_1", "bisenet_resnet_34"),
                                       ("arcface_w600k_r50", "inswapper_128"), ("inswapper_128", "hyperswap_1a_256")])
def test_wrong_model_under_a_catalog_name_is_refused_on_load(name, real, standins_dir, tmp_path):
    d = _impostor(standins_dir, tmp_path, name, real)
    assert ModelStore(models_dir=d).verify(name).ok  # the .hash beside it attests to nothing
    with pytest.raises(ModelError) as err:
        ModelLoader(models_dir=d).session(name)
    msg = str(err.value)
    spec = load_catalog().get(name)
    assert f"the file at {d / spec.file} is not {name}" in msg
    assert f"{name} takes {spec.contract['inputs'][0]['name']}" in msg  # the expected contract
    assert f"livecam models pull {name} --force" in err.value.fix


def test_every_standin_and_the_real_packaged_models_match_their_contract(standins_dir):
    cat = load_catalog()
    for spec in cat:
        path = standins_dir / spec.file if not spec.package else ModelStore().package_path(spec)
        check_contract(spec, path)  # raises on a mismatch


def test_rank_and_static_dims_are_compared(standins_dir, tmp_path):
    spec = load_catalog().get("inswapper_128")
    ins, outs = graph_io(standins_dir / "inswapper_128.onnx")
    assert ins["target"] == [1, 3, 128, 128] and outs["output"] == [1, 3, 128, 128]
    changed = type(spec)(**{**spec.__dict__, "contract": {
        "inputs": [{"name": "target", "shape": [1, 3, 256, 256]}, {"name": "source", "shape": [1, 512]}],
        "outputs": [{"name": "output", "shape": [1, 3, 128]}]}})
    with pytest.raises(ModelError, match=r"input target has 128 at axis 2, the contract 256.*output output has rank 4"):
        check_contract(changed, standins_dir / "inswapper_128.onnx")


def test_not_onnx_at_all_names_the_file(tmp_path):
    spec = load_catalog().get("xseg_1")
    bad = tmp_path / "xseg_1.onnx"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError, match=f"the file at {bad} is not xseg_1: it cannot be read as an ONNX model"):
        check_contract(spec, bad)


def test_check_reads_only_the_graph_io(standins_dir):
    """Cheap enough for every load: the biggest stand-in's IO in well under the time to parse it whole."""
    import onnx

    path = max(standins_dir.glob("*.onnx"), key=lambda p: p.stat().st_size)
    # this thread's CPU time: process time also counts other threads still busy from earlier tests
    t0 = time.thread_time()
    for _ in range(20):
        graph_io(path)
    scan = time.thread_time() - t0
    t0 = time.thread_time()
    for _ in range(20):
        onnx.load(str(path))
    full = time.thread_time() - t0
    assert scan < full


def test_live_switch_to_a_wrong_model_keeps_the_running_swapper(standins_dir, tmp_path, astronaut):
    from livecam.settings import Settings
    from livecam.swap.stage import SwapStage

    d = _impostor(standins_dir, tmp_path, "hyperswap_1c_256", "arcface_w600k_r50")
    stage = SwapStage(ModelLoader(models_dir=d), Settings())
    assert stage.active_model == "hyperswap_1a_256"
    stage.request_model("hyperswap_1c_256")
    stage.wait_idle()
    stage._adopt_pending()
    assert stage.active_model == "hyperswap_1a_256"
    assert "is not hyperswap_1c_256" in stage.last_error
