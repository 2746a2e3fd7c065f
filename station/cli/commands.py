"""Handlers for the ``station`` sub-commands: parse → call a service → print."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

from schema.case import RATING_LABELS, CaseView, MaterialStatus, ResultCode, State
from schema.cliparse import human_time
from schema.errors import UserError, ValidationError
from schema.org import Level, complete_org_code, parse_role
from schema.validation import mask_id_number, mask_phone
from station.config import DataDir
from station.services import cases, queries, users
from station.services import catalog as catalogs
from station.session import Session, init_station, unlock


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: Any, text: str) -> None:
        if self.as_json:
            print(json.dumps({"ok": True, **data} if isinstance(data, dict) else {"ok": True, "items": data},
                             ensure_ascii=False, indent=1))
        else:
            print(text)

    def error(self, e: UserError) -> None:
        if self.as_json:
            print(json.dumps({"ok": False, "error": e.code, "message": e.message, "field": e.field},
                             ensure_ascii=False))
        print("错误：" + e.message, file=sys.stderr)


# -- PINs and sessions ------------------------------------------------------------


def _secret(env: str, prompt: str, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise ValidationError(f"请输入PIN（非交互运行时可通过环境变量 {env} 提供）")
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("再输入一次：") != value:
        raise ValidationError("两次输入的PIN不一致")
    return value


def _login(args) -> str:
    DataDir(args.data_dir).require_station()  # a mistyped --data-dir: say so, not "key file damaged"
    login = args.login or os.environ.get("STATION_USER")
    if login:
        return login
    from station.store.keyslots import KeySlots

    active = [u for u in KeySlots.load(DataDir(args.data_dir).slots).users() if not u.disabled]
    if len(active) == 1:
        return active[0].login
    raise ValidationError("本工作站有多个用户，请用 --user 指定登录名：" + "、".join(u.login for u in active))


def _session(args, pin: str | None = None) -> Session:
    login = _login(args)
    session = unlock(args.data_dir, login, pin or _secret("STATION_PIN", f"{login} 的PIN："))
    for notice in session.slots.notices:  # e.g. a full disk: the failure counter could not be saved
        print("提示：" + notice, file=sys.stderr)
    return session


# -- station and users ---------------------------------------------------------------


def init(args, out: Output) -> None:
    role = parse_role(args.role)
    org = complete_org_code(args.org)
    login = args.login or os.environ.get("STATION_USER")
    if not login:
        raise ValidationError("请用 --user 给出第一个用户的登录名，如 --user zhang", field="login")
    pin = _secret("STATION_PIN", "设置PIN（至少6位）：", confirm=True)
    with init_station(args.data_dir, org=org, name=args.name, login=login, role=role, pin=pin,
                      user_name=args.user_name, station_no=args.station_no) as s:
        cfg = s.config
        out.emit({"station_id": cfg.station_id, "org": cfg.org, "name": cfg.name, "user": login},
                 f"已初始化工作站“{cfg.name}”（{cfg.org}），用户 {login}（{role.label}）")
        _warn_if_file_only(s)


def _warn_if_file_only(s: Session) -> None:
    """Tell the admin when PINs are protected by the key file alone (no credential store here)."""
    from station.services.admin import key_protection

    protection = key_protection(s)
    if protection.file_only:
        print(protection.text(), file=sys.stderr)


def user_add(args, out: Output) -> None:
    role = parse_role(args.role)
    with _session(args) as s:
        users.check_can_manage(s, role, "添加")
        pin = _secret("STATION_NEW_PIN", f"为 {args.new_login} 设置PIN：", confirm=True)
        info = users.add_user(s, args.new_login, role, pin, args.name)
    out.emit({"user_id": info.user_id, "login": info.login, "role": info.role.value},
             f"已添加用户 {info.login}（{info.role.label}）")


def user_list(args, out: Output) -> None:
    with _session(args) as s:
        rows = users.list_users(s)
        _warn_if_file_only(s)
    data = [{"login": u.login, "name": u.name, "role": u.role.value, "disabled": u.disabled,
             "locked": u.locked, "failures": u.failures} for u in rows]
    lines = [f"{u.login:<16}{u.name:<10}{u.role.label:<8}"
             + ("已停用" if u.disabled else "已锁定" if u.locked else "正常") for u in rows]
    out.emit(data, "\n".join(lines))


def user_disable(args, out: Output) -> None:
    with _session(args) as s:
        users.disable_user(s, args.target)
    out.emit({"login": args.target}, f"已停用用户 {args.target}")


# -- catalog -------------------------------------------------------------------------


def catalog_search(args, out: Output) -> None:
    items = catalogs.search(args.text)
    data = [{"code": i.impl_code, "name": i.name, "department": i.department, "case_type": i.case_type.value}
            for i in items]
    text = "\n".join(f"{i.impl_code}  {i.name}（{i.department}，{i.case_type.label}）" for i in items)
    out.emit(data, text or "没有找到匹配的事项")


def catalog_show(args, out: Output) -> None:
    item = catalogs.get(args.code)
    lines = [
        f"{item.name}",
        f"实施编码：{item.impl_code}    基本编码：{item.basic_code}",
        f"实施部门：{item.department}    事项类型：{item.item_type}    办件类型：{item.case_type.label}",
        f"决定层级：{item.decide_level.label}    村级：{'可代办受理' if item.village_may_accept else '仅可咨询'}",
        f"承诺时限：{item.promise_limit.label}    法定时限：{item.legal_limit.label if item.legal_limit else '无'}",
        f"收费：{item.fee_label}" + (f"（{item.fee_note}）" if item.fee_note else ""),
    ]
    if item.publicity:
        lines.append(f"公示期：{item.publicity.label}")
    if item.co_departments:
        lines.append("联办部门：" + "、".join(item.co_departments))
    lines.append("申请材料：")
    for m in item.materials:
        flags = "必需" if m.required else "可选"
        if m.rongque:
            flags += "，可容缺"
        lines.append(f"  - {m.name}（{m.form.label} {m.count}份，{flags}）" + (f" {m.note}" if m.note else ""))
    if item.guide:
        lines.append("办事指南：" + item.guide)
    out.emit(item.to_dict(), "\n".join(lines))


# -- cases -----------------------------------------------------------------------------


def case_json(s: Session, view: CaseView, *, reveal: str | None = None) -> dict[str, Any]:
    row = s.db.execute_sql("SELECT due_date, due_estimated FROM case_view WHERE case_id = ?",
                           (view.case_id,)).fetchone()
    a = dict(view.applicant)
    a["id_number"] = reveal or mask_id_number(a.get("id_number", ""))
    a["phone"] = mask_phone(a.get("phone", ""))
    return {
        "case_id": view.case_id, "case_no": view.case_no, "state": view.state.value, "state_label": view.state.label,
        "item_code": view.item.get("code"), "item_name": view.item.get("name"),
        "applicant": a, "materials": view.materials,
        "intake_org": view.intake_org, "holder_org": view.holder_org, "holder_level": view.holder_level,
        "registered_at": view.registered_at, "accepted_at": view.accepted_at,
        "due_date": row[0] if row else None, "due_estimated": bool(row[1]) if row else False,
        "paused": view.state in (State.SUSPENDED, State.AWAITING_SUPPLEMENT) and view.accepted_at is not None,
        "supplement_deadline": view.supplement_deadline, "still_missing": view.still_missing,
        "result_code": view.result_code, "outcome": view.outcome, "certificate": view.certificate,
        "level_closures": view.level_closures, "ratings": view.ratings, "first_responder": view.first_responder,
        "proxy": _masked_proxy(view.proxy), "rongque_promise": view.rongque_promise, "publicity": view.publicity,
        "special": view.special, "extensions": view.extensions, "co_dispatch": view.co_dispatch,
        "co_opinions": view.co_opinions, "void_request": view.void_request, "rectify": view.rectify,
        "conflicts": [c.__dict__ for c in view.conflicts],
    }


def _masked_proxy(proxy: dict[str, Any] | None) -> dict[str, Any] | None:
    if not proxy:
        return None
    from schema.identity import mask_document

    return {**proxy, "doc_number": mask_document(proxy.get("doc_type", "resident_id"), proxy.get("doc_number", "")),
            "phone": mask_phone(proxy.get("phone", ""))}


def _case_text(d: dict[str, Any], timeline: list[str] | None = None) -> str:
    due = d["due_date"] or ("暂停计时" if d["paused"] else "—")
    if d["due_date"] and d["due_estimated"]:
        due += "（预计）"
    mats = "、".join(f"{m}[{MaterialStatus(s).label}]" for m, s in d["materials"].items())
    a = d["applicant"]
    lines = [
        f"办件编号：{d['case_no']}    状态：{d['state_label']}",
        f"事项：{d['item_name']}（{d['item_code']}）",
        f"申请人：{a.get('name')}  {a.get('gender', '')}  身份证号：{a.get('id_number')}  电话：{a.get('phone') or '—'}",
        f"收件：{human_time(d['registered_at'])}    受理：{human_time(d['accepted_at'])}    承诺办结：{due}",
        f"当前经办：{Level(d['holder_level']).label} {d['holder_org']}",
        f"材料：{mats}",
    ]
    if d["proxy"]:
        p = d["proxy"]
        lines.append(f"代办人：{p['name']}（{p['relation']}）证件：{p['doc_number']}")
    if d["supplement_deadline"]:
        lines.append(f"补正期限：{d['supplement_deadline']}    尚缺：{'、'.join(d['still_missing']) or '—'}")
    if d["rongque_promise"]:
        rp = d["rongque_promise"]
        state = "已补齐" if rp.get("fulfilled_at") else f"须在{rp['due']}前补交"
        lines.append(f"容缺承诺：{'、'.join(rp['materials'])}，{state}（{rp['promise']}）")
    if d["special"]:
        lines.append(f"特别程序：{d['special']['reason']}，至{d['special'].get('until') or '—'}自动恢复计时")
    if d["void_request"]:
        lines.append(f"作废申请：{d['void_request']['reason']}（待上级审批）")
    if d["result_code"]:
        cert = f"，证照编号 {d['certificate']}" if d["certificate"] else ""
        lines.append(f"办结结果：{ResultCode(d['result_code']).label}{cert}")
    for r in d["ratings"]:
        lines.append(f"{'追评' if r['follow_up'] else '评价'}：{RATING_LABELS[r['level']]} {r['comment']}")
    if d["rectify"] and not d["rectify"].get("closed_at"):
        lines.append(f"差评整改：由 {d['rectify']['org']} 负责，{d['rectify']['due']} 前完成")
    for c in d["conflicts"]:
        lines.append(f"冲突：{human_time(c['at'])} {c['kind']}：{c['reason']}")
    if timeline:
        lines.append("全程记录：")
        lines.extend("  " + t for t in timeline)
    return "\n".join(lines)


def _show(s: Session, view: CaseView, out: Output, *, reveal: str | None = None, timeline: bool = False) -> None:
    d = case_json(s, view, reveal=reveal)
    tl = None
    if timeline:
        from station.services.timeline import timeline as build_timeline

        entries = build_timeline(s, view.case_id)
        d["timeline"] = [e.to_dict() for e in entries]
        tl = [e.text() for e in entries]
    out.emit(d, _case_text(d, tl))


def _proxy(args) -> dict[str, Any] | None:
    if not args.proxy_name:
        return None
    return {"name": args.proxy_name, "relation": args.proxy_relation, "doc_type": args.proxy_doc_type,
            "doc_number": args.proxy_doc_number, "phone": args.proxy_phone}


def case_new(args, out: Output) -> None:
    with _session(args) as s:
        view = cases.register(s, item_code=args.item, name=args.applicant, id_number=args.id_number,
                              doc_type=args.doc_type, phone=args.phone, received=args.received,
                              received_at=args.received_at, note=args.note, proxy=_proxy(args))
        _show(s, view, out)


def case_action(args, out: Output) -> None:
    """Every ``case <action>`` sub-command (station.cli.case_actions)."""
    from station.cli.case_actions import values_of

    with _session(args) as s:
        view = cases.act(s, args.case, args.action_name, values_of(args), at=getattr(args, "at", None))
        _show(s, view, out)


def case_immediate(args, out: Output) -> None:
    with _session(args) as s:
        view = cases.complete_at_once(s, args.case, opinion=args.opinion, certificate=args.certificate)
        _show(s, view, out)


def case_show(args, out: Output) -> None:
    with _session(args) as s:
        view = cases.get(s, args.case)
        reveal = cases.reveal_id_number(s, args.case) if args.reveal_id else None
        _show(s, view, out, reveal=reveal, timeline=True)


def _rows_out(rows: list[queries.CaseRow], out: Output, empty: str) -> None:
    def line(r: queries.CaseRow) -> str:
        due = (r.due_date or "") + ("(预计)" if r.due_date and r.due_estimated else "")
        return f"{r.case_no}  {r.state.label:<6} {r.applicant_name:<6} {r.id_masked}  {r.item_name}  {due}"

    out.emit([r.to_dict() for r in rows], "\n".join(line(r) for r in rows) or empty)


def case_list(args, out: Output) -> None:
    with _session(args) as s:
        rows = queries.list_cases(s, states=cases.states_for(args.state), overdue=args.overdue, limit=args.limit)
    _rows_out(rows, out, "没有符合条件的办件")


def case_search(args, out: Output) -> None:
    with _session(args) as s:
        rows = queries.search_cases(s, args.text)
    _rows_out(rows, out, "没有找到匹配的办件")


# -- 咨询 and 投诉 -----------------------------------------------------------------------------


def consult(args, out: Output) -> None:
    from station.services import registers

    with _session(args) as s:
        cid = registers.record_consultation(s, answer=args.answer, item_code=args.item, topic=args.topic,
                                            channel=args.channel, name=args.name, phone=args.phone)
    out.emit({"consult_id": cid}, "已记录咨询")


def _complaint_out(c, out: Output) -> None:
    out.emit(c.to_dict(), f"投诉 {c.complaint_no}：{c.state.label}，由 {c.owner_org} 办理，期限 {c.due}"
             + (f"，结果：{c.result}" if c.result else ""))


def complaint_new(args, out: Output) -> None:
    from station.services import registers

    with _session(args) as s:
        c = registers.file_complaint(s, content=args.content, about=args.about, case_no=args.case, staff=args.staff,
                                     channel=args.channel, name=args.name, phone=args.phone)
    _complaint_out(c, out)


def complaint_forward(args, out: Output) -> None:
    from station.services import registers

    with _session(args) as s:
        _complaint_out(registers.forward_complaint(s, args.complaint, args.opinion), out)


def complaint_answer(args, out: Output) -> None:
    from station.services import registers

    with _session(args) as s:
        _complaint_out(registers.answer_complaint(s, args.complaint, args.result), out)


def complaint_list(args, out: Output) -> None:
    from station.services import registers

    with _session(args) as s:
        rows = registers.open_complaints(s)
    out.emit([c.to_dict() for c in rows],
             "\n".join(f"{c.complaint_no}  {c.state.label}  期限 {c.due}  {c.content[:30]}" for c in rows)
             or "没有正在办理的投诉")


# -- maintenance --------------------------------------------------------------------------


def verify(args, out: Output) -> int:
    from station.services.verify import verify_station

    with _session(args) as s:
        report = verify_station(s)
    out.emit(report.to_dict(), report.text())
    return 0 if report.ok else 1


def demo_data(args, out: Output) -> None:
    from station.services.demo import build_demo

    if not 0 <= args.cases <= 100_000:
        raise ValidationError("演示办件数量应在0到100000之间")
    if args.county:
        from station.services.demo_county import build_demo_county

        if (args.data_dir / "county.db").exists():
            raise ValidationError(f"{args.data_dir} 中已有演示县中心，请换一个空目录")
        result = build_demo_county(args.data_dir, cases=args.cases, seed=args.seed)
        out.emit(result, result["summary"] + f"\n县中心数据库：{result['county_db']}\n工作站数据目录：{result['station_dir']}")
        return
    result = build_demo(args.data_dir, cases=args.cases, seed=args.seed,
                        progress=None if args.json else lambda n: print(f"\r已生成 {n} 件", end="", file=sys.stderr))
    out.emit(result, "\n" + result["summary"])


# -- sync with the county ---------------------------------------------------------------------

EXIT_REFUSED = 2
EXIT_OFFLINE = 3


def _offline(out: Output, e: UserError) -> int:
    out.error(e)
    return EXIT_OFFLINE


def enroll(args, out: Output) -> int:
    from station.replication import enroll as enrolling
    from sync.client import Offline

    modes = [bool(args.server), bool(args.request_file), bool(args.response_file)]
    if sum(modes) != 1:
        raise ValidationError("请选择一种登记方式：--server 地址 --code 登记码（在线），"
                              "--request-file 文件 --code 登记码（离线申请），或 --response-file 文件（应用答复）")
    if (args.server or args.request_file) and not args.code:
        raise ValidationError("请用 --code 提供县中心管理员给出的登记码")
    if args.response_file and args.code:
        raise ValidationError("应用答复文件时不需要 --code（登记码已记在申请中）")
    if args.ca_file and args.request_file:
        raise ValidationError("写申请文件时不需要 --ca-file；请在应用答复文件（--response-file）或在线登记时指定")
    with _session(args) as s:
        if args.request_file:
            path = enrolling.write_request(s, args.request_file, args.code)
            out.emit({"request_file": str(path)},
                     f"已写入登记申请文件 {path}。请用U盘交给县中心管理员，拿回答复文件后运行："
                     f"station enroll --response-file 答复文件")
            return 0
        try:
            if args.response_file:
                result = enrolling.apply_response_file(s, args.response_file, ca_file=args.ca_file)
            else:
                result = enrolling.enroll_online(s, args.server, args.code, ca_file=args.ca_file)
        except Offline as e:
            return _offline(out, e)
    out.emit(result.to_dict(), result.text())
    _notices([result.notice])
    return 0


def _notices(notices: list[str]) -> None:
    """Worth telling, not errors: on stderr, so that --json output stays one document."""
    for notice in notices:
        if notice:
            print(notice, file=sys.stderr)


def _progress_printer():
    last: dict[str, tuple[int, int | None]] = {}

    def show(stage: str, done: int, total: int | None) -> None:
        if last.get(stage) == (done, total):
            return
        last[stage] = (done, total)
        print(f"[{stage}] {done}/{total}" if total is not None else f"[{stage}] {done}", flush=True)

    return show


def sync(args, out: Output) -> int:
    from station.replication.runner import sync_now

    with _session(args) as s:
        report = sync_now(s, progress=None if args.json else _progress_printer(), url=args.server,
                          retry_blocked=args.retry)
    out.emit(report.to_dict(), report.summary)
    _notices(report.notices)
    if report.messages:
        print("错误：" + "；".join(report.messages), file=sys.stderr)
    return report.exit_code


def sync_status(args, out: Output) -> None:
    from station.replication.runner import history
    from station.replication.status import sync_status as status

    with _session(args) as s:
        st = status(s)
        rows = history(s, args.history) if args.history else []
    data = {**st.to_dict(), "history": rows}
    lines = [st.text()]
    for r in rows:
        lines.append(f"  {human_time(r['started_at'])}  {r['outcome']:<11} 上传 {r['pushed']} "
                     f"下载 {r['pulled']}  {r['message']}")
    out.emit(data, "\n".join(lines))


def bundle_export(args, out: Output) -> None:
    from station.replication.bundles import export_bundle

    with _session(args) as s:
        result = export_bundle(s, args.path)
    out.emit(result.to_dict(), result.text())


def bundle_import(args, out: Output) -> int:
    from station.replication.bundles import import_path

    with _session(args) as s:
        result = import_path(s, args.path)
    out.emit(result.to_dict(), result.text())
    if result.problems:
        print("错误：" + "；".join(result.problems), file=sys.stderr)
        return EXIT_REFUSED
    return 0


# -- backup and restore ---------------------------------------------------------------------------


def backup(args, out: Output) -> None:
    from station.services.backup import create_backup

    with _session(args) as s:
        result = create_backup(s, args.path)
    out.emit(result.to_dict(), result.text())


def restore(args, out: Output) -> None:
    from station.services.backup import backup_logins, restore_backup

    login = args.login or os.environ.get("STATION_USER")
    if not login:
        logins = backup_logins(args.path)
        if len(logins) != 1:
            raise ValidationError("请用 --user 指定备份中的一个用户（恢复时要用该用户的PIN打开备份）："
                                  + "、".join(logins), field="login")
        login = logins[0]
    pin = _secret("STATION_PIN", f"备份中用户 {login} 的PIN：")
    result = restore_backup(args.path, args.data_dir, login, pin, replace=args.replace)
    out.emit(result.to_dict(), result.text())


def self_test(args, out: Output) -> int:
    from station.services.selftest import run

    report = run(None if args.json else lambda step: print(f"自检：{step}……", flush=True),
                 keep=args.keep)
    out.emit(report.to_dict(), report.text())
    return 0 if report.ok else 1
