"""Every bad input gets a clear answer, before any side effect (tests/bad_input_cases.py holds the table).

Each case: an NbdetectError naming the argument or sample, at most 6 lines (or 3 plus 3 samples and "and N
more"), and nothing created or announced in the working folder; or a documented acceptance that says what it
read. docs/ERRORS.md lists every case's id and holds the argument table nbdetect.arguments generates.
"""
import math
import re
from pathlib import Path

import pytest
import torch

import nbdetect
from bad_input_cases import CASES, run_case
from nbdetect import arguments
from nbdetect.errors import NbdetectError
from toy_data import toy_samples

DOC = Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md"


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_gets_a_clear_answer_before_any_side_effect(c, tmp_path):
    outcome, detail = run_case(c, tmp_path)
    assert outcome == "clear", f"{c.id}: {outcome}: {detail}"


def test_every_case_is_documented_in_errors_md():
    doc = DOC.read_text()
    documented = set(re.findall(r"`([a-z0-9_]+)`", doc))
    missing = sorted({c.doc for c in CASES} - documented)
    assert not missing, f"add these to docs/ERRORS.md: {missing}"


def test_every_option_a_recipe_call_takes_has_its_argument_check():
    """train/val are checked by the data layer (nbdetect.data.validate); every other keyword an alternative
    takes is refused by its Arg when wrong, before anything runs (a keyword without one went through unread)."""
    from nbdetect.alternatives import known_options

    unchecked = [name for name in known_options() if name not in arguments.ARGS and name not in ("train", "val")]
    assert not unchecked, f"add an Arg to nbdetect/arguments.py for: {unchecked}"


def test_synthetic_accepts_exactly_the_keywords_the_demo_data_takes():
    import inspect

    from nbdetect.data.synthetic import SyntheticSigns, synthetic_split

    own = [n for n, p in inspect.signature(synthetic_split).parameters.items() if p.kind is not p.VAR_KEYWORD]
    passed = [n for n in inspect.signature(SyntheticSigns).parameters if n not in ("num_images", *own)]
    assert arguments.SYNTHETIC_KEYS == (*own, *passed)


def test_errors_md_argument_table_is_the_generated_one():
    doc = DOC.read_text()
    m = re.search(r"<!-- arguments:begin -->\n(.*?)\n<!-- arguments:end -->", doc, re.S)
    assert m, "docs/ERRORS.md lost its generated argument table markers"
    assert m.group(1).strip() == arguments.docs_table().strip(), (
        "regenerate it: python -c 'from nbdetect import arguments; print(arguments.docs_table())'")


def test_a_refused_alternative_3_leaves_the_optimizer_as_it_was():
    model = nbdetect.build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    data = toy_samples(4)
    data[1] = (data[1][0] * 255, data[1][1])  # a data refusal comes after the arguments were checked
    with pytest.raises(NbdetectError, match="sample 1"):
        nbdetect.alternative_3(opt, model, data, epochs=1, lr=0.5, monitor=False)
    assert [g["lr"] for g in opt.param_groups] == [0.01] and "initial_lr" not in opt.param_groups[0]


def test_a_failing_getitem_is_named_and_its_cause_chained():
    from bad_input_cases import Raises

    with pytest.raises(NbdetectError, match="sample 2") as info:
        nbdetect.alternative_1(Raises(2), num_classes=2, epochs=1, monitor=False, weights=None, device="cpu")
    assert isinstance(info.value.__cause__, KeyError)


def test_float64_images_train_as_float32():
    from nbdetect.inputs import prepare_data

    data = prepare_data([(img.double(), t) for img, t in toy_samples(4)], num_classes=2)
    images, _ = next(iter(data.train_loader))
    assert images[0].dtype == torch.float32


def test_the_cli_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    from nbdetect.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--batch-size", "0", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "batch_size=0" in err and "--debug" in err
    assert main(["train", "--lr", "nan", "--epochs", "1"]) == 2
    with pytest.raises(NbdetectError):
        main(["train", "--lr", "-1", "--debug"])  # --debug after the command: the traceback
    assert not list(tmp_path.iterdir())


def test_a_coerced_value_says_so(capsys):
    assert arguments.check({"batch_size": "2", "lr": "1e-3", "epochs": 3.0}) == {"batch_size": 2, "lr": 1e-3, "epochs": 3}
    out = capsys.readouterr().out
    assert "batch_size='2' read as 2" in out and "epochs=3.0 read as 3" in out
    with pytest.raises(NbdetectError, match="lr=nan"):
        arguments.check({"lr": math.nan})
