"""Comparing configurations as written (the check behind ``train.py --resume``)."""

from pylearn_vae.config import yaml_parse
from pylearn_vae.config.compare import (
    config_differences,
    describe_changes,
    parse_as_written,
    parsed_changes,
)

TEXT = """\
!obj:pylearn_vae.train_extensions.snapshots.EpochSnapshots {
    save_path: '${STEM}_epoch{epoch}.pkl', every: 2 }
"""


def test_a_file_parsed_for_building_compares_as_written():
    """The run's own parse (variables replaced) against the checkpoint's YAML (as written):
    one parse of the file serves both the comparison and the building."""
    parsed = yaml_parse.load(TEXT, environ={"STEM": "runs/a"}, instantiate=False)
    path = parsed.kwargs["save_path"]
    assert path == "runs/a_epoch{epoch}.pkl" and path.written == "${STEM}_epoch{epoch}.pkl"
    assert parsed_changes(parse_as_written(TEXT), parsed) == []
    other = yaml_parse.load(
        TEXT.replace("every: 2", "every: 3"), environ={"STEM": "b"}, instantiate=False
    )
    assert parsed_changes(parse_as_written(TEXT), other) == [("every", 2, 3)]
    snapshots = yaml_parse.instantiate(parsed)
    assert type(snapshots.save_path) is str and snapshots.save_path == "runs/a_epoch{epoch}.pkl"


def test_variables_compare_by_name_however_written():
    old = parse_as_written("a: $STEM/x\nb: '${HOME}'\n")
    new = yaml_parse.load("a: ${STEM}/x\nb: $HOME\n", environ={"STEM": "s"}, instantiate=False)
    assert parsed_changes(old, new) == []
    assert parsed_changes(old, parse_as_written("a: ${STEM}/y\nb: $HOME\n")) == [
        ("a", "${STEM}/x", "${STEM}/y")
    ]


def test_pkl_and_import_tags_compare_by_what_they_name():
    text = "m: !pkl: '${DIR}/model.pkl'\nf: !import numpy.exp\n"
    assert config_differences(text, text) == []
    changed = text.replace("model.pkl", "other.pkl").replace("exp", "log")
    assert config_differences(text, changed) == [
        "m: '!pkl:${DIR}/model.pkl' -> '!pkl:${DIR}/other.pkl'",
        "f: '!_ImportProxy:numpy.exp' -> '!_ImportProxy:numpy.log'",
    ]


def test_describe_changes_names_the_root():
    assert describe_changes([("", 1, 2), ("a[0].b", "x", None)]) == [
        "<root>: 1 -> 2",
        "a[0].b: 'x' -> None",
    ]
