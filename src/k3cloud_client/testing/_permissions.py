"""The rights of the simulator's user, per form, as a K/3 role grants them: which operations a
permission governs, and the refusal of an operation the user lacks it for (MsgCode 2) or that a
read-only form does not take (MsgCode 12)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from _huke_k3_core import plural

from ._replies import NO_PERMISSION_MESSAGE, Fail
from ._store import Form

__all__ = ["PERMISSIONS", "Permissions"]

#: The permissions ``FakeK3Cloud.deny`` / ``allow`` take, and the operations each one governs.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "query": frozenset({"ExecuteBillQuery", "BillQuery", "View"}),
    "save": frozenset({"Save", "BatchSave"}),
    "submit": frozenset({"Submit"}),
    "audit": frozenset({"Audit", "UnAudit"}),
    "delete": frozenset({"Delete"}),
    "allocate": frozenset({"Allocate"}),
}
#: How a refusal names each permission (K/3's names of the rights).
_RIGHT_NAMES = {
    "query": "查看",
    "save": "保存",
    "submit": "提交",
    "audit": "审核",
    "delete": "删除",
    "allocate": "分配",
}
# The simulator's own wording (the real text was not found); MsgCode 12 is "not allowed".
_READ_ONLY_MESSAGE = "“{form}”不允许通过 WebAPI 执行“{right}”操作"


class Permissions:
    """The permissions the user lacks: (form id in upper case, permission) pairs. Not locked:
    the simulator holds its lock around every use."""

    def __init__(self) -> None:
        self._denied: set[tuple[str, str]] = set()

    def deny(self, form_id: str, permissions: Iterable[str]) -> None:
        self._denied.update(_pairs(form_id, tuple(permissions)))

    def allow(self, form_id: str, permissions: Iterable[str]) -> None:
        self._denied.difference_update(_pairs(form_id, tuple(permissions)))

    def denied(self, form_id: str) -> set[str]:
        key = form_id.upper()
        return {permission for form, permission in self._denied if form == key}

    def check(self, form: Form, permission: str) -> None:
        """Refuse an operation needing ``permission`` on ``form``: the user lacks it (MsgCode
        2), or the form is read-only and ``permission`` is not ``"query"`` (MsgCode 12)."""
        right = _RIGHT_NAMES[permission]
        if (form.form_id.upper(), permission) in self._denied:
            message = NO_PERMISSION_MESSAGE.format(form=form.form_id, right=right)
            # FieldName "" and not null: the real server names no field for such a refusal.
            raise Fail(message, code=2, field="")
        if form.read_only and permission != "query":
            raise Fail(_READ_ONLY_MESSAGE.format(form=form.form_id, right=right), code=12)


def _pairs(form_id: str, permissions: tuple[str, ...]) -> set[tuple[str, str]]:
    if not isinstance(form_id, str) or not form_id:
        raise ValueError(f"form_id must be non-empty text, got {form_id!r}")
    if not permissions:
        raise ValueError(f"name at least one permission: {', '.join(PERMISSIONS)}")
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        raise ValueError(
            f"unknown {plural(len(unknown), 'permission', counted=False)} {unknown!r}: known are {', '.join(PERMISSIONS)}"
        )
    return {(form_id.upper(), permission) for permission in permissions}
