"""Validated parameters of the command line: every bad value is one line naming the option and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .backend import DEVICES, cuda_available
from .studies import SCALES, all_studies
from .validation import POSITIVE_INT, Options, check


class ConfigError(ValueError):
    """A bad value of the option ``param``; ``str()`` is the one-line message shown to the user."""

    def __init__(self, param: str, message: str):
        self.param, self.message = param, message
        super().__init__(f"--{param}: {message}")


class ReproduceConfig(BaseModel):
    """Options of ``overparam reproduce``."""

    model_config = ConfigDict(frozen=True)

    studies: list[str] = []
    scale: str = "quick"
    out: Path = Path("overparam-results")
    device: str = "cpu"
    workers: int = os.cpu_count() or 1
    scheduler: str | None = None
    quiet: bool = False

    @field_validator("studies")
    @classmethod
    def _known_studies(cls, v: list[str]) -> list[str]:
        known = all_studies()
        for name in v:
            if name not in known:
                raise ValueError(f"unknown study {name!r}; known: {', '.join(known)}")
        return v or list(known)

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: str) -> str:
        return check_option("scale", v, Options(SCALES))

    @field_validator("out")
    @classmethod
    def _out(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{str(v)!r} is a file; give a folder (it is created when missing)")
        parent = next((p for p in [v, *v.parents] if p.exists()), Path("."))
        if not os.access(parent, os.W_OK):
            raise ValueError(f"{str(v)!r} cannot be written (no write permission on {str(parent)!r})")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v.split(":")[0] not in DEVICES:
            raise ValueError(f"must be one of {', '.join(DEVICES)} (got {v!r})")
        if v.startswith("cuda") and not cuda_available():
            raise ValueError("'cuda' was asked for but torch finds no CUDA GPU on this machine; use --device cpu")
        return v

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: object) -> int:
        try:
            v = int(str(v))  # the command line gives text
        except ValueError:
            pass
        return check_option("workers", v, POSITIVE_INT)

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must be a Dask scheduler address such as tcp://127.0.0.1:8786")
        return v


def check_option(name: str, value: object, spec) -> object:
    """:func:`overparam.validation.check` (the library's one mechanism), its message without the name, which
    :class:`ConfigError` writes as the option ``--name``."""
    try:
        return check(name, value, spec)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix(f"{name}: ")) from None


def validate(model: type[BaseModel], **values: object) -> BaseModel:
    """Build ``model`` from ``values``; the first problem is raised as a :class:`ConfigError`."""
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = str(err["loc"][0]) if err["loc"] else "?"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(param, msg) from None
