"""Synthetic wire trades: one made to order (``fake_trade``), or many realistic ones
(``generate_trades``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from huke_client._time import to_epoch_ms

__all__ = ["fake_trade", "generate_trades"]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰红梅琳晨欣怡佳悦子涵宇轩浩然思雨"
_NICKNAMES = (
    "快乐的小猫",
    "清风徐来",
    "追梦人",
    "Lily",
    "阳光宝贝",
    "大白兔",
    "简单生活",
    "海阔天空",
    "小鱼儿",
    "Tony老师",
    "一只柠檬",
    "岁月静好",
)
_SUFFIXES = ("", "", "", "🌸", "😊", "~", "_88", "（南京）", " 🍀")
_PRODUCTS = (
    "有机绿茶礼盒 250g",
    "蚕丝被 春秋款",
    "智能保温杯 500ml",
    "儿童护眼台灯",
    "纯棉四件套 1.8m",
    "东北五常大米 10kg",
    "无线降噪耳机",
    "手工牛轧糖 礼盒装",
)
_STATUSES = ("已付款", "已发货", "已完成", "已退款")


def _buyer(index: int, seed: int) -> tuple[str, str]:
    """Nickname and customer id of buyer ``index``: cheap, deterministic, ids unique per seed."""
    mix = (index * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    suffix = _SUFFIXES[(mix >> 20) % len(_SUFFIXES)]
    if mix % 3:
        surname = _SURNAMES[mix % len(_SURNAMES)]
        given = _GIVEN[(mix >> 6) % len(_GIVEN)]
        if mix % 2:
            given += _GIVEN[(mix >> 12) % len(_GIVEN)]
        nick = surname + given + suffix
    else:
        nick = _NICKNAMES[(mix >> 4) % len(_NICKNAMES)] + suffix
    # An odd multiplier is a bijection modulo 2**48: distinct buyers never share an id.
    cid = f"wm{((index + 1) * 0x5DEECE66D + seed) & 0xFFFFFFFFFFFF:012x}"
    return nick, cid


def fake_trade(
    *,
    create_time: datetime | int,
    tid: str | None = None,
    buyer_nick: str | None = "张三",
    buyer_cid: str | None = "wm000000000001",
    payment: str = "99.00",
    source: str = "2",
    **extra: Any,
) -> dict[str, Any]:
    """One wire trade: ``tid``, ``source``, ``buyerNick``, ``buyerCid``, ``createTime`` (epoch
    ms), ``payment``, plus ``extra`` fields as given. ``None`` leaves a field out."""
    ms = to_epoch_ms(create_time, "create_time")
    trade: dict[str, Any] = {
        "tid": tid if tid is not None else f"T{ms}",
        "source": source,
        "buyerNick": buyer_nick,
        "buyerCid": buyer_cid,
        "createTime": ms,
        "payment": payment,
    }
    trade.update(extra)
    return {k: v for k, v in trade.items() if v is not None}


def generate_trades(
    n: int,
    *,
    start: datetime | int,
    end: datetime | int,
    buyers: int | None = None,
    seed: int = 0,
    missing_cid_every: int | None = None,
) -> Iterator[dict[str, Any]]:
    """``n`` realistic synthetic wire trades, lazily (stream a million without holding them).

    Deterministic for a given ``seed``. Buyers (``buyers`` distinct ones, default ``n // 4``, at
    least 1) have Chinese names or nicknames and repeat, a few far more often than others.
    ``createTime`` is uniform in ``[start, end]`` (epoch ms, inclusive); ``tid`` is unique.
    Every ``missing_cid_every``-th trade has no ``buyerCid`` (the key is absent).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    low, high = to_epoch_ms(start, "start"), to_epoch_ms(end, "end")
    if low > high:
        raise ValueError(f"start ({low}) is after end ({high})")
    pool = max(1, buyers if buyers is not None else n // 4)
    regulars = max(1, pool // 20)
    rng = random.Random(seed)
    for number in range(1, n + 1):
        # About a third of trades come from the most loyal 5% of buyers.
        buyer = rng.randrange(regulars) if rng.random() < 0.3 else rng.randrange(pool)
        nick, cid = _buyer(buyer, seed)
        created = rng.randint(low, high)
        trade: dict[str, Any] = {
            "tid": f"HK{seed % 1000:03d}{number:010d}",
            "source": "2",
            "buyerNick": nick,
            "buyerCid": cid,
            "createTime": created,
            "payTime": created + rng.randrange(600_000),
            "payment": f"{rng.randrange(990, 1_000_000) / 100:.2f}",
            "num": rng.randint(1, 5),
            "title": _PRODUCTS[rng.randrange(len(_PRODUCTS))],
            "status": _STATUSES[rng.randrange(len(_STATUSES))],
        }
        if missing_cid_every and number % missing_cid_every == 0:
            del trade["buyerCid"]
        yield trade
