"""Every command of ``baozi`` explains itself: each option has help text, each argument is named
in its command's help, and each environment variable is shown the same way."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from baozi.cli import main


def _commands(
    command: click.Command, path: tuple[str, ...] = ("baozi",)
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(main))


def test_the_walk_finds_every_command() -> None:
    assert {"baozi jobs", "baozi worker", "baozi workers", "baozi schedules"} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_option_has_help_and_every_argument_is_named_in_the_help(path: str) -> None:
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"{path} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help text"
        else:
            assert isinstance(param, click.Argument)
            name = param.human_readable_name.strip("[].")
            assert name in (command.help or ""), f"{path}: argument {name} is not named in the help"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_environment_variables_are_shown_one_way(path: str) -> None:
    command = COMMANDS[path]
    shown = CliRunner().invoke(main, [*path.split()[1:], "--help"], terminal_width=1000)
    assert shown.exit_code == 0, shown.output
    for param in command.params:
        if not isinstance(param, click.Option) or not param.envvar:
            continue
        assert param.show_envvar, f"{path} {param.opts[0]} hides its environment variable"
        assert "env" not in (param.help or "").lower(), (
            f"{path} {param.opts[0]} spells its environment variable out in its help"
        )
        assert f"[env var: {param.envvar}" in shown.output
