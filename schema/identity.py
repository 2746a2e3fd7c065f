"""Identity documents an applicant (or the person acting for them) may show, each with its own checks.

Most villagers show a 居民身份证; residents of Hong Kong, Macao and Taiwan living on the
mainland show a 港澳台居民居住证 (18 characters, GB 11643 check, region 81/82/83), foreigners a
外国人永久居留身份证 or a passport, and visitors a 通行证. The codes are those of GA/T 2000.156
(证件类型代码) where we know them; 港澳台居民居住证 has no code we could confirm and exports as
990 (其他) — docs/case-rules.md says so.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass

from schema.choices import parse_choice
from schema.errors import ValidationError
from schema.validation import (
    IdNumber,
    id_check_char,
    mask_id_number,
    normalize_text,
    parse_id_number,
)

# First two digits of a mainland 居民身份证 (the province-level 行政区划代码 in use).
MAINLAND_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65".split()
)
HMT_REGIONS = {"81": "香港", "82": "澳门", "83": "台湾"}  # 港澳台居民居住证


class DocType(enum.StrEnum):
    RESIDENT_ID = "resident_id"
    HMT_RESIDENCE = "hmt_residence"
    FOREIGN_PR = "foreign_pr"
    PASSPORT = "passport"
    HK_MO_PASS = "hk_mo_pass"
    TW_PASS = "tw_pass"

    @property
    def label(self) -> str:
        return {
            "resident_id": "居民身份证",
            "hmt_residence": "港澳台居民居住证",
            "foreign_pr": "外国人永久居留身份证",
            "passport": "护照",
            "hk_mo_pass": "港澳居民来往内地通行证",
            "tw_pass": "台湾居民来往大陆通行证",
        }[self.value]

    @property
    def gat_code(self) -> str:
        """GA/T 2000.156 证件类型代码 (990 = 其他, where no code could be confirmed)."""
        return {"resident_id": "111", "passport": "414", "hk_mo_pass": "516", "tw_pass": "511",
                "foreign_pr": "553"}.get(self.value, "990")

    @classmethod
    def parse(cls, text: str | None) -> DocType:
        if text is None or not str(text).strip():
            return cls.RESIDENT_ID
        aliases = {"身份证": cls.RESIDENT_ID, "居住证": cls.HMT_RESIDENCE, "永久居留证": cls.FOREIGN_PR,
                   "港澳通行证": cls.HK_MO_PASS, "台胞证": cls.TW_PASS}
        return parse_choice(cls, text, unknown="未知的证件类型", field="doc_type", aliases=aliases)


@dataclass(frozen=True, slots=True)
class Document:
    doc_type: DocType
    number: str
    birth_date: datetime.date | None = None
    gender: str = ""

    @property
    def masked(self) -> str:
        return mask_document(self.doc_type, self.number)


def _error(message: str) -> ValidationError:
    return ValidationError(message, field="id_number")


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", normalize_text(text)).upper()


def parse_document(doc_type: DocType | str | None, text: str, *, today: datetime.date | None = None) -> Document:
    """Check and normalise a document number of ``doc_type``; a ValidationError names what to fix."""
    kind = doc_type if isinstance(doc_type, DocType) else DocType.parse(doc_type)
    if kind is DocType.RESIDENT_ID:
        ident = parse_id_number(text, today=today)
        _check_region(ident, mainland=True)
        return Document(kind, ident.number, ident.birth_date, ident.gender)
    if kind is DocType.HMT_RESIDENCE:
        ident = parse_id_number(text, today=today)
        _check_region(ident, mainland=False)
        return Document(kind, ident.number, ident.birth_date, ident.gender)
    s = _compact(text)
    if not s:
        raise _error(f"请填写{kind.label}号码")
    if kind is DocType.FOREIGN_PR:
        if len(s) == 18 and s[0] == "9":  # the 2023 format: GB 11643 layout, check character included
            if not s[:17].isdigit() or id_check_char(s[:17]) != s[17]:
                raise _error("外国人永久居留身份证号码校验不通过，请对照证件逐位核对")
            return Document(kind, s)
        if re.fullmatch(r"[A-Z]{3}\d{12}", s):  # the 2004 format: nationality letters + 12 digits
            return Document(kind, s)
        raise _error("外国人永久居留身份证号码应为18位（以9开头）或旧版15位（3个字母加12位数字）")
    if kind is DocType.HK_MO_PASS:
        if not re.fullmatch(r"[HM]\d{8}(\d{2})?", s):
            raise _error("港澳居民来往内地通行证号码应为H或M加8位（或10位）数字")
        return Document(kind, s)
    if kind is DocType.TW_PASS:
        if not re.fullmatch(r"\d{8}|\d{10}", s):
            raise _error("台湾居民来往大陆通行证号码应为8位（或旧版10位）数字")
        return Document(kind, s)
    if not re.fullmatch(r"[A-Z0-9]{5,17}", s):
        raise _error("护照号码应为5至17位字母或数字")
    return Document(kind, s)


def _check_region(ident: IdNumber, *, mainland: bool) -> None:
    province = ident.number[:2]
    if mainland:
        if province in HMT_REGIONS:
            raise _error(f"以{province}开头的是{HMT_REGIONS[province]}居民的居住证号码，请把证件类型选为港澳台居民居住证")
        if province not in MAINLAND_PROVINCES:
            raise _error(f"身份证号前两位“{province}”不是有效的省级区划代码，请核对")
    else:
        if province not in HMT_REGIONS:
            raise _error("港澳台居民居住证号码应以81（香港）、82（澳门）或83（台湾）开头")
        if ident.number[2:6] != "0000":
            raise _error("港澳台居民居住证号码第3至6位应为0000，请核对")


def mask_document(doc_type: DocType | str, number: str) -> str:
    """Masked as on screen: 18-character numbers like an ID card, others all but the last 4."""
    s = _compact(number)
    if len(s) in (15, 18) and DocType(doc_type) in (DocType.RESIDENT_ID, DocType.HMT_RESIDENCE, DocType.FOREIGN_PR):
        return mask_id_number(s)
    return "*" * max(0, len(s) - 4) + s[-4:]
