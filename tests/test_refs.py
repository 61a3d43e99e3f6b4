import pytest

from mlkernel.errors import InvalidNameError
from mlkernel.refs import Ref, parse_ref, validate_alias, validate_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", Ref(None, "churn")),
        ("model:churn", Ref("model", "churn")),
        ("model:churn@production", Ref("model", "churn", alias="production")),
        ("dataset:train@3", Ref("dataset", "train", version=3)),
        ("train@latest", Ref(None, "train")),
        ("a.b-c_d", Ref(None, "a.b-c_d")),
    ],
)
def test_parse(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


def test_round_trip() -> None:
    for text in ("model:churn@production", "dataset:train@3", "churn"):
        assert str(parse_ref(text)) == text


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../x", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("a\x00b", "control character 0x00"),
        ("tab\there", "control character 0x09"),
        ("", "empty"),
        ("x" * 201, "at most 200"),
        (".hidden", "must start with a letter or digit"),
        ("sp ace", "' '"),
    ],
)
def test_invalid_names(name: str, fragment: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_name_limit_is_inclusive() -> None:
    assert validate_name("x" * 200) == "x" * 200


@pytest.mark.parametrize(
    "text", ["", "bogus:x", "model:", "model:x@", "model:x@0", "model:../x", "x@a/b"]
)
def test_malformed_refs(text: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_ref(text)


@pytest.mark.parametrize("alias", ["3", "latest", "a/b"])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_alias(alias)
