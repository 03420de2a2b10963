"""Measuring the engine on a labeled set: pure arithmetic over (expected, got) pairs, no I/O.

`tiswatch eval` and the goal test feed it; the figures it computes are the ones the issue names:
- flag precision and recall, where a listing is *flagged* when its verdict is unlicensed,
  mislabeled or needs_review (DOMAIN.md §3);
- precision, recall and F1 per verdict and their macro average over the five verdicts (a verdict
  that neither occurs in the truth nor is ever predicted is left out of the average rather than
  counted as a perfect 1.0 or a 0.0);
- standard accuracy: among listings whose truth names a standard, the share for which the engine
  names the same one (compared by base number, so an older edition of the same standard counts);
- licence accuracy: among listings whose truth is controlled (any verdict but not_controlled), the
  share for which the engine names the same licence, both None included;
- the confusion matrix, and the worst mistakes first (a missed flag, then a false flag by risk, then
  a wrong verdict among flags, then a wrong standard or licence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matching.verdict import FLAGGED, VERDICTS
from registry.tisno import parse_tis


@dataclass(frozen=True, slots=True)
class Case:
    """One checked listing of an evaluation file: what the truth says and what the engine said."""

    key: str  # marketplace:item_id
    title: str
    expected: Mapping[str, Any]  # verdict, tis_no, licence_no
    got: Mapping[str, Any]  # the §4.3 record: verdict, risk, tis_no, licence_no, reasons
    line: int = 0


@dataclass(frozen=True, slots=True)
class PRF:
    support: int  # cases whose truth is this class
    predicted: int  # cases the engine put in this class
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None and r is None:
            return None
        p, r = p or 0.0, r or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Mistake:
    case: Case
    kind: str  # missed_flag, false_flag, wrong_verdict, wrong_standard, wrong_licence
    severity: float


@dataclass
class Report:
    n: int
    flag: PRF
    per_verdict: dict[str, PRF]
    macro_f1: float | None
    verdict_accuracy: float | None
    standard: tuple[int, int]  # (correct, of)
    licence: tuple[int, int]
    confusion: dict[str, dict[str, int]]  # expected -> got -> count
    mistakes: list[Mistake] = field(default_factory=list)
    no_reason: int = 0  # verdicts without a reason code (must be 0)

    @property
    def standard_accuracy(self) -> float | None:
        return self.standard[0] / self.standard[1] if self.standard[1] else None

    @property
    def licence_accuracy(self) -> float | None:
        return self.licence[0] / self.licence[1] if self.licence[1] else None

    def worst(self, k: int = 20) -> list[Mistake]:
        return self.mistakes[:k]

    def as_dict(self, worst: int = 20) -> dict[str, Any]:
        def prf(x: PRF) -> dict[str, Any]:
            return {"support": x.support, "predicted": x.predicted, "correct": x.correct,
                    "precision": _r(x.precision), "recall": _r(x.recall), "f1": _r(x.f1)}

        return {
            "listings": self.n,
            "flag": prf(self.flag),
            "per_verdict": {v: prf(p) for v, p in self.per_verdict.items()},
            "macro_f1": _r(self.macro_f1),
            "verdict_accuracy": _r(self.verdict_accuracy),
            "standard_accuracy": _r(self.standard_accuracy), "standard_of": self.standard[1],
            "licence_accuracy": _r(self.licence_accuracy), "licence_of": self.licence[1],
            "confusion": self.confusion,
            "no_reason": self.no_reason,
            "mistakes": len(self.mistakes),
            "worst": [{"key": m.case.key, "line": m.case.line, "kind": m.kind, "title": m.case.title,
                       "expected": dict(m.case.expected), "got": dict(m.case.got)} for m in self.worst(worst)],
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def same_standard(a: str | None, b: str | None) -> bool:
    """Two TIS numbers name the same standard: both None, or the same base (any edition year)."""
    if not a or not b:
        return not a and not b
    ta, tb = parse_tis(a), parse_tis(b)
    if ta is None or tb is None:
        return a == b
    return ta.base == tb.base


def _classify(c: Case) -> Mistake | None:
    ev, gv = c.expected.get("verdict"), c.got.get("verdict")
    risk = float(c.got.get("risk") or 0)
    if ev in FLAGGED and gv not in FLAGGED:
        return Mistake(c, "missed_flag", 4.0 + (1.0 - risk / 100))
    if ev not in FLAGGED and gv in FLAGGED:
        return Mistake(c, "false_flag", 3.0 + risk / 100)
    if ev != gv:
        return Mistake(c, "wrong_verdict", 2.0 + risk / 100)
    if not same_standard(c.expected.get("tis_no"), c.got.get("tis_no")):
        return Mistake(c, "wrong_standard", 1.5)
    if ev != "not_controlled" and (c.expected.get("licence_no") or None) != (c.got.get("licence_no") or None):
        return Mistake(c, "wrong_licence", 1.0)
    return None


def evaluate(cases: Iterable[Case]) -> Report:
    cases = list(cases)
    confusion = {e: dict.fromkeys(VERDICTS, 0) for e in VERDICTS}
    f_support = f_pred = f_correct = 0
    std_ok = std_of = lic_ok = lic_of = no_reason = 0
    mistakes: list[Mistake] = []
    for c in cases:
        ev, gv = c.expected["verdict"], c.got["verdict"]
        confusion.setdefault(ev, dict.fromkeys(VERDICTS, 0))
        confusion[ev][gv] = confusion[ev].get(gv, 0) + 1
        ef, gf = ev in FLAGGED, gv in FLAGGED
        f_support += ef
        f_pred += gf
        f_correct += ef and gf
        if c.expected.get("tis_no"):
            std_of += 1
            std_ok += same_standard(c.expected["tis_no"], c.got.get("tis_no"))
        if ev != "not_controlled":
            lic_of += 1
            lic_ok += (c.expected.get("licence_no") or None) == (c.got.get("licence_no") or None)
        if not c.got.get("reasons"):
            no_reason += 1
        m = _classify(c)
        if m is not None:
            mistakes.append(m)
    per: dict[str, PRF] = {}
    for v in VERDICTS:
        support = sum(confusion.get(v, {}).values())
        predicted = sum(row.get(v, 0) for row in confusion.values())
        per[v] = PRF(support, predicted, confusion.get(v, {}).get(v, 0))
    f1s = [p.f1 for p in per.values() if p.f1 is not None]
    mistakes.sort(key=lambda m: (-m.severity, m.case.line, m.case.key))
    correct = sum(confusion[v].get(v, 0) for v in confusion)
    return Report(
        n=len(cases), flag=PRF(f_support, f_pred, f_correct), per_verdict=per,
        macro_f1=sum(f1s) / len(f1s) if f1s else None,
        verdict_accuracy=correct / len(cases) if cases else None,
        standard=(std_ok, std_of), licence=(lic_ok, lic_of), confusion=confusion,
        mistakes=mistakes, no_reason=no_reason)


def fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def goals_met(report: Report, goals: Sequence[tuple[str, float]]) -> list[tuple[str, float | None, float, bool]]:
    """Compare figures with goals [(name, minimum)]: name is 'flag_precision', 'flag_recall',
    'macro_f1', 'standard_accuracy' or 'licence_accuracy'."""
    figures = {"flag_precision": report.flag.precision, "flag_recall": report.flag.recall,
               "macro_f1": report.macro_f1, "standard_accuracy": report.standard_accuracy,
               "licence_accuracy": report.licence_accuracy}
    out = []
    for name, minimum in goals:
        x = figures[name]
        out.append((name, x, minimum, x is not None and x >= minimum))
    return out
