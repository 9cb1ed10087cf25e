"""The SMS classifier holds the bar on the labelled citizen texts (tests/data/): precision and recall of at least
0.9 per category, non-reports included. A quality bar, not a timing test; bench/triage.py prints the figures."""

import pytest

from tests.fixtures.triage_eval import CLASSES, evaluate, load

BAR = 0.9


@pytest.fixture(scope="module")
def scores():
    return evaluate(load())


@pytest.mark.parametrize("cls", CLASSES)
def test_precision_and_recall_per_category(scores, cls: str) -> None:
    assert scores.precision(cls) >= BAR, f"{cls}: precision {scores.precision(cls):.3f}"
    assert scores.recall(cls) >= BAR, f"{cls}: recall {scores.recall(cls):.3f}"


def test_the_set_is_large_and_covers_every_class(scores) -> None:
    assert scores.n >= 200
    assert all(scores.support(cls) >= 20 for cls in CLASSES)


def test_places_are_recognised(scores) -> None:
    assert scores.area_ok / scores.areas >= BAR and scores.false_areas == 0
