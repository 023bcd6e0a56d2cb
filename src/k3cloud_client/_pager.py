"""Paging ``ExecuteBillQuery``: where the next page starts, and when to stop.

``StartRow += Limit`` until a short page. A server that ignores ``StartRow`` would answer full
pages forever: after ``max_pages`` full pages ``K3CloudPageLimitError`` is raised rather than
a result silently cut short.
"""

from __future__ import annotations

from typing import Any

from _huke_k3_core import plural

from ._options import MAX_LIMIT, MAX_ROW, QueryKwargs, QueryOptions, check_range
from .errors import K3CloudPageLimitError


class Pager:
    """The pages of one ``iter_bill_query``: ``next_page()`` gives the ``execute_bill_query``
    keyword arguments of the next page (the clients call it: a subclass overriding
    ``execute_bill_query`` sees every page), ``take`` records the rows it returned."""

    def __init__(self, options: QueryOptions, form_id: str) -> None:
        check_range("page_size", options.limit, 1, MAX_LIMIT)
        check_range("start_row", options.start_row, 0, MAX_ROW)
        check_range("max_pages", options.max_pages, 1, MAX_ROW)
        self.options = options
        self.operation = f"ExecuteBillQuery {form_id}"
        self.start_row = options.start_row
        self.page_size = options.limit
        self.max_pages = options.max_pages
        self.pages = 0
        self.done = False

    def next_page(self) -> QueryKwargs:
        """The keyword arguments of the next page's ``execute_bill_query``."""
        return {
            "filter_string": self.options.filter_string,
            "order_string": self.options.order_string,
            "start_row": self.start_row,
            "limit": self.page_size,
            "top_row_count": self.options.top_row_count,
        }

    def take(self, rows: list[list[Any]]) -> list[list[Any]]:
        """``rows``, the page just read; ``done`` after a short page."""
        self.pages += 1
        self.start_row += len(rows)
        if len(rows) < self.page_size:
            self.done = True
        elif self.pages >= self.max_pages:
            raise K3CloudPageLimitError(
                f"ExecuteBillQuery returned full pages {plural(self.pages, 'time')} (max_pages); "
                "narrow the filter or raise max_pages",
                max_pages=self.max_pages,
                operation=self.operation,
                start_row=self.start_row,
            )
        return rows
