"""``pip install baozi`` is lean: the HTTP service and the monitor's client are extras, and a
command that needs a missing one says which to install.

Each case runs in a fresh interpreter where the extra's modules cannot be found or imported,
as in an environment that installed baozi without the extra.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_HIDE = """
import importlib.util, sys
hidden = {hidden!r}
for name in hidden:
    sys.modules[name] = None  # import raises ImportError
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in hidden else real(name, *a)
"""


def _run(hidden: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    program = _HIDE.format(hidden=hidden) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )


def test_the_core_dependencies_leave_out_the_web_service_and_the_monitor_client() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    for name in ("starlette", "uvicorn", "prometheus-client", "aiohttp", "httptools"):
        assert name not in core
    extras = project["optional-dependencies"]
    assert {"starlette>=0.37", "uvicorn>=0.30", "prometheus-client>=0.20"} <= set(extras["web"])
    assert any(d.startswith("aiohttp") for d in extras["monitor"])


def test_serve_without_the_web_extra_names_it() -> None:
    done = _run(
        ("starlette", "uvicorn", "prometheus_client"),
        """
        from baozi.cli import main
        main(["serve", "tests.jobapp:app"])
        """,
    )
    assert done.returncode == 1
    assert "pip install 'baozi[web]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_serve_as_not_installed_without_the_web_extra() -> None:
    done = _run(("starlette", "uvicorn"), "from baozi.cli import main\nmain(['--help'])")
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout and "not installed" in done.stdout


def test_importing_baozi_web_without_the_extra_names_it() -> None:
    done = _run(("starlette",), "import baozi.web")
    assert done.returncode == 1
    assert "MissingExtra" in done.stderr and "pip install 'baozi[web]'" in done.stderr


def test_the_monitor_without_a_client_names_the_monitor_extra(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/\n")
    done = _run(
        ("aiohttp", "gevent", "geventhttpclient"),
        f"""
        from baozi.cli import main
        main(["monitor", {str(urls)!r}])
        """,
    )
    assert done.returncode == 1
    assert "pip install 'baozi[monitor]'" in done.stderr


@pytest.mark.parametrize("module", ["baozi", "baozi.cli", "baozi.worker"])
def test_the_core_imports_without_either_extra(module: str) -> None:
    done = _run(
        ("starlette", "uvicorn", "prometheus_client", "aiohttp", "httptools"),
        f"import {module}",
    )
    assert done.returncode == 0, done.stderr
