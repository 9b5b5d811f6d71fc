"""Sessions and adapters used from several threads; embeddings checked before they are cached.

The TUI adds a face (detection + ArcFace) on a worker thread while the frame
thread runs the same models (the tracker's embedder shares the ArcFace session,
a reference image goes through the same analyser). Outputs must be exactly what
a single thread gets: a reused buffer overwritten mid-call shows up as a wrong
embedding. Races are provoked with a tiny thread switch interval.
"""

from __future__ import annotations

import sys
import threading

import cv2
import numpy as np
import pytest

from livecam.errors import SourceFaceError
from livecam.face.analyser import FaceAnalyser
from livecam.face.bank import FaceBank
from livecam.face.embed import ArcFaceEmbedder, embedding_problem
from livecam.settings import Settings


@pytest.fixture
def loader(standins_dir):
    from livecam.inference.models import ModelLoader

    return ModelLoader(Settings().runtime, models_dir=standins_dir)


def _images(tmp_path, n):
    """n different 640x360 photos (the stand-in detector finds one face in any image)."""
    paths = []
    for k in range(n):
        img = np.random.default_rng(k).integers(0, 256, (360, 640, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (0, 0), 3)  # structure at the 8x8 pooling scale of the stand-in
        p = tmp_path / f"face{k}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def test_adding_faces_while_frames_run_gives_the_single_thread_results(loader, tmp_path):
    settings = Settings()
    paths = _images(tmp_path, 6)
    # what one thread gets
    expected = {p.stem: FaceBank(FaceAnalyser(loader, settings), cache_dir=tmp_path / "ref").add(p).embedding
                for p in paths}
    frame = cv2.imread(str(paths[0]))
    analyser = FaceAnalyser(loader, settings)  # shared, as the pipeline's reference lookup and the TUI share it
    frame_kps = analyser.analyse(frame, embed=False)[0].kps5
    tracker_embedder = ArcFaceEmbedder(loader.session("arcface_w600k_r50"))  # same session, own adapter
    frame_emb = tracker_embedder.embed(frame, frame_kps)
    bank = FaceBank(analyser, cache_dir=tmp_path / "cache")
    failures: list[str] = []
    stop = threading.Event()
    frames = [0]

    def frame_thread():
        while not stop.is_set():
            got = analyser.analyse(frame, embed=True)  # detector + landmarker + the shared embedder
            if len(got) != 1 or not np.array_equal(got[0].embedding, expected[paths[0].stem]):
                failures.append("frame thread: analyser output differs")
            if not np.array_equal(tracker_embedder.embed(frame, frame_kps), frame_emb):
                failures.append("frame thread: embedder output differs")
            names = [f.name for f in bank.faces]  # iterating while the worker adds
            if len(set(names)) != len(names):
                failures.append("frame thread: duplicate names")
            frames[0] += 1

    def add_thread():
        for p in paths:
            face = bank.add(p)
            if not np.array_equal(face.embedding, expected[p.stem]):
                failures.append(f"worker: {p.name} embedding differs")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        t = threading.Thread(target=frame_thread)
        t.start()
        add_thread()
        stop.set()
        t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert failures == []
    assert frames[0] >= 1 and bank.names() == [p.stem for p in paths]
    for f in (tmp_path / "cache").rglob("*.npz"):  # everything cached is a usable embedding
        with np.load(f) as z:
            assert embedding_problem(z["embedding"]) == ""


@pytest.mark.parametrize("bad, word", [(np.full(512, np.nan, np.float32), "not finite"),
                                       (np.zeros(512, np.float32), "all zero")])
def test_bad_embedding_is_refused_and_never_cached(loader, tmp_path, monkeypatch, bad, word):
    analyser = FaceAnalyser(loader, Settings())
    (path,) = _images(tmp_path, 1)
    monkeypatch.setattr(analyser.embedder, "embed", lambda img, kps: bad.copy())
    bank = FaceBank(analyser, cache_dir=tmp_path / "cache")
    with pytest.raises(SourceFaceError) as err:
        bank.add(path)
    assert word in err.value.message and str(path) in err.value.message and err.value.fix
    assert list((tmp_path / "cache").rglob("*.npz")) == [] and len(bank) == 0


def test_a_corrupt_cached_embedding_is_recomputed(loader, tmp_path):
    analyser = FaceAnalyser(loader, Settings())
    (path,) = _images(tmp_path, 1)
    good = FaceBank(analyser, cache_dir=tmp_path / "cache").add(path).embedding
    (cached,) = (tmp_path / "cache").rglob("*.npz")
    with np.load(cached) as z:
        thumb, warnings = z["thumbnail"], z["warnings"]
    with open(cached, "wb") as f:  # an earlier broken run left NaN in the cache
        np.savez(f, embedding=np.full(512, np.nan, np.float32), thumbnail=thumb, warnings=warnings)
    again = FaceBank(analyser, cache_dir=tmp_path / "cache").add(path)
    assert np.array_equal(again.embedding, good)
    with np.load(cached) as z:
        assert np.array_equal(z["embedding"], good)  # and the cache holds the good one again


def test_embedding_problem_names_what_is_wrong():
    v = np.random.default_rng(0).normal(size=512).astype(np.float32)
    assert embedding_problem(v) == ""
    assert "512" in embedding_problem(v[:100])
    v[3] = np.inf
    assert "not finite" in embedding_problem(v)


def test_pipeline_frames_keep_running_while_the_tui_adds_faces(loader, tmp_path):
    """The real pipeline (tracker with ArcFace for reference mode, swap stage) on the frame
    thread, `FaceBank.add` on a worker thread: no frame fails, every added face is exact."""
    from livecam.controls import ControlState
    from livecam.pipeline import Pipeline

    settings = Settings().with_changes({"selector.mode": "reference", "selector.reference": "face0"})
    paths = _images(tmp_path, 5)
    expected = {p.stem: FaceBank(FaceAnalyser(loader, settings), cache_dir=tmp_path / "ref").add(p).embedding
                for p in paths}
    bank = FaceBank(FaceAnalyser(loader, settings), cache_dir=tmp_path / "cache")
    bank.add(paths[0])
    pipeline = Pipeline(loader, settings, bank)
    state = ControlState(settings=settings, version=1)
    frame = cv2.imread(str(paths[0]))
    errors, frames, swapped, stop = [], [0], [0], threading.Event()

    def frame_thread():
        while not stop.is_set() or frames[0] < 3:
            out, report = pipeline.process(frame, state)
            errors.extend(report.errors)
            frames[0] += 1
            swapped[0] += report.swapped

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        t = threading.Thread(target=frame_thread)
        t.start()
        added = [bank.add(p) for p in paths[1:]]
        stop.set()
        t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert errors == [] and frames[0] >= 3 and swapped[0] >= 1  # the reference face matched and was swapped
    assert all(np.array_equal(f.embedding, expected[f.name]) for f in added)
    assert bank.names() == [p.stem for p in paths]
