"""The station's plain settings file, ``station.json`` in the data directory.

Holds only what is needed before the database is unlocked and nothing
personal: which station this is, its org, its name, its number in case
numbers. Secrets live in the key slots and the encrypted database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from schema.errors import UserError, ValidationError
from schema.org import OrgCode
from station.store.atomicfile import atomic_write

FORMAT = "station-config"
VERSION = 1

DB_FILE = "station.db"
SLOTS_FILE = "keyslots.json"
CONFIG_FILE = "station.json"
LOG_FILE = "station.log"


class ConfigError(UserError):
    code = "config"


@dataclass
class StationConfig:
    station_id: str
    org: str
    name: str
    station_no: int = 1
    created_at: str = ""
    idle_lock_minutes: int = 10
    county_url: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        OrgCode(self.org)
        if not 1 <= self.station_no <= 99:
            raise ValidationError("工作站编号应为1到99", field="station_no")
        if not self.name.strip() or len(self.name) > 60:
            raise ValidationError("请填写工作站名称（不超过60个字）", field="name")


class DataDir:
    """Paths of one station's data directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def db(self) -> Path:
        return self.root / DB_FILE

    @property
    def slots(self) -> Path:
        return self.root / SLOTS_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    def exists(self) -> bool:
        return self.config.exists()

    def load_config(self) -> StationConfig:
        if not self.config.exists():
            raise ConfigError(f"数据目录 {self.root} 中还没有工作站，请先运行 station init 初始化")
        try:
            doc = json.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"工作站配置文件 {self.config} 已损坏：{e}") from None
        if doc.get("format") != FORMAT:
            raise ConfigError(f"{self.config} 不是工作站配置文件")
        if int(doc.get("version", 0)) > VERSION:
            raise ConfigError("工作站配置来自更新版本的程序，请安装最新版本后再打开")
        fields = {k: v for k, v in doc.items() if k in StationConfig.__dataclass_fields__}
        return StationConfig(**fields)

    def save_config(self, cfg: StationConfig) -> None:
        doc = {"format": FORMAT, "version": VERSION, **asdict(cfg)}
        data = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        atomic_write(self.config, data)

