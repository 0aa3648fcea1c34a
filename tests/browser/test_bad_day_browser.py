"""The panel on a bad day, in real JupyterLab 4 and Notebook 7 (headless Chromium).

* "Start Alternative 2" starts a new run whose panel appears, trains to the end and whose controls work: in a fresh
  kernel; in a reopened notebook (panel restored from the kernel) and after a kernel restart; and in the report's
  case, a notebook run in JupyterLab and opened in Notebook 7 ("Open in Notebook", same server and kernel) with the
  kernel restarted from the JupyterLab tab ("the button is dead ... kernel log: unknown subshell id").
* A refusal (epochs=0) is a short message naming the argument and the fix, without traceback frames.
* Re-running the training cell while its run is active is refused and shows that run's live panel again.
* A stopped run's progress reads "stopped after" (no ETA); a finished one "iteration N/N ... finished after".
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

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
# long enough (about 10 s) to click in the panel while it trains
REPORT_CELL = SWITCH_CELL.replace("epochs=2,", "epochs=10,")
REFUSAL_CELL = SETUP + f"nbdetect.alternative_1(epochs=0, {TINY})\n"
START_NEXT = "Start Alternative 2"

# (server fixture, URL prefix of a notebook, what shows the kernel is idle)
FRONTENDS = {"jupyterlab4": ("lab_server", "lab/tree/", "text=/ipykernel\\) \\| Idle/"),
             "notebook7": ("notebook7_server", "notebooks/", ".jp-NotebookKernelStatus-fade")}  # faded once idle

# every nbdetect panel in the notebook on show (a panel started by "Start ..." sits inside its parent's output widget)
PANELS_JS = """(root) => [...document.querySelectorAll(root + ' .nbdetect-monitor')].map(p => {
  const status = p.querySelector(':scope > .widget-html .nbdetect-status');
  const progress = p.querySelector(':scope > .widget-hbox > .widget-html');
  const verdict = p.querySelector(':scope > .widget-html .nbdetect-verdict');
  const buttons = [...p.querySelectorAll(':scope > .widget-hbox > button')].filter(b => b.offsetParent !== null);
  return {header: (p.firstElementChild || {}).innerText || '', progress: progress ? progress.innerText : '',
          status: status ? status.dataset.status : '', status_text: status ? status.innerText : '',
          verdict: verdict ? verdict.innerText : '', buttons: buttons.map(b => b.innerText)};
})"""
_SERVERS_USED = []


@pytest.fixture(autouse=True)
def _shut_down_kernels():
    """After each test (and its pages): shut its kernels down, so no run keeps the 2 CPU cores busy."""
    yield
    while _SERVERS_USED:
        server = _SERVERS_USED.pop()
        try:
            with urllib.request.urlopen(server.url("api/sessions"), timeout=10) as resp:
                sessions = json.load(resp)
            for s in sessions:
                urllib.request.urlopen(urllib.request.Request(server.url(f"api/sessions/{s['id']}"),
                                                              method="DELETE"), timeout=60).close()
        except Exception as exc:  # the server may be gone already; nothing to clean then
            print(f"could not shut the kernels down: {exc}")


def _server(request, frontend: str):
    server = request.getfixturevalue(FRONTENDS[frontend][0])
    _SERVERS_USED.append(server)
    return server


# -- helpers ------------------------------------------------------------------------------------------------
def _open(page, server, frontend: str, name: str, idle: str | None = None) -> None:
    _, prefix, default_idle = FRONTENDS[frontend]
    page.goto(server.url(prefix + name) + ("&reset" if frontend == "jupyterlab4" else ""))  # no restored tabs
    page.wait_for_selector(f"{CELL} .cm-content", timeout=90_000)
    page.wait_for_selector(idle or default_idle, timeout=90_000)


def _prompt(page, index: int) -> str:
    return page.locator(CELL).nth(index).locator(".jp-InputPrompt").inner_text()


def _until_sent(page, index: int, send, what: str, attempts: int = 5) -> None:
    """``send()`` (a key or a menu click that runs cells), retried while the kernel connection is still settling:
    one that is taken turns cell ``index``'s prompt into [*] (the request sent) at once, so a retry comes only
    when nothing was sent."""
    before = _prompt(page, index)
    for _ in range(attempts):
        send()
        try:
            page.wait_for_function(
                """([cells, i, before]) => {
                       const t = document.querySelectorAll(cells)[i].querySelector('.jp-InputPrompt').innerText;
                       return t !== before && /\\[(\\*|\\d+)\\]/.test(t); }""",
                arg=[CELL, index, before], timeout=10_000)
            return
        except Exception:
            time.sleep(2)
    raise AssertionError(f"{what} sent nothing in {attempts} tries: cell {index} reads {_prompt(page, index)!r}")


def _run_cell(page, index: int) -> None:
    """Ctrl+Enter in cell `index` (runs it in place)."""
    def send():
        page.locator(CELL).nth(index).locator(".cm-content").click()
        page.keyboard.press("Control+Enter")

    _until_sent(page, index, send, f"Ctrl+Enter in cell {index}")


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
    return page.evaluate(PANELS_JS, NOTEBOOK)


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
    try:  # the status goes restarting -> starting -> idle: wait to see it leave idle (a fast restart may not show it)
        page.wait_for_selector(FRONTENDS[frontend][2], state="detached", timeout=5_000)
    except Exception:
        pass
    page.wait_for_selector(FRONTENDS[frontend][2], timeout=90_000)


def _click_start_next_and_check(page, server, log_from: int) -> None:
    """Click "Start Alternative 2": its panel must appear, its run train to the end and its controls work."""
    button = page.locator(f"{NOTEBOOK} button", has_text=START_NEXT)
    button.wait_for(state="visible", timeout=60_000)
    button.click()
    try:
        p = _wait_panel(page, "Alternative 2", _finished, "finished", timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nserver log:\n{_server_log_tail(server, log_from)[-3000:]}") from None
    m = re.search(r"iteration (\d+)/(\d+)", p["progress"])
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, p
    _toggle_log_lr(page, "Alternative 2", redrawn=True)
    log = _server_log_tail(server, log_from)
    assert "subshell" not in log.lower(), log[-3000:]


def _mark_panel(page, title: str) -> str:
    """A selector for the innermost panel whose header holds `title`."""
    found = page.evaluate("""([root, title]) => {
        document.querySelectorAll('[data-test-panel]').forEach(e => { delete e.dataset.testPanel; });
        const p = [...document.querySelectorAll(root + ' .nbdetect-monitor')].reverse()
                  .find(p => (p.firstElementChild || {}).innerText.includes(title));
        if (!p) return false;
        p.dataset.testPanel = title; return true; }""", [NOTEBOOK, title])
    assert found, f"no {title} panel: {_panels(page)}"
    return f"{NOTEBOOK} .nbdetect-monitor[data-test-panel='{title}']"


def _toggle_log_lr(page, title: str, redrawn: bool = False) -> None:
    """Click the log-scale LR checkbox of the `title` panel; with `redrawn`, its curves must be redrawn."""
    panel = _mark_panel(page, title)
    img = page.locator(f"{panel} > img")
    before = img.get_attribute("src")
    page.click(f"{panel} > .widget-hbox > .widget-checkbox input")
    if redrawn:
        try:
            page.wait_for_function("([sel, before]) => document.querySelector(sel).getAttribute('src') !== before",
                                   arg=[f"{panel} > img", before], timeout=30_000)
        except Exception:
            raise AssertionError(f"the {title} panel's curves were not redrawn after a log-scale LR click") from None


def _epoch(p: dict) -> int:
    m = re.search(r"epoch (\d+)/", p["progress"])
    return int(m.group(1)) if m else -1


def _save(page, server, name: str, timeout: float = 30) -> None:
    """Ctrl+S, then wait until the notebook on disk holds the first cell's outputs (saved: state, not a sleep)."""
    path = server.root / name
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(path.read_text(encoding="utf-8"))["cells"][0].get("outputs"):
                return
        except (OSError, ValueError, KeyError, IndexError):
            pass  # being written
        time.sleep(0.2)
    raise AssertionError(f"{name} was not saved with its outputs within {timeout} s")


def _log_size(server) -> int:
    return len(server.log.read_text(errors="replace"))


def _start_switch_run(request, frontend, page, name):
    """A notebook holding the 2-epoch switch cell, opened and run; returns (server, server log size before)."""
    server = _server(request, frontend)
    since = _log_size(server)
    server.write_notebook(name, [SWITCH_CELL])
    _open(page, server, frontend, name)
    _run_cell(page, 0)
    return server, since


# -- 1. the "Start Alternative 2" button, and a finished run's progress ------------------------------------------
@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_start_next_button_starts_alternative_2(frontend, request, page):
    server, since = _start_switch_run(request, frontend, page, "switch.ipynb")
    p = _wait_panel(page, "Alternative 1", _finished, "finished")
    # a finished run: its last epoch complete, how long it ran, no ETA
    assert f"epoch 2/2 | iteration {STEPS_PER_EPOCH}/{STEPS_PER_EPOCH}" in p["progress"], p
    assert "finished after" in p["progress"] and "ETA" not in p["progress"], p
    _click_start_next_and_check(page, server, since)


# -- 2. the same in a reopened notebook, and after a kernel restart ------------------------------------------------
@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_start_next_button_after_reopen_and_restart(frontend, request, page):
    server, since = _start_switch_run(request, frontend, page, "reopen.ipynb")
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    _save(page, server, "reopen.ipynb")
    # reopened: the kernel kept running; the panel (restored from it) still works
    page.goto("about:blank")
    _open(page, server, frontend, "reopen.ipynb")
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "restored with a Start button", timeout=60)
    _click_start_next_and_check(page, server, since)
    # the kernel restarted: the re-run cell's new panel works
    _restart_kernel(page, frontend)
    _run_cell(page, 0)
    assert _wait_executed(page, 0) == 1, "the kernel was not restarted"
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    _click_start_next_and_check(page, server, since)


# -- 2b. the report: run in JupyterLab, opened in Notebook 7, kernel restarted from the JupyterLab tab ----------------
def test_start_next_button_in_notebook7_after_jupyterlab(lab_server, page):
    """JupyterLab's "Open in Notebook" opens Notebook 7 in a new tab (same server, same kernel); the kernel is then
    restarted from the JupyterLab tab, the cell re-run in Notebook 7 and the panel used there: the log-LR checkbox
    while training, "Start Alternative 2" at the end, then the new panel's own controls."""
    server = lab_server  # the same server serves JupyterLab (lab/) and Notebook 7 (notebooks/)
    _SERVERS_USED.append(server)
    since = _log_size(server)
    server.write_notebook("report.ipynb", [REPORT_CELL])
    _open(page, server, "jupyterlab4", "report.ipynb")
    _run_cell(page, 0)
    _wait_panel(page, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    _save(page, server, "report.ipynb")
    with page.context.expect_page(timeout=30_000) as opened:
        page.click(f"{SHOWN} jp-button[data-command='jupyter-notebook:open-notebook']")
    nb7 = opened.value
    nb7.wait_for_selector(f"{CELL} .cm-content", timeout=90_000)
    assert "/notebooks/report.ipynb" in nb7.url, nb7.url
    nb7.wait_for_selector(FRONTENDS["notebook7"][2], timeout=90_000)
    _wait_panel(nb7, "Alternative 1", _finished_suggesting_switch, "restored in Notebook 7", timeout=60)
    page.bring_to_front()
    _restart_kernel(page, "jupyterlab4")  # Notebook 7 only sees the new kernel start
    nb7.bring_to_front()
    _run_cell(nb7, 0)
    assert _wait_executed(nb7, 0) == 1, "the kernel was not restarted"
    _wait_panel(nb7, "Alternative 1", lambda p: p["status"] == "running", "running")
    _toggle_log_lr(nb7, "Alternative 1")  # while it trains: the next updates answer this click
    _wait_panel(nb7, "Alternative 1", _finished_suggesting_switch, "finished with a Start button")
    _click_start_next_and_check(nb7, server, since)


# -- 3, 4, 5. a refusal is short; a re-run of the active cell shows its panel again; Stop ends without an ETA ---------
TRACEBACK_MARKS = ("Traceback", "site-packages", 'File "', "torch/", "nbdetect/alternatives.py", "---------")


@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_refusals_are_short_and_a_rerun_keeps_the_active_run(frontend, request, page):
    server = _server(request, frontend)
    server.write_notebook("refusals.ipynb", [REFUSAL_CELL, LONG_CELL])
    _open(page, server, frontend, "refusals.ipynb")

    # 3. epochs=0: what is wrong, where and the fix, in a few lines, no traceback frames
    _run_cell(page, 0)
    _wait_executed(page, 0)
    page.locator(CELL).nth(0).locator(".jp-OutputArea-output").first.wait_for(timeout=30_000)
    text = _output(page, 0)
    assert "epochs=0" in text and "at least 1" in text, text
    assert re.search(r"fix:\s+pass a whole number from 1 to \d+, e.g. epochs=", text), text
    assert not any(mark in text for mark in TRACEBACK_MARKS), text
    assert len([line for line in text.splitlines() if line.strip()]) <= 6, text

    # 4. re-running the training cell while its run trains: refused, and the run's live panel is shown again
    _run_cell(page, 1)
    before = _wait_panel(page, "Alternative 1", lambda p: _epoch(p) >= 1, "past epoch 1")
    _run_cell(page, 1)
    _wait_executed(page, 1)
    page.wait_for_function(f"() => document.querySelectorAll({NOTEBOOK!r} + ' .jp-Cell')[1].innerText"
                           ".includes('still training')", timeout=60_000)
    text = _output(page, 1)
    assert "alternative_1 is still training" in text and "Stop" in text, text
    assert not any(mark in text for mark in TRACEBACK_MARKS), text
    assert len(_panels(page)) == 1, _panels(page)  # the re-run cell's output: the active run's panel
    shown = _panels(page)[0]
    # the same run (same folder), still running where it was: not a new run, not lost
    assert shown["header"] == before["header"] and shown["status"] == "running", (before, shown)
    assert _epoch(shown) >= _epoch(before), (before, shown)
    # the panel shown again is live: its progress advances and its Stop button stops the run
    _wait_panel(page, "Alternative 1", lambda p: p["progress"] != shown["progress"], "advancing")

    # 5. Stop: the progress line says how long it ran, no ETA
    page.locator(f"{NOTEBOOK} .nbdetect-monitor button", has_text="Stop").click()
    p = _wait_panel(page, "Alternative 1", lambda p: p["status"] == "stopped", "stopped", timeout=60)
    assert "stopped after" in p["progress"] and "ETA" not in p["progress"], p
    assert re.search(r"epoch \d+/1000 \| iteration \d+/2", p["progress"]), p
