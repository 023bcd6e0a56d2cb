"""The K/3 shapes the simulator answers with: a ``ResponseStatus`` reply, an ``Errors`` entry,
and ``Fail``, the refusal of a row or of a whole call that becomes one."""

from __future__ import annotations

from typing import Any

#: The real server's text for a duplicate number (format with the number).
DUPLICATE_NUMBER_MESSAGE = "违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。"
SESSION_LOST_MESSAGE = "会话信息已丢失，请重新登录"
RATE_LIMIT_MESSAGE = "接口调用频率超出限制，请稍后再试"
#: The simulator's text for a permission its user lacks (MsgCode 2; the real wording was not
#: found): format with the form id and the right's name (``查看``, ``保存`` ...).
NO_PERMISSION_MESSAGE = "当前用户没有“{form}”的“{right}”权限，请联系系统管理员授权"

QUERY_OPS = frozenset({"ExecuteBillQuery", "BillQuery"})


class Fail(Exception):
    """One row (or the whole call) refused, with K/3 Cloud's MsgCode."""

    def __init__(self, message: str, *, code: int, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def error_entry(message: str, index: int | None, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"FieldName": field, "Message": message}
    if index is not None:
        error["DIndex"] = index
    return error


def reply_status(
    *,
    successes: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    ok = not errors
    return {
        "Result": {
            "ResponseStatus": {
                "ErrorCode": 0 if ok else 500,
                "IsSuccess": ok,
                "Errors": errors or [],
                "SuccessEntitys": successes or [],
                "SuccessMessages": [],
                "MsgCode": 0 if ok else code,
            }
        }
    }


class RowResults:
    """The per-row results of one call (``SuccessEntitys`` and ``Errors``, ``DIndex`` the row's
    position), then its reply: MsgCode of the first refusal."""

    def __init__(self) -> None:
        self.successes: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self._codes: list[int] = []

    def done(self, index: int, row: dict[str, Any], id_key: str) -> None:
        self.successes.append({"Id": row[id_key], "Number": row.get("FNumber"), "DIndex": index})

    def refused(self, index: int, fail: Fail) -> None:
        self.errors.append(error_entry(fail.message, index, fail.field))
        self._codes.append(fail.code)

    def reply(self) -> dict[str, Any]:
        code = self._codes[0] if self._codes else 0
        return reply_status(successes=self.successes, errors=self.errors, code=code)


def status_for(op: str, errors: list[dict[str, Any]], code: int) -> Any:
    """A whole-call failure, shaped as ``op`` answers (queries: dressed as a data row)."""
    reply = reply_status(errors=errors, code=code)
    return [[reply]] if op in QUERY_OPS else reply
