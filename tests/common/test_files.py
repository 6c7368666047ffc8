"""The one reader of user files: missing, folder, non-UTF-8 and YAML syntax errors are one line naming the file."""

import pytest
import yaml

from distill.common.files import parse_yaml, read_text
from distill.errors import DistillError


def test_read_text_names_a_missing_file_a_folder_and_bad_bytes(tmp_path):
    with pytest.raises(DistillError, match=r"^recipe .*nope.yaml does not exist: write one$"):
        read_text(tmp_path / "nope.yaml", "recipe", ": write one")
    with pytest.raises(DistillError, match=r"^recipe .* is a folder, not a file$"):
        read_text(tmp_path, "recipe")
    (tmp_path / "latin1.yaml").write_bytes("output: runs/caf\xe9\n".encode("latin-1"))
    with pytest.raises(DistillError, match=r"latin1.yaml is not UTF-8 text \(byte 16: b'\\xe9'\): save it as UTF-8$"):
        read_text(tmp_path / "latin1.yaml", "recipe")
    (tmp_path / "ok.yaml").write_text("output: runs/café\n", encoding="utf-8")
    assert read_text(tmp_path / "ok.yaml", "recipe") == "output: runs/café\n"


def test_yaml_syntax_errors_are_one_line_with_the_place():
    with pytest.raises(DistillError) as error:
        parse_yaml("a: 1\nb: [2,\n", "recipe r.yaml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("recipe r.yaml is not valid YAML: ")
    assert "at line 3, column 1" in message
    with pytest.raises(DistillError, match="not valid YAML"):
        parse_yaml("!!python/object/apply:os.system ['true']", "p.yaml")  # safe_load: no Python tags
    assert parse_yaml("a: [1, 2]", "x") == {"a": [1, 2]}


def test_yaml_takes_only_safe_loaders():
    with pytest.raises(DistillError, match="could not determine a constructor for the tag .*python/tuple"):
        parse_yaml("a: !!python/tuple [1, 2]", "recipe r.yaml")  # recipes: plain safe loading

    class Tuples(yaml.SafeLoader):
        pass

    Tuples.add_constructor(
        "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node))
    )
    assert parse_yaml("a: !!python/tuple [1, 2]", "p.yaml", loader=Tuples) == {"a": (1, 2)}
    with pytest.raises(TypeError, match="takes a yaml.SafeLoader subclass, got UnsafeLoader"):
        parse_yaml("a: 1", "p.yaml", loader=yaml.UnsafeLoader)
