"""The scenario model: what ``scenarios.yaml`` may say, validated (pure).

Every mistake raises :class:`ScenarioFileError` with a message naming the file, the scenario
and the key (``scenarios.yaml: scenario 'home', stages[0].sources[1].weight: ...``). The
format is documented in the shipped ``scenarios.yaml`` and ``docs/scenarios.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.core.ids import InvalidInput, valid_id
from pipeline.features.scenarios.filters import Condition, parse_condition

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARAM_KINDS = ("number", "string", "bool", "list")
# Request parameters every scenario understands; declared parameters may not reuse them.
RESERVED_PARAMS = frozenset(
    {
        "scenario",
        "user_id",
        "item_id",
        "n",
        "exclude",
        "fields",
        "category",
        "exclude_category",
        "exclude_viewed",
        "api_key",
        "context",
    }
)


class ScenarioFileError(ValueError):
    """``scenarios.yaml`` does not describe usable scenarios; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonalSource(_Strict):
    """The user's for-you list as the personal agent keeps it."""

    source: Literal["personal"]
    weight: float = Field(1.0, gt=0)


class RelatedSource(_Strict):
    """Items related to the context items (``of: context``) or to the user's latest items
    (``of: history``); ``relation`` one of the learned relations, or all blended, or
    ``similar_content`` (items similar by text: the content feature)."""

    source: Literal["related"]
    weight: float = Field(1.0, gt=0)
    relation: (
        Literal["also_clicked", "also_bought", "viewed_then_bought", "similar_content"] | None
    ) = None
    of: Literal["context", "history"] = "context"
    anchors: int = Field(5, ge=1, le=20)


class TrendingSource(_Strict):
    """Trending items of one kind and window (the first configured when omitted), of all
    items, of a fixed category, or of the context items' categories (``category: context``)."""

    source: Literal["trending"]
    weight: float = Field(1.0, gt=0)
    kind: str | None = None
    window: str | None = None
    category: str | None = None


class HistorySource(_Strict):
    """The user's own recent items, newest first ("recently viewed")."""

    source: Literal["history"]
    weight: float = Field(1.0, gt=0)
    types: list[str] = Field(default_factory=lambda: ["click"])


class NewItemsSource(_Strict):
    """The newest items of the catalog (by ``created_at``), of all items, a fixed category
    or the context items' categories."""

    source: Literal["new_items"]
    weight: float = Field(1.0, gt=0)
    category: str | None = None


class EditorialSource(_Strict):
    """A fixed list, in the order given."""

    source: Literal["editorial"]
    weight: float = Field(1.0, gt=0)
    items: list[str] = Field(min_length=1, max_length=500)

    @field_validator("items")
    @classmethod
    def _valid_ids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not valid_id(item)]
        if bad:
            raise ValueError(f"invalid item ids {bad[:3]}")
        return value


SourceSpec = Annotated[
    PersonalSource
    | RelatedSource
    | TrendingSource
    | HistorySource
    | NewItemsSource
    | EditorialSource,
    Field(discriminator="source"),
]


class StageSpec(_Strict):
    name: str
    sources: list[SourceSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("stage names use letters, digits, _ and - (at most 64)")
        return value


class FilterSpec(_Strict):
    exclude_viewed: bool = False
    available_only: bool = True
    categories: list[str] = Field(default_factory=list)
    exclude_categories: list[str] = Field(default_factory=list)
    where: list[str] = Field(default_factory=list)
    max_per_category: int = Field(default=0, ge=0)
    max_per_attribute: dict[str, int] = Field(default_factory=dict)

    @field_validator("categories", "exclude_categories")
    @classmethod
    def _category_ids(cls, value: list[str]) -> list[str]:
        bad = [category for category in value if not valid_id(category)]
        if bad:
            raise ValueError(f"invalid category ids {bad[:3]}")
        return value


class ReservedSpec(_Strict):
    """Slots reserved for a promotion or for exploration: ``share`` of the list, filled from
    ``sources`` with the scenario's filters narrowed by ``categories`` and ``where``."""

    name: str
    share: float = Field(gt=0, le=1)
    sources: list[SourceSpec] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    where: list[str] = Field(default_factory=list)


class ExplorationSpec(_Strict):
    share: float = Field(gt=0, le=1)
    category: str | None = None


class ParamSpec(_Strict):
    type: Literal["number", "string", "bool", "list"]
    description: str = ""
    required: bool = False


class ScenarioSpec(_Strict):
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    filters: FilterSpec = Field(default_factory=lambda: FilterSpec())
    stages: list[StageSpec] = Field(min_length=1)
    promotions: list[ReservedSpec] = Field(default_factory=list)
    exploration: ExplorationSpec | None = None
    # Re-order the answer with the click model (the ranking feature) for the user in the
    # request's context (device, page, hour, weekday); reserved slots keep their places.
    rerank: Literal["ranking"] | None = None


class ScenariosDocument(_Strict):
    scenarios: dict[str, ScenarioSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Reserved:
    name: str
    share: float
    sources: tuple[SourceSpec, ...]
    categories: tuple[str, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One validated scenario, its conditions parsed."""

    name: str
    spec: ScenarioSpec
    conditions: tuple[Condition, ...]
    promotions: tuple[Reserved, ...]

    @property
    def stages(self) -> list[StageSpec]:
        return self.spec.stages

    def describe(self) -> dict[str, Any]:
        """The scenario as ``GET /v1/scenarios`` shows it."""
        return {"name": self.name, **self.spec.model_dump(exclude_none=True)}


def _where(
    entries: list[str], declared: set[str], where: str, scenario: str, path: Path
) -> tuple[Condition, ...]:
    conditions = []
    for index, text in enumerate(entries):
        try:
            conditions.append(parse_condition(text, declared))
        except InvalidInput as exc:
            raise ScenarioFileError(
                f"{path}: scenario {scenario!r}, {where}[{index}]: {exc}"
            ) from None
    return tuple(conditions)


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def parse_scenarios(document: Any, path: Path) -> dict[str, Scenario]:
    """Validate a decoded ``scenarios.yaml``; :class:`ScenarioFileError` says where it fails."""
    try:
        parsed = ScenariosDocument.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first.get("loc", ()))
        if len(loc) >= 2 and loc[0] == "scenarios":
            where = f"scenario {loc[1]!r}, {_location(loc[2:]) or 'the scenario'}"
        else:
            where = _location(loc) or "the document"
        raise ScenarioFileError(f"{path}: {where}: {first.get('msg', 'invalid')}") from None
    scenarios = {}
    for name, spec in parsed.scenarios.items():
        if not NAME.match(name):
            raise ScenarioFileError(
                f"{path}: scenario {name!r}: names use letters, digits, _ and - (at most 64)"
            )
        reused = RESERVED_PARAMS & set(spec.params)
        bad_names = [p for p in spec.params if not re.match(r"^[A-Za-z_]\w{0,63}$", p)]
        if reused or bad_names:
            raise ScenarioFileError(
                f"{path}: scenario {name!r}, params: {sorted(reused or bad_names)} "
                "cannot be declared (reserved, or not a plain name)"
            )
        stage_names = [stage.name for stage in spec.stages]
        if len(set(stage_names)) != len(stage_names):
            raise ScenarioFileError(f"{path}: scenario {name!r}, stages: names must differ")
        declared = set(spec.params)
        conditions = _where(spec.filters.where, declared, "filters.where", name, path)
        promotions = []
        for index, promotion in enumerate(spec.promotions):
            promotions.append(
                Reserved(
                    promotion.name,
                    promotion.share,
                    tuple(promotion.sources) or (TrendingSource(source="trending", weight=1.0),),
                    tuple(promotion.categories),
                    _where(promotion.where, declared, f"promotions[{index}].where", name, path),
                )
            )
        shares = sum(p.share for p in spec.promotions) + (
            spec.exploration.share if spec.exploration else 0.0
        )
        if shares > 1.0:
            raise ScenarioFileError(
                f"{path}: scenario {name!r}: promotions and exploration share more than 1"
            )
        scenarios[name] = Scenario(name, spec, conditions, tuple(promotions))
    return scenarios


def check_references(
    scenarios: dict[str, Scenario],
    kinds: set[str],
    windows: set[str],
    event_types: set[str],
    path: Path | str,
) -> None:
    """Trending kinds and windows, and history types, must exist in this deployment."""
    for name, scenario in scenarios.items():
        groups: list[tuple[str, Sequence[SourceSpec]]] = [
            (f"stages[{i}]", stage.sources) for i, stage in enumerate(scenario.stages)
        ]
        groups += [(f"promotions[{i}]", p.sources) for i, p in enumerate(scenario.promotions)]
        for where, sources in groups:
            for index, source in enumerate(sources):
                at = f"{path}: scenario {name!r}, {where}.sources[{index}]"
                if isinstance(source, TrendingSource):
                    if source.kind is not None and source.kind not in kinds:
                        raise ScenarioFileError(
                            f"{at}.kind: {source.kind!r} is not a trending kind "
                            f"(settings trending_kinds: {sorted(kinds)})"
                        )
                    if source.window is not None and source.window not in windows:
                        raise ScenarioFileError(
                            f"{at}.window: {source.window!r} is not a trending window "
                            f"(settings trending_windows: {sorted(windows)})"
                        )
                if isinstance(source, HistorySource):
                    unknown = set(source.types) - event_types
                    if unknown:
                        raise ScenarioFileError(
                            f"{at}.types: unknown event types {sorted(unknown)}"
                        )
