"""Issue 31: the node shell and ``verdicts -f`` in a real terminal (tmux):
keys are typed, the screen is read back, every wait has a deadline."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, assert_nothing_left, tw, wait_for

from tunnelwall.base.runstate import active_run
from tunnelwall.cli import verdicts

TUNNELWALL = f"{sys.executable} -m tunnelwall"


class Tmux:
    """A private tmux server (its own socket), one window per command."""

    def __init__(self):
        assert shutil.which("tmux"), "tmux is installed by scripts/setup.sh"
        self.socket = f"tw-test-{os.getpid()}"

    def tmux(self, *args) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=20).stdout

    def start(self, window: str, command: str) -> None:
        env = "NO_COLOR=1 TERM=xterm"
        if window == "shell":
            self.tmux("new-session", "-d", "-s", "t", "-n", window, "-x", "220", "-y", "60", "-c", str(ROOT),
                      f"env {env} bash --norc")
        else:
            self.tmux("new-window", "-t", "t", "-n", window, "-c", str(ROOT), f"env {env} bash --norc")
        self.keys(window, command)

    def keys(self, window: str, text: str, enter: bool = True) -> None:
        self.tmux("send-keys", "-t", f"t:{window}", "-l", text)
        if enter:
            self.tmux("send-keys", "-t", f"t:{window}", "Enter")

    def ctrl_c(self, window: str) -> None:
        self.tmux("send-keys", "-t", f"t:{window}", "C-c")

    def screen(self, window: str) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", f"t:{window}")

    def wait_screen(self, window: str, text: str, seconds: float = 30) -> str:
        def shown():
            screen = self.screen(window)
            return screen if text in screen else None
        return wait_for(shown, seconds, f"'{text}' on the {window} window")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def term():
    t = Tmux()
    yield t
    t.kill()


def test_node_shell_keeps_quoting_and_verdicts_follow(term):
    term.start("shell", f"{TUNNELWALL} up minimal --profile gfw --cli")
    term.wait_screen("shell", "tunnelwall> ", 120)
    try:
        # help and completion
        term.keys("shell", "help")
        term.wait_screen("shell", "verdicts [-f]")
        term.keys("shell", "s", enter=False)
        term.tmux("send-keys", "-t", "t:shell", "Tab")
        term.keys("shell", " printf '[%s]' -H \"Host: blocked.example\"")
        term.wait_screen("shell", "[-H][Host: blocked.example]")       # s1 completed, one argument kept whole

        # verdicts -f in its own window, then a blocked fetch from the shell
        # The exit code printed plus 1000, so the typed line (which shows "$((") never matches the wait.
        term.start("follow", f"{TUNNELWALL} verdicts -f --flow 'rule=http-host'; echo follow-exit=$(($?+1000))")
        term.wait_screen("follow", verdicts.header()[:20])
        term.keys("shell", 'c1 curl -s -m 5 -H "Host: blocked.example" http://10.0.0.20/; echo curl-done')
        screen = term.wait_screen("follow", "blocked.example", 30)
        line = next(x for x in screen.splitlines() if "blocked.example" in x)
        assert "reset" in line and "http-host" in line and "10.0.0.11" in line and "10.0.0.20:80" in line
        term.ctrl_c("follow")
        after = term.wait_screen("follow", "follow-exit=1", 15)
        assert "follow-exit=1000" in after and "Traceback" not in after      # Ctrl-C ends -f with 0

        # verdicts inside the shell
        term.keys("shell", "verdicts --flow name=blocked.example")
        term.wait_screen("shell", f"{'reset':9} http-host")
        # Ctrl-C stops a command, not the shell
        term.keys("shell", "c1 sleep 30")
        term.wait_screen("shell", "c1 sleep 30")
        term.ctrl_c("shell")
        term.keys("shell", "nodes")
        term.wait_screen("shell", f"{'censor':12} middlebox")
    finally:
        term.keys("shell", "exit")
        try:
            term.wait_screen("shell", "down: removed everything the run created", 120)
        finally:
            if active_run() is not None:
                tw("down")
    assert active_run() is None
    assert_nothing_left()
