"""The terminal UI drawn headless, for ``station self-test``: unlock, then open every screen.

A packaged build that lacks a stylesheet or one of Textual's lazily imported widgets fails here
(at the screen that needs it), not in front of a village agent.
"""

from __future__ import annotations

from pathlib import Path

SCREENS = ("f2", "f3", "f4", "f9", "f10", "f1")


async def draw_every_screen(data_dir: Path, login: str, pin: str) -> None:
    from textual.widgets import Input, Select

    from station.ui.app import StationApp
    from station.ui.screens.home import HomeScreen
    from station.ui.screens.unlock import UnlockScreen

    app = StationApp(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:

        async def settle() -> None:
            for _ in range(3):
                await pilot.pause()
                await app.workers.wait_for_complete()

        await settle()
        screen = app.screen
        if not isinstance(screen, UnlockScreen):
            raise RuntimeError(f"启动后不是登录界面：{type(screen).__name__}")
        screen.query_one("#unlock-user", Select).value = login
        screen.query_one("#unlock-pin", Input).value = pin
        screen.query_one("#unlock-pin", Input).focus()
        await pilot.press("enter")
        for _ in range(50):
            await settle()
            if isinstance(app.screen, HomeScreen):
                break
        else:
            raise RuntimeError("输入正确的PIN后没有进入首页")
        for key in SCREENS:
            await pilot.press(key)
            await settle()
            if isinstance(app.screen, HomeScreen):
                raise RuntimeError(f"按 {key.upper()} 没有打开对应的界面")
            await pilot.press("escape")
            await settle()
        if app.internal_errors:
            raise RuntimeError("界面出现内部错误：" + type(app.internal_errors[0]).__name__)
        app.exit()
