"""The evaluation arithmetic, with cases small enough to count by hand."""

import pytest

from matching.evaluate import Case, evaluate, goals_met, same_standard


def case(exp, got, tis=None, lic=None, gtis=None, glic=None, risk=50, reasons=("r",), line=0):
    return Case(f"t:{line}", f"title {line}", {"verdict": exp, "tis_no": tis, "licence_no": lic},
                {"verdict": got, "risk": risk, "tis_no": gtis, "licence_no": glic, "reasons": list(reasons)}, line)


def test_flag_precision_and_recall_counted_by_hand():
    cases = [
        case("unlicensed", "unlicensed"),       # flagged, caught
        case("mislabeled", "needs_review"),     # flagged, caught (a flag is a flag)
        case("needs_review", "licensed"),       # flagged, missed
        case("licensed", "unlicensed"),         # false flag
        case("not_controlled", "not_controlled"),
        case("licensed", "licensed"),
    ]
    r = evaluate(cases)
    assert (r.flag.support, r.flag.predicted, r.flag.correct) == (3, 3, 2)
    assert r.flag.precision == pytest.approx(2 / 3) and r.flag.recall == pytest.approx(2 / 3)
    assert r.confusion["mislabeled"]["needs_review"] == 1
    assert r.verdict_accuracy == pytest.approx(3 / 6)


@pytest.mark.parametrize("verdict, support, predicted, correct, p, rec", [
    ("licensed", 3, 2, 2, 1.0, 2 / 3),
    ("unlicensed", 1, 2, 1, 0.5, 1.0),
    ("not_controlled", 1, 1, 1, 1.0, 1.0),
    ("mislabeled", 0, 0, 0, None, None),
    ("needs_review", 0, 0, 0, None, None),
])
def test_per_verdict(verdict, support, predicted, correct, p, rec):
    cases = [case("licensed", "licensed"), case("licensed", "licensed"), case("licensed", "unlicensed"),
             case("unlicensed", "unlicensed"), case("not_controlled", "not_controlled")]
    x = evaluate(cases).per_verdict[verdict]
    assert (x.support, x.predicted, x.correct) == (support, predicted, correct)
    assert x.precision == (pytest.approx(p) if p is not None else None)
    assert x.recall == (pytest.approx(rec) if rec is not None else None)


def test_macro_f1_leaves_out_verdicts_that_never_occur():
    cases = [case("licensed", "licensed"), case("licensed", "unlicensed"), case("unlicensed", "unlicensed")]
    r = evaluate(cases)
    f_lic = 2 * 1.0 * 0.5 / 1.5
    f_unl = 2 * 0.5 * 1.0 / 1.5
    assert r.macro_f1 == pytest.approx((f_lic + f_unl) / 2)
    # a verdict predicted but never true counts, with F1 0
    r2 = evaluate(cases + [case("licensed", "needs_review")])
    assert r2.per_verdict["needs_review"].f1 == 0.0
    assert r2.macro_f1 < r.macro_f1


@pytest.mark.parametrize("a, b, same", [
    ("2432-2555", "2432-2555", True),
    ("2432-2555", "2432-2550", True),            # another edition of the same standard
    ("685 เล่ม 1-2562", "685 เล่ม 1-2550", True),
    ("685 เล่ม 1-2562", "685 เล่ม 2-2562", False),  # another part is another standard
    ("2432-2555", "166-2549", False),
    (None, None, True), (None, "166-2549", False), ("166-2549", None, False),
])
def test_same_standard(a, b, same):
    assert same_standard(a, b) is same


def test_standard_and_licence_accuracy():
    cases = [
        case("licensed", "licensed", "2879-2560", "ท1-1/1", "2879-2560", "ท1-1/1"),
        case("licensed", "licensed", "2879-2560", "ท1-1/1", "2879-2560", "ท9-9/9"),   # wrong licence
        case("unlicensed", "unlicensed", "934-2558", None, "166-2549", None),        # wrong standard
        case("not_controlled", "not_controlled"),                                    # counts for neither
    ]
    r = evaluate(cases)
    assert r.standard == (2, 3) and r.licence == (2, 3)
    kinds = [m.kind for m in r.mistakes]
    assert kinds == ["wrong_standard", "wrong_licence"]


def test_worst_mistakes_come_first():
    cases = [
        case("licensed", "licensed", "1-2550", "a", "1-2550", "b", line=1),   # wrong licence
        case("licensed", "unlicensed", risk=40, line=2),                      # false flag
        case("licensed", "mislabeled", risk=95, line=3),                      # false flag, higher risk
        case("unlicensed", "licensed", risk=5, line=4),                       # missed flag
        case("unlicensed", "mislabeled", line=5),                             # wrong verdict among flags
    ]
    r = evaluate(cases)
    assert [m.case.line for m in r.mistakes] == [4, 3, 2, 5, 1]
    assert [m.kind for m in r.worst(2)] == ["missed_flag", "false_flag"]


def test_verdicts_without_reasons_are_counted():
    r = evaluate([case("licensed", "licensed", reasons=()), case("licensed", "licensed")])
    assert r.no_reason == 1


def test_empty_and_goals():
    r = evaluate([])
    assert r.n == 0 and r.flag.precision is None and r.macro_f1 is None
    r = evaluate([case("unlicensed", "unlicensed"), case("licensed", "unlicensed")])
    got = {name: ok for name, _, _, ok in goals_met(r, [("flag_recall", 0.98), ("flag_precision", 0.97)])}
    assert got == {"flag_recall": True, "flag_precision": False}


def test_as_dict_is_json_ready():
    import json

    r = evaluate([case("unlicensed", "licensed", line=7)])
    d = json.loads(json.dumps(r.as_dict()))
    assert d["worst"][0]["kind"] == "missed_flag" and d["worst"][0]["line"] == 7
    assert d["flag"]["recall"] == 0.0 and d["confusion"]["unlicensed"]["licensed"] == 1
