"""The 事项 catalog: what can be applied for, who decides, which materials, how long.

One :class:`Item` is one row of a county's 实施清单 (GB/T 39046 Table 4), keyed by its
实施编码. The county publishes a :class:`Catalog` and stations sync it; the default
shipped with the software is ``schema/data/catalog.json`` (:func:`default_catalog`).

Every object validates itself on construction, so an invalid item cannot exist; the
messages are Chinese, name the item and the field, and say what to fix. ``to_dict`` /
``from_dict`` round-trip exactly, and ``Catalog.to_json`` is the canonical encoding
(schema.canonical) so that a published catalog can be hashed and signed.
"""

from __future__ import annotations

import datetime
import enum
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from importlib import resources
from typing import Any

from schema import canonical
from schema.choices import parse_choice
from schema.errors import NotFoundError, ValidationError
from schema.org import Level, OrgCode
from schema.workdays import TimeUnit

# 事项类型 as counties list them (GB/T 39046 A.1 groups the rarer powers under 其他行政权力).
ITEM_TYPES = ("行政许可", "行政给付", "行政确认", "行政裁决", "行政奖励", "其他行政权力", "公共服务")

# Codes are opaque keys (domain.md §2.2: never parse them); national tables use up to 36–50 chars.
_CODE_RE = re.compile(r"[0-9A-Za-z-]{1,50}")
MAX_NAME = 100


class CaseType(enum.StrEnum):
    """办件类型 of an item. Only 即办/承诺 have their own GB/T 39046 A.6 codes."""

    IMMEDIATE = "immediate"
    PROMISED = "promised"
    ESCALATED = "escalated"
    JOINT = "joint"

    @property
    def label(self) -> str:
        return _CASE_TYPE_LABELS[self]

    @property
    def gbt_code(self) -> str:
        """GB/T 39046 A.6 办件类型代码: 1 即办件, 2 承诺件, 9 其他 (上报件 and 联办件)."""
        return {"immediate": "1", "promised": "2"}.get(self.value, "9")

    @classmethod
    def parse(cls, text: str) -> CaseType:
        """Accept the English id or the Chinese label (with or without the trailing 件)."""
        aliases = {ct.label.removesuffix("件"): ct for ct in cls} | {"并联件": cls.JOINT}  # 并联件: older name
        return parse_choice(cls, text, unknown="未知的办件类型", field="case_type", aliases=aliases)


_CASE_TYPE_LABELS = {
    CaseType.IMMEDIATE: "即办件",
    CaseType.PROMISED: "承诺件",
    CaseType.ESCALATED: "上报件",
    CaseType.JOINT: "联办件",
}


class MaterialForm(enum.StrEnum):
    """In what form a material is handed over."""

    ORIGINAL = "original"
    COPY = "copy"
    BOTH = "both"
    ELECTRONIC = "electronic"

    @property
    def label(self) -> str:
        return {"original": "原件", "copy": "复印件", "both": "原件及复印件", "electronic": "电子件"}[
            self.value
        ]

    @classmethod
    def parse(cls, text: str) -> MaterialForm:
        return parse_choice(cls, text, unknown="未知的材料形式", field="form")


def _parse_level(text: Any) -> Level:
    return parse_choice(Level, text, unknown="未知的层级", field="decide_level")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A number of days with its unit: 承诺时限, 法定时限, 公示期, 补正期限."""

    days: int
    unit: TimeUnit

    def __post_init__(self) -> None:
        if not _is_int(self.days):
            raise ValidationError(f"时限天数应为整数，收到“{self.days}”", field="days")
        if self.days < 0:
            raise ValidationError(f"时限天数不能为负数（{self.days}）", field="days")
        object.__setattr__(self, "unit", TimeUnit.parse(self.unit))

    @property
    def label(self) -> str:
        """E.g. "20个工作日", "7个自然日"; 0 days is "当场办结" (即办)."""
        if self.days == 0:
            return "当场办结"
        return f"{self.days}个{self.unit.label}"

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "unit": self.unit.value}

    @classmethod
    def from_dict(cls, data: Any) -> TimeLimit:
        d = _mapping(data, "时限", {"days", "unit"})
        return cls(days=_require(d, "days", "时限天数"), unit=_require(d, "unit", "时限单位"))


@dataclass(frozen=True, slots=True)
class Material:
    """One material (申请材料) of an item.

    ``rongque``: 容缺受理 allowed — the case may be accepted without it if the applicant
    promises in writing to supply it later (domain.md §2.7).
    """

    name: str
    _: KW_ONLY
    required: bool = True
    rongque: bool = False
    form: MaterialForm
    count: int = 1
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("材料名称不能为空", field="materials")
        if len(self.name) > MAX_NAME:
            raise ValidationError(f"材料名称“{self.name[:20]}…”太长，最多{MAX_NAME}个字", field="materials")
        for flag in ("required", "rongque"):
            if not isinstance(getattr(self, flag), bool):
                raise ValidationError(f"材料“{self.name}”的{_FIELD_LABELS[flag]}应为是或否", field=flag)
        if not _is_int(self.count) or self.count < 1:
            raise ValidationError(f"材料“{self.name}”的份数应为1或以上的整数", field="count")
        if not isinstance(self.note, str):
            raise ValidationError(f"材料“{self.name}”的备注应为文字", field="note")
        object.__setattr__(self, "form", MaterialForm.parse(self.form))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "required": self.required,
            "rongque": self.rongque,
            "form": self.form.value,
            "count": self.count,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Material:
        d = _mapping(data, "材料", {"name", "required", "rongque", "form", "count", "note"})
        name = _require(d, "name", "材料名称")
        try:
            return cls(
                name,
                form=_require(d, "form", "材料形式"),
                **_present(d, "required", "rongque", "count", "note"),
            )
        except ValidationError as e:
            if isinstance(name, str) and name and name not in e.message:
                raise ValidationError(f"材料“{name}”：{e.message}", field=e.field) from None
            raise


DEFAULT_SUPPLEMENT = TimeLimit(30, TimeUnit.NATURAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One 事项 of the 实施清单, constructed with keywords.

    Rules checked on construction: codes are 1–50 letters, digits or hyphens; name and
    department are non-empty (≤ 100 chars); item_type is one of ITEM_TYPES; a 0-day promise
    only for 即办件; the legal limit is not shorter than the promise when both use the same
    unit; 联办件 (and only 联办件) list co-departments; at least one material, names unique.
    """

    impl_code: str  # 实施编码: the key, opaque
    basic_code: str  # 基本编码
    name: str  # 事项名称
    department: str  # 实施主体/主管部门
    item_type: str  # 事项类型, one of ITEM_TYPES
    case_type: CaseType  # 办件类型
    decide_level: Level  # the level that decides
    promise_limit: TimeLimit  # 承诺时限; 0 days = 当场办结 (即办件 only)
    legal_limit: TimeLimit | None = None  # 法定时限; None where no statute sets one
    publicity: TimeLimit | None = None  # 公示期, e.g. 7 自然日 for 低保
    fee_fen: int = 0  # 0 = 不收费; integers only (schema.canonical forbids floats)
    fee_note: str = ""
    village_may_accept: bool  # False: a village may only advise (仅咨询), not accept
    materials: tuple[Material, ...]
    co_departments: tuple[str, ...] = ()  # 联办件 co-handling departments
    supplement_limit: TimeLimit = DEFAULT_SUPPLEMENT  # after 一次性告知, before 补正不来
    basis: str = ""  # 设定依据
    guide: str = ""  # short 办事指南 notes
    # 即办件: the levels that may close it on the spot (default: only its deciding level). A
    # village may 即办 only where the county grants it, e.g. 医保参保登记 at a village service point.
    immediate_levels: tuple[Level, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists and enum ids/labels from callers; store tuples and enums (hashable, typed).
        object.__setattr__(self, "materials", tuple(self.materials))
        object.__setattr__(self, "co_departments", tuple(self.co_departments))
        object.__setattr__(
            self, "immediate_levels", tuple(self._coerce(_parse_level, lv) for lv in self.immediate_levels)
        )
        if not isinstance(self.impl_code, str) or not _CODE_RE.fullmatch(self.impl_code):
            raise ValidationError(
                f"{self._who}：实施编码“{self.impl_code}”格式不对，应为1至50位字母、数字或连字符",
                field="impl_code",
            )
        self._check_text("name", MAX_NAME)
        self._check_text("department", MAX_NAME)
        if not isinstance(self.basic_code, str) or not _CODE_RE.fullmatch(self.basic_code):
            self._fail(f"基本编码“{self.basic_code}”格式不对，应为1至50位字母、数字或连字符", "basic_code")
        if self.item_type not in ITEM_TYPES:
            self._fail(f"事项类型“{self.item_type}”不在可选范围内：{'、'.join(ITEM_TYPES)}", "item_type")
        object.__setattr__(self, "case_type", self._coerce(CaseType.parse, self.case_type))
        object.__setattr__(self, "decide_level", self._coerce(_parse_level, self.decide_level))
        self._check_limits()
        if not _is_int(self.fee_fen) or self.fee_fen < 0:
            self._fail(f"收费金额应为0或正整数（单位：分），收到“{self.fee_fen}”", "fee_fen")
        if not isinstance(self.village_may_accept, bool):
            self._fail("“村级可受理”应为是或否", "village_may_accept")
        for key in ("fee_note", "basis", "guide"):
            if not isinstance(getattr(self, key), str):
                self._fail(f"{_FIELD_LABELS[key]}应为文字", key)
        self._check_materials()
        self._check_co_departments()
        if self.immediate_levels and self.case_type is not CaseType.IMMEDIATE:
            self._fail(f"只有即办件才填写即办层级，本事项是{self.case_type.label}", "immediate_levels")
        if len(set(self.immediate_levels)) != len(self.immediate_levels):
            self._fail("即办层级有重复", "immediate_levels")

    # --- validation helpers -------------------------------------------------------------------

    @property
    def _who(self) -> str:
        name = self.name if isinstance(self.name, str) and self.name.strip() else ""
        return f"事项“{name}”（{self.impl_code}）" if name else f"事项（{self.impl_code}）"

    def _fail(self, message: str, field_name: str) -> None:
        raise ValidationError(f"{self._who}：{message}", field=field_name)

    def _coerce(self, parse: Any, value: Any) -> Any:
        try:
            return parse(value)
        except ValidationError as e:
            raise ValidationError(f"{self._who}：{e.message}", field=e.field) from None

    def _check_text(self, key: str, max_len: int) -> None:
        value = getattr(self, key)
        label = _FIELD_LABELS[key]
        if not isinstance(value, str) or not value.strip():
            self._fail(f"{label}不能为空", key)
        if len(value) > max_len:
            self._fail(f"{label}太长（{len(value)}个字），最多{max_len}个字", key)

    def _check_limits(self) -> None:
        for key in ("promise_limit", "legal_limit", "publicity", "supplement_limit"):
            value = getattr(self, key)
            optional = key in ("legal_limit", "publicity")
            if not isinstance(value, TimeLimit) and not (optional and value is None):
                self._fail(f"{_FIELD_LABELS[key]}应为天数加单位", key)
        promise, legal = self.promise_limit, self.legal_limit
        if promise.days == 0 and self.case_type is not CaseType.IMMEDIATE:
            # 0 days means 当场办结, which is what 即办件 is; anything else needs a real promise.
            self._fail(
                f"承诺时限为0天的只能是即办件，{self.case_type.label}请填写承诺办结天数", "promise_limit"
            )
        if legal is not None and legal.unit is promise.unit and legal.days < promise.days:
            self._fail(f"法定时限（{legal.label}）不能短于承诺时限（{promise.label}）", "legal_limit")
        if self.publicity is not None and self.publicity.days < 1:
            self._fail("公示期至少1天；不需要公示请留空", "publicity")
        if self.supplement_limit.days < 1:
            self._fail("补正期限至少1天", "supplement_limit")

    def _check_materials(self) -> None:
        if not self.materials:
            self._fail("至少要列出一项申请材料", "materials")
        seen: set[str] = set()
        for m in self.materials:
            if not isinstance(m, Material):
                self._fail("申请材料格式不对", "materials")
            if m.name in seen:
                # material names key the per-case checklist, so they must be unique
                self._fail(f"申请材料“{m.name}”重复", "materials")
            seen.add(m.name)

    def _check_co_departments(self) -> None:
        co = self.co_departments
        if self.case_type is CaseType.JOINT and not co:
            self._fail("联办件须填写至少一个联办部门", "co_departments")
        if co and self.case_type is not CaseType.JOINT:
            self._fail(f"只有联办件才填写联办部门，本事项是{self.case_type.label}", "co_departments")
        for dept in co:
            if not isinstance(dept, str) or not dept.strip():
                self._fail("联办部门名称不能为空", "co_departments")
            if dept == self.department:
                self._fail(f"联办部门“{dept}”与实施主体相同", "co_departments")
        if len(set(co)) != len(co):
            self._fail("联办部门有重复", "co_departments")

    # --- presentation and serialisation ---------------------------------------------------------

    @property
    def fee_label(self) -> str:
        """The fee as shown: "免费" or "¥20.00"."""
        if self.fee_fen == 0:
            return "免费"
        return f"¥{self.fee_fen // 100}.{self.fee_fen % 100:02d}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "impl_code": self.impl_code,
            "basic_code": self.basic_code,
            "name": self.name,
            "department": self.department,
            "item_type": self.item_type,
            "case_type": self.case_type.value,
            "decide_level": self.decide_level.value,
            "promise_limit": self.promise_limit.to_dict(),
            "legal_limit": self.legal_limit.to_dict() if self.legal_limit else None,
            "publicity": self.publicity.to_dict() if self.publicity else None,
            "fee_fen": self.fee_fen,
            "fee_note": self.fee_note,
            "village_may_accept": self.village_may_accept,
            "materials": [m.to_dict() for m in self.materials],
            "co_departments": list(self.co_departments),
            "supplement_limit": self.supplement_limit.to_dict(),
            "basis": self.basis,
            "guide": self.guide,
            "immediate_levels": [lv.value for lv in self.immediate_levels],
        }

    @property
    def immediate_at(self) -> tuple[Level, ...]:
        """The levels that may close this 即办件 on the spot."""
        return self.immediate_levels or (self.decide_level,)

    @classmethod
    def from_dict(cls, data: Any) -> Item:
        d = _mapping(data, "事项")
        name, code = d.get("name"), d.get("impl_code")
        who = f"事项“{name}”（{code}）" if isinstance(name, str) and name else f"事项（{code}）"
        try:
            _no_unknown_keys(d, "", _ITEM_KEYS)
            kwargs = {key: _require(d, key, _FIELD_LABELS[key]) for key in ITEM_REQUIRED}
            kwargs.update(_present(d, "fee_fen", "fee_note", "basis", "guide"))
            kwargs["promise_limit"] = _limit(d, "promise_limit")
            for key in ("legal_limit", "publicity"):
                kwargs[key] = None if d.get(key) is None else _limit(d, key)
            if "supplement_limit" in d:
                kwargs["supplement_limit"] = _limit(d, "supplement_limit")
            kwargs["materials"] = tuple(Material.from_dict(m) for m in _list(kwargs["materials"], "申请材料"))
            kwargs["co_departments"] = tuple(_list(d.get("co_departments", []), "联办部门"))
            kwargs["immediate_levels"] = tuple(_list(d.get("immediate_levels", []), "即办层级"))
        except ValidationError as e:
            raise ValidationError(f"{who}：{e.message}", field=e.field) from None
        return cls(**kwargs)  # the constructor's own messages already name the item


@dataclass(frozen=True, kw_only=True)
class Policy:
    """County-wide limits published with the catalog (working days unless said otherwise)."""

    village_stage_days: int = 2  # a village forwards an accepted case within this many days
    township_stage_days: int = 5  # a township forwards or decides within this many days of arrival
    rongque_days: int = 10  # default deadline written in a 容缺 promise
    co_days: int = 5  # a co-department's 联办意见
    complaint_days: int = 10  # handling a 投诉
    rectify_verify_days: int = 1  # 差评: 核实
    rectify_days: int = 15  # 差评: 整改

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not _is_int(value) or not 1 <= value <= 365:
                raise ValidationError(f"事项目录的时限设置“{_POLICY_LABELS[f.name]}”应为1到365天", field=f.name)

    def snapshot(self) -> dict[str, Any]:
        """The limits a case keeps for life (schema.rules.snapshot_item)."""
        return {
            "stage_days": {"village": self.village_stage_days, "township": self.township_stage_days},
            "rongque_days": self.rongque_days,
            "co_days": self.co_days,
            "complaint_days": self.complaint_days,
            "rectify_verify_days": self.rectify_verify_days,
            "rectify_days": self.rectify_days,
        }

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        d = _mapping(data, "时限设置", {f.name for f in fields(cls)})
        return cls(**d)


_POLICY_LABELS = {
    "village_stage_days": "村级环节时限",
    "township_stage_days": "乡镇环节时限",
    "rongque_days": "容缺补交期限",
    "co_days": "联办意见时限",
    "complaint_days": "投诉办理时限",
    "rectify_verify_days": "差评核实时限",
    "rectify_days": "差评整改时限",
}


@dataclass(frozen=True)
class Catalog:
    """A published catalog version: the items a county's stations may register cases for."""

    version: str
    published_at: str  # ISO date, YYYY-MM-DD
    county: str  # 12-digit county code, or "" for the national default shipped with the software
    items: tuple[Item, ...]
    policy: Policy = field(default_factory=Policy)
    _by_code: dict[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if not isinstance(self.policy, Policy):
            raise ValidationError("事项目录的时限设置格式不对", field="policy")
        self.validate()

    def validate(self) -> None:
        """Raise ValidationError on the first problem; called on construction."""
        if not isinstance(self.version, str) or not self.version.strip() or len(self.version) > 50:
            raise ValidationError("事项目录版本号不能为空（最多50个字符）", field="version")
        if not _is_iso_date(self.published_at):
            raise ValidationError(
                f"事项目录发布日期“{self.published_at}”格式不对，应为YYYY-MM-DD", field="published_at"
            )
        if self.county != "":
            if not isinstance(self.county, str) or len(self.county) != 12 or not self.county.isdigit():
                raise ValidationError(
                    f"事项目录所属县“{self.county}”应为12位区划代码，或留空表示全国默认", field="county"
                )
            if OrgCode(self.county).level is not Level.COUNTY:
                raise ValidationError(f"事项目录所属县“{self.county}”不是县级区划代码", field="county")
        by_code: dict[str, Item] = {}
        for item in self.items:
            if not isinstance(item, Item):
                raise ValidationError("事项目录中有格式不对的事项", field="items")
            other = by_code.get(item.impl_code)
            if other is not None:
                raise ValidationError(
                    f"实施编码“{item.impl_code}”重复：“{other.name}”和“{item.name}”", field="impl_code"
                )
            by_code[item.impl_code] = item
        object.__setattr__(self, "_by_code", by_code)

    def find(self, impl_code: str) -> Item | None:
        return self._by_code.get(impl_code.strip())

    def get(self, impl_code: str) -> Item:
        item = self.find(impl_code)
        if item is None:
            raise NotFoundError(
                f"未找到事项编码“{impl_code}”，请用 station catalog search 查找", field="impl_code"
            )
        return item

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "published_at": self.published_at,
            "county": self.county,
            "items": [item.to_dict() for item in self.items],
            "policy": self.policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Catalog:
        d = _mapping(data, "事项目录", {"version", "published_at", "county", "items", "policy"})
        items = tuple(Item.from_dict(x) for x in _list(_require(d, "items", "事项列表"), "事项列表"))
        return cls(
            version=_require(d, "version", "版本号"),
            published_at=_require(d, "published_at", "发布日期"),
            county=d.get("county", ""),
            items=items,
            policy=Policy.from_dict(d["policy"]) if d.get("policy") is not None else Policy(),
        )

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, UTF-8, no ASCII escaping): what is hashed and signed."""
        return canonical.encode(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> Catalog:
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            obj = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValidationError(f"事项目录文件不是有效的JSON（{e}）", field="catalog") from None
        return cls.from_dict(obj)


@functools.cache
def default_catalog() -> Catalog:
    """The catalog shipped with the software (schema/data/catalog.json), parsed once."""
    data = resources.files("schema").joinpath("data").joinpath("catalog.json").read_bytes()
    return Catalog.from_json(data)


# --- parsing helpers ----------------------------------------------------------------------------

_FIELD_LABELS = {
    "impl_code": "实施编码",
    "basic_code": "基本编码",
    "name": "事项名称",
    "department": "实施主体",
    "item_type": "事项类型",
    "case_type": "办件类型",
    "decide_level": "决定层级",
    "promise_limit": "承诺时限",
    "legal_limit": "法定时限",
    "publicity": "公示期",
    "fee_fen": "收费金额",
    "fee_note": "收费说明",
    "village_may_accept": "村级可受理",
    "materials": "申请材料",
    "co_departments": "联办部门",
    "supplement_limit": "补正期限",
    "basis": "设定依据",
    "guide": "办事指南",
    "required": "是否必需",
    "rongque": "是否容缺",
    "immediate_levels": "即办层级",
}
ITEM_REQUIRED = (
    "impl_code",
    "basic_code",
    "name",
    "department",
    "item_type",
    "case_type",
    "decide_level",
    "promise_limit",
    "village_may_accept",
    "materials",
)
_ITEM_KEYS = frozenset(
    ITEM_REQUIRED
    + (
        "legal_limit",
        "publicity",
        "fee_fen",
        "fee_note",
        "co_departments",
        "supplement_limit",
        "basis",
        "guide",
        "immediate_levels",
    )
)


def _mapping(data: Any, what: str, allowed: set[str] | frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{what}数据格式不对，应为对象（键值表）", field=None)
    if allowed is not None:
        _no_unknown_keys(data, what, allowed)
    return data


def _no_unknown_keys(data: Mapping[str, Any], what: str, allowed: set[str] | frozenset[str]) -> None:
    # Unknown keys are refused rather than dropped: a typo in a hand-edited catalog, or a
    # catalog from newer software, must not silently lose a rule.
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ValidationError(f"{what}有无法识别的字段“{'、'.join(unknown)}”，请删除或改正", field=unknown[0])


def _require(d: Mapping[str, Any], key: str, label: str) -> Any:
    if key not in d:
        raise ValidationError(f"缺少{label}（{key}）", field=key)
    return d[key]


def _limit(d: Mapping[str, Any], key: str) -> TimeLimit:
    """Parse one of an item's time limits, naming which one in the message."""
    label = _FIELD_LABELS[key]
    try:
        return TimeLimit.from_dict(d[key])
    except ValidationError as e:
        # "时限天数不能为负数" reads as "承诺时限天数不能为负数"
        msg = label + e.message[2:] if e.message.startswith("时限") else f"{label}：{e.message}"
        raise ValidationError(msg, field=key) from None


def _present(d: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: d[k] for k in keys if k in d}


def _list(value: Any, label: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{label}应为列表", field=None)
    return list(value)


def _is_iso_date(text: Any) -> bool:
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True
