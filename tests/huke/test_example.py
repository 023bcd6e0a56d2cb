"""The Huke example shown in the README and docs, run exactly as written."""

from __future__ import annotations

import contextlib
import io

EXAMPLE = """\
from datetime import datetime, timedelta

from huke_client.testing import FakeHuke, generate_trades

end = datetime.now()
start = end - timedelta(hours=20)  # the integration scheme's range: the last 20 hours
fake = FakeHuke("app-key", "app-secret", trades=generate_trades(1001, start=start, end=end))

# Against the real service: HukeClient.from_env() or HukeClient(app_key, app_secret).
with fake.client() as client:
    trades = list(client.iter_trades(start=start, end=end, page_size=100))

print(len(trades), "trades in", fake.request_count, "requests")
print(trades[0].buyer_nick is not None, trades[0]["tid"].startswith("HK"))
"""


def test_the_documented_example_runs_as_written() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(EXAMPLE, "<example>", "exec"), {"__name__": "__example__"})
    assert out.getvalue() == "1001 trades in 11 requests\nTrue True\n"
