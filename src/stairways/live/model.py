"""The policy of the live loop: a trained run's checkpoint loaded exactly as the replay loads it.

A :class:`LivePolicy` holds the run's resolved config, its feature normaliser, the
checkpoint's VecNormalize statistics (frozen) and the SB3 model, and answers one observation
with one deterministic action. It is built from a :class:`ModelRef`: where the files are and the
fingerprint the model must have. The model registry (:mod:`stairways.live.registry`) hands out
refs of registered models; a run directory can be named directly for rehearsals and paper
sessions, and its fingerprint is then computed from the files themselves.

The fingerprint is a sha256 over the files that decide an action (model zip, VecNormalize
statistics, feature normaliser, resolved config) and the training data's panel fingerprint; a
model file that no longer matches the fingerprint it was registered with is refused.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from stairways.data.normalise import Normaliser
from stairways.errors import InputError, MissingResourceError
from stairways.live.fastpolicy import FastPolicy, UnsupportedPolicyError
from stairways.training.rundir import CheckpointFiles, RunDirectory

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

__all__ = [
    "LivePolicy",
    "ModelFingerprintError",
    "ModelRef",
    "fingerprint_files",
    "ref_from_run",
]

log = logging.getLogger(__name__)


class ModelFingerprintError(InputError):
    """A model's files do not match the fingerprint it was registered with."""


@dataclass(frozen=True)
class ModelRef:
    """Which model to load and the fingerprint it must have.

    :param model_id: the registry's id (or ``run:<run name>:<checkpoint>`` for a bare run)
    :param run_dir: the training run directory
    :param checkpoint: the checkpoint's name (``final``, ``best`` or ``checkpoint_<steps>``)
    :param files: the checkpoint's files
    :param fingerprint: the expected fingerprint (:func:`fingerprint_files`)
    :param stage: the ladder stage the registry has the model in ("" for a bare run)
    :param registered: whether the ref came from the model registry
    """

    model_id: str
    run_dir: Path
    checkpoint: str
    files: CheckpointFiles
    fingerprint: str
    stage: str = ""
    registered: bool = False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint_files(run_dir: Path, files: CheckpointFiles) -> str:
    """sha256 over the model zip, VecNormalize statistics, normaliser, config and data print."""
    run = RunDirectory.open(run_dir)
    parts = [
        ("model", files.model),
        ("vecnormalize", files.vecnormalize),
        ("normaliser", run.normaliser_path),
        ("config", run.config_path),
    ]
    h = hashlib.sha256()
    for name, path in parts:
        if not path.is_file():
            raise MissingResourceError(
                f"the model's {name} file {path} is missing; the model cannot be loaded"
            )
        h.update(f"{name}:{_sha256(path)}\n".encode())
    h.update(f"data:{run.read_manifest().data.panel_fingerprint}\n".encode())
    return h.hexdigest()


def ref_from_run(run_dir: Path, checkpoint: str = "final") -> ModelRef:
    """A ref to a checkpoint of a run directory (not registered: fingerprint from its files)."""
    from stairways.evaluation.runner import resolve_checkpoint

    run = RunDirectory.open(run_dir)
    ref = resolve_checkpoint(run, checkpoint)
    return ModelRef(
        model_id=f"run:{run.name}:{ref.name}",
        run_dir=run.path,
        checkpoint=ref.name,
        files=ref.files,
        fingerprint=fingerprint_files(run.path, ref.files),
    )


class LivePolicy:
    """A checkpoint ready to act: config, normaliser, frozen VecNormalize and the model.

    :param ref: the model to load; its files must match ``ref.fingerprint``
    :param store: bar store replacing the run's ``data.store_path`` (for warm-up history)
    """

    def __init__(self, ref: ModelRef, *, store: Path | None = None) -> None:
        from stairways.evaluation.batch_replay import ObsNormaliser
        from stairways.evaluation.runner import load_model, run_config

        actual = fingerprint_files(ref.run_dir, ref.files)
        if actual != ref.fingerprint:
            raise ModelFingerprintError(
                f"model {ref.model_id}: its files in {ref.run_dir} have fingerprint "
                f"{actual[:16]}, not the registered {ref.fingerprint[:16]}; a changed model "
                "must be registered again (stairways models register) before it trades"
            )
        self.ref = ref
        run = RunDirectory.open(ref.run_dir)
        self.cfg: StairwaysConfig = run_config(run, store)
        self.manifest = run.read_manifest()
        self.normaliser = Normaliser.load(run.normaliser_path)
        obs_norm = ObsNormaliser.load(ref.files.vecnormalize)
        self.norm_obs = obs_norm.enabled
        self.clip_obs = obs_norm.clip
        self.model = load_model(self.cfg, ref.files.model)
        self.policy: Any = self.model.policy
        self.policy.set_training_mode(False)
        self.recurrent = self.cfg.training.algo == "recurrent_ppo"
        self._state: Any = None
        self._start = np.ones(1, dtype=bool)
        self._mean = np.asarray(obs_norm.mean, dtype=np.float64)
        self._std = np.asarray(obs_norm.scale, dtype=np.float64)
        self._z = np.zeros(self._mean.shape, dtype=np.float64)
        self._z32 = np.zeros(self._mean.shape, dtype=np.float32)
        if self.norm_obs and self._mean.ndim == 1:
            # numba's cache loads the kernel now, not on the first decision
            _normalise_kernel(self._z32, self._mean, self._std, float(self.clip_obs), self._z32)
            self._z32[:] = 0.0
        self.fast: FastPolicy | None = None
        self.forward_path = "torch (recurrent policy)"
        if not self.recurrent:
            try:
                self.fast = FastPolicy.from_sb3(self.policy)
                self.forward_path = "numpy"
            except UnsupportedPolicyError as why:
                self.forward_path = f"torch ({why})"
        log.info(
            "loaded model %s (%s) from %s; forward pass: %s",
            ref.model_id,
            ref.fingerprint[:16],
            ref.run_dir,
            self.forward_path,
        )

    @property
    def obs_dim(self) -> int:
        """Length of the observation the model expects."""
        shape = self.model.observation_space.shape
        assert shape is not None
        return int(shape[0])

    def normalise(self, obs: np.ndarray) -> np.ndarray:
        """VecNormalize's frozen observation normalisation (the same arithmetic, float32 out)."""
        if not self.norm_obs:
            return obs
        z = np.clip((obs - self._mean) / self._std, -self.clip_obs, self.clip_obs)
        return z.astype(np.float32)

    def normalise_into(self, obs: np.ndarray) -> np.ndarray:
        """:meth:`normalise` of one observation into a buffer reused by the next call."""
        if not self.norm_obs:
            return obs
        if (
            type(obs) is np.ndarray
            and self._mean.ndim == 1
            and obs.shape == self._mean.shape
            and (obs.dtype == np.float32 or obs.dtype == np.float64)
        ):
            _normalise_kernel(obs, self._mean, self._std, float(self.clip_obs), self._z32)
            return self._z32
        # any other input: numpy's broadcasting and casting (and their errors)
        z = self._z
        np.subtract(obs, self._mean, out=z)
        np.divide(z, self._std, out=z)
        np.clip(z, -self.clip_obs, self.clip_obs, out=z)
        np.copyto(self._z32, z, casting="same_kind")
        return self._z32

    def new_session(self) -> None:
        """Forget a recurrent policy's hidden state (an episode starts)."""
        self._state = None
        self._start = np.ones(1, dtype=bool)

    def act(self, obs: np.ndarray) -> int:
        """The deterministic action for one raw observation (normalised here).

        A feed-forward policy with a numpy forward pass (:mod:`stairways.live.fastpolicy`, the
        same weights, tested against SB3) uses it; any other goes through :meth:`act_torch`.
        """
        if self.fast is not None:
            return self.fast.act(self.normalise_into(obs))
        return self.act_torch(obs)

    def action_probabilities(self, obs: np.ndarray) -> np.ndarray:
        """Action probabilities of the fast path for one raw observation (float64)."""
        if self.fast is None:
            raise UnsupportedPolicyError(
                f"this model has no numpy forward pass: {self.forward_path}"
            )
        return self.fast.probabilities(self.normalise_into(obs))

    def act_torch(self, obs: np.ndarray) -> int:
        """The deterministic action through SB3's torch policy (the reference the fast path
        is tested against, and the path of recurrent policies).

        A feed-forward policy goes straight to SB3's own ``get_distribution(...).mode()`` (what
        ``predict`` runs after its input checks and copies); a recurrent one uses ``predict``
        with its hidden state.
        """
        import torch

        batch = self.normalise(obs.reshape(1, -1))
        if self.recurrent:
            with torch.no_grad():
                actions, self._state = self.policy.predict(
                    batch, state=self._state, episode_start=self._start, deterministic=True
                )
            self._start = np.zeros(1, dtype=bool)
            return int(np.asarray(actions).reshape(-1)[0])
        with torch.inference_mode():
            dist = self.policy.get_distribution(torch.from_numpy(batch))
            return int(dist.get_actions(deterministic=True).reshape(-1)[0])


@njit(cache=True, error_model="numpy")
def _normalise_kernel(
    obs: np.ndarray, mean: np.ndarray, std: np.ndarray, clip: float, out: np.ndarray
) -> None:
    """:meth:`LivePolicy.normalise_into`'s arithmetic in one call: ``(obs - mean) / std`` in
    float64, clipped to ``[-clip, clip]`` (np.clip's order, NaN kept), stored as float32."""
    for i in range(mean.shape[0]):
        x = (np.float64(obs[i]) - mean[i]) / std[i]
        if x < -clip:
            x = -clip
        if x > clip:
            x = clip
        out[i] = x
