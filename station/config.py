"""Where a station lives, and its plain settings file ``station.json`` in the data directory.

The settings hold only what is needed before the database is unlocked and nothing
personal: which station this is, its org, its name, its number in case
numbers. Secrets live in the key slots and the encrypted database.

Where things are (platformdirs), unless ``--data-dir`` or ``$STATION_DATA_DIR`` names a folder:

=========  ===================================  ====================================
           Windows 10+                          Linux
=========  ===================================  ====================================
data       ``%LOCALAPPDATA%\\station``           ``~/.local/share/station``
logs       ``%LOCALAPPDATA%\\station\\Logs``      ``~/.local/state/station/log``
=========  ===================================  ====================================

With a named folder, everything — database, key slots, ``station.json`` and the ``logs``
folder — is inside it, so one folder is one station.
"""

from __future__ import annotations

import json
import os
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
LOG_FOLDER = "logs"
APP = "station"


def default_data_dir() -> Path:
    """``$STATION_DATA_DIR``, else the platform's per-user data folder (not roaming on Windows)."""
    env = os.environ.get("STATION_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False, roaming=False))


def default_log_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir(APP, appauthor=False))


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
        """The log file: in the platform's log folder for the default data folder, else in ``logs/``."""
        if not os.environ.get("STATION_DATA_DIR") and _same(self.root, default_data_dir()):
            return default_log_dir() / LOG_FILE
        return self.root / LOG_FOLDER / LOG_FILE

    def exists(self) -> bool:
        return self.config.exists()

    def require_station(self) -> None:
        """A clear message when ``--data-dir`` points where no station is (a typo, an empty stick)."""
        if self.exists():
            return
        if self.slots.exists() or self.db.exists():
            raise ConfigError(
                f"数据目录 {self.root} 中缺少工作站配置文件 {CONFIG_FILE}。如有备份，请用 station restore 恢复；"
                "否则请联系县中心"
            )
        raise ConfigError(
            f"数据目录 {self.root} 中没有工作站。请检查 --data-dir 是否写对；"
            "新建工作站请运行 station init（或不带命令运行 station，按向导设置）"
        )

    def load_config(self) -> StationConfig:
        self.require_station()
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



def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
