"""Organisations and roles.

Organisations are keyed by the 12-digit 统计用区划代码: 6 county digits,
3 township digits, 3 village digits. A county's code ends in ``000000``,
a township's in ``000``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from schema.choices import parse_choice
from schema.errors import ValidationError


class Level(enum.StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"

    @property
    def label(self) -> str:
        return {"county": "县级", "township": "乡镇级", "village": "村级"}[self.value]

    @property
    def rank(self) -> int:
        """Higher is closer to the county."""
        return {"village": 0, "township": 1, "county": 2}[self.value]

    @property
    def parent(self) -> Level | None:
        return {"village": Level.TOWNSHIP, "township": Level.COUNTY, "county": None}[self.value]

    @property
    def gbt_code(self) -> str:
        """GB/T 39046 A.2 行使层级代码."""
        return {"county": "4", "township": "5", "village": "6"}[self.value]


class Role(enum.StrEnum):
    AGENT = "agent"  # 代办员, village
    CLERK = "clerk"  # 窗口人员, township
    REVIEWER = "reviewer"  # 审批人员, county
    ADMIN = "admin"  # 管理员, county

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def level(self) -> Level:
        return {
            Role.AGENT: Level.VILLAGE,
            Role.CLERK: Level.TOWNSHIP,
            Role.REVIEWER: Level.COUNTY,
            Role.ADMIN: Level.COUNTY,
        }[self]

    def outranks(self, other: Role) -> bool:
        """True if this role may manage (add, disable, reset) users of ``other``."""
        if self is Role.ADMIN:
            return True  # the county admin manages every account, other admins included
        return self.level.rank > other.level.rank


ROLE_LABELS = {
    Role.AGENT: "代办员",
    Role.CLERK: "窗口人员",
    Role.REVIEWER: "审批人员",
    Role.ADMIN: "管理员",
}


def parse_role(text: str) -> Role:
    """Accept the English id or the Chinese label."""
    return parse_choice(Role, text, unknown="未知角色", field="role")


@dataclass(frozen=True, slots=True)
class OrgCode:
    code: str

    def __post_init__(self) -> None:
        c = self.code
        if len(c) != 12 or not c.isdigit():
            raise ValidationError(f"区划代码“{c}”应为12位数字（6位县级+3位乡镇+3位村）", field="org")
        if c[6:] == "000000" and c[:6].endswith("00"):
            # a 6-digit code ending in 00 is a prefecture, not a county
            raise ValidationError(f"区划代码“{c}”不是县级或以下的代码", field="org")
        if c[6:9] == "000" and c[9:] != "000":
            raise ValidationError(f"区划代码“{c}”无效：村级代码必须属于某个乡镇", field="org")

    @property
    def level(self) -> Level:
        if self.code[6:] == "000000":
            return Level.COUNTY
        if self.code[9:] == "000":
            return Level.TOWNSHIP
        return Level.VILLAGE

    @property
    def county(self) -> str:
        return self.code[:6] + "000000"

    @property
    def township(self) -> str | None:
        return None if self.level is Level.COUNTY else self.code[:9] + "000"

    def ancestor(self, level: Level) -> str:
        """The code of this org's ancestor (or itself) at ``level``."""
        if level.rank < self.level.rank:
            raise ValueError(f"{self.code} has no ancestor at {level}")
        return {Level.COUNTY: self.county, Level.TOWNSHIP: self.code[:9] + "000", Level.VILLAGE: self.code}[level]

    def covers(self, other: str) -> bool:
        """True if ``other`` is this org or lies below it."""
        prefix = {Level.COUNTY: 6, Level.TOWNSHIP: 9, Level.VILLAGE: 12}[self.level]
        return other[:prefix] == self.code[:prefix]

    def __str__(self) -> str:
        return self.code


def org_level(code: str) -> Level:
    return OrgCode(code).level


_LEVEL_DIGITS = {Level.COUNTY: 6, Level.TOWNSHIP: 9, Level.VILLAGE: 12}


def complete_org_code(text: str, level: Level | str | None = None) -> str:
    """A code as people know it, completed to 12 digits: ``220503`` → ``220503000000``.

    Everyone knows the 6-digit county code and the 9-digit township code; the 12-digit form pads
    them with zeros. With ``level`` the code must name an org at that level (a 12-digit code
    too). The result is a valid :class:`OrgCode`.
    """
    code = (text or "").strip().replace(" ", "")
    want = Level(level) if level else None
    if code.isdigit() and len(code) in (6, 9):
        if want is not None and len(code) != _LEVEL_DIGITS[want]:
            digits = "12位" if want is Level.VILLAGE else f"{_LEVEL_DIGITS[want]}位或12位"
            raise ValidationError(f"区划代码“{code}”是{len(code)}位，{want.label}单位应写{digits}", field="org")
        code = code.ljust(12, "0")
    elif not (code.isdigit() and len(code) == 12):
        raise ValidationError(
            f"区划代码“{text}”应为数字：县级6位（如 330522）、乡镇级9位或12位、村级12位", field="org"
        )
    org = OrgCode(code)
    if want is not None and org.level is not want:
        raise ValidationError(f"区划代码“{code}”是{org.level.label}单位，与要求的{want.label}不符", field="org")
    return code
