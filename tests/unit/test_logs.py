import io
import logging
import logging.handlers
import os
import re
import stat
import sys
from datetime import datetime, timezone

import pytest

from snapshot_policy.output.logs import (
    LOGGER_NAME,
    SDK_LOGGERS,
    RedactingFilter,
    setup_logging,
    write_console,
)

SECRET = "hunter2-configured-secret"
DO_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
HCLOUD_TOKEN = "Jx7Qm2LpV9zK4rT8wN1bY6cH3dF5gS0aE2uI7oP4kM9nB1vC6xZ8qW3eR5tY0uLk"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

log = logging.getLogger("snapshot_policy.test")


@pytest.fixture(autouse=True)
def restore_loggers():
    """setup_logging changes process-wide loggers; give the next test the loggers as they were."""
    names = (LOGGER_NAME, *SDK_LOGGERS)
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
        )
        for name in names
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


def configure(
    tmp_path, *, verbose=True, level="INFO", max_bytes=1_000_000, backup_count=3, secrets=(SECRET,)
):
    path = tmp_path / "logs" / "snapshots.log"
    setup_logging(str(path), max_bytes, backup_count, level, verbose, secrets)
    return path


def written(path, capsys):
    """Everything that reached the log file and stderr."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        handler.flush()
    return path.read_text(encoding="utf-8") + capsys.readouterr().err


def test_setup_logging_masks_a_configured_secret_in_the_message(tmp_path, capsys):
    path = configure(tmp_path)
    log.warning(f"token {SECRET} was refused")
    output = written(path, capsys)
    assert SECRET not in output
    assert output.count("token *** was refused") == 2  # file and console


def test_setup_logging_masks_a_configured_secret_in_arguments(tmp_path, capsys):
    path = configure(tmp_path)
    log.info("target %s uses %r", "web-1", {"api_token": SECRET})
    output = written(path, capsys)
    assert SECRET not in output
    assert "target web-1 uses {'api_token': '***'}" in output


def test_setup_logging_masks_a_secret_in_a_logged_exception(tmp_path, capsys):
    path = configure(tmp_path)
    try:
        raise RuntimeError(
            "request with hunter2-configured-secret failed"
        )  # the secret is in this source line too
    except RuntimeError:
        log.exception("creating the snapshot of %s failed", "web-1")
    output = written(path, capsys)
    assert SECRET not in output
    assert "RuntimeError: request with *** failed" in output
    assert "Traceback (most recent call last)" in output


def test_setup_logging_masks_a_secret_in_an_exception_s_context(tmp_path, capsys):
    path = configure(tmp_path)
    accounts = {}
    try:
        try:
            accounts[SECRET]
        except KeyError:
            # Raised bare, so the KeyError is its implicit context: the case under test.
            raise LookupError("no account for that token")  # noqa: B904
    except LookupError:
        log.error("lookup failed", exc_info=True)
    output = written(path, capsys)
    assert "During handling of the above exception" in output
    assert "KeyError: '***'" in output
    assert SECRET not in output


def test_setup_logging_masks_a_secret_in_the_stack(tmp_path, capsys):
    path = configure(tmp_path)

    def report(value):
        log.info("reporting", stack_info=True)

    report("hunter2-configured-secret")
    output = written(path, capsys)
    assert "Stack (most recent call last)" in output
    assert 'report("***")' in output
    assert SECRET not in output


def test_setup_logging_masks_token_shapes_nobody_configured(tmp_path, capsys):
    path = configure(tmp_path, secrets=())
    log.warning("GET https://api.telegram.org/bot%s/getMe", TELEGRAM_TOKEN)
    log.warning("headers: {'Authorization': 'Bearer %s'}", HCLOUD_TOKEN)
    log.warning("token %s", DO_TOKEN)
    output = written(path, capsys)
    for token in (TELEGRAM_TOKEN, HCLOUD_TOKEN, DO_TOKEN, "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"):
        assert token not in output
    assert "https://api.telegram.org/bot***/getMe" in output
    assert "{'Authorization': 'Bearer ***'}" in output


def test_setup_logging_masks_what_sdk_loggers_print(tmp_path, capsys):
    path = configure(tmp_path, level="DEBUG", secrets=())
    logging.getLogger("urllib3.connectionpool").warning(
        "retrying, Authorization: Bearer abc.def-ghi"
    )
    logging.getLogger("urllib3.connectionpool").info("GET /v2/droplets with Bearer secret-info")
    output = written(path, capsys)
    assert "retrying, Authorization: Bearer ***" in output
    assert "abc.def-ghi" not in output
    assert "secret-info" not in output  # below WARNING: SDK details are not logged at all


def test_setup_logging_keeps_records_from_the_root_logger_s_handlers(tmp_path):
    # A record below every handler's level is never filtered; reaching the root it would be
    # unmasked.
    class Collector(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    seen = []
    collector = Collector(logging.DEBUG)
    logging.getLogger().addHandler(collector)
    try:
        configure(tmp_path, verbose=False, level="ERROR")
        logging.getLogger("hcloud").warning("token %s", SECRET)  # SDK loggers pass WARNING on
        setup_logging(None, 0, 0, "INFO", False, [SECRET])
        log.warning("token %s", SECRET)
    finally:
        logging.getLogger().removeHandler(collector)
    assert seen == []


def test_redacting_filter_leaves_no_traceback_to_format_again():
    try:
        raise RuntimeError(SECRET)
    except RuntimeError as error:
        record = logging.LogRecord(
            "snapshot_policy",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            (type(error), error, error.__traceback__),
        )
    RedactingFilter([SECRET], logging.Formatter()).filter(record)
    assert record.exc_info is None
    assert record.exc_text.endswith("RuntimeError: ***")
    assert SECRET not in logging.Formatter().format(record)


def test_setup_logging_writes_to_the_console_only_when_verbose(tmp_path, capsys):
    path = configure(tmp_path, verbose=False)
    log.warning("quiet")
    assert capsys.readouterr().err == ""
    assert "WARNING quiet" in path.read_text()

    configure(tmp_path, verbose=True)
    log.info("loud")
    log.debug("too detailed")
    assert capsys.readouterr().err == "INFO loud\n"


def test_setup_logging_times_apply_s_console_lines_by_its_clock_when_not_a_terminal(
    host_zone, capsys, monkeypatch
):
    """Under cron every line apply prints starts with its local time, -v's log lines too, and
    the time is the run's clock's (issue 21, review of item 4); a terminal gets none."""
    host_zone("Europe/Berlin")
    at = datetime(2025, 1, 1, 2, 30, 5, tzinfo=timezone.utc)
    setup_logging(None, 0, 0, "INFO", True, (SECRET,), now=lambda: at)
    log.info("apply started on vm: 1 target(s)")
    log.warning("two\nlines %s", SECRET)
    assert capsys.readouterr().err == (
        "[2025-01-01 03:30:05] INFO apply started on vm: 1 target(s)\n"
        "[2025-01-01 03:30:05] WARNING two\\nlines ***\n"
    )
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    setup_logging(None, 0, 0, "INFO", True, (), now=lambda: at)
    log.info("at a terminal")
    assert capsys.readouterr().err == "INFO at a terminal\n"


def test_setup_logging_without_destinations_prints_nothing(capsys):
    setup_logging(None, 0, 0, "INFO", False, ())
    log.error("nowhere to go %s", HCLOUD_TOKEN)
    logging.getLogger("urllib3").error("nowhere either")
    assert capsys.readouterr().err == ""


def test_setup_logging_console_shows_debug_when_the_level_is_debug(tmp_path, capsys):
    configure(tmp_path, level="debug")
    log.debug("details")
    assert capsys.readouterr().err == "DEBUG details\n"


def test_setup_logging_file_honours_its_level_with_utc_timestamps(tmp_path, capsys):
    path = configure(tmp_path, level="WARNING", verbose=False)
    log.info("left out")
    log.warning("kept")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING kept\n", path.read_text())


def test_setup_logging_twice_does_not_duplicate_lines(tmp_path, capsys):
    configure(tmp_path)
    path = configure(tmp_path)
    log.info("once")
    output = written(path, capsys)
    assert output.count("INFO once") == 2  # one in the file, one on the console


def test_setup_logging_rotates_and_caps_backups(tmp_path):
    path = configure(tmp_path, verbose=False, max_bytes=200, backup_count=2)
    for number in range(50):
        log.info("line %d of a log that outgrows its file", number)
    names = sorted(file.name for file in path.parent.iterdir())
    assert names == ["snapshots.log", "snapshots.log.1", "snapshots.log.2"]
    assert all(file.stat().st_size <= 200 for file in path.parent.iterdir())


def test_setup_logging_names_a_log_file_it_cannot_open(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = blocker / "snapshots.log"
    with pytest.raises(OSError, match=f"cannot use log file {path}: "):
        setup_logging(str(path), 0, 0, "INFO", False, ())


def test_setup_logging_rejects_an_unknown_level(tmp_path):
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure(tmp_path, level="loud")


def test_logging_with_arguments_that_do_not_fit_does_not_raise(tmp_path, capsys):
    path = configure(tmp_path)
    log.info("two %s %s", SECRET)
    output = written(path, capsys)
    assert "arguments that do not fit: ('***',)" in output
    assert SECRET not in output


# -- the log file on disk (issue 12, item 7) --


def test_setup_logging_writes_each_record_on_one_line_with_controls_escaped(tmp_path, capsys):
    path = configure(tmp_path, verbose=False)
    log.warning(
        "server %s has no snapshot", "web\n2026-11-26T03:00:00.000Z ERROR forged\x1b[31m\u2028"
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(
        "WARNING server web\\n2026-11-26T03:00:00.000Z ERROR forged\\x1b[31m\\u2028 has no snapshot"
    )


def test_setup_logging_keeps_the_lines_of_a_traceback_but_escapes_controls_in_them(
    tmp_path, capsys
):
    path = configure(tmp_path, verbose=False)
    try:
        raise RuntimeError("name\rwith a carriage return")
    except RuntimeError:
        log.exception("failed")
    text = path.read_text(encoding="utf-8")
    assert "Traceback (most recent call last):\n" in text
    assert "RuntimeError: name\\rwith a carriage return" in text


def test_setup_logging_creates_the_log_readable_by_owner_and_group_only(tmp_path):
    path = configure(tmp_path, verbose=False)
    log.warning("hello")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_setup_logging_refuses_a_log_file_that_is_a_symbolic_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "logs" / "snapshots.log"
    path.parent.mkdir()
    path.symlink_to(victim)
    with pytest.raises(
        OSError, match=f"cannot use log file {path}: it is a symbolic link"
    ) as raised:
        setup_logging(str(path), 1_000_000, 3, "INFO", False, ())
    assert "\n" not in str(raised.value)
    assert victim.read_text() == "precious\n"


def test_setup_logging_rotation_never_opens_a_new_log_through_a_link(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "logs" / "snapshots.log"
    setup_logging(str(path), 200, 2, "INFO", False, ())
    [handler] = [
        h
        for h in logging.getLogger(LOGGER_NAME).handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]

    def rotate_then_plant_a_link(source, dest):  # another user wins the race for the freed name
        os.rename(source, dest)
        if source == handler.baseFilename and not os.path.lexists(source):
            os.symlink(victim, source)

    handler.rotator = rotate_then_plant_a_link
    for number in range(30):
        log.info("line %d of a log that outgrows its file", number)
    assert victim.read_text() == "precious\n"
    assert "it is a symbolic link" in capsys.readouterr().err  # logging reports its handler's error


def test_setup_logging_refuses_a_log_file_others_may_write(tmp_path):
    path = tmp_path / "logs" / "snapshots.log"
    path.parent.mkdir()
    path.write_text("forged line\n")
    path.chmod(0o662)
    with pytest.raises(
        OSError,
        match=rf"^cannot use log file {path}: others may write it \(mode 0662\); run `chmod go-w",
    ) as raised:
        setup_logging(str(path), 1_000_000, 3, "INFO", False, ())
    assert "\n" not in str(raised.value)
    assert path.read_text() == "forged line\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_setup_logging_refuses_a_log_file_of_another_user(tmp_path):
    path = tmp_path / "snapshots.log"
    path.write_text("forged line\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(
        OSError, match=f"^cannot use log file {path}: it belongs to user .*, not to user root"
    ):
        setup_logging(str(path), 1_000_000, 3, "INFO", False, ())


class GonePipe(io.StringIO):
    """A console whose reader has gone: every write fails as a pipe's does (EPIPE)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_the_console_log_to_a_console_nobody_reads_ends_quietly(tmp_path, monkeypatch):
    """-v's lines to a stderr whose reader has gone: tried once, then not again; the log file
    still gets every line and nothing is raised (issue 21, review of item 4)."""
    stream = GonePipe()
    monkeypatch.setattr(sys, "stderr", stream)
    path = tmp_path / "apply.log"
    setup_logging(str(path), 1_000_000, 1, "INFO", True, ())
    log.info("first")
    log.info("second")
    assert stream.writes == 1
    assert "INFO first" in path.read_text() and "INFO second" in path.read_text()


def test_write_console_leaves_a_closed_stream_alone():
    stream = io.StringIO()
    stream.close()
    write_console(stream, "nobody reads this\n")
    write_console(stream, "nor this\n")
