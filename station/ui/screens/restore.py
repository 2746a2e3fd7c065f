"""从备份恢复, shared by the first-run wizard (a new PC) and 管理 → 工作站 (an existing station).

The file picker, then the backup's login and PIN, then ``station.services.backup.restore_backup``
on a thread (it reads and checks hundreds of MB; the session thread is closed by then). Nothing is
replaced unless the backup checks out completely; the app ends on the unlock screen either way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from station.ui.screens.dialogs import Field, PinFormDialog

EXPLAIN = ("用备份文件恢复工作站。恢复前会完整校验备份，不通过就不做任何改动；"
           "原来的数据不删除，保留在数据目录旁边。\n备份之后新登记、又没有同步的记录不在备份里。")


async def restore_flow(app: Any, *, login: str = "") -> bool:
    """Ask for the file and the PIN, close any session, restore. True when the station was replaced."""
    from station.services.backup import SUFFIX, backup_logins, restore_backup
    from station.ui.screens.file_picker import FilePickerScreen

    path = await app.push_screen_wait(FilePickerScreen(
        "从备份恢复：选择备份文件", mode="file", suffixes=(SUFFIX,),
        prompt="选择U盘上的备份文件（*.station-backup）"))
    if path is None:
        return False
    try:
        logins = await asyncio.to_thread(backup_logins, path)
    except Exception as exc:  # noqa: BLE001 - not a backup: say so, change nothing
        app.show_error(exc)
        return False
    default = login if login in logins else (logins[0] if len(logins) == 1 else "")
    values = await app.push_screen_wait(PinFormDialog("从备份恢复", [
        Field("login", "登录名", "choice", [(name, name) for name in logins], default=default or None,
              required=True),
        Field("pin", "PIN", required=True, max_length=32),
    ], ok_label="恢复", prompt="选择备份中的一个用户，输入他备份时的PIN。恢复后用这个登录名和PIN登录。"))
    if values is None:
        return False
    await app.close_session()
    try:
        result = await asyncio.to_thread(restore_backup, path, app.data.root, values["login"], values["pin"],
                                         replace=True)
    except Exception as exc:  # noqa: BLE001 - nothing was replaced; shown, then the unlock screen
        app.show_error(exc)
        if app.data.exists():
            app.lock(login=login or None)  # last: it removes the calling screen (and its worker)
        return False
    app.notify(result.text(), title="恢复完成", timeout=20, markup=False)
    app.lock(login=values["login"])
    return True
