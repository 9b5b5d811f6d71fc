"""Synthetic scenes and the tracker's measured targets (CenterFace, detector.every_n=6).

The numbers asserted here are the ones in docs/readme/tracking.md
(`python -m livecam.testing.track_eval`): 1280x720, 90 frames per scene.
"""

from __future__ import annotations

import numpy as np
import pytest

from livecam.face.geometry import interocular
from livecam.settings import Settings
from livecam.testing.scenes import REFERENCE_KPS5, make_scene, names
from livecam.testing.track_eval import make_tracker, measure

SMOOTH = ("still", "pan", "shake", "rotate", "zoom")


def test_scene_ground_truth_follows_the_similarity():
    s = make_scene("rotate", frames=20, size=(640, 360))
    assert len(s) == 20 and len(s.frames) == 20 and s.size == (640, 360)
    for i in (0, 7, 19):
        m = s.matrices[i]
        assert np.allclose(s.gt_kps5[i], REFERENCE_KPS5 @ m[:, :2].T + m[:, 2])
    # the face scales with the frame: IOD 44.2 px in the photo x 1.6 x 360/720
    assert interocular(s.gt_kps5[0]) == pytest.approx(interocular(REFERENCE_KPS5) * 0.8, rel=1e-6)
    angle = np.degrees(np.arctan2(*(s.gt_kps5[5][1] - s.gt_kps5[5][0])[::-1]))
    assert angle == pytest.approx(25 * np.sin(2 * np.pi * 5 / 20) + np.degrees(np.arctan2(2.12, 44.19)), abs=0.05)


def test_scene_frames_are_deterministic_with_fresh_noise():
    s = make_scene("still", frames=4, size=(320, 180))
    a, b = s.frames[1], s.frames[1]
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == (180, 320, 3)
    diff = s.frames[1].astype(np.float32) - s.frames[2].astype(np.float32)
    assert 3.0 < diff.std() < 6.0  # two independent sigma-3 noise fields (sqrt(2) * 3, clipped)
    assert names() == ["still", "pan", "shake", "rotate", "zoom", "jump", "occlusion", "leave"]


def test_scene_events():
    jump = make_scene("jump", frames=60)
    j = jump.events["jump"]
    step = np.linalg.norm(jump.gt_kps5[j] - jump.gt_kps5[j - 1], axis=1).mean()
    assert step > 200
    leave = make_scene("leave", frames=90)
    a, b = leave.events["left"]
    assert all(leave.gone[a:b]) and not any(leave.gone[:a]) and not any(leave.gone[b:])
    assert leave.gt_kps5[a - 3] is None  # partly out: no ground truth
    assert leave.gt_kps5[0] is not None and leave.gt_kps5[-1] is not None
    occ = make_scene("occlusion", frames=90)
    lo, hi = occ.events["occluded"]
    assert hi - lo >= 10


@pytest.fixture(scope="module")
def results():
    return measure(frames=90, size=(1280, 720), every_n=6, det_size=640)


@pytest.mark.parametrize("name", names())
def test_mean_error_within_3_percent_of_iod(results, name):
    r = results[name]
    assert r.err <= 3.0, f"{name}: {r.err:.2f}% IOD"
    assert r.recall >= 95.0


def test_still_jitter_3x_lower_than_detecting_every_frame(results):
    base, tracked = results["still/baseline"], results["still"]
    assert base.det_pct == 100.0
    assert base.jitter >= 3 * tracked.jitter, (base.jitter, tracked.jitter)


@pytest.mark.parametrize("name", SMOOTH)
def test_detector_calls_at_most_25_percent_on_smooth_motion(results, name):
    assert results[name].det_pct <= 25.0


@pytest.mark.parametrize("name", SMOOTH + ("jump", "occlusion"))
def test_one_track_id_per_scene(results, name):
    assert results[name].ids == 1


def test_back_on_the_face_within_2_frames_after_a_jump(results):
    assert results["jump"].recover is not None and results["jump"].recover <= 2


def test_no_track_survives_a_face_gone_more_than_2_frames(results):
    r = results["leave"]
    assert r.after_left <= 2
    assert r.false_frames <= 2


# --------------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def pan():
    return make_scene("pan", frames=24, size=(640, 360))


def _run(tracker, scene, n=None):
    return [tracker.update(scene.frames[i], scene.timestamp(i)) for i in range(n or len(scene))]


def test_detection_cadence_and_detected_flag(pan):
    tr = make_tracker(every_n=6, size=320)
    outs = _run(tr, pan, 13)
    assert all(len(f) == 1 for f in outs)
    assert [f[0].detected for f in outs] == [i % 6 == 0 for i in range(13)]
    assert tr.detector_calls == 3
    assert {f[0].track_id for f in outs} == {0}


def test_request_detection_configure_reset(pan):
    tr = make_tracker(every_n=6, size=320)
    _run(tr, pan, 2)
    tr.request_detection()
    assert tr.update(pan.frames[2], pan.timestamp(2))[0].detected
    assert tr.detector_calls == 2
    tr.configure(Settings().with_changes({"detector.every_n": 2}))
    tr.update(pan.frames[3], pan.timestamp(3))
    assert tr.update(pan.frames[4], pan.timestamp(4))[0].detected
    tr.reset()
    assert tr.tracks == 0
    assert tr.update(pan.frames[5], pan.timestamp(5))[0].detected  # no tracks: detect at once


def test_tracking_off_detects_every_frame(pan):
    tr = make_tracker(every_n=6, tracking=False, smoothing=False, size=320)
    outs = _run(tr, pan, 8)
    assert tr.detector_calls == 8 and all(f[0].detected for f in outs)
    assert {f[0].track_id for f in outs} == {0}  # ids still stable by IoU


def test_two_faces_keep_their_ids(pan):
    """Two people side by side, both moving: two ids, never swapped."""
    import cv2

    tr = make_tracker(every_n=6, size=640)
    ids_left, ids_right = set(), set()
    for i in range(14):
        f = pan.frames[i]
        frame = np.concatenate([f, cv2.flip(f, 1)], axis=1)  # 1280x360: the face and its mirror
        faces = tr.update(frame, i / 30)
        assert len(faces) == 2
        for face in faces:
            (ids_left if face.bbox[0] < 640 else ids_right).add(face.track_id)
    assert len(ids_left) == 1 and len(ids_right) == 1 and ids_left != ids_right


def test_a_face_cut_away_is_dropped_at_once(pan):
    tr = make_tracker(every_n=6, size=320)
    _run(tr, pan, 3)
    empty = np.full_like(pan.frames[0], 120)
    assert tr.update(empty, 3 / 30) == []
    assert tr.update(empty, 4 / 30) == []


def test_embeddings_ride_on_the_track_in_reference_mode(pan, standins_dir):
    from livecam.face.embed import ArcFaceEmbedder
    from livecam.inference.models import ModelLoader

    emb = ArcFaceEmbedder(ModelLoader(Settings().runtime, models_dir=standins_dir).session("arcface_w600k_r50"))
    tr = make_tracker(every_n=6, size=320)
    tr.embedder = emb
    tr.configure(Settings().with_changes({"selector.mode": "reference"}))
    outs = _run(tr, pan, 4)
    e0 = outs[0][0].embedding
    assert e0 is not None and e0.shape == (512,)
    assert all(o[0].embedding is e0 for o in outs[1:])  # carried, not recomputed between detections


# --------------------------------------------------------------------------- background detection
def _background_tracker(every_n=6, slow=0.0):
    """The CenterFace tracker with periodic detections in a DetectWorker (`slow`: seconds added per detection)."""
    import time

    from livecam.track.detect_worker import DetectWorker

    tr = make_tracker(every_n=every_n)
    if slow:
        det = tr.detector
        run = det._run

        def slow_run(*a, **k):
            time.sleep(slow)
            return run(*a, **k)

        det._run = slow_run
    tr.worker = DetectWorker()
    tr.configure(Settings().with_changes({"detector.every_n": every_n, "detector.background": True,
                                          "landmarker.model": "none"}))
    return tr


def test_background_detections_are_carried_forward_by_the_motion_since(pan):
    """Each periodic detection lands one frame late (deterministic: the test waits for the worker
    between frames); carried by the track's motion, the points stay as accurate as inline ones."""
    from livecam.testing.track_eval import evaluate

    scene = make_scene("pan", frames=48, size=(1280, 720))
    tr = _background_tracker()
    outs = []
    for i in range(len(scene)):
        outs.append(tr.update(scene.frames[i], scene.timestamp(i)))
        tr.worker.wait()
    r = evaluate(scene, outs, tr.detector_calls)
    tr.close()
    inline = evaluate(scene, _run(make_tracker(), scene), 0)  # same scene, detections inline
    assert r.err <= inline.err + 0.3 and r.recall == 100.0 and r.ids == 1, (r.err, inline.err)
    assert r.det_pct <= 25.0
    assert any(not f[0].detected for f in outs[1:6]) and any(f[0].detected for f in outs[7:9])  # folded in late


def _late_worker(delay=0.3):
    """A DetectWorker whose jobs start `delay` s late (a busy machine)."""
    import threading

    from livecam.track.detect_worker import DetectWorker

    class LateWorker(DetectWorker):
        def submit(self, job):
            return super().submit(lambda: (threading.Event().wait(delay), job())[1])

    return LateWorker()


def _record_job_frames(tr) -> list:
    """The image each of `tr`'s background detections runs on, copied as it runs."""
    seen = []
    for name in ("_run_full", "_run_crops"):
        def recorded(frame, views, models, run=getattr(tr, name)):
            seen.append(frame.copy())
            return run(frame, views, models)
        setattr(tr, name, recorded)
    return seen


def test_deferred_snapshot_the_worker_copies_the_frame_and_release_waits_for_that_copy():
    """With `deferred_snapshot` the frame thread makes no copy: the background job copies the frame
    first, `release_frame` returns only once it has, and the detection sees the frame as it was
    at `update` even though the caller overwrites it right after `release_frame` (the Pipeline's
    in-place paste)."""
    scene = make_scene("still", frames=8, size=(640, 360))
    tr = _background_tracker(every_n=2)
    tr.worker, tr.deferred_snapshot = _late_worker(), True
    seen = _record_job_frames(tr)
    frames = [scene.frames[i].copy() for i in range(len(scene))]
    submitted = 0
    for i, frame in enumerate(frames):
        calls = len(seen)
        tr.update(frame, scene.timestamp(i))
        if tr._snapshot is not None:  # a job was handed over: its copy is not made on this thread
            submitted += 1
            original = frame.copy()
            assert not np.array_equal(tr._job_buf, frame)
            tr.release_frame()
            assert np.array_equal(tr._job_buf, original)
            frame[...] = 0  # the in-place paste
            tr.worker.wait()
            assert len(seen) == calls + 1 and np.array_equal(seen[-1], original)
        tr.release_frame()
    tr.close()
    assert submitted >= 2


def test_detect_worker_one_thread_runs_the_jobs_and_ends_when_idle_or_closed():
    """Jobs run one at a time on one thread (no thread start per job on the frame thread); a
    failing job does not stop it; it ends after `idle_s` without a job, a later job starts
    one again, and `close` ends it."""
    import threading
    import time

    from livecam.track.detect_worker import DetectWorker

    w = DetectWorker(idle_s=0.3)
    assert not w.running
    ran_on = []

    def job(n):
        def run():
            ran_on.append(threading.current_thread())  # (kept: distinct objects, distinct ids)
            if n == 1:
                raise RuntimeError("a detector failed")
            return n
        return run

    results = []
    for n in range(4):
        assert w.submit(job(n))
        assert not w.submit(job(99))  # one at a time
        w.wait()
        results.append(w.poll())
    assert results == [0, None, 2, 3] and len({id(t) for t in ran_on}) == 1
    deadline = time.monotonic() + 5.0
    while w.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not w.running  # idle: the thread ended
    assert w.submit(job(4)) and w.running
    w.wait()
    assert w.poll() == 4 and len({id(t) for t in ran_on}) == 2
    w.close(timeout=5.0)  # returns as soon as the thread ended: the bound only matters on a busy machine
    assert not w.running and not w.submit(job(5))
    assert not [t for t in threading.enumerate() if t.name == w.name and t.is_alive()]



def test_detect_worker_left_open_finishes_its_job_before_the_interpreter_exits(tmp_path):
    """An owner that never calls `close` (as `livecam bench` did): the running job still ends
    before interpreter teardown, where a model call in a daemon thread aborted the process."""
    import subprocess
    import sys
    import textwrap

    done = tmp_path / "done"
    script = textwrap.dedent(f"""
        import threading, time
        from livecam.track.detect_worker import DetectWorker
        started = threading.Event()
        def job():
            started.set()
            time.sleep(0.2)  # a model call in progress at exit
            open({str(done)!r}, "w").write("finished")
        w = DetectWorker()
        w.submit(job)
        started.wait(10)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert done.read_text() == "finished"

def test_pipeline_pastes_only_after_the_background_copy(tint_standins_dir):
    """The wiring: `Pipeline.process` hands the tracker's `release_frame` to the swap stage, so
    with the worker's copy made 0.3 s late the in-place paste still waits for it: every
    background detection runs on a camera frame, never on a pasted (tinted) one."""
    from livecam.controls import Controls
    from livecam.face.types import SourceFace
    from livecam.inference.models import ModelLoader
    from livecam.pipeline import Pipeline

    e = np.random.default_rng(1).normal(size=512).astype(np.float32)

    class Bank:
        faces = [SourceFace("src", e, e / np.linalg.norm(e))]

        def get(self, name):
            return None

    scene = make_scene("still", frames=10, size=(640, 360))
    tr = _background_tracker(every_n=2)
    tr.worker, tr.deferred_snapshot = _late_worker(), True
    seen = _record_job_frames(tr)
    settings = Settings().with_changes({"detector.model": "centerface", "detector.every_n": 2,
                                        "detector.background": True, "landmarker.model": "none"})
    pipe = Pipeline(ModelLoader(settings.runtime, models_dir=tint_standins_dir), settings, Bank(), tracker=tr)
    state = Controls(settings).current()
    camera, pasted = [], []
    for i in range(len(scene)):
        frame = scene.frames[i].copy()
        camera.append(frame.copy())
        out, report = pipe.process(frame, state, scene.timestamp(i), inplace=True)
        assert out is frame and not report.errors
        pasted.append(out.copy())
    tr.worker.wait()
    pipe.close()
    assert sum(not np.array_equal(c, p) for c, p in zip(camera, pasted)) >= 8  # the tint swap pasted
    assert len(seen) >= 2
    for img in seen:
        assert any(np.array_equal(img, c) for c in camera)
        assert not any(np.array_equal(img, p) for p in pasted)


def test_background_detections_run_on_the_background_models():
    """The worker's detections call the tracker's `background_models` (on the CPU, a twin session
    with fewer threads); inline ones (the first, urgent ones) call the tracker's own."""
    from livecam.face.detect import make_detector
    from livecam.inference.models import ModelLoader
    from livecam.track.tracker import TrackerModels

    settings = Settings().with_changes({"detector.model": "centerface", "landmarker.model": "none"})
    tr = _background_tracker(every_n=2)
    bg = make_detector(ModelLoader(settings.runtime), settings, background=True)
    assert bg.session is not tr.detector.session
    assert bg.session._sess.get_session_options().intra_op_num_threads >= 1  # (0 would be ORT's default)
    tr.background_models = TrackerModels(bg)
    calls = {"inline": 0, "background": 0}
    for key, det in (("inline", tr.detector), ("background", bg)):
        def counted(feeds, run=det.session.run, key=key):
            calls[key] += 1
            return run(feeds)
        det.session.run = counted
    scene = make_scene("still", frames=12, size=(640, 360))
    for i in range(len(scene)):
        assert len(tr.update(scene.frames[i], scene.timestamp(i))) == 1
        tr.worker.wait()
        if i == 0:
            assert calls == {"inline": 1, "background": 0}  # no track yet: inline
    tr.close()
    assert calls["inline"] == 1 and calls["background"] >= 4, calls


def test_background_models_load_in_the_worker_once_and_a_failed_load_shares_the_trackers():
    """A callable `background_models` (what the Pipeline passes) is called by the first background
    job, in the worker thread, once; when it raises, the worker uses the tracker's own models."""
    import threading

    from livecam.track.tracker import TrackerModels

    scene = make_scene("still", frames=8, size=(640, 360))
    for fails in (False, True):
        tr = _background_tracker(every_n=2)
        loads = []

        def load(tr=tr, fails=fails):
            loads.append(threading.current_thread())
            if fails:
                raise RuntimeError("the twin session cannot be made")
            return TrackerModels(tr.detector)

        tr.background_models = load
        for i in range(len(scene)):
            assert len(tr.update(scene.frames[i], scene.timestamp(i))) == 1
            tr.worker.wait()
            assert threading.current_thread() not in loads
        tr.close()
        assert len(loads) == 1 and loads[0].name == tr.worker.name
        assert tr.detector_calls >= 3  # the background detections ran either way
        assert tr.background_models is None if fails else isinstance(tr.background_models, TrackerModels)


def test_no_frame_waits_for_a_background_detection():
    import time

    scene = make_scene("still", frames=30, size=(640, 360))
    tr = _background_tracker(every_n=3, slow=0.5)
    tr.update(scene.frames[0], 0.0)  # no track yet: this one detects inline
    slowest = 0.0
    for i in range(1, len(scene)):
        t0 = time.perf_counter()
        faces = tr.update(scene.frames[i], scene.timestamp(i))
        slowest = max(slowest, time.perf_counter() - t0)
        assert len(faces) == 1
        time.sleep(0.02)
    tr.close()
    assert slowest < 0.25  # far below the 0.5 s each detection takes
    assert tr.detector_calls >= 2  # and the background detections did run
