"""The live panel in real JupyterLab 4 and Notebook 7 (headless Chromium): curves and verdict update, Stop works,
checkpoint loads."""
import re
import time

import pytest

from nbdetect.checkpoint import load_checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# screenshots for the README are written only when scripts/docs_images.sh asks (tests write to temp dirs only)
DOCS_SHOTS = __import__("os").environ.get("NBDETECT_DOCS_SHOTS")

# long enough to be still running when Stop is clicked
EPOCHS = 1000
CELL = """\
import torch
torch.set_num_threads(1)
import nbdetect
run = nbdetect.alternative_1(epochs=EPOCHS, preset="retinanet_tiny", weights=None, device="cpu", out_dir="run1",
                             synthetic={"n_train": 8, "n_val": 4, "image_size": (128, 128)}, monitor="panel")
print("cell returned while", run.status)
""".replace("EPOCHS", str(EPOCHS))


def _epochs_shown(page) -> int:
    text = page.inner_text(".nbdetect-monitor")
    m = re.search(rf"epoch (\d+)/{EPOCHS}", text)
    return int(m.group(1)) if m else 0


def _run_first_cell(page, attempts=5):
    """Shift+Enter in the first cell; retried while the kernel connection is still settling."""
    prompt = ".jp-Notebook .jp-Cell >> nth=0 >> .jp-InputPrompt"
    for _ in range(attempts):
        page.click(".jp-Notebook .jp-Cell >> nth=0 >> .cm-content")
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "() => /\\[(\\*|\\d+)\\]/.test(document.querySelector('.jp-Notebook .jp-Cell .jp-InputPrompt').innerText)",
                timeout=10_000)
            return
        except Exception:
            time.sleep(2)
    raise AssertionError("the cell never started executing: " + page.inner_text(prompt))


# (server fixture, notebook URL, text that shows the kernel is idle)
FRONTENDS = {"jupyterlab4": ("lab_server", "lab/tree/monitor.ipynb", "text=/ipykernel\\) \\| Idle/"),
             "notebook7": ("notebook7_server", "notebooks/monitor.ipynb", ".jp-NotebookKernelStatus-fade")}  # faded once idle


@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_panel_updates_and_stop_saves_a_loadable_checkpoint(frontend, request, page):
    fixture, path, idle = FRONTENDS[frontend]
    lab_server = request.getfixturevalue(fixture)
    lab_server.write_notebook("monitor.ipynb", [CELL])
    page.goto(lab_server.url(path))
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=90_000)
    page.wait_for_selector(idle, timeout=90_000)
    _run_first_cell(page)

    try:
        panel = page.wait_for_selector(".nbdetect-monitor", timeout=120_000)
    except Exception:
        page.screenshot(path=str(lab_server.root.parent / "no_panel.png"))
        raise AssertionError("no panel; cell output: " + page.inner_text(".jp-Notebook"))
    # the cell returned at once: training goes on in the background
    page.wait_for_selector("text=cell returned while running", timeout=60_000)
    img = page.wait_for_selector(".nbdetect-monitor img", timeout=30_000)
    first_src = img.get_attribute("src")
    assert first_src and (first_src.startswith("blob:") or first_src.startswith("data:image/png"))

    # the verdict appears after the first epoch; from then on the curves on show include every epoch the verdict
    # cites (the image's caption carries the drawn epoch, the verdict its own), checked as the run goes on
    page.wait_for_function("() => !document.querySelector('.nbdetect-verdict').innerText.includes('Waiting')",
                           timeout=120_000)
    page.wait_for_function(f"() => /epoch ([4-9]|\\d\\d+)\\/{EPOCHS}/.test("
                           "document.querySelector('.nbdetect-monitor').innerText)", timeout=120_000)
    assert img.get_attribute("src") != first_src  # redrawn since the run started
    seen = set()
    while len(seen) < 3:
        page.wait_for_function(
            "(seen) => { const v = document.querySelector('.nbdetect-verdict');"
            " return v && !seen.includes(v.dataset.epoch); }", arg=sorted(seen), timeout=120_000)
        pair = page.evaluate("() => [document.querySelector('.nbdetect-verdict').dataset.epoch,"
                             " document.querySelector('.nbdetect-curves').dataset.epoch]")
        verdict_epoch, curves_epoch = int(pair[0]), int(pair[1])
        seen.add(str(verdict_epoch))
        assert curves_epoch >= verdict_epoch, f"curves through epoch {curves_epoch}, verdict of epoch {verdict_epoch}"
    verdict = page.inner_text(".nbdetect-verdict")
    assert "Verdict:" in verdict and ("Rule" in verdict or "rule" in verdict)
    panel.screenshot(path=str(lab_server.root.parent / f"monitor_panel_{frontend}.png"))
    if frontend == "jupyterlab4" and DOCS_SHOTS:
        panel.screenshot(path=str(__import__("pathlib").Path(DOCS_SHOTS) / "monitor_panel.png"))

    # Stop: "stopping..." at once, then stopped within an iteration or so of the step on show at the click
    # (the progress line is refreshed every 0.5 s, so it may trail the run by the iterations of that time)
    shown = page.inner_text(".nbdetect-monitor")
    m = re.search(rf"epoch (\d+)/{EPOCHS} \| iteration (\d+)/(\d+)", shown)
    assert m, shown
    clicked_step = (int(m.group(1)) - 1) * int(m.group(3)) + int(m.group(2))
    page.click(".nbdetect-monitor button:has-text('Stop')")
    page.wait_for_function("() => [...document.querySelectorAll('.nbdetect-monitor button')]"
                           ".some(b => /stopping|stopped/.test(b.innerText))", timeout=5_000)  # at once
    page.wait_for_selector(".nbdetect-status[data-status='stopped']", timeout=60_000)
    status = page.inner_text(".nbdetect-status")
    m = re.search(r"checkpoint: (\S+\.pt)", status)
    assert m, status
    ckpt = lab_server.root / m.group(1) if not m.group(1).startswith("/") else __import__("pathlib").Path(m.group(1))
    state = load_checkpoint(ckpt)
    assert 0 < state["step"] < EPOCHS * 2 and state["model"]
    assert state["step"] <= clicked_step + 4, (state["step"], clicked_step)  # the display's lag + one iteration
