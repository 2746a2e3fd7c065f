import time

import pytest

from schema.catalog import Catalog, Item, Material, MaterialForm, TimeLimit, default_catalog
from schema.workdays import TimeUnit
from station.catalog_search import CatalogIndex, normalize, pinyin_keys


@pytest.fixture(scope="module")
def index():
    return CatalogIndex(default_catalog())


def names(items):
    return [i.name for i in items]


def make_catalog(*entries):
    """entries: (impl_code, name) pairs."""
    items = [
        Item(
            impl_code=code,
            basic_code=f"B{n:03d}",
            name=name,
            department="县民政局",
            item_type="公共服务",
            case_type="promised",
            decide_level="county",
            promise_limit=TimeLimit(5, TimeUnit.WORKDAY),
            village_may_accept=True,
            materials=(Material("申请书", form=MaterialForm.ORIGINAL),),
        )
        for n, (code, name) in enumerate(entries)
    ]
    return Catalog(version="t", published_at="2026-01-01", county="", items=tuple(items))


def test_pinyin_keys():
    assert pinyin_keys("城乡居民基本养老保险参保登记") == (
        "cxjmjbylbxcbdj",
        "chengxiangjuminjibenyanglaobaoxiancanbaodengji",
    )
    # punctuation is dropped so initials run on; 重度 is read zhòng in context
    assert pinyin_keys("困难残疾人生活补贴/重度残疾人护理补贴")[0] == "kncjrshbtzdcjrhlbt"


def test_normalize():
    assert normalize(" ＹＬ　ｂｘ\t") == "ylbx"
    assert normalize("（低保）") == "(低保)"


def test_ylbx_finds_pension_items_first(index):
    found = index.search("ylbx")
    assert len(found) >= 5
    assert all("养老保险" in item.name for item in found[:5])
    assert "城乡居民基本养老保险参保登记" in names(found[:5])
    # initials match anywhere in the name, not only at its start: earlier occurrence ranks first
    assert found[0].name == "养老保险待遇发放账户维护"


def test_chinese_text_finds_by_name(index):
    assert names(index.search("低保"))[0] == "最低生活保障申请（低保）"
    assert names(index.search("最低生活"))[0] == "最低生活保障申请（低保）"


def test_db_finds_dibao(index):
    assert names(index.search("db"))[0] == "最低生活保障申请（低保）"


def test_cjr_finds_disability_items(index):
    found = names(index.search("cjr"))
    assert "困难残疾人生活补贴/重度残疾人护理补贴" in found
    assert "第二代残疾人证新办/换领/迁移/补办" in found
    assert all("残疾人" in n for n in found)


def test_heteronym_read_in_context(index):
    assert names(index.search("zdcjr")) == ["困难残疾人生活补贴/重度残疾人护理补贴"]


def test_full_pinyin(index):
    found = index.search("yanglao")
    assert found and all("养老" in i.name for i in found)
    assert names(index.search("hunyin")) == ["婚姻登记"]


def test_exact_code_lookup(index):
    cat = default_catalog()
    item = cat.items[8]
    assert index.search(item.impl_code)[0] is item
    assert index.search(item.impl_code.lower())[0] is item
    assert index.search(item.basic_code)[0] is item


def test_full_width_input(index):
    cat = default_catalog()
    item = cat.items[8]
    wide = "".join(chr(ord(c) + 0xFEE0) for c in item.impl_code)  # ASCII → full-width forms
    assert index.search(wide)[0] is item
    assert names(index.search("ＤＢ"))[0] == "最低生活保障申请（低保）"
    assert names(index.search("ｙ ｌ ｂ ｘ")) == names(index.search("ylbx"))


def test_no_match_returns_empty(index):
    assert index.search("zzzz") == []
    assert index.search("不存在的事项") == []
    assert index.search("99999999999") == []


def test_empty_text_lists_catalog_in_order(index):
    items = default_catalog().items
    assert index.search("") == list(items[:20])
    assert index.search("   ", limit=3) == list(items[:3])


def test_limit(index):
    assert len(index.search("ylbx", limit=2)) == 2
    assert index.search("ylbx", limit=0) == []


def test_exact_code_before_prefix_before_name():
    cat = make_catalog(("A12", "甲事项"), ("A1", "乙事项"), ("C9", "含a1的名称"))
    idx = CatalogIndex(cat)
    assert [i.impl_code for i in idx.search("a1")] == ["A1", "A12", "C9"]
    assert [i.impl_code for i in idx.search("a")] == ["A12", "A1", "C9"]  # prefix tier keeps catalog order


def test_tiers_name_then_initials_then_full_pinyin():
    cat = make_catalog(("X1", "办理登记"), ("X2", "不按年缴费"), ("X3", "BAN卡补办"))
    idx = CatalogIndex(cat)
    # X3: name contains "ban"; X2: initials "banjf"; X1: full pinyin "banlidengji"
    assert [i.impl_code for i in idx.search("ban")] == ["X3", "X2", "X1"]


def test_name_matches_rank_by_position():
    cat = make_catalog(("X1", "城乡养老服务"), ("X2", "养老服务补贴"), ("X3", "农村居民养老登记"))
    idx = CatalogIndex(cat)
    assert [i.impl_code for i in idx.search("养老")] == ["X2", "X1", "X3"]


def test_an_item_appears_once():
    cat = make_catalog(("YL1", "养老ylbx养老保险"))
    assert len(CatalogIndex(cat).search("yl")) == 1


def test_search_is_fast_on_1000_items():
    base = default_catalog().items
    entries = [
        (f"C{n:04d}{base[n % len(base)].impl_code[-6:]}", f"{base[n % len(base)].name}{n}")
        for n in range(1000)
    ]
    idx = CatalogIndex(make_catalog(*entries))
    queries = ["ylbx", "低保", "cjr", "yanglao", "c05", "d", "zzzz", "ＹＬＢＸ", "", "登记"]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for q in queries:
            idx.search(q)
        best = min(best, (time.perf_counter() - start) / len(queries))
    assert best < 0.001, f"{best * 1000:.3f} ms per query"
