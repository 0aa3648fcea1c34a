"""Stop during Run All, in real JupyterLab 4 and Notebook 7 (headless Chromium).

The issue: the demo notebook run with Run All, Stop clicked while the cell below the training cell waited for the
run ("Stop is on its panel"): no feedback, the run trained to the end. A waiting cell holds the kernel's main shell,
where the click was queued. Here, with Run All and again after Restart & Run All, the click is answered at once
("stopping..." on the button), the run stops within an iteration ("stopped at epoch E, iteration I, checkpoint
saved") and the waiting cell goes on.
"""
from __future__ import annotations

import re

import pytest

from test_bad_day_browser import (CELL, FRONTENDS, NOTEBOOK, SETUP, SHOWN, TINY, _SERVERS_USED, _epoch, _open,  # noqa: F401
                                  _panels, _prompt, _server, _shut_down_kernels, _until_sent,
                                  _wait_panel)

from test_stop_while_busy import _kernel_routes_comms_to_subshells  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not _kernel_routes_comms_to_subshells(),
                                 reason="the kernel's ipykernel cannot route comms (< 7.4)")]

TRAIN_CELL = SETUP + f"run = nbdetect.alternative_1(epochs=1000, {TINY})\n"
WAIT_CELL = ("from nbdetect import run_guard\n"
             "run_guard.wait_for_active('making the submission')  # what the submission cell does first\n"
             "print('after the wait:', run.status)\n")

# what shows the kernel idle, and busy (Notebook 7 shows it in the tab's icon)
IDLE = {"jupyterlab4": "text=/ipykernel\\) \\| Idle/", "notebook7": "link[rel*='icon'][href*='favicon-notebook']"}
BUSY = {"jupyterlab4": "text=/ipykernel\\) \\| Busy/", "notebook7": "link[rel*='icon'][href*='favicon-busy']"}

# every text the Stop button of the notebook's panel shows from now on (a click's answer can be short-lived)
WATCH_STOP_JS = """(root) => {
  const button = [...document.querySelectorAll(root + ' .nbdetect-monitor > .widget-hbox > button')][0];
  window.__stopTexts = [button.innerText];
  new MutationObserver(() => window.__stopTexts.push(button.innerText))
      .observe(button, {childList: true, subtree: true, characterData: true});
}"""


def _menu(page, menu: str, item: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{menu}')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


def _run_all(page) -> None:
    """Run > Run All Cells, retried (as a cell's Ctrl+Enter is) while the kernel connection is still settling."""
    _until_sent(page, 0, lambda: _menu(page, "Run", "Run All Cells"), "Run All Cells")


def _wait_prompt(page, index: int, pattern: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function("([cells, i, pattern]) => { const c = document.querySelectorAll(cells)[i];"
                           " return c && new RegExp(pattern).test(c.querySelector('.jp-InputPrompt').innerText); }",
                           arg=[CELL, index, pattern], timeout=timeout_ms)


def _cell_output(page, index: int) -> str:
    return page.locator(CELL).nth(index).locator(".jp-OutputArea").first.inner_text()


def _stop_while_the_next_cell_waits(page, frontend: str, run_number: int) -> None:
    """The training cell has run (execution count `run_number`) and the waiting cell is waiting: click Stop."""
    _wait_prompt(page, 0, rf"\[{run_number}\]")
    page.wait_for_function("([cells]) => document.querySelectorAll(cells)[1].querySelector('.jp-OutputArea')"
                           ".innerText.includes('nbdetect: waiting for alternative_1')", arg=[CELL], timeout=120_000)
    _wait_prompt(page, 1, r"\[\*\]", timeout_ms=5_000)  # still waiting
    _wait_panel(page, "Alternative 1", lambda p: p["status"] == "running" and _epoch(p) >= 2, "past epoch 2")
    page.evaluate(WATCH_STOP_JS, NOTEBOOK)
    page.locator(f"{NOTEBOOK} .nbdetect-monitor button", has_text="Stop").click()
    # the click is answered at once, and the run stops within an iteration, its checkpoint saved
    page.wait_for_function("() => window.__stopTexts.some(t => t.includes('stopping...'))", timeout=10_000)
    page.wait_for_selector(f"{NOTEBOOK} .nbdetect-status[data-status='stopped']", timeout=30_000)
    button = page.locator(f"{NOTEBOOK} .nbdetect-monitor > .widget-hbox > button").first
    page.wait_for_function("([sel]) => document.querySelector(sel).innerText.includes('checkpoint saved')",
                           arg=[f"{NOTEBOOK} .nbdetect-monitor > .widget-hbox > button"], timeout=10_000)
    assert re.fullmatch(r"stopped (at epoch \d+, iteration \d+|after epoch \d+), checkpoint saved",
                        button.inner_text().strip()), button.inner_text()
    p = [p for p in _panels(page) if "Alternative 1" in p["header"]][0]
    assert "checkpoint: " in p["status_text"] and "last.pt" in p["status_text"], p
    assert "stopped after" in p["progress"] and re.search(r"epoch \d+/1000", p["progress"]), p
    # the waiting cell went on
    _wait_prompt(page, 1, rf"\[{run_number + 1}\]", timeout_ms=30_000)
    said = _cell_output(page, 1)
    assert "alternative_1 stopped; making the submission now" in said and "after the wait: stopped" in said, said
    page.wait_for_selector(IDLE[frontend], state="attached", timeout=30_000)  # and the kernel reads idle again


@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_stop_during_run_all_while_a_later_cell_waits(frontend, request, page):
    server = _server(request, frontend)
    server.write_notebook("run_all_stop.ipynb", [TRAIN_CELL, WAIT_CELL])
    _open(page, server, frontend, "run_all_stop.ipynb")
    _run_all(page)
    _stop_while_the_next_cell_waits(page, frontend, 1)

    # Restart & Run All: a new kernel, a new panel, Stop works the same
    page.click(f"{SHOWN} jp-button[data-command='notebook:restart-run-all']")
    page.click(".jp-Dialog .jp-mod-accept")
    page.wait_for_selector(".jp-Dialog", state="detached", timeout=30_000)
    page.wait_for_function("([cells]) => !document.querySelectorAll(cells)[1].querySelector('.jp-OutputArea')"
                           ".innerText.includes('after the wait')", arg=[CELL], timeout=60_000)  # outputs cleared
    _stop_while_the_next_cell_waits(page, frontend, 1)


BUSY_CELL = "import time\nfor _ in range(900):  # a cell still running after Stop (your own work, diagnose())\n    time.sleep(0.1)\n"


@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_the_kernel_still_shows_busy_after_a_stop_click_while_a_cell_runs(frontend, request, page):
    """Stop's click is handled in nbdetect's kernel subshell, which reports that request busy then idle; the kernel
    indicator must not read "Idle" while the cell after the training cell still runs."""
    server = _server(request, frontend)
    server.write_notebook("busy_after_stop.ipynb", [TRAIN_CELL, BUSY_CELL])
    _open(page, server, frontend, "busy_after_stop.ipynb")
    _run_all(page)
    _wait_panel(page, "Alternative 1", lambda p: p["status"] == "running" and _epoch(p) >= 2, "past epoch 2")
    page.locator(f"{NOTEBOOK} .nbdetect-monitor button", has_text="Stop").click()
    page.wait_for_selector(f"{NOTEBOOK} .nbdetect-status[data-status='stopped']", timeout=30_000)
    page.wait_for_selector(BUSY[frontend], state="attached", timeout=10_000)
    assert re.search(r"\[\*\]", _prompt(page, 1)), _prompt(page, 1)  # and the cell is indeed still running
