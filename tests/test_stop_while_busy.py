"""Stop reaches a run while the kernel's main shell is busy: a later cell waiting for the run (Run All), or the
user's own loop. The click is sent as the frontend sends it, a comm message on the shell channel, while that cell
runs; the Stop button's comm routes it to nbdetect's own kernel subshell (monitor/comm_routing.py)."""
import asyncio
import re
import time

import pytest


def _kernel_routes_comms_to_subshells() -> bool:
    try:
        from ipykernel.comm.comm import BaseComm
    except ImportError:
        return False
    return hasattr(BaseComm, "_reply_subshell_for")


# the mechanism needs ipykernel >= 7.4 in the kernel (a comm chooses the subshell of its incoming messages)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _kernel_routes_comms_to_subshells(),
                                                   reason="the kernel's ipykernel cannot route comms (< 7.4)")]

SETUP = ("import time, nbdetect\n"
         "from nbdetect import run_guard\n"
         "ARGS = dict(preset='retinanet_tiny', weights=None, epochs={epochs}, image_size=96, eval_map_every=0,\n"
         "            synthetic={{'n_train': 16, 'n_val': 4, 'image_size': (96, 96)}}, verify_data=False)\n"
         "run = nbdetect.alternative_1(None, None, monitor='panel', **ARGS)\n"
         "print('STOP_COMM', run.monitor.stop_button.comm.comm_id, run.monitor.stop_in_subshell)")
WAIT = ("run_guard.wait_for_active('making the submission')\n"
        "print('AFTER', run.status, run.step, run.total_steps, '|', run.monitor.stop_button.description, '|',\n"
        "      run.monitor.status.value)")
# the user's own loop: pure Python, never sleeping, never returning to the kernel
LOOP = ("run2 = nbdetect.alternative_1(None, None, monitor='panel', **ARGS)\n"
        "print('STOP_COMM', run2.monitor.stop_button.comm.comm_id, run2.monitor.stop_in_subshell)\n"
        "t0 = time.time()\n"
        "while run2.step < 2 and run2.is_active and time.time() - t0 < 300:\n"  # busy until the run trains
        "    sum(range(1000))\n"
        "print('TRAINING', run2.step, flush=True)\n"
        "while run2.is_active and time.time() - t0 < 300:\n"
        "    sum(range(1000))\n"
        "print('AFTER', run2.status, run2.step, run2.total_steps, '|', run2.monitor.stop_button.description)")


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


class ClickStopWhileBusy:
    """nbclient hook: once ``cell_index`` is running (and has said ``when``), click Stop of the panel whose comm id
    the cell before it printed, as a frontend does (a comm_msg on the shell channel), and note the time."""

    def __init__(self, nb, clicks: dict):
        self.nb, self.clicks, self.clicked_at, self.tasks = nb, clicks, {}, []

    async def __call__(self, cell, cell_index, **_):
        if cell_index in self.clicks:
            self.tasks.append(asyncio.ensure_future(self._click(cell, cell_index)))

    async def _click(self, cell, cell_index):
        comm_cell, when = self.clicks[cell_index]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            said = _text(self.nb.cells[comm_cell]) + _text(cell)
            if "STOP_COMM" in said and when in _text(cell):
                break
            await asyncio.sleep(0.2)
        comm_id = re.search(r"STOP_COMM (\S+)", _text(self.nb.cells[comm_cell])).group(1)
        await asyncio.sleep(3)  # a few iterations into the busy cell
        msg = self.client.kc.session.msg("comm_msg", {"comm_id": comm_id,
                                                      "data": {"method": "custom", "content": {"event": "click"}}})
        self.client.kc.shell_channel.send(msg)
        self.clicked_at[cell_index] = time.monotonic()


def _run(nb, tmp_path, clicks):
    nbclient = pytest.importorskip("nbclient")
    hook = ClickStopWhileBusy(nb, clicks)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", on_cell_execute=hook,
                                     resources={"metadata": {"path": str(tmp_path)}})
    hook.client = client
    ended = {}
    client.on_cell_executed = lambda cell_index, **_: ended.setdefault(cell_index, time.monotonic())
    client.execute()
    return hook, ended


def test_stop_clicked_while_a_later_cell_waits_for_the_run_stops_it_within_seconds(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (SETUP.format(epochs=200), WAIT)]
    hook, ended = _run(nb, tmp_path, {1: (0, "nbdetect: waiting for alternative_1")})
    assert "True" in _text(nb.cells[0]).split("STOP_COMM")[1].split("\n")[0]  # routed to the subshell
    said = _text(nb.cells[1])
    assert "Stop is on its panel and works while this cell waits" in said
    after = said.split("AFTER ")[1]
    status, step, total = after.split(" | ")[0].split()
    assert status == "stopped" and 0 < int(step) < int(total), after
    assert ended[1] - hook.clicked_at[1] < 20  # the waiting cell went on within seconds of the click
    button, line = after.split(" | ")[1:3]
    assert re.fullmatch(r"stopped at epoch \d+, iteration \d+, checkpoint saved", button.strip()) or \
        re.fullmatch(r"stopped after epoch \d+, checkpoint saved", button.strip()), button
    assert "checkpoint: " in line and "last.pt" in line


def test_stop_clicked_while_the_users_own_loop_runs_stops_the_run(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (SETUP.format(epochs=1).replace(
        "run = nbdetect.alternative_1(None, None, monitor='panel', **ARGS)\n", "ARGS['epochs'] = 200\n").replace(
        "print('STOP_COMM', run.monitor.stop_button.comm.comm_id, run.monitor.stop_in_subshell)", ""), LOOP)]
    hook, ended = _run(nb, tmp_path, {1: (1, "TRAINING")})  # clicked once the run trains (state, not a sleep)
    after = _text(nb.cells[1]).split("AFTER ")[1]
    status, step, total = after.split(" | ")[0].split()
    assert status == "stopped" and 0 < int(step) < int(total), after
    assert ended[1] - hook.clicked_at[1] < 20
    assert "checkpoint saved" in after.split(" | ")[1]
