"""contrib/: the systemd units, the cron.d example and the files they install work as written.

Their command lines are ones the real CLI accepts, every path they use exists after the
install steps in their comments (which install from a clone, not from a package index), the
service user can read what it must and write where it must, and the cron line itself runs as
an unprivileged user in a temporary tree. So the README's scheduling section cannot rot
unnoticed."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath

import pytest
import yaml

from snapshot_policy.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
SERVICE = CONTRIB / "systemd" / "snapshot-policy.service"
TIMER = CONTRIB / "systemd" / "snapshot-policy.timer"
CRON = CONTRIB / "cron" / "snapshot-policy"
POLICY = CONTRIB / "snapshot-policy.yaml"
ENVIRONMENT = CONTRIB / "environment"

USER = "snapshot-policy"
STATE = "/var/lib/snapshot-policy"
ENV_FILE = "/etc/snapshot-policy/environment"
POLICY_FILE = "/etc/snapshot-policy/snapshot-policy.yaml"


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys; a key may repeat, as systemd allows."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service() -> dict[str, list[str]]:
    return unit_settings(SERVICE)["Service"]


def exec_start() -> list[str]:
    [command] = service()["ExecStart"]
    return shlex.split(command)


def cron_entries() -> list[str]:
    """The cron.d file's job lines (not comments, blank lines or variable assignments)."""
    lines = CRON.read_text(encoding="utf-8").splitlines()
    return [
        line
        for line in lines
        if line.strip()
        and not line.lstrip().startswith("#")
        and not re.match(r"^[A-Za-z_]\w*=", line)
    ]


def cron_line() -> str:
    [line] = cron_entries()
    return line


def cron_shell_command() -> str:
    """What cron hands to /bin/sh: the line after the five time fields and the user."""
    return cron_line().split(None, 6)[6]


def cron_command() -> list[str]:
    """The snapshot-policy invocation in the cron line, up to its output redirection."""
    words = shlex.split(cron_shell_command())
    start = next(
        i
        for i, word in enumerate(words)
        if word.endswith("/snapshot-policy") and words[i + 1] == "apply"
    )
    end = words.index("2>&1", start)
    return words[start:end]


def install_steps(path: Path) -> list[list[str]]:
    """The commands of the install block in a contrib file's comments: the `#   ` lines that
    follow the comment paragraph starting with `# Install`."""
    steps: list[list[str]] = []
    in_block = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# Install"):
            in_block = True
        elif in_block and line.startswith("#   "):
            steps.append(shlex.split(line[4:]))
        elif in_block and steps:
            break
    assert steps, f"{path.name} shows no install steps"
    return steps


@dataclass(frozen=True)
class Installed:
    """A path an install step creates."""

    path: str
    kind: str  # "dir" or "file"
    owner: str = "root"
    group: str = "root"
    mode: int | None = None
    source: str | None = None


def created_by(steps: list[list[str]]) -> dict[str, Installed]:
    """Every path the install steps create, by path: `install` (files and -d folders), `python3
    -m venv V` and `V/bin/pip install .` (which puts the console script in V/bin)."""
    created: dict[str, Installed] = {}
    for step in steps:
        if step[0] == "install":
            options, operands = {"-d": False, "-m": None, "-o": "root", "-g": "root"}, []
            words = iter(step[1:])
            for word in words:
                if word == "-d":
                    options["-d"] = True
                elif word in ("-m", "-o", "-g"):
                    options[word] = next(words)
                else:
                    operands.append(word)
            mode = int(options["-m"], 8) if options["-m"] else None
            if options["-d"]:
                for folder in operands:
                    created[folder] = Installed(folder, "dir", options["-o"], options["-g"], mode)
            else:
                *sources, destination = operands
                for source in sources:
                    target = (
                        f"{destination.rstrip('/')}/{Path(source).name}"
                        if destination.endswith("/") or len(sources) > 1
                        else destination
                    )
                    created[target] = Installed(
                        target, "file", options["-o"], options["-g"], mode, source
                    )
        elif step[:3] == ["python3", "-m", "venv"]:
            created[step[3]] = Installed(step[3], "dir")
        elif step[0].endswith("/bin/pip") and step[1] == "install":
            assert step[2:] == ["."], (
                f"pip installs {step[2:]}: install from the clone (`pip install .`)"
            )
            created[str(PurePosixPath(step[0]).parent / "snapshot-policy")] = Installed(
                str(PurePosixPath(step[0]).parent / "snapshot-policy"), "file"
            )
    return created


def useradd(steps: list[list[str]]) -> dict[str, str | bool]:
    [step] = [step for step in steps if step[0] == "useradd"]
    return {
        "name": step[-1],
        "system": "--system" in step,
        "user_group": "--user-group" in step,
        "home": step[step.index("--home-dir") + 1],
        "shell": step[step.index("--shell") + 1],
    }


def under(path: str, folder: str) -> bool:
    return PurePosixPath(path).parent == PurePosixPath(folder)


def step_invocation(steps: list[list[str]], subcommand: str) -> list[str]:
    """The snapshot-policy command line an install step runs (directly, through systemd-run,
    or inside `runuser … sh -c '…; exec PROGRAM …'`)."""
    for step in steps:
        words = step
        if step[0] == "runuser":
            words = shlex.split(step[-1].split("exec ", 1)[1])
        for i, word in enumerate(words):
            if word.endswith("/bin/snapshot-policy") and words[i + 1 : i + 2] == [subcommand]:
                return words[i:]
    raise AssertionError(f"no install step runs snapshot-policy {subcommand}")


def assert_the_cli_accepts(argv: list[str], capsys) -> dict:
    """Return the parameters the CLI parses from `argv` (PROGRAM COMMAND OPTIONS…)."""
    program, command, *options = argv
    assert Path(program).name == "snapshot-policy"
    assert "snapshot-policy" in {script.name for script in entry_points(group="console_scripts")}
    # Every option must exist: an unknown one fails parsing even with --help.
    assert main([command, *options, "--help"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return cli.commands[command].make_context(command, list(options)).params


def assert_runs_apply(argv: list[str], capsys) -> None:
    params = assert_the_cli_accepts(argv, capsys)
    assert str(params["policy"]) == POLICY_FILE
    assert params["verbose"]  # unattended: warnings and decisions go to the journal / syslog
    assert under(str(params["report_file"]), STATE)
    assert (
        params["metrics_file"] is None
    )  # optional: where node_exporter reads is the machine's choice


def test_service_runs_apply_with_options_the_cli_accepts(capsys):
    assert_runs_apply(exec_start(), capsys)


def test_cron_line_runs_apply_with_options_the_cli_accepts(capsys):
    assert_runs_apply(cron_command(), capsys)


def test_cron_line_and_service_run_the_same_command():
    assert cron_command() == exec_start()


@pytest.mark.parametrize("path", [SERVICE, CRON], ids=["systemd", "cron"])
def test_install_steps_check_the_policy_online_with_a_command_the_cli_accepts(path, capsys):
    params = assert_the_cli_accepts(step_invocation(install_steps(path), "validate"), capsys)
    assert params["online"] and str(params["policy"]) == POLICY_FILE


@pytest.mark.parametrize("path", [SERVICE, CRON], ids=["systemd", "cron"])
def test_install_steps_install_from_a_clone_of_this_repository(path):
    steps = install_steps(path)
    created = created_by(steps)  # asserts that pip installs ".", not a name from an index
    text = path.read_text(encoding="utf-8")
    assert "in a clone of this repository" in text and "pip install snapshot-policy" not in text
    [venv] = [step[3] for step in steps if step[:3] == ["python3", "-m", "venv"]]
    assert created[f"{venv}/bin/snapshot-policy"].kind == "file"
    for installed in created.values():
        if installed.source is not None:
            assert (ROOT / installed.source).is_file(), (
                f"{path.name} installs {installed.source}, which the clone lacks"
            )


@pytest.mark.parametrize("path", [SERVICE, CRON], ids=["systemd", "cron"])
def test_install_steps_make_a_system_user_whose_home_is_the_state_folder(path):
    user = useradd(install_steps(path))
    assert user == {
        "name": USER,
        "system": True,
        "user_group": True,
        "home": STATE,
        "shell": "/usr/sbin/nologin",
    }


@pytest.mark.parametrize("path", [SERVICE, CRON], ids=["systemd", "cron"])
def test_tokens_file_is_readable_by_the_service_user_and_no_other(path):
    installed = created_by(install_steps(path))[ENV_FILE]
    assert installed.source == "contrib/environment"
    # Group = the service user's own group (useradd --user-group): it reads, cannot change it.
    assert (installed.owner, installed.group, installed.mode) == ("root", USER, 0o640)


@pytest.mark.parametrize("path", [SERVICE, CRON], ids=["systemd", "cron"])
def test_policy_file_is_installed_from_the_contrib_policy(path):
    installed = created_by(install_steps(path))[POLICY_FILE]
    assert (installed.source, installed.owner, installed.group, installed.mode) == (
        "contrib/snapshot-policy.yaml",
        "root",
        USER,
        0o640,
    )


def test_contrib_policy_validates_and_keeps_its_state_in_the_state_folder(monkeypatch, capsys):
    monkeypatch.setenv("HCLOUD_TOKEN", "a-token")
    assert main(["validate", "--policy", str(POLICY)]) == 0, capsys.readouterr().err
    settings = yaml.safe_load(POLICY.read_text(encoding="utf-8"))["settings"]
    # The journal, run state and audit log go beside the lock file (no log file is set).
    assert under(settings["lock_file"], STATE) and set(settings) == {"lock_file"}


def test_environment_file_reads_the_same_under_systemd_and_sh():
    """NAME='value' lines read alike for systemd's EnvironmentFile= and sh's `.`; anything
    else (an unquoted & or space, double quotes with $) would differ between the two."""
    lines = [
        line
        for line in ENVIRONMENT.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[A-Z_][A-Z0-9_]*='[^']*'", line) for line in lines), lines


def test_service_paths_exist_after_the_install_steps():
    steps, settings = install_steps(SERVICE), service()
    created = created_by(steps)
    assert created[exec_start()[0]].kind == "file"
    assert settings["EnvironmentFile"] == [ENV_FILE] and created[ENV_FILE].kind == "file"
    assert created[POLICY_FILE].kind == "file"
    assert (
        created["/etc/systemd/system/snapshot-policy.service"].source
        == "contrib/systemd/snapshot-policy.service"
    )
    assert (
        created["/etc/systemd/system/snapshot-policy.timer"].source
        == "contrib/systemd/snapshot-policy.timer"
    )
    # systemd makes the state folder (StateDirectory=), owned by User=; it is the user's home.
    assert settings["StateDirectory"] == ["snapshot-policy"] and settings["User"] == [USER]
    assert useradd(steps)["home"] == STATE


def test_service_may_write_only_its_state_folder_and_use_the_network():
    settings = service()
    assert settings["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in settings
    assert settings["StateDirectory"] == ["snapshot-policy"]
    written = [
        dict(zip(exec_start(), exec_start()[1:], strict=False))["--report"],
        yaml.safe_load(POLICY.read_text(encoding="utf-8"))["settings"]["lock_file"],
    ]
    assert all(under(path, STATE) for path in written), written
    assert {"AF_INET", "AF_INET6"} <= set(settings["RestrictAddressFamilies"][0].split())
    assert "PrivateNetwork" not in settings and "IPAddressDeny" not in settings


def test_cron_paths_exist_after_the_install_steps():
    steps = install_steps(CRON)
    created = created_by(steps)
    words = shlex.split(cron_shell_command())
    assert created[cron_command()[0]].kind == "file"
    assert created[words[words.index(".") + 1].rstrip(";")].kind == "file"
    assert created[POLICY_FILE].kind == "file"
    # The state folder: cron starts the job in the user's home, flock and the tool write there.
    state = created[STATE]
    assert (state.kind, state.owner, state.group, state.mode) == ("dir", USER, USER, 0o700)
    assert useradd(steps)["home"] == STATE
    assert under(words[words.index("-n") + 1], STATE)
    cron_d = created["/etc/cron.d/snapshot-policy"]
    assert (cron_d.source, cron_d.owner, cron_d.mode) == (
        "contrib/cron/snapshot-policy",
        "root",
        0o644,
    )


def test_cron_file_is_valid_cron_d_syntax():
    text = CRON.read_text(encoding="utf-8")
    assert text.endswith("\n")  # cron ignores a last line without its newline
    assert re.fullmatch(
        r"[A-Za-z0-9_-]+", CRON.name
    )  # run-parts rules: cron.d skips names with dots
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and line not in cron_entries():
            assert re.fullmatch(r"(SHELL|PATH|MAILTO)=\S+", line), line
    minute, hour, day, month, weekday, user, command = cron_line().split(None, 6)
    assert minute.isdigit() and 0 <= int(minute) <= 59
    assert (hour, day, month, weekday) == ("*", "*", "*", "*")  # hourly
    assert user == USER
    assert "%" not in command  # cron turns % into a newline
    assert " flock -E 3 -n " in command and "| logger -t snapshot-policy " in command
    assert command.endswith('exit "$status"')  # the tool's exit code, not logger's


def test_service_and_timer_settings():
    settings, timer = service(), unit_settings(TIMER)
    assert settings["Type"] == ["oneshot"]
    assert timer["Timer"]["OnCalendar"] == ["hourly"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Timer"]["RandomizedDelaySec"] == ["5min"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


# --- the cron line, run by /bin/sh in a temporary tree, as an unprivileged user when root ---

NOBODY = 65534


@pytest.fixture
def tree():
    """A world-traversable temporary folder (an unprivileged user must reach into it)."""
    folder = Path(tempfile.mkdtemp(prefix="contrib-cron-"))
    folder.chmod(0o755)
    if any(not parent.stat().st_mode & stat.S_IXOTH for parent in folder.parents):
        pytest.skip(f"{tempfile.gettempdir()} is not reachable by other users")
    yield folder
    shutil.rmtree(folder)


def cron_run(
    tree: Path, env_owner: tuple[int, int], env_mode: int, exit_code: int = 0
) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the cron line's shell command with its paths moved into `tree`, a stand-in program
    that records its environment and arguments and exits `exit_code`, and a stand-in logger;
    as uid/gid 65534 when this test runs as root (else as the current user). Return the result
    and the state folder."""
    as_root = os.geteuid() == 0
    uid, gid = (NOBODY, NOBODY) if as_root else (os.getuid(), os.getgid())
    state, etc, bin_ = tree / "state", tree / "etc", tree / "bin"
    for folder in (state, etc, bin_):
        folder.mkdir(exist_ok=True)
    state.chmod(0o700)
    os.chown(state, uid, gid)
    env_file = etc / "environment"
    env_file.write_text(
        ENVIRONMENT.read_text(encoding="utf-8").replace(
            "HCLOUD_TOKEN=''", "HCLOUD_TOKEN='t0ken&x;y'"
        ),
        encoding="utf-8",
    )
    os.chown(env_file, *env_owner)
    env_file.chmod(env_mode)
    program = bin_ / "snapshot-policy"
    program.write_text(
        f'#!/bin/sh\necho "started $*"\necho "a failure" >&2\n'
        f'printf "%s\\n" "$HCLOUD_TOKEN" "$*" > {state}/ran\n'
        f"if {{ true >&4; }} 2>/dev/null; then echo open; else echo closed; fi > {state}/fd4\n"
        f"exit {exit_code}\n"
    )
    logger = bin_ / "logger"
    logger.write_text(f"#!/bin/sh\ncat >> {state}/syslog\n")
    for script in (program, logger):
        script.chmod(0o755)
    command = (
        cron_shell_command()
        .replace(ENV_FILE, str(env_file))
        .replace(cron_command()[0], str(program))
        .replace(STATE, str(state))
    )
    prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] if as_root else []
    environment = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(state), "LC_ALL": "C"}
    result = subprocess.run(
        [*prefix, "/bin/sh", "-c", command],
        cwd=state,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, state


def needs_cron_tools() -> None:
    missing = [
        tool
        for tool in ("flock",) + (("setpriv",) if os.geteuid() == 0 else ())
        if shutil.which(tool) is None
    ]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (util-linux)")


def service_user_ids() -> tuple[int, int]:
    return (0, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def test_cron_line_runs_the_tool_as_the_service_user_with_its_tokens(tree):
    needs_cron_tools()
    result, state = cron_run(tree, env_owner=service_user_ids(), env_mode=0o640)
    assert result.returncode == 0 and not result.stderr, result.stderr
    token, arguments = (state / "ran").read_text().splitlines()
    assert token == "t0ken&x;y"  # the quoted value arrives verbatim, & and ; included
    assert arguments == shlex.join(cron_command()[1:]).replace(STATE, str(state))
    assert (state / "cron.lock").is_file()
    assert (
        (state / "syslog").read_text().startswith("started apply -v ")
    )  # output goes to the logger
    assert (state / "syslog").read_text().endswith("a failure\n")  # stderr too


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_cron_line_exits_with_the_tools_exit_code_not_loggers(tree, code):
    """/bin/sh has no pipefail: the line passes the tool's status out of the pipe to logger,
    so cron and monitoring see 0/1/2/3 (issue 21, item 10). Nothing reaches cron's mail."""
    needs_cron_tools()
    result, state = cron_run(tree, env_owner=service_user_ids(), env_mode=0o640, exit_code=code)
    assert result.returncode == code
    assert (result.stdout, result.stderr) == ("", "")
    assert (
        state / "syslog"
    ).read_text() == f"started {' '.join(cron_command()[1:])}\na failure\n".replace(
        STATE, str(state)
    )
    assert (state / "fd4").read_text() == "closed\n"  # the tool holds no end of the status pipe


def test_cron_line_runs_under_dash_as_cron_runs_it(tree):
    """Debian's /bin/sh is dash, which has no pipefail: the line must work there."""
    needs_cron_tools()
    if shutil.which("dash") is None:
        pytest.skip("dash is not installed")
    if os.path.realpath("/bin/sh") != os.path.realpath(shutil.which("dash")):
        pytest.skip("/bin/sh is not dash here")
    result, _ = cron_run(tree, env_owner=service_user_ids(), env_mode=0o640, exit_code=2)
    assert result.returncode == 2


def test_cron_line_skips_quietly_while_the_last_run_holds_the_lock(tree):
    needs_cron_tools()
    (tree / "state").mkdir()
    lock = tree / "state" / "cron.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        os.chown(lock, *((NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())))
        result, state = cron_run(tree, env_owner=service_user_ids(), env_mode=0o640)
    assert result.returncode == 3 and not result.stderr, result.stderr  # as the tool's lock
    assert not (state / "ran").exists()
    assert (state / "syslog").read_text() == ""


def test_cron_line_fails_before_flock_with_a_root_only_tokens_file(tree):
    """The design this replaces: a root-only tokens file (chmod 600) cannot be read by the user
    cron runs the line as. Checked so the test above is known to detect it."""
    needs_cron_tools()
    if os.geteuid() != 0:
        pytest.skip("needs root to run the line as another user")
    result, state = cron_run(tree, env_owner=(0, 0), env_mode=0o600)
    assert result.returncode != 0 and "environment" in result.stderr
    assert not (state / "ran").exists() and not (state / "cron.lock").exists()


# --- systemd-analyze verify ---


def usable_systemd_analyze(folder: Path) -> str | None:
    """Why `systemd-analyze verify` cannot be used here, or None when it can."""
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)"
    probe = folder / "probe.service"
    probe.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(probe)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0 or result.stderr.strip():
        return (
            "systemd-analyze verify does not work here (a trivial unit fails): "
            f"{result.stderr.strip()[:300]}"
        )
    probe.unlink()
    return None


def test_units_pass_systemd_analyze_verify(tmp_path):
    reason = usable_systemd_analyze(tmp_path)
    if reason:
        pytest.skip(reason)
    # verify insists that ExecStart's program exists: stand one in for the installed script.
    program = tmp_path / "bin" / "snapshot-policy"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    unit = SERVICE.read_text(encoding="utf-8").replace(exec_start()[0], str(program))
    (tmp_path / SERVICE.name).write_text(unit, encoding="utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A bad value is only a warning (exit 0), so any message about our units fails the test.
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "snapshot-policy" in line
    ]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
