"""Configuration of the promotion ladder: stage gates, the risk committee, demotion rules.

The shipped file is ``config/ladder.yaml`` (``stairways config copy`` writes an editable copy);
``--ladder-config PATH`` names another. Every value is validated at load: a bad value fails
with its key path and the allowed range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen, read_yaml, validate_model
from stairways.errors import InputError
from stairways.security.names import approver_key_name

__all__ = [
    "DEFAULT_LADDER_CONFIG",
    "ApprovalRules",
    "DemotionRules",
    "LadderConfig",
    "StageGates",
    "load_ladder_config",
]

DemotionAction = Literal["demote", "halt"]


class StageGates(Frozen):
    """What a model must show in its stage to leave paper or micro_10 (from the journal)."""

    min_trading_days: int = Field(default=7, ge=1, description="Distinct trading days (>=)")
    min_gross_pnl: float = Field(default=0.0, description="Stage P&L before fees must be above")
    max_drawdown: float = Field(default=0.02, gt=0, le=1, description="Stage drawdown below")
    max_latency_p99_ms: float = Field(default=10.0, gt=0, description="Decision p99 below (ms)")
    max_error_rate: float = Field(default=0.02, ge=0, le=1, description="Errors per order below")
    max_daily_drawdown: float = Field(default=0.03, gt=0, le=1, description="Worst day below")
    min_net_pnl: float = Field(default=0.0, description="Fee-adjusted P&L at least")
    max_hard_limit_breaches: int = Field(default=0, ge=0, description="Governor stops at most")
    max_fee_share_of_gross: float = Field(
        default=0.30, gt=0, le=1, description="Fees over gross P&L below"
    )


class RequiredApprovals(Frozen):
    """Approvals needed to enter each stage."""

    paper: int = Field(default=0, ge=0)
    micro_10: int = Field(default=2, ge=1)
    scale_50: int = Field(default=3, ge=1)

    def for_stage(self, stage: str) -> int:
        """Approvals needed to enter ``stage``."""
        return int(getattr(self, stage))


class ApprovalRules(Frozen):
    """The risk committee (named approvers), N of M per stage, and how long an approval lasts."""

    committee: tuple[str, ...] = Field(
        default=("risk_officer", "head_of_trading", "compliance_officer"), min_length=1
    )
    required: RequiredApprovals = RequiredApprovals()
    expiry_hours: float = Field(default=72.0, gt=0, le=24 * 90)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        seen: set[str] = set()
        for name in self.committee:
            if name in seen:
                raise ValueError(f"approver {name!r} is named twice in approvals.committee")
            seen.add(name)
            try:
                approver_key_name(name)
            except InputError as err:
                raise ValueError(f"approver {name!r}: {err}") from None
        r = self.required
        if r.scale_50 <= r.micro_10:
            raise ValueError(
                f"approvals.required.scale_50 ({r.scale_50}) must be more than "
                f"approvals.required.micro_10 ({r.micro_10}): $50 needs more eyes than $10"
            )
        for stage in ("paper", "micro_10", "scale_50"):
            n = r.for_stage(stage)
            if n > len(self.committee):
                raise ValueError(
                    f"approvals.required.{stage} is {n} but the committee has only "
                    f"{len(self.committee)} approvers ({', '.join(self.committee)})"
                )
        return self


class DemotionRules(Frozen):
    """What happens when a model in a stage fails: ``demote`` one stage or ``halt``."""

    on_hard_limit_breach: DemotionAction = "demote"
    on_emergency_stop: DemotionAction = "demote"
    on_gate_failure: DemotionAction = "demote"


class LadderConfig(Frozen):
    """The whole ladder configuration (``config/ladder.yaml``)."""

    description: str = ""
    entry_split: str = Field(default="test", min_length=1)
    gates: StageGates = StageGates()
    approvals: ApprovalRules = ApprovalRules()
    demotion: DemotionRules = DemotionRules()


DEFAULT_LADDER_CONFIG = "ladder.yaml"


def load_ladder_config(path: Path | None = None) -> LadderConfig:
    """The ladder config at ``path``, or the shipped ``config/ladder.yaml``."""
    from stairways.resources import shipped_config

    source = path if path is not None else shipped_config(DEFAULT_LADDER_CONFIG)
    data = read_yaml(source)
    return validate_model(LadderConfig, data, str(source))
