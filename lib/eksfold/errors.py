"""The exception hierarchy: one root, subclasses that carry what a user needs to act."""
from __future__ import annotations


class EksfoldError(Exception):
    """Root of every error eksfold raises on purpose."""


class ConfigError(EksfoldError):
    """A run configuration, preset or option is invalid."""


class TargetError(EksfoldError):
    """One target's input is unusable; the rest of a run goes on."""

    def __init__(self, target: str, problem: str):
        self.target, self.problem = target, problem
        super().__init__(f"target {target!r}: {problem}")


class ResourceError(EksfoldError):
    """A unit does not fit the resources here (memory): not bad input, so it is retryable on a
    bigger node or with more memory free; carries what was predicted and what was available."""

    def __init__(self, target: str, problem: str, predicted_mb: float | None = None,
                 available_mb: float | None = None):
        self.target, self.problem = target, problem
        self.predicted_mb, self.available_mb = predicted_mb, available_mb
        fmt = (lambda mb: "unknown" if mb is None else f"{mb:,.0f} MB")
        super().__init__(f"target {target!r}: {problem} (predicted {fmt(predicted_mb)}, "
                         f"available {fmt(available_mb)}; retry on a node with more memory)")


class ToolError(EksfoldError):
    """An external program (jackhmmer, hhblits, ...) exited non-zero."""

    def __init__(self, tool: str, exit_code: int, stderr_tail: str = ""):
        self.tool, self.exit_code, self.stderr_tail = tool, exit_code, stderr_tail
        msg = f"{tool} exited with code {exit_code}"
        super().__init__(msg + (f":\n{stderr_tail}" if stderr_tail else ""))


class UnitError(EksfoldError):
    """A work unit (stage, target) failed."""

    def __init__(self, stage: str, target: str, exit_code: int | None = None,
                 stderr_tail: str = "", reason: str = ""):
        self.stage, self.target = stage, target
        self.exit_code, self.stderr_tail, self.reason = exit_code, stderr_tail, reason
        what = reason or (f"exit code {exit_code}" if exit_code is not None else "failed")
        super().__init__(f"{stage} of target {target!r}: {what}")


class StorageError(EksfoldError):
    """A run root or object store cannot be used; ``hint`` says what to do."""

    def __init__(self, uri: str, problem: str, hint: str = "", retryable: bool = False):
        # retryable: the same command may succeed later as it is (e.g. once space is freed)
        self.uri, self.problem, self.hint, self.retryable = uri, problem, hint, retryable
        super().__init__(f"{uri}: {problem}" + (f" ({hint})" if hint else ""))


class MissingDependencyError(EksfoldError, ImportError):
    """An optional part needs a package that is not installed."""

    def __init__(self, package: str, hint: str = ""):
        self.package = package
        super().__init__(f"{package} is required for this feature. {hint or 'Run: make setup'}")
