"""LivePolicy.normalise_into's kernel gives VecNormalize's numpy arithmetic, to the bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stairways.live.model import LivePolicy

_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _holder(mean: np.ndarray, std: np.ndarray, clip: float) -> SimpleNamespace:
    """The attributes normalise_into reads, as LivePolicy.__init__ sets them."""
    return SimpleNamespace(
        norm_obs=True,
        clip_obs=clip,
        _mean=mean,
        _std=std,
        _z=np.zeros(mean.shape, dtype=np.float64),
        _z32=np.zeros(mean.shape, dtype=np.float32),
    )


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float32, n, elements=_floats),
            hnp.arrays(np.float64, n, elements=st.floats(-1e3, 1e3)),
            hnp.arrays(np.float64, n, elements=st.floats(1e-8, 1e3) | st.just(0.0)),
        )
    ),
    st.sampled_from([0.5, 5.0, 10.0]),
    st.booleans(),
)
def test_normalise_into_equals_the_numpy_formula(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray], clip: float, as_float64: bool
) -> None:
    obs, mean, std = arrays
    x = obs.astype(np.float64) if as_float64 else obs
    with np.errstate(all="ignore"):
        want = np.clip((x - mean) / std, -clip, clip).astype(np.float32)
    got = LivePolicy.normalise_into(_holder(mean, std, clip), x)  # type: ignore[arg-type]
    assert got.dtype == np.float32
    assert got.tobytes() == want.tobytes()


def test_normalise_into_reuses_its_buffer_and_leaves_the_observation_alone() -> None:
    mean, std = np.full(4, 0.5), np.full(4, 2.0)
    holder = _holder(mean, std, 1.0)
    obs = np.array([0.0, 1.0, 10.0, -10.0], dtype=np.float32)
    first = LivePolicy.normalise_into(holder, obs)  # type: ignore[arg-type]
    assert first.tolist() == [-0.25, 0.25, 1.0, -1.0]
    assert obs.tolist() == [0.0, 1.0, 10.0, -10.0]
    second = LivePolicy.normalise_into(holder, np.zeros(4, dtype=np.float32))  # type: ignore[arg-type]
    assert second is first and first.tolist() == [-0.25] * 4
