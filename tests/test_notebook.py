"""``docs/notebooks/seed_walkthrough.ipynb``: stored without outputs as valid
nbformat 4, and executed end to end by a real IPython kernel of this
interpreter on a small subset of the real binarized MNIST, its outputs checked:
pictures that are not blank, progress bars that reached their end, and an
importance-sampling NLL in the range a partly trained model can have, equal
to what ``scripts/evaluate.py`` computes for the model file the notebook saved.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import math
import os
import re

import pytest

from pylearn_vae.cli import evaluate
from tests.helpers.paths import REPO

NOTEBOOK = REPO / "docs" / "notebooks" / "seed_walkthrough.ipynb"

#: The notebook's parameters, small: it reads them from these variables.
SIZES = {
    "PYLEARN_VAE_NOTEBOOK_EXAMPLES": 2000,
    "PYLEARN_VAE_NOTEBOOK_EPOCHS": 2,
    "PYLEARN_VAE_NOTEBOOK_MONITOR_EXAMPLES": 200,
    "PYLEARN_VAE_NOTEBOOK_NLL_EXAMPLES": 100,
    "PYLEARN_VAE_NOTEBOOK_NLL_SAMPLES": 10,
}

#: The NLL of the untrained model, whose decoder puts every pixel on with
#: probability one half: a model that learned anything is below it.
UNTRAINED_NLL = 784 * math.log(2)

#: Below the best test NLL of any model this package has trained to the end
#: (85.0 nats, docs/results.md; the seed's model: 94.3): a model trained for
#: two epochs on 2,000 images cannot come near it.
FULLY_TRAINED_NLL = 80.0

#: Cells that draw with matplotlib, and how many pictures each shows.
PICTURES = {"curves": 1, "samples": 1, "reconstruct": 1}

#: Cells with a tqdm.auto bar, and the count it must reach.
BARS = {
    "train": SIZES["PYLEARN_VAE_NOTEBOOK_EPOCHS"],
    "nll": SIZES["PYLEARN_VAE_NOTEBOOK_NLL_EXAMPLES"],
}

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

#: The lines the notebook prints its estimates in (scripts/evaluate.py's wording).
NLL_LINE = re.compile(r"test NLL \(importance sampling, K=(\d+)\): (\S+) \+- (\S+) nats")
ELBO_LINE = re.compile(
    r"test negative ELBO \(mean of the (\d+) log-weights\): (\S+) \+- (\S+) nats"
)


def read_notebook():
    import nbformat

    return nbformat.read(NOTEBOOK, as_version=nbformat.NO_CONVERT)


def cells_by_id(notebook) -> dict:
    return {cell.id: cell for cell in notebook.cells}


@pytest.mark.notebook
def test_the_notebook_is_valid_nbformat_4_stored_without_outputs():
    import nbformat

    notebook = read_notebook()
    assert notebook.nbformat == 4
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert all("execution" not in cell.metadata for cell in code)
    assert "widgets" not in notebook.metadata
    assert NOTEBOOK.stat().st_size < 40_000
    # The first code cell holds the parameters, read from the variables the test sets.
    assert code[0].metadata.get("tags") == ["parameters"]
    assert all(name in code[0].source for name in SIZES)
    assert set(PICTURES) | set(BARS) <= set(cells_by_id(notebook))


def kernel_manager(folder):
    """An asynchronous kernel manager for an IPython kernel of this interpreter
    (a kernel spec of its own: the one named ``python3`` may name another
    Python), talking over Unix sockets in ``folder``."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    name = "pylearn-vae-test"
    write_kernel_spec(folder / "kernels" / name)
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")], ensure_native_kernel=False)
    manager = AsyncKernelManager(kernel_name=name, kernel_spec_manager=specs, transport="ipc")
    manager.ip = str(folder / "ipc")
    return manager


def kernel_environment(data_root) -> dict[str, str]:
    """This process's environment, with the data, the small sizes and strict PyTensor flags."""
    env = dict(os.environ, PYLEARN2_DATA_PATH=str(data_root))
    env.update({name: str(value) for name, value in SIZES.items()})
    env.pop("PYLEARN_VAE_NOTEBOOK_RUN_DIR", None)
    strict = "on_opt_error=raise,on_shape_error=raise,warn_float64=raise"
    env["PYTENSOR_FLAGS"] = ",".join(filter(None, [os.environ.get("PYTENSOR_FLAGS"), strict]))
    return env


def execute(notebook, folder, env):
    """Run every cell of ``notebook`` in a fresh kernel started in ``folder``."""
    from nbclient import NotebookClient

    (folder / "kernels").mkdir()
    client = NotebookClient(
        notebook,
        km=kernel_manager(folder),
        timeout=600,  # a cell; a cold compile cache makes the training cell slow
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute(env=env)


def stream_text(cell, name: str) -> str:
    return "".join(out.text for out in cell.outputs if out.get("name") == name)


def png_pictures(cell) -> list:
    """The PNGs a cell displayed, decoded to arrays."""
    from matplotlib import image

    return [
        image.imread(io.BytesIO(base64.b64decode(out.data["image/png"])), format="png")
        for out in cell.outputs
        if out.output_type == "display_data" and "image/png" in out.data
    ]


def check_progress(notebook, cell, total: int) -> None:
    """A bar that counted to ``total``: a widget where ipywidgets is installed,
    else tqdm's text on standard error."""
    if importlib.util.find_spec("ipywidgets") is None:
        text = stream_text(cell, "stderr")
        assert re.search(rf"100%\|[^\n\r]*\| {total}/{total} ", text), text[-500:]
        return
    views = [out for out in cell.outputs if WIDGET_VIEW in out.get("data", {})]
    assert views, [out.output_type for out in cell.outputs]
    states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [
        state["state"]
        for state in states.values()
        if state["model_name"] == "FloatProgressModel"
        and state["state"].get("max") == total
        and state["state"].get("value") == total
    ]
    assert bars, "no progress widget reached its total"


@pytest.mark.notebook
@pytest.mark.compiles
@pytest.mark.subprocess
@pytest.mark.slow
def test_the_notebook_runs_end_to_end_on_a_small_subset(tmp_path, mnist_root):
    notebook = read_notebook()
    execute(notebook, tmp_path, kernel_environment(mnist_root))
    cells = cells_by_id(notebook)
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]

    # The parameters reached the YAML.
    examples = SIZES["PYLEARN_VAE_NOTEBOOK_EXAMPLES"]
    assert f"training images: {examples:,} of 50,000" in stream_text(cells["build"], "stdout")

    for name, count in PICTURES.items():
        pictures = png_pictures(cells[name])
        assert len(pictures) == count, name
        for picture in pictures:
            assert picture.shape[0] > 200 and picture.shape[1] > 300, (name, picture.shape)
            assert picture[..., :3].std() > 0.05, f"{name}: a blank picture"

    for name, total in BARS.items():
        check_progress(notebook, cells[name], total)

    printed = stream_text(cells["nll"], "stdout")
    (k, nll, nll_se), (k_elbo, nelbo, _) = (
        NLL_LINE.search(printed).groups(),
        ELBO_LINE.search(printed).groups(),
    )
    nll, nll_se, nelbo = float(nll), float(nll_se), float(nelbo)
    assert int(k) == int(k_elbo) == SIZES["PYLEARN_VAE_NOTEBOOK_NLL_SAMPLES"]
    assert math.isfinite(nll) and math.isfinite(nll_se) and nll_se > 0
    assert FULLY_TRAINED_NLL < nll < UNTRAINED_NLL
    # log of a mean >= mean of the logs, for the same K weights of every image.
    assert nll <= nelbo

    # The command the notebook prints computes the same numbers from the saved model.
    program, model_file, *options = printed.strip().splitlines()[-1].split()
    assert program == "pylearn-vae-evaluate"  # (scripts/evaluate.py's command)
    model_file = tmp_path / model_file
    assert model_file.is_file()
    report = tmp_path / "nll.json"
    assert evaluate.main([str(model_file), *options, "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["num_examples"] == SIZES["PYLEARN_VAE_NOTEBOOK_NLL_EXAMPLES"]
    assert result["nll"] == pytest.approx(nll, abs=1e-3)
    assert result["negative_elbo"] == pytest.approx(nelbo, abs=1e-3)


@pytest.mark.notebook
@pytest.mark.subprocess
@pytest.mark.slow
def test_the_notebook_says_how_to_install_missing_data(tmp_path):
    notebook = read_notebook()
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError) as caught:
        execute(notebook, tmp_path, kernel_environment(tmp_path / "no-data"))
    message = str(caught.value)
    assert "DataMissingError" in message
    assert str(tmp_path / "no-data") in message
    assert "scripts/download_binarized_mnist.py" in message


@pytest.mark.notebook
@pytest.mark.subprocess
@pytest.mark.slow
def test_the_packages_own_progress_bars_draw_in_a_kernel(tmp_path):
    """In a Jupyter kernel (no terminal) the package's bars draw as tqdm.auto
    draws them there; outside one, in a pipe, they stay silent (test_progress)."""
    import nbformat

    code = (
        "import tqdm.notebook\n"
        "from pylearn_vae.utils.progress import in_jupyter_kernel, progress_bar\n"
        "with progress_bar(7, 'evaluating', unit='batch') as bar:\n"
        "    bar.update(7)\n"
        "    drawn = not bar.disable\n"
        "print(in_jupyter_kernel(), drawn, isinstance(bar, tqdm.notebook.tqdm))\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    execute(notebook, tmp_path, dict(os.environ))
    [cell] = notebook.cells
    widgets = importlib.util.find_spec("ipywidgets") is not None
    assert stream_text(cell, "stdout") == f"True True {widgets}\n"
    if widgets:
        check_progress(notebook, cell, 7)
    else:
        assert "evaluating" in stream_text(cell, "stderr")
