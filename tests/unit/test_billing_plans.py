"""Plans files: the packaged defaults and clear FormatErrors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from billing.errors import FormatError, UnknownPlan
from billing.plans import Plans


def test_defaults_follow_the_contract() -> None:
    plans = Plans.load()
    assert plans.names == ("basic", "standard", "premium", "enterprise")
    assert plans.default_name == "basic"
    basic, ent = plans.get("basic"), plans.get("enterprise")
    assert (basic.max_timeout_ms, basic.max_memory_bytes) == (10_000, 128 << 20)
    assert plans.get("standard").max_timeout_ms == 30_000
    assert plans.get("premium").max_memory_bytes == 512 << 20
    assert (ent.max_timeout_ms, ent.max_memory_bytes) == (300_000, 1 << 30)
    assert basic.allowed_modules == ("path", "util", "crypto")
    assert "child_process" in plans.get("premium").allowed_modules
    assert ent.allowed_modules == ("*",)
    assert basic.price_per_cpu_second == Decimal("0.0001")
    assert ent.price_per_mb == Decimal("0.0002")
    assert basic.price_per_execution == 0
    assert ent.monthly_budget is None
    assert basic.rate_per_second > 0
    assert basic.burst >= 1
    with pytest.raises(UnknownPlan):
        plans.get("gold")


def _doc() -> dict[str, object]:
    return {
        "default": "p",
        "plans": {
            "p": {
                "max_timeout_ms": 1000,
                "max_memory_bytes": 1 << 20,
                "price_per_cpu_second": "0.1",
                "price_per_mb": 0.01,
                "rate_per_second": 1,
                "burst": 1,
            }
        },
    }


def test_custom_file(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_bytes(orjson.dumps(_doc()))
    plan = Plans.load(path).get("p")
    assert plan.price_per_mb == Decimal("0.01")
    assert plan.monthly_budget is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["plans"]["p"].pop("price_per_mb"), "plans.p.price_per_mb: Field required"),
        (lambda d: d["plans"]["p"].update(price_per_mb="cheap"), "plans.p.price_per_mb"),
        (lambda d: d["plans"]["p"].update(burst=0), "plans.p.burst"),
        (lambda d: d["plans"]["p"].update(colour="red"), "plans.p.colour"),
        (lambda d: d.update(default="q"), "default plan 'q' is not defined"),
        (lambda d: d.pop("plans"), "plans: Field required"),
        (lambda d: d.update(plans={}), "no plans defined"),
    ],
)
def test_format_errors_name_the_field(tmp_path: Path, mutate: object, message: str) -> None:
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "plans.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(FormatError, match=r"plans\.json") as info:
        Plans.load(path)
    assert message in str(info.value)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text("{nope")
    with pytest.raises(FormatError, match="not JSON"):
        Plans.load(path)
    with pytest.raises(FormatError, match="cannot read"):
        Plans.load(tmp_path / "missing.json")
