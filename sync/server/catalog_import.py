"""``county-center catalog publish FILE``: a county's 事项 catalog from JSON, CSV or Excel.

Whatever the file format, the result is a :class:`schema.catalog.Catalog` (validated by
its constructor, i.e. ``Catalog.validate()``), published as ONE county event
``catalog.published`` whose subject is the version and whose body is ``Catalog.to_dict()``.
A bad row stops everything: the message names the row and the field, nothing is published.

Formats (docs/county-center.md has examples):

- ``.json`` — exactly the format of ``schema/data/catalog.json``
  (``{"version", "published_at", "county", "items": [...]}``).
- ``.xlsx`` — sheet ``事项`` (one row per item) and sheet ``材料`` (one row per material,
  keyed by 实施编码); without those names, the first and second sheets.
- ``.csv`` (UTF-8, with or without BOM) — the items file, and the materials in a second
  file: ``--materials FILE``, or beside it as ``<name>-材料.csv`` / ``<name>.materials.csv``.

Item columns (first row = headers; Chinese or the English key): 实施编码 impl_code,
基本编码 basic_code, 事项名称 name, 实施主体 department, 事项类型 item_type,
办件类型 case_type (即办件/承诺件/上报件/联办件), 决定层级 decide_level (村级/乡镇级/县级),
承诺时限 promise_limit (e.g. ``20工作日``, ``7自然日``, ``0`` = 当场办结), 法定时限
legal_limit, 公示期 publicity, 补正期限 supplement_limit (empty = none / default),
收费（分） fee_fen, 收费说明 fee_note, 村级可受理 village_may_accept (是/否),
联办部门 co_departments (separated by 、 or ；), 即办层级 immediate_levels (村级、乡镇级、县级, 即办件
only; empty = its deciding level), 设定依据 basis, 办事指南 guide.
Material columns: 实施编码 impl_code, 材料名称 name, 材料形式 form (原件/复印件/原件及复印件/
电子件), 是否必需 required (default 是), 是否容缺 rongque (default 否), 份数 count (default 1),
备注 note. CSV/Excel need ``--version`` (and take ``--date``, default today).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path
from typing import Any

from schema import events as K
from schema.catalog import ITEM_REQUIRED, Catalog, Item, Material, TimeLimit
from schema.errors import UserError, ValidationError
from schema.events import Event
from schema.workdays import TimeUnit
from sync.server import county_chain
from sync.server.config import CST
from sync.server.db import CountyDB
from sync.server.keystore import County

ITEM_COLUMNS = {
    "实施编码": "impl_code",
    "基本编码": "basic_code",
    "事项名称": "name",
    "实施主体": "department",
    "事项类型": "item_type",
    "办件类型": "case_type",
    "决定层级": "decide_level",
    "承诺时限": "promise_limit",
    "法定时限": "legal_limit",
    "公示期": "publicity",
    "补正期限": "supplement_limit",
    "收费（分）": "fee_fen",
    "收费(分)": "fee_fen",
    "收费说明": "fee_note",
    "村级可受理": "village_may_accept",
    "联办部门": "co_departments",
    "即办层级": "immediate_levels",
    "设定依据": "basis",
    "办事指南": "guide",
}
MATERIAL_COLUMNS = {
    "实施编码": "impl_code",
    "材料名称": "name",
    "材料形式": "form",
    "是否必需": "required",
    "是否容缺": "rongque",
    "份数": "count",
    "备注": "note",
}
LABELS = {v: k for k, v in ITEM_COLUMNS.items()} | {f"m.{v}": k for k, v in MATERIAL_COLUMNS.items()}
# A table row holds one item; its materials come from the materials sheet, not a column.
REQUIRED_ITEM = tuple(k for k in ITEM_REQUIRED if k != "materials")
TRUE = {"是", "y", "yes", "true", "1", "√", "✓", "t"}
FALSE = {"否", "n", "no", "false", "0", "×", "✗", "f", ""}
MAX_FILE = 50 * 1024 * 1024


class CatalogFileError(UserError):
    code = "catalog"


# -- reading tables --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()[:10]
    return str(value).strip()


def _table(rows: list[list[Any]], columns: dict[str, str], what: str) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, {key: text}) for each non-empty data row."""
    if not rows:
        raise CatalogFileError(f"{what}是空的：第1行应为列名")
    header = [_cell(h) for h in rows[0]]
    keys = []
    for h in header:
        key = columns.get(h) or (h if h in columns.values() else None)
        if h and key is None:
            raise CatalogFileError(
                f"{what}第1行有无法识别的列名“{h}”，可用的列名：{'、'.join(dict.fromkeys(columns))}"
            )
        keys.append(key)
    seen = [k for k in keys if k]
    if len(seen) != len(set(seen)):
        raise CatalogFileError(f"{what}第1行有重复的列名")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        values = {k: _cell(v) for k, v in zip(keys, row, strict=False) if k}
        if any(values.values()):
            out.append((n, values))
    return out


def _read_csv(path: Path) -> list[list[str]]:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # Excel on Chinese Windows saves CSV in GBK
        except UnicodeDecodeError:
            raise CatalogFileError(f"{path.name} 的编码无法识别，请另存为“CSV UTF-8”") from None
    try:
        return [row for row in csv.reader(io.StringIO(text))]
    except csv.Error as e:
        raise CatalogFileError(f"{path.name} 不是有效的CSV文件（{e}）") from None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE:
            raise CatalogFileError(f"{path.name} 太大（上限50 MB）")
        return path.read_bytes()
    except FileNotFoundError:
        raise CatalogFileError(f"找不到文件 {path}") from None
    except IsADirectoryError:
        raise CatalogFileError(f"{path} 是目录，请给出事项目录文件") from None
    except OSError as e:
        raise CatalogFileError(f"无法读取 {path}（{e.strerror}）") from None


def _read_xlsx(path: Path) -> tuple[list[list[Any]], list[list[Any]]]:
    import zipfile

    from openpyxl import load_workbook

    _read_bytes(path)  # existence and size
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        raise CatalogFileError(f"{path.name} 不是有效的Excel（.xlsx）文件") from None
    try:
        sheets = wb.sheetnames
        items_ws = wb["事项"] if "事项" in sheets else wb[sheets[0]]
        if "材料" in sheets:
            mat_ws = wb["材料"]
        elif len(sheets) > 1:
            mat_ws = wb[sheets[1]]
        else:
            raise CatalogFileError(f"{path.name} 缺少“材料”工作表（每行一项材料，按实施编码对应事项）")
        return (
            [list(r) for r in items_ws.iter_rows(values_only=True)],
            [list(r) for r in mat_ws.iter_rows(values_only=True)],
        )
    finally:
        wb.close()


# -- cells to values -------------------------------------------------------------------------------------


def _where(what: str, n: int, key: str) -> str:
    return f"{what}第{n}行“{LABELS.get(key, key)}”"


def _bool(text: str, where: str, default: bool | None = None) -> bool:
    t = text.strip().lower()
    if t == "" and default is not None:
        return default
    if t in TRUE:
        return True
    if t in FALSE and t != "":
        return False
    raise CatalogFileError(f"{where}：“{text}”应填“是”或“否”")


def _int(text: str, where: str, default: int | None = None) -> int:
    if text == "" and default is not None:
        return default
    if not re.fullmatch(r"\d{1,9}", text):
        raise CatalogFileError(f"{where}：“{text}”应为0或正整数")
    return int(text)


def _limit(text: str, where: str, *, optional: bool) -> TimeLimit | None:
    t = text.strip()
    if t == "":
        if optional:
            return None
        raise CatalogFileError(f"{where}：不能为空，应写成如“20工作日”“7自然日”，即办件写“0”")
    if t == "当场办结":
        return TimeLimit(0, TimeUnit.WORKDAY)
    m = re.fullmatch(r"(\d{1,5})\s*个?\s*(工作日|自然日|日|天|workdays?|natural)?", t, re.I)
    if not m:
        raise CatalogFileError(f"{where}：“{text}”不是有效的时限，应写成如“20工作日”或“7自然日”")
    unit = (m.group(2) or "工作日").lower().removesuffix("s")
    try:
        return TimeLimit(int(m.group(1)), TimeUnit.parse(unit))
    except ValidationError as e:
        raise CatalogFileError(f"{where}：{e.message}") from None


def _split(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[、;；,，\n]", text) if p.strip()]


def _materials(
    rows: list[tuple[int, dict[str, str]]], codes: set[str], what: str
) -> dict[str, list[Material]]:
    out: dict[str, list[Material]] = {}
    for n, r in rows:
        code = r.get("impl_code", "")
        if not code:
            raise CatalogFileError(f"{_where(what, n, 'm.impl_code')}：不能为空")
        if code not in codes:
            raise CatalogFileError(f"{_where(what, n, 'm.impl_code')}：事项表中没有实施编码“{code}”")
        try:
            m = Material(
                r.get("name", ""),
                form=r.get("form", "") or "",
                required=_bool(r.get("required", ""), _where(what, n, "m.required"), True),
                rongque=_bool(r.get("rongque", ""), _where(what, n, "m.rongque"), False),
                count=_int(r.get("count", ""), _where(what, n, "m.count"), 1),
                note=r.get("note", ""),
            )
        except ValidationError as e:
            field = {"materials": "m.name", "form": "m.form", "count": "m.count"}.get(e.field or "", "m.name")
            raise CatalogFileError(f"{_where(what, n, field)}：{e.message}") from None
        out.setdefault(code, []).append(m)
    return out


def _items(
    item_rows: list[tuple[int, dict[str, str]]], materials: dict[str, list[Material]], what: str
) -> list[Item]:
    items = []
    for n, r in item_rows:
        for key in REQUIRED_ITEM:
            if not r.get(key):
                raise CatalogFileError(f"{_where(what, n, key)}：不能为空")
        code = r["impl_code"]
        # the plain text fields; the limit and the yes/no field are parsed below
        kwargs: dict[str, Any] = {k: r[k] for k in REQUIRED_ITEM if k not in ("promise_limit", "village_may_accept")}
        kwargs["promise_limit"] = _limit(r["promise_limit"], _where(what, n, "promise_limit"), optional=False)
        kwargs["legal_limit"] = _limit(
            r.get("legal_limit", ""), _where(what, n, "legal_limit"), optional=True
        )
        kwargs["publicity"] = _limit(r.get("publicity", ""), _where(what, n, "publicity"), optional=True)
        supplement = _limit(r.get("supplement_limit", ""), _where(what, n, "supplement_limit"), optional=True)
        if supplement is not None:
            kwargs["supplement_limit"] = supplement
        kwargs["fee_fen"] = _int(r.get("fee_fen", "").replace("免费", "0"), _where(what, n, "fee_fen"), 0)
        kwargs["village_may_accept"] = _bool(r["village_may_accept"], _where(what, n, "village_may_accept"))
        kwargs["co_departments"] = _split(r.get("co_departments", ""))
        kwargs["immediate_levels"] = _split(r.get("immediate_levels", ""))
        for k in ("fee_note", "basis", "guide"):
            kwargs[k] = r.get(k, "")
        kwargs["materials"] = materials.get(code, [])
        try:
            items.append(Item(**kwargs))
        except ValidationError as e:
            raise CatalogFileError(f"{_where(what, n, e.field or 'name')}：{e.message}") from None
    return items


# -- entry points ------------------------------------------------------------------------------------------


def _check_version(version: str | None, date: str | None) -> tuple[str, str]:
    if not version:
        raise CatalogFileError("CSV或Excel格式的事项目录须用 --version 指定版本号，例如 --version 2027.1")
    date = date or datetime.datetime.now(CST).date().isoformat()
    return version, date


def load_catalog(
    path: str | Path,
    county: County,
    *,
    version: str | None = None,
    date: str | None = None,
    materials: str | Path | None = None,
) -> Catalog:
    """Read and validate a catalog file (see module docstring); raises a Chinese CatalogFileError."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            catalog = Catalog.from_json(_read_bytes(path))
            if version or date:
                catalog = Catalog(
                    version=version or catalog.version,
                    published_at=date or catalog.published_at,
                    county=catalog.county,
                    items=catalog.items,
                )
        elif suffix in (".csv", ".xlsx"):
            version, date = _check_version(version, date)
            if suffix == ".xlsx":
                item_rows, mat_rows = _read_xlsx(path)
                what_i, what_m = "“事项”工作表", "“材料”工作表"
            else:
                mat_path = Path(materials) if materials else _sibling_materials(path)
                item_rows, mat_rows = _read_csv(path), _read_csv(mat_path)
                what_i, what_m = f"{path.name} ", f"{mat_path.name} "
            items_t = _table(item_rows, ITEM_COLUMNS, what_i)
            mats_t = _table(mat_rows, MATERIAL_COLUMNS, what_m)
            for n, r in items_t:  # the items' own blanks first: they explain the materials' orphans
                for key in REQUIRED_ITEM:
                    if not r.get(key):
                        raise CatalogFileError(f"{_where(what_i, n, key)}：不能为空")
            mats = _materials(mats_t, {r.get("impl_code", "") for _, r in items_t}, what_m)
            catalog = Catalog(
                version=version,
                published_at=date,
                county=county.code,
                items=tuple(_items(items_t, mats, what_i)),
            )
        else:
            raise CatalogFileError(f"不支持的文件类型“{suffix or path.name}”：请用 .json、.csv 或 .xlsx")
    except CatalogFileError:
        raise
    except ValidationError as e:
        raise CatalogFileError(f"事项目录有误：{e.message}") from None
    if catalog.county not in ("", county.code):
        raise CatalogFileError(f"该事项目录属于县 {catalog.county}，不是本县（{county.code}）")
    if not catalog.items:
        raise CatalogFileError("事项目录中没有任何事项")
    if catalog.county == "":
        catalog = Catalog(
            version=catalog.version,
            published_at=catalog.published_at,
            county=county.code,
            items=catalog.items,
        )
    return catalog


def _sibling_materials(path: Path) -> Path:
    for cand in (path.with_name(f"{path.stem}-材料.csv"), path.with_name(f"{path.stem}.materials.csv")):
        if cand.exists():
            return cand
    raise CatalogFileError(
        f"找不到材料表：请用 --materials 指定，或把材料表放在 {path.stem}-材料.csv（每行一项材料，按实施编码对应事项）"
    )


def publish(cdb: CountyDB, county: County, catalog: Catalog) -> Event:
    """Append ``catalog.published`` (subject = version, body = ``Catalog.to_dict()``) to the county chain."""
    E = cdb.m.Event
    with cdb.write():
        exists = (
            E.select(E.pos)
            .where(
                (E.station == county.station)
                & (E.kind == K.CATALOG_PUBLISHED)
                & (E.subject == catalog.version)
            )
            .exists()
        )
        if exists:
            raise CatalogFileError(f"版本“{catalog.version}”的事项目录已经发布过，请换一个新的版本号")
        return county_chain.append(cdb, county, K.CATALOG_PUBLISHED, catalog.version, catalog.to_dict())
