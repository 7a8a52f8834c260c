"""The admin page's memory of recent service events."""

from __future__ import annotations

import logging

from appliance.admin.logbuffer import LogBuffer, install


def record(name: str, message: str, level: int = logging.INFO, *args: object,
           exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord(name, level, __file__, 1, message, args, exc_info)


def test_keeps_only_the_newest_records() -> None:
    buffer = LogBuffer(capacity=3)
    for i in range(5):
        buffer.handle(record("appliance.hub", "event %d", logging.INFO, i))
    assert [r["message"] for r in buffer.records()] == ["event 2", "event 3", "event 4"]
    assert [r["id"] for r in buffer.records()] == [3, 4, 5]
    assert [r["message"] for r in buffer.records(after=4)] == ["event 4"]


def test_request_lines_and_debug_chatter_are_left_out() -> None:
    buffer = LogBuffer()
    logger = logging.getLogger("ahoy-test-adminlog")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(buffer)
    try:
        buffer.handle(record("werkzeug", "GET /admin/api/dashboard 200"))
        logger.debug("too much detail")
        logger.warning("wlan0 is down")
    finally:
        logger.removeHandler(buffer)
    assert [(r["level"], r["logger"], r["message"]) for r in buffer.records()] == [
        ("WARNING", "ahoy-test-adminlog", "wlan0 is down")]


def test_errors_say_what_went_wrong_and_bad_formats_do_not_break_logging() -> None:
    buffer = LogBuffer()
    buffer.handle(record("appliance.server", "housekeeping failed", logging.ERROR,
                         exc=OSError("disk full")))
    buffer.handle(record("appliance.x", "%d apples", logging.INFO, "not a number"))
    messages = [r["message"] for r in buffer.records()]
    assert messages == ["housekeeping failed (OSError: disk full)", "%d apples"]


def test_install_adds_one_handler_however_often_it_is_called() -> None:
    first, second = install(), install()
    assert first is second
    assert logging.getLogger().handlers.count(first) == 1
