"""Station user accounts: events for the record, key slots for the keys.

A station holds only the roles of its level (``schema.authority``: a village 代办员 and
管理员, a township 窗口人员 and 管理员, the county 审批人员 and 管理员), and a role manages
only roles below it (a 管理员 manages every account of its station), so the local
管理员 set up by county IT creates the station's accounts; nobody re-encrypts the
database to do it. Users act for the station's own org.
"""

from __future__ import annotations

from schema import events as K
from schema.authority import check_role_at
from schema.errors import TransitionError, ValidationError
from schema.ids import new_id
from schema.org import Role
from schema.validation import check_person_name
from station.session import Session
from station.store.keyslots import SlotInfo, validate_pin


def check_can_manage(session: Session, role: Role, what: str) -> None:
    if not session.user.role.outranks(role):
        raise TransitionError(f"{session.user.role.label}不能{what}{role.label}账号，请由上级人员操作")


def add_user(session: Session, login: str, role: Role, pin: str, name: str | None = None) -> SlotInfo:
    check_can_manage(session, role, "添加")
    check_role_at(role, session.config.org)
    display = check_person_name(name, label="用户姓名") if name else login
    validate_pin(pin)
    user_id = new_id()
    org = session.config.org
    # Write the event and the slot together: the slot file is written inside the
    # transaction, so a failed slot write rolls the event back.
    with session.store.writing():
        session.store.record(session.actor, K.USER_ADDED, user_id,
                             {"user_id": user_id, "login": login, "name": display, "role": role.value, "org": org})
        session.slots.add_user(user_id=user_id, login=login, name=display, role=role, pin=pin,
                               data_key=session.data_key())
    return session.slots.find(login)


def disable_user(session: Session, login: str) -> None:
    target = session.slots.find(login)
    if target.user_id == session.user.user_id:
        raise TransitionError("不能停用自己的账号")
    check_can_manage(session, target.role, "停用")
    with session.store.writing():
        session.store.record(session.actor, K.USER_DISABLED, target.user_id, {"user_id": target.user_id})
        session.slots.disable(login)


def reset_pin(session: Session, login: str, new_pin: str) -> None:
    """Someone else's PIN, by a higher role (one's own PIN is changed with the old one: change_pin)."""
    target = session.slots.find(login)
    if target.user_id == session.user.user_id:
        raise TransitionError("不能重置自己的PIN：请用“修改我的PIN”，需要输入原PIN")
    check_can_manage(session, target.role, "重置PIN：")
    validate_pin(new_pin)
    with session.store.writing():
        session.store.record(session.actor, K.USER_PIN_RESET, target.user_id,
                             {"user_id": target.user_id, "how": "reset"})
        session.slots.reset_pin(login, new_pin, session.data_key())


def change_pin(session: Session, old_pin: str, new_pin: str) -> None:
    """The signed-in user's own PIN; the old PIN is checked again (and counted like an unlock)."""
    validate_pin(new_pin)
    me = session.user
    if old_pin == new_pin:
        raise ValidationError("新PIN不能与原PIN相同", field="pin")
    session.slots.check_pin(me.login, old_pin)
    with session.store.writing():
        session.store.record(session.actor, K.USER_PIN_RESET, me.user_id, {"user_id": me.user_id, "how": "changed"})
        session.slots.reset_pin(me.login, new_pin, session.data_key())


def list_users(session: Session) -> list[SlotInfo]:
    return session.slots.users()
