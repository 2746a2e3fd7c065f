"""Handlers for PINs: ``user change-pin``, ``user reset-pin`` and ``recover`` (county recovery)."""

from __future__ import annotations

from schema.errors import ValidationError
from station import recovery
from station.cli.commands import EXIT_OFFLINE, Output, _login, _secret, _session
from station.services import users

EXIT_WAITING = 4  # recover --fetch: the county has not approved yet


def user_change_pin(args, out: Output) -> None:
    login = _login(args)
    old = _secret("STATION_PIN", f"{login} 的原PIN：")
    with _session(args, pin=old) as s:
        new = _secret("STATION_NEW_PIN", "新PIN或口令：", confirm=True)
        users.change_pin(s, old, new)
    out.emit({"login": login}, f"已修改 {login} 的PIN，下次登录请用新PIN")


def user_reset_pin(args, out: Output) -> None:
    """Someone else's PIN; one's own goes the change path (the old PIN is required)."""
    login = _login(args)
    if args.target.lower() == login.lower():
        user_change_pin(args, out)
        return
    with _session(args) as s:
        users.check_can_manage(s, s.slots.find(args.target).role, "重置PIN：")
        new = _secret("STATION_NEW_PIN", f"为 {args.target} 设置新PIN：", confirm=True)
        users.reset_pin(s, args.target, new)
    out.emit({"login": args.target}, f"已重置用户 {args.target} 的PIN")


def recover(args, out: Output) -> int:
    from sync.client import Offline

    modes = [bool(args.request_file), args.online, args.fetch, bool(args.response_file)]
    if sum(modes) != 1:
        raise ValidationError(
            "请选择一步：--request-file 文件夹（U盘申请）、--online（联网申请）、"
            "--response-file 答复文件（导入U盘带回的答复）或 --fetch（联网获取答复）"
        )
    login = _login(args)
    try:
        if args.request_file or args.online:
            new = _secret("STATION_NEW_PIN", f"为 {login} 设置新PIN或口令：", confirm=True)
            if args.request_file:
                started = recovery.request_file(args.data_dir, login, new, args.request_file)
            else:
                started = recovery.request_online(args.data_dir, login, new, url=args.server)
            out.emit(started.to_dict(), started.text())
            return 0
        if args.fetch:
            answer = recovery.fetch(args.data_dir, login, url=args.server)
            if answer is None:
                code = (recovery.pending(args.data_dir, login) or {}).get("check", "")
                out.emit({"login": login, "status": "pending", "check_code": code},
                         f"县中心还没有批准这次申请。请确认已打电话报出核对码 {code}，稍后再运行 station recover --fetch")
                return EXIT_WAITING
    except Offline as e:
        out.error(e)
        return EXIT_OFFLINE
    new = _secret("STATION_NEW_PIN", f"{login} 申请恢复时设置的新PIN：")
    if args.fetch:
        session = recovery.apply(args.data_dir, login, new, answer)
    else:
        session = recovery.apply_file(args.data_dir, login, new, args.response_file)
    with session:
        name = session.user.name
    out.emit({"login": login, "recovered": True}, f"已恢复：{name}（{login}）现在可以用新PIN登录了")
    return 0
