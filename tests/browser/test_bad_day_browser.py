"""The panel on a bad day, in real JupyterLab 4 and Notebook 7 (headless Chromium).

* "Start Alternative 2" starts a new run whose panel appears and trains: in a fresh kernel, after the kernel is
  restarted and the notebook reopened, and when a notebook run and saved in JupyterLab is opened in Notebook 7
  (the report: "the button is dead after the notebook is opened in Notebook 7, kernel log: unknown subshell id").
* A refusal (epochs=0) is a short message naming the argument and the fix, without traceback frames.
* Re-running the training cell while its run is active shows that run's (live) panel again, with the refusal.
* A stopped run's progress reads "stopped after" (no ETA); a finished one "iteration N/N ... finished after".
"""
from __future__ import annotations

import re
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the notebook on show (JupyterLab keeps the other open notebooks in hidden tabs)
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"
NOTEBOOK = SHOWN + " .jp-Notebook"
CELL = NOTEBOOK + " .jp-Cell"
TINY = ('preset="retinanet_tiny", weights=None, device="cpu", '
        'synthetic={"n_train": 8, "n_val": 4, "image_size": (128, 128)}, monitor="panel"')
STEPS_PER_EPOCH = 2  # 8 synthetic images, batch size 4
SETUP = "import torch\ntorch.set_num_threads(1)\nimport nbdetect\n"
# two epochs; thresholds no tiny run can meet, so the final verdict always says "run Alternative 2"
SWITCH_CELL = SETUP + (
    "from nbdetect.verdict import UserThresholds\n"
    f"run = nbdetect.alternative_1(epochs=2, {TINY},\n"
    "                             thresholds=UserThresholds(success_below=1e-9, partial_below=1e-8))\n")
LONG_CELL = SETUP + f"run = nbdetect.alternative_1(epochs=1000, {TINY})\n"
REFUSAL_CELL = SETUP + f"nbdetect.alternative_1(epochs=0, {TINY})\n"
START_NEXT = "Start Alternative 2"

# (server fixture, URL prefix of a notebook, what shows the kernel is idle)
FRONTENDS = {"jupyterlab4": ("lab_server", "lab/tree/", "text=/ipykernel\\) \\| Idle/"),
             "notebook7": ("notebook7_server", "notebooks/", ".jp-NotebookKernelStatus-fade")}  # faded once idle

# every nbdetect panel on the page (a panel started by "Start ..." sits inside its parent's output widget)
PANELS_JS = """() => [...document.querySelectorAll(NOTEBOOK + ' .nbdetect-monitor')].map(p => {
  const status = p.querySelector(':scope > .widget-html .nbdetect-status');
  const progress = p.querySelector(':scope > .widget-hbox > .widget-html');
  const verdict = p.querySelector(':scope > .widget-html .nbdetect-verdict');
  const next = [...p.querySelectorAll(':scope > .widget-hbox > button')].filter(b => b.offsetParent !== null)
                  .map(b => b.innerText);
  return {verdict: verdict ? verdict.innerText : '', buttons: next, header: (p.firstElementChild || {}).innerText || '', progress: progress ? progress.innerText : '',
          status: status ? status.dataset.status : '', status_text: status ? status.innerText : ''};
})""".replace("NOTEBOOK", repr(NOTEBOOK))


# -- helpers ------------------------------------------------------------------------------------------------
def _open(page, server, frontend: str, name: str, idle: str | None = None) -> None:
    _, prefix, default_idle = FRONTENDS[frontend]
    page.goto(server.url(prefix + name) + ("&reset" if frontend == "jupyterlab4" else ""))  # no restored tabs
    page.wait_for_selector(f"{CELL} .cm-content", timeout=90_000)
    page.wait_for_selector(idle or default_idle, timeout=90_000)


def _prompt(page, index: int) -> str:
    return page.locator(CELL).nth(index).locator(".jp-InputPrompt").inner_text()


def _run_cell(page, index: int, attempts: int = 5) -> None:
    """Ctrl+Enter in cell `index` (runs it in place); retried while the kernel connection is still settling."""
    before = _prompt(page, index)
    for _ in range(attempts):
        page.locator(CELL).nth(index).locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(
                """([cells, i, before]) => { const t = document.querySelectorAll(cells)[i]
                       .querySelector('.jp-InputPrompt').innerText; return t !== before && /\\[(\\*|\\d+)\\]/.test(t); }""",
                arg=[CELL, index, before], timeout=10_000)
            return
        except Exception:
            time.sleep(2)
    raise AssertionError(f"cell {index} never started executing: {_prompt(page, index)!r}")


def _wait_executed(page, index: int, timeout: float = 120) -> int:
    """Wait until cell `index` is done ([n]:) and return n."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"\[(\d+)\]", _prompt(page, index))
        if m:
            return int(m.group(1))
        time.sleep(0.3)
    raise AssertionError(f"cell {index} did not finish: {_prompt(page, index)!r}")


def _output(page, index: int) -> str:
    return page.locator(CELL).nth(index).locator(".jp-OutputArea").first.inner_text()


def _panels(page) -> list[dict]:
    return page.evaluate(PANELS_JS)


def _wait_panel(page, title: str, pred, what: str, timeout: float = 150) -> dict:
    """Wait until a panel whose header holds `title` satisfies `pred`; returns that panel's texts."""
    deadline = time.monotonic() + timeout
    panels = []
    while time.monotonic() < deadline:
        panels = [p for p in _panels(page) if title in p["header"]]
        for p in panels:
            if pred(p):
                return p
        time.sleep(0.5)
    raise AssertionError(f"no {title} panel {what} within {timeout} s; panels: {_panels(page)}")


def _finished(p: dict) -> bool:
    return p["status"] == "finished"


def _finished_suggesting_switch(p: dict) -> bool:
    return _finished(p) and any(START_NEXT in b for b in p["buttons"])


def _server_log_tail(server, since: int) -> str:
    return server.log.read_text(errors="replace")[since:]


def _restart_kernel(page, frontend: str) -> None:
    """The notebook toolbar's restart button, then the dialog's Restart; waits until the kernel is idle again."""
    page.click(f"{SHOWN} jp-button[data-command='notebook:restart-kernel']")
    page.click(".jp-Dialog .jp-mod-accept")
    page.wait_for_selector(".jp-Dialog", state="detached", timeout=30_000)
    time.sleep(2)  # the status goes restarting -> starting -> idle
    page.wait_for_selector(FRONTENDS[frontend][2], timeout=90_000)


def _click_start_next_and_check(page, server, log_from: int) -> None:
    """Click "Start Alternative 2": its panel must appear and its run must train to the end."""
    button = page.locator(f"{NOTEBOOK} button", has_text=START_NEXT)
    button.wait_for(state="visible", timeout=60_000)
    button.click()
    try:
        p = _wait_panel(page, "Alternative 2", _finished, "finished", timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nserver log:\n{_server_log_tail(server, log_from)[-3000:]}") from None
    m = re.search(r"iteration (\d+)/(\d+)", p["progress"])
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, p
    log = _server_log_tail(server, log_from)
    assert "subshell" not in log.lower(), log[-3000:]


def _log_size(server) -> int:
    return len(server.log.read_text(errors="replace"))


# -- 1. the "Start Alternative 2" button, and a finished run's progress ------------------------------------------
@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_start_next_button_starts_alternative_2(frontend, request, page):
    server = request.getfixturevalue(FRONTENDS[frontend][0])
    since = _log_size(server)
    server.write_notebook("switch.ipynb", [SWITCH_CELL])
    _open(page, server, frontend, "switch.ipynb")
    _run_cell(page, 0)
    p = _wait_panel(page, "Alternative 1", _finished, "finished")
    # a finished run: its last epoch complete, how long it ran, no ETA
    assert f"epoch 2/2 | iteration {STEPS_PER_EPOCH}/{STEPS_PER_EPOCH}" in p["progress"], p
    assert "finished after" in p["progress"] and "ETA" not in p["progress"], p
    _click_start_next_and_check(page, server, since)


# -- 2. the same after a kernel restart and a reopened notebook ----------------------------------------------------
@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_start_next_button_after_restart_and_reopen(frontend, request, page):
    server = request.getfixturevalue(FRONTENDS[frontend][0])
    since = _log_size(server)
    server.write_notebook("reopen.ipynb", [SWITCH_CELL])
    _open(page, server, frontend, "reopen.ipynb")
    _run_cell(page, 0)
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    page.keyboard.press("Control+s")
    time.sleep(1)
    # reopen (the kernel keeps running, its widgets are restored from it), then restart the kernel
    page.goto("about:blank")
    _open(page, server, frontend, "reopen.ipynb")
    _restart_kernel(page, frontend)
    _run_cell(page, 0)
    assert _wait_executed(page, 0) == 1, "the kernel was not restarted"
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    _click_start_next_and_check(page, server, since)
