"""Applicant documents: each type with its own checks, and the region part of ID numbers."""

from __future__ import annotations

import pytest

from schema.errors import ValidationError
from schema.identity import DocType, mask_document, parse_document
from schema.validation import id_check_char
from tests.helpers import differ


def with_check(first17: str) -> str:
    return first17 + id_check_char(first17)


def test_resident_id_region_must_be_a_mainland_province():
    assert parse_document("resident_id", with_check("33052219500101001")).gender == "男"
    with pytest.raises(ValidationError, match="前两位“99”不是有效的省级区划代码"):
        parse_document("resident_id", with_check("99000019500101001"))
    with pytest.raises(ValidationError, match="请把证件类型选为港澳台居民居住证"):
        parse_document(None, with_check("81000019900101001"))


def test_hmt_residence_permits_use_81_to_83_and_0000():
    doc = parse_document("港澳台居民居住证", with_check("83000019900101002"))
    assert doc.doc_type is DocType.HMT_RESIDENCE and doc.gender == "女"
    with pytest.raises(ValidationError, match="应以81（香港）、82（澳门）或83（台湾）开头"):
        parse_document("hmt_residence", with_check("33052219500101001"))
    with pytest.raises(ValidationError, match="第3至6位应为0000"):
        parse_document("hmt_residence", with_check("81123419900101002"))


@pytest.mark.parametrize(
    ("kind", "good", "bad", "message"),
    [
        ("foreign_pr", with_check("93325619850101001"), differ(with_check("93325619850101001")), "校验不通过"),
        ("foreign_pr", "USA330600850101", "US3306008501", "应为18位"),
        ("hk_mo_pass", "H12345678", "X12345678", "H或M加8位"),
        ("tw_pass", "12345678", "1234567", "8位"),
        ("passport", "E12345678", "E1", "5至17位"),
    ],
)
def test_other_documents(kind, good, bad, message):
    assert parse_document(kind, good).number == good.upper()
    with pytest.raises(ValidationError, match=message):
        parse_document(kind, bad)


def test_unknown_type_and_masking():
    with pytest.raises(ValidationError, match="未知的证件类型“驾照”"):
        parse_document("驾照", "1")
    assert mask_document("passport", "E12345678") == "*****5678"
    assert mask_document("resident_id", with_check("33052219500101001")).startswith("3305**********")
    assert DocType.RESIDENT_ID.gat_code == "111" and DocType.HMT_RESIDENCE.gat_code == "990"
