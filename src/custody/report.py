"""Verification reports: the list of checks a verifier ran, so a person can see what was proven.

Verifiers return a :class:`Report` rather than raising at the first problem: ``bwc verify`` prints
every check, and the first failure names the check (and the segment, when there is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from custody.errors import IntegrityError, SignatureError

#: checks whose failure means the signer cannot be trusted, raised as SignatureError
SIGNATURE_CHECKS = frozenset({"signer", "signature", "checkpoint signer", "checkpoint signature"})


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    segment: int | None = None

    def describe(self) -> str:
        where = f"segment {self.segment}: " if self.segment is not None else ""
        return f"{where}{self.name}: {self.detail}"


@dataclass
class Report:
    subject: str
    checks: list[Check] = field(default_factory=list)

    def passed(self, name: str, detail: str, segment: int | None = None) -> None:
        self.checks.append(Check(name, True, detail, segment))

    def failed(self, name: str, detail: str, segment: int | None = None) -> None:
        self.checks.append(Check(name, False, detail, segment))

    def extend(self, other: Report) -> None:
        self.checks.extend(other.checks)

    @property
    def ok(self) -> bool:
        """True only when at least one check ran and every check held."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def first_failure(self) -> Check | None:
        return next((check for check in self.checks if not check.ok), None)

    def has_failed(self, name: str) -> bool:
        return any(check.name == name and not check.ok for check in self.checks)

    def raise_for_failure(self) -> None:
        """Raise SignatureError or IntegrityError naming the first failed check, if any."""
        first = self.first_failure
        if first is not None:
            error = SignatureError if first.name in SIGNATURE_CHECKS else IntegrityError
            raise error(f"{self.subject}: {first.describe()}")
        if not self.checks:
            raise IntegrityError(f"{self.subject}: nothing was checked")
