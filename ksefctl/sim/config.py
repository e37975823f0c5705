"""Simulator settings: what a user puts in ``--config`` and what tests change at run time.

:class:`Faults` are the knobs that break the simulator on purpose; they can be
replaced while it runs (admin API ``/_sim/faults``).  :class:`SimConfig`
carries everything else that is fixed for the life of one process.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ksefctl.sim.keys import RotationStep

# Rate-limit groups as EffectiveApiRateLimits names them, with KSeF's documented defaults.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int, int]] = {
    "onlineSession": (10, 30, 120),
    "batchSession": (10, 20, 60),
    "invoiceSend": (10, 30, 180),
    "invoiceStatus": (30, 120, 1200),
    "sessionList": (5, 10, 60),
    "sessionInvoiceList": (10, 20, 200),
    "sessionMisc": (10, 120, 1200),
    "invoiceMetadata": (8, 16, 20),
    "invoiceExport": (8, 16, 20),
    "invoiceExportStatus": (10, 60, 600),
    "invoiceDownload": (8, 16, 64),
    "other": (10, 30, 120),
}
# /auth/*, public keys and /testdata/* document only a per-second limit.
DEFAULT_AUTH_PER_SECOND = 60


class ConfigError(Exception):
    """The configuration file or an admin request names an unknown or ill-typed setting."""


@dataclass
class Faults:
    """Ways to make the simulator misbehave; all off by default."""

    latency_ms: float = 0.0  # added to every /v2 request (asyncio.sleep, never blocks others)
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # share of /v2 requests answered 500 before any work is done
    drop_rate: float = 0.0  # share of /v2 requests whose connection is closed without an answer
    drop_after_commit: int = 0  # the next N POST /tokens create the token, then drop the connection
    drop_after_commit_rate: float = 0.0  # same, as a share of all POST /tokens
    storm_rate: float = 0.0  # share of /v2 requests answered 429 regardless of limits
    storm_retry_after: int = 1  # Retry-After sent with storm 429s
    path_prefix: str = "/v2"  # faults above apply only to paths starting with this
    activation_delay_s: float = 0.5  # Pending -> Active/Failed after this long
    revocation_delay_s: float = 0.5  # Revoking -> Revoked after this long
    failed_activation_rate: float = 0.0  # share of new tokens that end Failed instead of Active
    auth_delay_s: float = 0.0  # GET /auth/{ref} answers 100 for this long
    system_warning: str = ""  # sent as X-System-Warning on every /v2 answer ("[code]: message")
    permission_delay_s: float = 0.5  # a permission grant/revoke answers 100 for this long
    enrollment_delay_s: float = 0.5  # a certificate enrolment answers 100 for this long
    failed_enrollment_rate: float = 0.0  # share of enrolments that end 500 instead of 200

    def merged(self, changes: dict[str, Any]) -> Faults:
        return dataclasses.replace(self, **_checked(Faults, changes))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    state_file: str | None = None
    seed: int = 0  # seeds every random choice a fault makes, so test runs repeat
    faults: Faults = field(default_factory=Faults)
    rate_limits_enabled: bool = True
    # Global overrides of the documented defaults, e.g. {"other": [1000, 100000, 1000000]}.
    rate_limits: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    auth_per_second: int = DEFAULT_AUTH_PER_SECOND
    challenge_ttl_s: float = 600.0
    authentication_token_ttl_s: float = 900.0
    access_token_ttl_s: float = 900.0
    refresh_token_ttl_s: float = 7 * 24 * 3600.0
    auth_operation_ttl_s: float = 7 * 24 * 3600.0
    access_log: bool = False
    # Public-key rotation steps run at start, in order (keys.RotationStep), e.g.
    # [{"action": "publish"}, {"action": "retire"}]: an emergency rotation.
    public_keys: tuple[RotationStep, ...] = ()

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> SimConfig:
        data = dict(data)
        faults = Faults().merged(data.pop("faults", None) or {})
        limits = dict(DEFAULT_RATE_LIMITS)
        for group, values in (data.pop("rate_limits", None) or {}).items():
            if group not in limits:
                raise ConfigError(f"unknown rate-limit group {group!r}")
            if isinstance(values, dict):
                values = [values["perSecond"], values["perMinute"], values["perHour"]]
            per_second, per_minute, per_hour = (int(v) for v in values)
            limits[group] = (per_second, per_minute, per_hour)
        try:
            steps = tuple(RotationStep.parse(step) for step in data.pop("public_keys", None) or ())
        except (TypeError, ValueError) as error:
            raise ConfigError(f"public_keys: {error}") from None
        return cls(faults=faults, rate_limits=limits, public_keys=steps, **_checked(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> SimConfig:
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: not valid YAML/JSON ({error})") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        return cls.from_mapping(data)


def _checked(kind: type[Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown names and coerce numbers, so a typo never silently does nothing."""
    known = {f.name: f for f in dataclasses.fields(kind)}
    result: dict[str, Any] = {}
    for name, value in changes.items():
        spec = known.get(name)
        if spec is None or name in ("faults", "rate_limits", "public_keys"):
            raise ConfigError(f"unknown setting {name!r}")
        expected = str(spec.type)
        try:
            if expected == "float":
                value = float(value)
            elif expected == "int":
                value = int(value)
            elif expected == "bool":
                if not isinstance(value, bool):
                    raise TypeError
            elif expected == "str":
                value = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name!r} needs a {expected}, not {value!r}") from None
        result[name] = value
    return result
