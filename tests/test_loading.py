"""Finding an App by its ``module:attribute`` path: the library raises AppNotFound, the CLI says
the same in one line and exits 2."""

from __future__ import annotations

import click
import pytest

import baozi
from baozi._loading import load_app
from baozi.cli.loading import load_app as cli_load_app
from baozi.cli.options import Refused
from baozi.errors import AppNotFound


def test_a_path_names_its_app_and_is_remembered() -> None:
    app = load_app("tests.jobapp:app")
    assert isinstance(app, baozi.App) and app.import_path == "tests.jobapp:app"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.jobapp", "give the app as module:attribute"),
        ("tests.jobapp:nothing", "is NoneType, not a baozi.App"),
        ("tests.jobtasks:add", "is function, not a baozi.App"),
    ],
)
def test_a_path_that_names_no_app_raises_app_not_found(path: str, message: str) -> None:
    with pytest.raises(AppNotFound, match=message) as caught:
        load_app(path)
    assert caught.value.__cause__ is None
    with pytest.raises(click.BadParameter, match=message):
        cli_load_app(path)


def test_a_module_that_cannot_be_imported_names_its_error() -> None:
    with pytest.raises(AppNotFound, match="cannot import 'tests.nothing'") as caught:
        load_app("tests.nothing:app")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, baozi.BaoziError)
    with pytest.raises(Refused, match="cannot import 'tests.nothing'"):
        cli_load_app("tests.nothing:app")


def test_the_library_does_not_import_click() -> None:
    import baozi._loading as loading

    assert "click" not in vars(loading)
