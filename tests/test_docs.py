"""docs/model.md stays true: its links stay inside the repository and resolve, and its hand-checkable
examples (§4.5, §10) are what the code computes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from hgc.analytic import Evaluator
from hgc.codes import build_code
from hgc.config import config_from_mapping
from hgc.schemes import make_strategy

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "docs" / "model.md", REPO / "README.md", REPO / "docs" / "cli.md", REPO / "docs" / "limits.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than '-' dropped, spaces to '-'."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_links_stay_in_the_repository_and_resolve(path):
    text = path.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        assert not re.match(r"[a-z]+:", target), f"{path.name}: link leaves the repository: {target}"
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.is_file(), f"{path.name}: broken link {target}"
        assert REPO in linked.parents, f"{path.name}: link leaves the repository: {target}"
        if anchor:
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), f"{path.name}: no anchor {target}"


def _model(workers, compute):
    return config_from_mapping({"name": "x", "topology": {"edges": len(workers), "workers": list(workers)},
                                "timing": {"worker": {"compute": compute}}, "schemes": ["uncoded"]})


def test_section_10_1_two_by_two_by_hand():
    config = _model([2, 2], {"dist": "exponential", "mean": 1.0})
    evaluator = Evaluator(config.timing)
    H = lambda n: sum(1 / j for j in range(1, n + 1))  # noqa: E731
    cases = {("uncoded", ()): H(4) / 4, ("hgc", (0, 1)): H(2) / 4, ("hgc", (1, 0)): (2 - 4 / 3 + 1 / 4) / 2,
             ("hgc", (1, 1)): 0.25, ("flat_gc", (1,)): (H(4) - H(1)) / 2, ("flat_gc", (2,)): 0.75 * (H(4) - H(2))}
    for (kind, tol), hand in cases.items():
        kwargs = dict(zip(("s_e", "s_w"), tol)) if kind == "hgc" else ({"s": tol[0]} if tol else {})
        result = evaluator.evaluate(make_strategy(kind, config.topology, **kwargs))
        assert result.expected_time == pytest.approx(hand, rel=1e-4), (kind, tol)      # the default rtol
        assert abs(result.expected_time - hand) <= result.error_estimate, (kind, tol)  # an honest estimate


def test_section_10_4_bimodal_best_tolerance_is_4():
    config = _model([10], {"dist": "bimodal", "p": 0.1, "fast": {"dist": "constant", "value": 1.0},
                           "slow": {"dist": "constant", "value": 100.0}})
    evaluator = Evaluator(config.timing)
    exact = [(s + 1) / 10 * (1 + 99 * binom.sf(s, 10, 0.1)) for s in range(10)]
    analytic = [evaluator.evaluate(make_strategy("flat_gc", config.topology, s=s)).expected_time for s in range(10)]
    np.testing.assert_allclose(analytic, exact, rtol=1e-4)
    assert int(np.argmin(exact)) == int(np.argmin(analytic)) == 4


def test_section_4_5_code_by_hand():
    code = build_code("flat_gc", [3], s=1)
    assert code.construction == "polynomial" and code.n_partitions == 3
    # encoding is (workers, partitions, chunks); one chunk without message reduction
    np.testing.assert_allclose(code.encoding[:, :, 0], [[1, 0.5, 0], [1, 0, -1], [0, -0.5, -1]], atol=1e-12)
    np.testing.assert_allclose(code.decoding_weights(np.array([1, 2]))[0], [0, 1, -2], atol=1e-12)
    np.testing.assert_allclose(code.decoding_weights(np.array([0, 2]))[0], [1, 0, -1], atol=1e-12)
