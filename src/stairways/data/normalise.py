"""Feature normalisation: per ticker, per feature mean and standard deviation, then clipping.

The statistics are fitted on one split only (``FeatureConfig.normalisation_split``, the training
split by default) so that nothing about held-out data leaks into what the agent observes. The
fitted object is plain data: it saves to and loads from JSON exactly (floats round-trip), a panel
records the one it used and a training run saves it next to its checkpoints.

A feature whose standard deviation is zero (or negligibly small against its mean) is scaled by 1
instead, so a constant feature becomes 0 rather than NaN or infinity; such features are listed in
:attr:`Normaliser.constant_features` and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stairways.errors import ConfigError, DataValidationError, MissingResourceError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Below this (relative to the mean's size) a standard deviation is floating-point noise.
_RELATIVE_MIN_STD = 1e-12


@dataclass(frozen=True, eq=False)
class Normaliser:
    """Fitted per-ticker, per-feature statistics and the clip applied after standardising.

    :param symbols: tickers, in the order of the ticker axis
    :param feature_names: features, in the order of the feature axis
    :param mean: float64 array (tickers, features)
    :param std: float64 array (tickers, features), population standard deviation as measured
    :param clip: standardised values are clipped to [-clip, clip]
    :param split: name of the split the statistics were fitted on
    :param start: first session date of that split (ISO format)
    :param end: last session date of that split (ISO format)
    :param n_obs: number of bars each ticker's statistics were fitted on
    :param test_overlap_override: whether fitting on a range overlapping a protected split was
        explicitly allowed (recorded so run manifests can show it)
    """

    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    clip: float
    split: str
    start: str
    end: str
    n_obs: tuple[int, ...]
    test_overlap_override: bool = False
    scale: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = (len(self.symbols), len(self.feature_names))
        for name in ("mean", "std"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ConfigError(f"normaliser {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"normaliser {name} holds non-finite values")
        if np.any(self.std < 0):
            raise ConfigError("normaliser std holds negative values")
        if not (self.clip > 0 and np.isfinite(self.clip)):
            raise ConfigError(f"normaliser clip must be a positive number, got {self.clip}")
        tiny = self.std <= _RELATIVE_MIN_STD * np.maximum(1.0, np.abs(self.mean))
        object.__setattr__(self, "scale", np.where(tiny, 1.0, self.std))

    @property
    def constant_features(self) -> list[tuple[str, str]]:
        """(symbol, feature) pairs whose standard deviation was zero and are scaled by 1."""
        tiny = self.std <= _RELATIVE_MIN_STD * np.maximum(1.0, np.abs(self.mean))
        return [
            (self.symbols[t], self.feature_names[f]) for t, f in zip(*np.nonzero(tiny), strict=True)
        ]

    @classmethod
    def fit(
        cls,
        samples: Mapping[str, np.ndarray],
        feature_names: tuple[str, ...],
        *,
        clip: float,
        split: str,
        start: str,
        end: str,
        test_overlap_override: bool = False,
    ) -> Normaliser:
        """Fit on raw feature rows per ticker (``symbol -> array (n, features)``), in key order.

        :param samples: the rows of the fitting split only, one array per ticker
        :param feature_names: names of the feature columns
        :param clip: clip of the standardised values
        :param split: split name recorded with the statistics
        :param start: first session date of the split
        :param end: last session date of the split
        :param test_overlap_override: recorded when the split was allowed to overlap test
        """
        means, stds, counts = [], [], []
        for symbol, rows in samples.items():
            arr = np.asarray(rows, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != len(feature_names):
                raise DataValidationError(
                    f"normaliser samples for {symbol} have shape {arr.shape}; expected "
                    f"(rows, {len(feature_names)})"
                )
            if arr.shape[0] == 0:
                raise DataValidationError(
                    f"no feature rows for {symbol} in split {split!r} ({start}..{end}) to fit "
                    "the normaliser on"
                )
            if not np.all(np.isfinite(arr)):
                row, col = np.argwhere(~np.isfinite(arr))[0]
                raise DataValidationError(
                    f"feature {feature_names[col]} of {symbol} is not finite at row {row} of "
                    f"split {split!r}; cannot fit the normaliser"
                )
            means.append(arr.mean(axis=0))
            stds.append(arr.std(axis=0))
            counts.append(int(arr.shape[0]))
        out = cls(
            symbols=tuple(samples),
            feature_names=tuple(feature_names),
            mean=np.array(means, dtype=np.float64),
            std=np.array(stds, dtype=np.float64),
            clip=float(clip),
            split=split,
            start=start,
            end=end,
            n_obs=tuple(counts),
            test_overlap_override=test_overlap_override,
        )
        for symbol, feature in out.constant_features:
            log.warning(
                "feature %s of %s is constant on split %s; it is scaled by 1 and centred to 0",
                feature,
                symbol,
                split,
            )
        return out

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Standardise and clip raw features shaped (..., tickers, features); returns float32."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape[-2:] != self.mean.shape:
            raise DataValidationError(
                f"features have trailing shape {arr.shape[-2:]}, the normaliser expects "
                f"{self.mean.shape} (tickers {self.symbols}, {len(self.feature_names)} features)"
            )
        z = (arr - self.mean) / self.scale
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def transform_ticker(self, symbol: str, values: np.ndarray) -> np.ndarray:
        """Standardise and clip one ticker's raw features shaped (..., features); float32."""
        if symbol not in self.symbols:
            raise DataValidationError(
                f"normaliser was fitted for {list(self.symbols)}, not {symbol}"
            )
        t = self.symbols.index(symbol)
        z = (np.asarray(values, dtype=np.float64) - self.mean[t]) / self.scale[t]
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def check_compatible(self, symbols: tuple[str, ...], feature_names: tuple[str, ...]) -> None:
        """Raise ConfigError unless this normaliser covers exactly these tickers and features."""
        if tuple(symbols) != self.symbols or tuple(feature_names) != self.feature_names:
            raise ConfigError(
                f"normaliser fitted for tickers {list(self.symbols)} and features "
                f"{list(self.feature_names)} cannot be used for tickers {list(symbols)} and "
                f"features {list(feature_names)}; fit a new one on the training split"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (floats round-trip exactly)."""
        return {
            "format_version": FORMAT_VERSION,
            "symbols": list(self.symbols),
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "clip": self.clip,
            "split": self.split,
            "start": self.start,
            "end": self.end,
            "n_obs": list(self.n_obs),
            "test_overlap_override": self.test_overlap_override,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Normaliser:
        """Rebuild from :meth:`to_dict` output; a malformed mapping is a ConfigError naming it."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"{source}: normaliser format_version {data.get('format_version')!r} is not "
                f"{FORMAT_VERSION}"
            )
        try:
            return cls(
                symbols=tuple(str(s) for s in data["symbols"]),
                feature_names=tuple(str(f) for f in data["feature_names"]),
                mean=np.array(data["mean"], dtype=np.float64),
                std=np.array(data["std"], dtype=np.float64),
                clip=float(data["clip"]),
                split=str(data["split"]),
                start=str(data["start"]),
                end=str(data["end"]),
                n_obs=tuple(int(n) for n in data["n_obs"]),
                test_overlap_override=bool(data.get("test_overlap_override", False)),
            )
        except KeyError as err:
            raise ConfigError(f"{source}: normaliser is missing key {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}: normaliser is malformed: {err}") from None

    def save(self, path: Path | str) -> Path:
        """Write the normaliser as JSON (atomically: a temporary file renamed into place)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: Path | str) -> Normaliser:
        """Read a normaliser saved by :meth:`save`."""
        source = Path(path)
        if not source.is_file():
            raise MissingResourceError(
                f"normaliser file {source} does not exist; it is written by training runs "
                "(or fit one with stairways.data.panel_builder.fit_normaliser)"
            )
        try:
            data = json.loads(source.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"normaliser file {source} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"normaliser file {source} must hold a JSON object")
        return cls.from_dict(data, str(source))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normaliser):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))
