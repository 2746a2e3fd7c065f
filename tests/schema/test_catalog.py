import copy
import json
import re

import pytest

from schema.catalog import (
    ITEM_TYPES,
    CaseType,
    Catalog,
    Item,
    Material,
    MaterialForm,
    Policy,
    TimeLimit,
    default_catalog,
)
from schema.errors import NotFoundError, ValidationError
from schema.org import Level
from schema.workdays import TimeUnit

CJK = re.compile(r"[\u4e00-\u9fff]")


def base_item(**overrides):
    """A valid item as a dict; tests mutate one thing at a time."""
    d = {
        "impl_code": "11000000070000000X4000507001001",
        "basic_code": "000507001000",
        "name": "测试救助事项",
        "department": "县民政局",
        "item_type": "行政给付",
        "case_type": "promised",
        "decide_level": "county",
        "promise_limit": {"days": 20, "unit": "workday"},
        "legal_limit": {"days": 30, "unit": "workday"},
        "publicity": None,
        "fee_fen": 0,
        "fee_note": "",
        "village_may_accept": True,
        "materials": [
            {
                "name": "申请书",
                "required": True,
                "rongque": False,
                "form": "original",
                "count": 1,
                "note": "",
            },
            {"name": "照片", "required": True, "rongque": True, "form": "original", "count": 2, "note": ""},
        ],
        "co_departments": [],
        "supplement_limit": {"days": 30, "unit": "natural"},
        "basis": "",
        "guide": "",
    }
    d.update(overrides)
    return d


def catalog_dict(*items):
    return {"version": "t1", "published_at": "2026-11-01", "county": "", "items": list(items)}


# --- the shipped data file ---------------------------------------------------------------------


def test_default_catalog_loads_and_is_cached():
    cat = default_catalog()
    assert cat is default_catalog()
    assert cat.version == "2026.1"
    assert cat.published_at == "2026-11-01"
    assert cat.county == ""
    assert len(cat.items) >= 32


def test_default_catalog_uses_every_case_type():
    assert {item.case_type for item in default_catalog().items} == set(CaseType)


def test_default_catalog_codes_unique_and_well_formed():
    items = default_catalog().items
    impl = [i.impl_code for i in items]
    basic = [i.basic_code for i in items]
    assert len(set(impl)) == len(impl)
    assert len(set(basic)) == len(basic)
    assert all(re.fullmatch(r"[0-9A-Za-z-]{1,50}", c) for c in impl + basic)


def test_default_catalog_round_trips():
    cat = default_catalog()
    assert Catalog.from_dict(cat.to_dict()) == cat
    assert Catalog.from_dict(json.loads(json.dumps(cat.to_dict()))) == cat
    assert Catalog.from_json(cat.to_json()) == cat
    for item in cat.items:
        assert Item.from_dict(item.to_dict()) == item


def test_to_json_is_canonical():
    data = default_catalog().to_json()
    assert "最低生活保障".encode() in data  # UTF-8, not \u escapes
    assert b"\\u" not in data
    assert b"\n" not in data and b": " not in data
    obj = json.loads(data)
    assert list(obj) == sorted(obj)
    assert list(obj["items"][0]) == sorted(obj["items"][0])


def by_name(name):
    return next(i for i in default_catalog().items if i.name == name)


def test_default_catalog_facts_from_the_domain_table():
    dibao = by_name("最低生活保障申请（低保）")
    assert dibao.case_type is CaseType.ESCALATED
    assert dibao.promise_limit == TimeLimit(30, TimeUnit.WORKDAY)
    assert dibao.legal_limit == TimeLimit(45, TimeUnit.WORKDAY)
    assert dibao.publicity == TimeLimit(7, TimeUnit.NATURAL)
    assert dibao.department == "县民政局"

    idcard = by_name("居民身份证申领/换领/补领")
    assert idcard.legal_limit == TimeLimit(60, TimeUnit.NATURAL)
    assert idcard.fee_fen == 2000 and idcard.fee_label == "¥20.00"
    assert idcard.village_may_accept is False

    assert by_name("婚姻登记").village_may_accept is False
    assert by_name("法律援助申请").legal_limit == TimeLimit(7, TimeUnit.NATURAL)
    assert by_name("居住证（外来人员）").legal_limit == TimeLimit(15, TimeUnit.NATURAL)

    homestead = by_name("农村宅基地和建房（规划许可）审批")
    assert homestead.case_type is CaseType.JOINT
    assert homestead.decide_level is Level.TOWNSHIP
    assert len(homestead.co_departments) >= 2

    for name in ("异地就医备案", "出生登记（落户）", "死亡户口注销", "就业登记/失业登记"):
        item = by_name(name)
        assert item.case_type is CaseType.IMMEDIATE
        assert item.promise_limit.days == 0


def test_default_catalog_mix_of_levels_and_flags():
    items = default_catalog().items
    assert sum(i.decide_level is Level.TOWNSHIP for i in items) >= 3
    assert sum(i.village_may_accept for i in items) > len(items) // 2
    assert any(m.rongque for i in items for m in i.materials)
    assert all(i.co_departments for i in items if i.case_type is CaseType.JOINT)
    assert {i.item_type for i in items} <= set(ITEM_TYPES)


# --- enums and small values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "case_type, label, code",
    [
        (CaseType.IMMEDIATE, "即办件", "1"),
        (CaseType.PROMISED, "承诺件", "2"),
        (CaseType.ESCALATED, "上报件", "9"),
        (CaseType.JOINT, "联办件", "9"),
    ],
)
def test_case_type_labels_codes_and_parse(case_type, label, code):
    assert case_type.label == label
    assert case_type.gbt_code == code
    assert CaseType.parse(label) is case_type
    assert CaseType.parse(f" {case_type.value.upper()} ") is case_type
    assert CaseType.parse(label.removesuffix("件")) is case_type


def test_case_type_parse_unknown_is_chinese():
    with pytest.raises(ValidationError) as e:
        CaseType.parse("urgent")
    assert "未知的办件类型“urgent”" in e.value.message
    assert e.value.field == "case_type"


def test_material_form():
    assert [f.label for f in MaterialForm] == ["原件", "复印件", "原件及复印件", "电子件"]
    assert MaterialForm.parse("复印件") is MaterialForm.COPY
    with pytest.raises(ValidationError, match="未知的材料形式"):
        MaterialForm.parse("传真")


def test_time_limit():
    assert TimeLimit(20, TimeUnit.WORKDAY).label == "20个工作日"
    assert TimeLimit(7, "自然日").label == "7个自然日"  # unit labels are accepted and stored as the enum
    assert TimeLimit(7, "自然日").unit is TimeUnit.NATURAL
    assert TimeLimit(0, TimeUnit.WORKDAY).label == "当场办结"
    with pytest.raises(ValidationError, match="时限天数不能为负数"):
        TimeLimit(-1, TimeUnit.WORKDAY)
    with pytest.raises(ValidationError, match="应为整数"):
        TimeLimit(True, TimeUnit.WORKDAY)


def test_material_defaults_and_validation():
    m = Material("户口簿", form=MaterialForm.BOTH)
    assert (m.required, m.rongque, m.count, m.note) == (True, False, 1, "")
    with pytest.raises(ValidationError, match="材料名称不能为空"):
        Material(" ", form=MaterialForm.ORIGINAL)
    with pytest.raises(ValidationError, match="材料“照片”的份数"):
        Material("照片", form=MaterialForm.ORIGINAL, count=0)


def test_fee_label():
    item = Item.from_dict(base_item(fee_fen=4050))
    assert item.fee_label == "¥40.50"
    assert Item.from_dict(base_item()).fee_label == "免费"


def test_item_constructed_with_keywords_coerces_ids_and_labels():
    item = Item(
        impl_code="X-1",
        basic_code="B1",
        name="出生登记",
        department="公安派出所",
        item_type="行政确认",
        case_type="即办件",
        decide_level="乡镇级",
        promise_limit=TimeLimit(0, TimeUnit.WORKDAY),
        village_may_accept=True,
        materials=[Material("出生医学证明", form=MaterialForm.ORIGINAL)],
    )
    assert item.case_type is CaseType.IMMEDIATE
    assert item.decide_level is Level.TOWNSHIP
    assert isinstance(item.materials, tuple)
    assert item.supplement_limit == TimeLimit(30, TimeUnit.NATURAL)
    assert item.legal_limit is None and item.publicity is None
    hash(item)  # frozen and hashable


# --- item validation ---------------------------------------------------------------------------

MAT = {"name": "申请书", "form": "original"}


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"impl_code": "有 空格"}, "impl_code", "实施编码“有 空格”格式不对"),
        ({"impl_code": "A" * 51}, "impl_code", "1至50位"),
        ({"basic_code": ""}, "basic_code", "基本编码"),
        ({"department": " "}, "department", "实施主体不能为空"),
        ({"name": "长" * 101}, "name", "事项名称太长"),
        ({"item_type": "行政处罚"}, "item_type", "事项类型“行政处罚”不在可选范围内"),
        ({"case_type": "urgent"}, "case_type", "未知的办件类型"),
        ({"decide_level": "province"}, "decide_level", "未知的层级"),
        ({"promise_limit": {"days": -1, "unit": "workday"}}, "promise_limit", "承诺时限天数不能为负数"),
        ({"promise_limit": {"days": 5, "unit": "月"}}, "promise_limit", "承诺时限：未知的时限单位"),
        ({"promise_limit": {"days": 0, "unit": "workday"}}, "promise_limit", "承诺时限为0天的只能是即办件"),
        (
            {"legal_limit": {"days": 10, "unit": "workday"}},
            "legal_limit",
            "法定时限（10个工作日）不能短于承诺时限",
        ),
        ({"publicity": {"days": 0, "unit": "natural"}}, "publicity", "公示期至少1天"),
        ({"supplement_limit": {"days": 0, "unit": "natural"}}, "supplement_limit", "补正期限至少1天"),
        ({"fee_fen": -100}, "fee_fen", "收费金额"),
        ({"fee_fen": 20.0}, "fee_fen", "收费金额"),
        ({"village_may_accept": "yes"}, "village_may_accept", "村级可受理"),
        ({"case_type": "joint"}, "co_departments", "联办件须填写至少一个联办部门"),
        ({"co_departments": ["县残联"]}, "co_departments", "只有联办件才填写联办部门"),
        ({"case_type": "joint", "co_departments": ["县残联", "县残联"]}, "co_departments", "联办部门有重复"),
        ({"case_type": "joint", "co_departments": ["县民政局"]}, "co_departments", "与实施主体相同"),
        ({"materials": []}, "materials", "至少要列出一项申请材料"),
        ({"materials": [MAT, MAT]}, "materials", "申请材料“申请书”重复"),
        ({"materials": [{**MAT, "count": 0}]}, "count", "材料“申请书”的份数"),
        ({"materials": [{**MAT, "form": "传真"}]}, "form", "材料“申请书”：未知的材料形式"),
        ({"materials": [{"form": "original"}]}, "name", "缺少材料名称"),
        ({"materials": [{**MAT, "colour": "red"}]}, "colour", "材料有无法识别的字段“colour”"),
        ({"extra": 1}, "extra", "：有无法识别的字段“extra”，请删除或改正"),
    ],
)
def test_item_validation_messages_name_item_and_field(overrides, field, fragment):
    with pytest.raises(ValidationError) as e:
        Item.from_dict(base_item(**overrides))
    msg = e.value.message
    assert fragment in msg
    assert e.value.field == field
    assert CJK.search(msg)
    name = overrides.get("name", "测试救助事项")
    assert f"事项“{name}”" in msg


def test_item_missing_required_field():
    d = base_item()
    del d["department"]
    with pytest.raises(ValidationError) as e:
        Item.from_dict(d)
    assert (
        e.value.message == "事项“测试救助事项”（11000000070000000X4000507001001）：缺少实施主体（department）"
    )
    assert e.value.field == "department"


def test_item_without_a_name_is_named_by_code():
    with pytest.raises(ValidationError) as e:
        Item.from_dict(base_item(name=""))
    assert e.value.message == "事项（11000000070000000X4000507001001）：事项名称不能为空"


def test_optional_fields_default_when_absent():
    d = base_item()
    for key in (
        "legal_limit",
        "publicity",
        "fee_fen",
        "fee_note",
        "co_departments",
        "supplement_limit",
        "basis",
    ):
        del d[key]
    item = Item.from_dict(d)
    assert item.legal_limit is None and item.fee_fen == 0 and item.co_departments == ()
    assert item.to_dict()["supplement_limit"] == {"days": 30, "unit": "natural"}


def test_legal_limit_in_another_unit_is_not_compared():
    item = Item.from_dict(base_item(legal_limit={"days": 15, "unit": "natural"}))
    assert item.legal_limit == TimeLimit(15, TimeUnit.NATURAL)


def test_immediate_item_may_promise_zero_days():
    item = Item.from_dict(base_item(case_type="immediate", promise_limit={"days": 0, "unit": "workday"}))
    assert item.promise_limit.label == "当场办结"


# --- catalog -----------------------------------------------------------------------------------


def test_catalog_get_and_find():
    cat = default_catalog()
    first = cat.items[0]
    assert cat.get(first.impl_code) is first
    assert cat.find(first.impl_code) is first
    assert cat.find("NOPE") is None
    with pytest.raises(NotFoundError) as e:
        cat.get("NOPE")
    assert e.value.message == "未找到事项编码“NOPE”，请用 station catalog search 查找"


def test_catalog_rejects_duplicate_codes():
    a = base_item()
    b = base_item(name="另一个事项")
    with pytest.raises(ValidationError) as e:
        Catalog.from_dict(catalog_dict(a, b))
    assert e.value.message == "实施编码“11000000070000000X4000507001001”重复：“测试救助事项”和“另一个事项”"
    assert e.value.field == "impl_code"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"version": ""}, "版本号不能为空"),
        ({"published_at": "2026/11/01"}, "发布日期“2026/11/01”格式不对"),
        ({"published_at": "2026-02-30"}, "格式不对"),
        ({"county": "3305"}, "应为12位区划代码"),
        ({"county": "330521001000"}, "不是县级区划代码"),
        ({"items": {}}, "事项列表应为列表"),
        ({"owner": "x"}, "无法识别的字段"),
    ],
)
def test_catalog_validation(overrides, fragment):
    d = catalog_dict(base_item())
    d.update(overrides)
    with pytest.raises(ValidationError, match=fragment):
        Catalog.from_dict(d)


def test_catalog_for_a_county():
    cat = Catalog.from_dict({**catalog_dict(base_item()), "county": "330521000000"})
    assert cat.county == "330521000000"


def test_catalog_item_errors_are_reported_with_the_item():
    bad = copy.deepcopy(default_catalog().to_dict())
    bad["items"][3]["materials"] = []
    with pytest.raises(ValidationError) as e:
        Catalog.from_dict(bad)
    assert e.value.message.startswith(f"事项“{default_catalog().items[3].name}”")


def test_from_json_rejects_garbage():
    with pytest.raises(ValidationError, match="不是有效的JSON"):
        Catalog.from_json(b"{not json")
    with pytest.raises(ValidationError, match="不是有效的JSON"):
        Catalog.from_json(b"\xff\xfe")


# -- 即办层级 and the county's policy ------------------------------------------------------------------------


def test_immediate_levels_are_granted_by_the_catalog():
    item = Item.from_dict(base_item(case_type="immediate", promise_limit={"days": 0, "unit": "workday"},
                                    decide_level="township", immediate_levels=["village", "township"]))
    assert item.immediate_at == (Level.VILLAGE, Level.TOWNSHIP)
    assert Item.from_dict(base_item(case_type="immediate", promise_limit={"days": 0, "unit": "workday"},
                                    decide_level="township")).immediate_at == (Level.TOWNSHIP,)
    with pytest.raises(ValidationError, match="只有即办件才填写即办层级"):
        Item.from_dict(base_item(immediate_levels=["village"]))
    with pytest.raises(ValidationError, match="即办层级有重复"):
        Item.from_dict(base_item(case_type="immediate", promise_limit={"days": 0, "unit": "workday"},
                                 immediate_levels=["village", "village"]))


def test_only_granted_items_may_be_closed_at_once_by_a_village():
    granted = {i.name for i in default_catalog().items if Level.VILLAGE in i.immediate_at}
    assert granted == {"城乡居民医保参保登记/缴费", "生育登记"}


def test_policy_defaults_round_trip_and_validation():
    cat = Catalog.from_dict(catalog_dict(base_item()))
    assert cat.policy == Policy() and cat.policy.snapshot()["stage_days"] == {"village": 2, "township": 5}
    custom = Catalog.from_dict({**catalog_dict(base_item()), "policy": {"rectify_days": 5}})
    assert custom.policy.rectify_days == 5 and Catalog.from_dict(custom.to_dict()) == custom
    with pytest.raises(ValidationError, match="差评整改时限"):
        Catalog.from_dict({**catalog_dict(base_item()), "policy": {"rectify_days": 0}})
    with pytest.raises(ValidationError, match="无法识别的字段“x”"):
        Catalog.from_dict({**catalog_dict(base_item()), "policy": {"x": 1}})
