"""``station self-test``: does this installation work? Headless, offline, leaves nothing behind.

It exercises what a missing file or library in a packaged build would break, end to end, in a
temporary folder: an encrypted station (SQLCipher, Argon2id key slots, the migrations), a county
center on SQLite in the same process (its keys, its database), enrollment by the USB request
and answer files, a case registered and accepted (the catalog, the calendar, the case rules), a
USB bundle exported by the station and imported by the county (sealed envelopes, signatures,
receipts), the county's answer imported back, ``verify`` on the station, a backup and its
restore, and the terminal UI drawn headless on the station (stylesheets, every screen's widgets).
Then the folder is removed. Each step's name is reported; the first failure stops the test.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schema.org import Role

STEP_NAMES = (
    "建立加密工作站", "建立县中心", "登记到县中心（U盘文件）", "收件并受理", "导出U盘文件",
    "县中心导入", "导入县中心回执", "校验", "备份与恢复", "终端界面",
)
ORG = "110101001001"  # 东城区 东华门街道 … (a code the default catalog and calendar accept)
COUNTY = "110101000000"


def _id_number(first15: str) -> str:
    from schema.validation import id_check_char

    first17 = first15 + "91"
    return first17 + id_check_char(first17)


@dataclass
class SelfTestReport:
    steps: list[tuple[str, float]] = field(default_factory=list)
    failed: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self) -> str:
        lines = [f"  ✓ {name}（{seconds:.1f} 秒）" for name, seconds in self.steps]
        if self.failed:
            lines.append(f"  ✗ {self.failed}：{self.reason}")
            lines.append("自检未通过：本机的安装不完整或已损坏，请重新安装，或把以上内容告诉县中心")
        else:
            lines.append("自检通过：本机的安装完整，可以使用")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "steps": [{"name": n, "seconds": round(s, 2)} for n, s in self.steps],
                "failed": self.failed, "reason": self.reason}


def run(progress: Callable[[str], None] | None = None, *, keep: Path | None = None) -> SelfTestReport:
    """Run every step in a fresh temporary folder (or in ``keep``, left in place for a technician)."""
    report = SelfTestReport()
    root = Path(tempfile.mkdtemp(prefix="station-selftest-")) if keep is None else keep
    steps = _Steps(root)
    try:
        for name, step in zip(STEP_NAMES, steps.all(), strict=True):
            if progress:
                progress(name)
            started = time.perf_counter()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - reported as the failed step, by type and message
                report.failed = name
                report.reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                break
            report.steps.append((name, time.perf_counter() - started))
    finally:
        steps.close()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return report


class _Steps:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pin = "Zt" + secrets.token_hex(4)  # a fresh PIN: nothing here is a secret worth keeping
        self.passphrase = secrets.token_urlsafe(16)
        self.usb = root / "usb"
        self.session = None
        self.cdb = None
        self.county = None

    def all(self):
        return (self.station, self.county_center, self.enroll, self.case, self.export, self.county_import,
                self.answer, self.verify, self.backup, self.ui)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.cdb is not None:
            self.cdb.close()

    def station(self) -> None:
        from station.session import init_station

        self.usb.mkdir(parents=True, exist_ok=True)
        self.session = init_station(self.root / "station", org=ORG, name="自检工作站", login="selftest",
                                    role=Role.AGENT, pin=self.pin)

    def county_center(self) -> None:
        from sync.server.db import connect
        from sync.server.keystore import init_county

        self.cdb = connect(f"sqlite:///{self.root / 'county.db'}")
        self.county = init_county(self.cdb, code=COUNTY, name="自检县", passphrase=self.passphrase)

    def enroll(self) -> None:
        import json

        from station.replication import enroll
        from sync.server import registry

        code = registry.make_code(self.cdb, self.county, org=ORG, level="village", name="自检工作站")
        request = enroll.write_request(self.session, self.usb / "request.json", code)
        answer = registry.enroll(self.cdb, self.county, json.loads(request.read_text(encoding="utf-8")))
        (self.usb / "answer.json").write_text(json.dumps(answer), encoding="utf-8")
        enroll.apply_response_file(self.session, self.usb / "answer.json")

    def case(self) -> None:
        from schema.catalog import default_catalog
        from station.services import cases

        item = next(i for i in default_catalog().items if i.village_may_accept and i.promise_limit.days)
        view = cases.register(self.session, item_code=item.impl_code, name="自检", id_number=_id_number("110101199003072"),
                              received=[m.name for m in item.materials])
        cases.act(self.session, view.case_no, "accept")

    def export(self) -> None:
        from station.replication.bundles import export_bundle

        result = export_bundle(self.session, self.usb)
        if result.events < 4:
            raise RuntimeError(f"导出的记录条数不对（{result.events}）")
        self.exported = result.files

    def county_import(self) -> None:
        from sync.server import bundles

        results = bundles.import_path(self.cdb, self.county, self.exported[0])
        if [r.status for r in results] != ["imported"]:
            raise RuntimeError("县中心未能导入：" + "；".join(r.message for r in results))
        for f in self.exported:
            f.unlink()
        bundles.export(self.cdb, self.county, self.session.config.station_id, self.usb)

    def answer(self) -> None:
        from station.replication import identity
        from station.replication.bundles import import_path

        result = import_path(self.session, self.usb)
        if result.problems or identity.acked(self.session) != self.session.store.head()[0]:
            raise RuntimeError("回执未能确认全部记录：" + "；".join(result.problems))

    def verify(self) -> None:
        from station.services.verify import verify_station

        report = verify_station(self.session)
        if not report.ok:
            raise RuntimeError("；".join(report.problems[:3]))

    def backup(self) -> None:
        from station.services.backup import create_backup, restore_backup

        made = create_backup(self.session, self.usb)
        restored = restore_backup(made.path, self.root / "restored", "selftest", self.pin)
        if restored.events != made.events:
            raise RuntimeError("恢复的记录条数与备份不符")

    def ui(self) -> None:
        from station.ui.selftest import draw_every_screen

        self.session.close()
        self.session = None
        asyncio.run(draw_every_screen(self.root / "station", "selftest", self.pin))
