"""The monitor channels a sweep's runs will have, known before anything runs.

A sweep optimises one channel (``metric``). A name the runs will not have
(``valid_objectiv``, ``valid_nll``, ``3``) would otherwise surface only when
every trial fails after its first epoch, on a cluster started for nothing.
:func:`check_metric` builds what names the channels, from the base YAML and
without its data sets: the model and the cost (their symbolic channels;
nothing is compiled), the names of the monitoring data sets, and the
learning rule's values.
"""

from __future__ import annotations

import difflib
import logging

from pylearn_vae.config import yaml_parse
from pylearn_vae.errors import SweepSpecError
from pylearn_vae.job import train_environ
from pylearn_vae.monitor import channel_expressions, channel_names
from pylearn_vae.text import escape

__all__ = ["check_metric", "run_channels"]

logger = logging.getLogger(__name__)


def _kwargs(node) -> dict:
    return node.kwargs if isinstance(node, yaml_parse.ObjectProxy) else {}


def _dataset_names(monitoring_dataset) -> list[str]:
    if monitoring_dataset is None:
        return []
    if isinstance(monitoring_dataset, dict):
        return [str(key) for key in monitoring_dataset]
    return [""]


def run_channels(base_text: str, source: str) -> list[str] | None:
    """The channel names a run of the training YAML ``base_text`` records, or
    None when they cannot be told without running it (the YAML does not build
    without its data; a trial will say why)."""
    try:
        parsed = yaml_parse.load(
            base_text, environ=train_environ(source), instantiate=False, source=source
        )
        algorithm = _kwargs(_kwargs(parsed).get("algorithm"))
        model = yaml_parse.instantiate(_kwargs(parsed)["model"])
        cost = yaml_parse.instantiate(algorithm["cost"])
        X = model.get_input_space().make_theano_batch("X")
        batch = list(channel_expressions(model, cost, X))
        rule = algorithm.get("learning_rule")
        extra = ["learning_rate"]
        if rule is not None:
            extra += list(yaml_parse.instantiate(rule).monitoring_values())
    except Exception as exc:  # (a missing key or value is the trial's to report)
        logger.debug("the channels of %s are not known before a run: %s", source, exc)
        return None
    return channel_names(_dataset_names(algorithm.get("monitoring_dataset")), batch) + extra


def check_metric(metric: str, base_text: str, source: str, where: str) -> None:
    """Raise :class:`SweepSpecError` (located at ``where``) if the runs of the
    training YAML ``base_text`` will have no channel named ``metric``."""
    names = run_channels(base_text, source)
    if names is None or metric in names:
        return
    close = difflib.get_close_matches(metric, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise SweepSpecError(
        f"metric {escape(repr(metric))} is not a monitor channel of {escape(source)}{hint}; "
        f"its channels: {escape(', '.join(sorted(names)))}",
        where,
    )
