"""The node shell of ``tunnelwall up --cli``: ``NODE COMMAND ...`` runs the
command in the node's namespace.

The line is split once, the way a POSIX shell splits words (``shlex``),
and the words are the program's argv, passed on untouched: ``c1 curl -H
"Host: blocked.example" URL`` gives curl the header as one argument. No
second shell sees the words, so nothing is split or expanded again; for
pipes and redirections, ask for a shell on the node: ``c1 sh -c '... | ...'``.

Node names and the shell's own commands complete with Tab (readline);
``verdicts`` prints the censor's decisions (``verdicts -f`` follows them
until Ctrl-C). Ctrl-C stops the running command, never the shell.
"""

from __future__ import annotations

import argparse
import cmd
import shlex
import subprocess

from tunnelwall.base import procs

INTRO = ("tunnelwall node shell: 'NODE COMMAND' runs COMMAND on NODE, its words passed on as typed "
         "(e.g. c1 curl -s -H \"Host: blocked.example\" http://10.0.0.20/).\n"
         "'help' lists commands; Tab completes node names; 'exit' (or Ctrl-D) tears the network down.")


class NodeShell(cmd.Cmd):
    prompt = "tunnelwall> "
    intro = INTRO

    def __init__(self, state, stdin=None, stdout=None):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.state = state
        self.nodes = list(state.layout.nodes)

    # -- the loop ------------------------------------------------------------
    def loop(self) -> None:
        while True:
            try:
                self.cmdloop()
                return
            except KeyboardInterrupt:
                # Ctrl-C at the prompt: a fresh prompt, as in bash.
                self.stdout.write("^C\n")
                self.intro = None

    def emptyline(self) -> bool:
        return False          # cmd's default repeats the last command

    def default(self, line: str) -> bool:
        try:
            words = shlex.split(line)
        except ValueError as err:
            self.stdout.write(f"cannot split that line: {err}\n")
            return False
        if not words:
            return False
        node, argv = words[0], words[1:]
        if node not in self.nodes:
            self.stdout.write(f"unknown node or command '{node}' (nodes: {' '.join(self.nodes)}; 'help' lists "
                              "commands)\n")
            return False
        if not argv:
            self.stdout.write(f"{node}: give a command, e.g. '{node} ip addr'\n")
            return False
        self.run_on(node, argv)
        return False

    def run_on(self, node: str, argv: list[str]) -> int:
        self.stdout.flush()
        child = subprocess.Popen(procs.in_netns(self.state.netns_of(node), argv))
        try:
            return child.wait()
        except KeyboardInterrupt:
            # The child got the same SIGINT (one terminal, one process group); wait for it to go.
            try:
                return child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()
        except OSError as err:
            self.stdout.write(f"{node}: {err}\n")
            return 127

    # -- the shell's own commands -------------------------------------------
    def do_nodes(self, _arg: str) -> bool:
        """nodes: list the nodes with their role and first address"""
        for name, node in self.state.layout.nodes.items():
            address = next((i.address for i in node.interfaces.values() if i.address), "-")
            self.stdout.write(f"{name:12} {node.role:14} {address}\n")
        return False

    def do_verdicts(self, arg: str) -> bool:
        """verdicts [-f] [--flow FILTER] [--format table|json]: the censor's decisions (-f: until Ctrl-C)"""
        from tunnelwall.base.errors import TunnelwallError
        from tunnelwall.cli import verdicts
        parser = argparse.ArgumentParser(prog="verdicts", add_help=False, exit_on_error=False)
        verdicts.add_arguments(parser)
        try:
            args = parser.parse_args(shlex.split(arg))
            verdicts.show(args, self.state, out=self.stdout)
        except (argparse.ArgumentError, ValueError, TunnelwallError) as err:
            self.stdout.write(f"verdicts: {err}\n")
        except SystemExit:
            pass            # argparse printed its usage line; the shell goes on
        return False

    def do_exit(self, _arg: str) -> bool:
        """exit: leave the shell (and tear the network down)"""
        return True

    do_quit = do_exit

    def do_EOF(self, _arg: str) -> bool:
        self.stdout.write("\n")
        return True

    def do_help(self, arg: str) -> bool:
        if arg:
            return super().do_help(arg)
        self.stdout.write("NODE COMMAND...   run COMMAND on NODE (its words passed on untouched; for pipes: "
                          "NODE sh -c '...')\n")
        for name in ("nodes", "verdicts", "exit"):
            self.stdout.write(f"{getattr(self, 'do_' + name).__doc__}\n")
        self.stdout.write(f"nodes: {' '.join(self.nodes)}\n")
        return False

    # -- completion ----------------------------------------------------------
    def completenames(self, text: str, *ignored) -> list[str]:
        own = [n for n in ("nodes", "verdicts", "exit", "help") if n.startswith(text)]
        return [n for n in self.nodes if n.startswith(text)] + own

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        # Arguments: node names too (ping c2, ssh s1 ...).
        return [n for n in self.nodes if n.startswith(text)]
