"""Checks for what people type: ID numbers, mobile numbers, names, required fields.

Every failure raises :class:`ValidationError` with a plain-Chinese message saying what to fix.
Input is forgiving where it is safe to be: village input methods often produce full-width
characters (１３８, ｘ, full-width spaces), which are folded to half-width first.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass

from schema.errors import ValidationError

# U+FF01–U+FF5E are full-width twins of ASCII 0x21–0x7E; U+3000 is the ideographic space.
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


def normalize_text(text: str | None) -> str:
    """Strip, and fold full-width ASCII (ＡＢＣ１２３, full-width space) to half-width.

    Meant for codes, numbers and names. Not for prose: Chinese punctuation such as "，（）" is
    full-width ASCII too and would become ",()".
    """
    if text is None:
        return ""
    return text.translate(_HALF_WIDTH).strip()


# --- 身份证号 (GB 11643-1999) ---

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_FIELD = "id_number"
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    return _ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True, slots=True)
class IdNumber:
    number: str  # 18 characters, check character "X" upper-case
    region: str  # first 6 digits, the 行政区划代码 where the number was issued
    birth_date: datetime.date
    gender: str  # "男" / "女"

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def _id_error(message: str) -> ValidationError:
    return ValidationError(message, field=_ID_FIELD)


def parse_id_number(text: str, *, today: datetime.date | None = None) -> IdNumber:
    """Check and normalise an 18-character 居民身份证号码.

    Accepts spaces, full-width characters and a lower-case "x". The region code is not checked
    against a table: codes are renumbered over the years, and old numbers stay valid.
    """
    s = re.sub(r"\s+", "", normalize_text(text)).upper()
    if not s:
        raise _id_error("请填写身份证号")
    bad = next((c for c in s if not (c.isascii() and (c.isdigit() or c == "X"))), None)
    if bad is not None:
        raise _id_error(f"身份证号只能包含数字（最后一位可以是X），请检查“{bad}”")
    if len(s) == 15 and s.isdigit():
        raise _id_error("这是15位的旧身份证号，已停止使用，请填写18位身份证号")
    if len(s) != 18:
        raise _id_error(f"身份证号应为18位，当前为{len(s)}位")
    if "X" in s[:17]:
        raise _id_error("身份证号只有最后一位可以是X，请核对")

    shown = f"{s[6:10]}年{s[10:12]}月{s[12:14]}日"
    try:
        birth = datetime.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise _id_error(f"身份证号第7至14位的出生日期（{shown}）不是有效日期，请核对") from None
    if birth < _EARLIEST_BIRTH:
        raise _id_error(f"身份证号中的出生日期（{shown}）早于1900年，请核对第7至14位")
    if birth > (today or datetime.date.today()):
        raise _id_error(f"身份证号中的出生日期（{shown}）晚于今天，请核对第7至14位")

    # We do not say what the check character should be: the check fails for a typo in *any*
    # position, and naming the "right" last character invites editing it until the number
    # passes, which would store a wrong number that looks valid. Re-reading the card finds the
    # real typo.
    if id_check_char(s[:17]) != s[17]:
        raise _id_error("身份证号校验不通过，可能有数字输错，请对照证件逐位核对")

    return IdNumber(number=s, region=s[:6], birth_date=birth, gender="男" if int(s[16]) % 2 else "女")


def is_valid_id_number(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        parse_id_number(text)
    except ValidationError:
        return False
    return True


def mask_id_number(number: str) -> str:
    """First 4 and last 4 characters, 10 asterisks between: "3301**********1234".

    Hides the county (characters 5–6) and the birth date (7–14). An old 15-digit
    number shows its first 4 and last 3; anything else is masked entirely, since we cannot tell
    which of its characters are the birth date.
    """
    s = re.sub(r"\s+", "", normalize_text(number)).upper()
    if len(s) == 18:
        return s[:4] + "*" * 10 + s[-4:]
    if len(s) == 15:
        return s[:4] + "*" * 8 + s[-3:]
    return "*" * len(s)


# --- 手机号 ---

_PHONE_FIELD = "phone"


def normalize_mobile(text: str) -> str:
    """A mainland mobile number as 11 digits.

    Accepts "+86"/"0086"/"86" prefixes, spaces, dashes and full-width characters.
    """
    s = re.sub(r"[\s\-]+", "", normalize_text(text))
    if not s:
        raise ValidationError("请填写手机号", field=_PHONE_FIELD)
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    else:
        # An 11-digit mobile starts with 1, so a 13-digit "86…" can only be a country code.
        if len(s) == 13 and s.startswith("86"):
            s = s[2:]
    bad = next((c for c in s if not (c.isascii() and c.isdigit())), None)
    if bad is not None:
        raise ValidationError(f"手机号只能包含数字，请检查“{bad}”", field=_PHONE_FIELD)
    if len(s) != 11:
        raise ValidationError(f"手机号应为11位数字，当前为{len(s)}位", field=_PHONE_FIELD)
    if s[0] != "1":
        raise ValidationError("手机号应以1开头（固定电话不能填在这里）", field=_PHONE_FIELD)
    if s[1] not in "3456789":
        raise ValidationError("手机号第2位应为3至9，请核对", field=_PHONE_FIELD)
    return s


def mask_phone(phone: str | None) -> str:
    """Mask a mobile as "138****5678"; anything else keeps only its last 4 characters."""
    if not phone:
        return ""
    try:
        s = normalize_mobile(phone)
    except ValidationError:
        s = re.sub(r"[\s\-]+", "", normalize_text(phone))
        return "*" * (len(s) - 4) + s[-4:] if len(s) > 4 else "*" * len(s)
    return s[:3] + "****" + s[-4:]


# --- generic fields ---


def require(value: str | None, label: str, *, field: str | None = None) -> str:
    """The stripped value; "请填写{label}" if there is none."""
    v = (value or "").strip()
    if not v:
        raise ValidationError(f"请填写{label}", field=field)
    return v


def check_length(value: str, label: str, max_len: int, min_len: int = 0, *, field: str | None = None) -> str:
    """The stripped value, if it has between ``min_len`` and ``max_len`` characters.

    Counts characters (code points), so a rare 汉字 outside the BMP is one 字, as people count it.
    """
    v = (value or "").strip()
    if min_len > 0 and not v:
        raise ValidationError(f"请填写{label}", field=field)
    if len(v) > max_len:
        raise ValidationError(f"{label}不能超过{max_len}个字，当前为{len(v)}个字", field=field)
    if len(v) < min_len:
        raise ValidationError(f"{label}不能少于{min_len}个字，当前为{len(v)}个字", field=field)
    return v


_NAME_MAX = 30
# ID cards print the separator of minority and foreign names as U+00B7 "·"; storing one form
# keeps search and matching against the card working whichever dot was typed.
_NAME_DOTS = {"•": "·"}


def _name_char_ok(c: str) -> bool:
    # Letters of any script (汉字 incl. rare extensions, Latin, Uyghur, Tibetan …) and their
    # combining marks. Private-use characters are accepted because some 生僻字 only exist as
    # private-use code points in older systems; refusing a real person's name is worse.
    return unicodedata.category(c)[0] in "LM" or unicodedata.category(c) == "Co"


def check_person_name(text: str, label: str = "姓名", *, field: str | None = None) -> str:
    """A person's name: 1–30 characters of letters (汉字 included), "·"/"•" and single spaces.

    Returns it normalised: half-width, single spaces, "•" written as "·".
    """
    s = re.sub(r"\s+", " ", normalize_text(text))
    for dot, canonical in _NAME_DOTS.items():
        s = s.replace(dot, canonical)
    if not s:
        raise ValidationError(f"请填写{label}", field=field)
    if len(s) > _NAME_MAX:
        raise ValidationError(f"{label}不能超过{_NAME_MAX}个字，当前为{len(s)}个字", field=field)
    if any(unicodedata.category(c)[0] == "N" for c in s):
        raise ValidationError(f"{label}不能包含数字", field=field)
    bad = next((c for c in s if c not in " ·" and not _name_char_ok(c)), None)
    if bad is not None:
        raise ValidationError(f"{label}只能包含文字、“·”和空格，请删除“{bad}”", field=field)
    if s[0] == "·" or s[-1] == "·" or re.search(r"·\s*·", s):
        raise ValidationError(f"{label}中的“·”只能用在两段名字之间", field=field)
    return s
