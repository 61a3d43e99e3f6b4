from pathlib import Path

import pytest

from mlkernel.config import load_config, render_config
from mlkernel.errors import ConfigError, NotFoundError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mlkernel.toml").write_text(text)
    return tmp_path


def test_rendered_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, render_config("demo")))
    assert config.name == "demo"
    assert config.metadata_url == f"sqlite:///{tmp_path / '.mlkernel' / 'meta.db'}"
    assert config.objects_dir == tmp_path / ".mlkernel" / "objects"


def test_typo_in_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[tracking]\nflush_rowz = 10\n')
    with pytest.raises(ConfigError) as info:
        load_config(root)
    message = str(info.value)
    assert str(root / "mlkernel.toml") in message
    assert "[tracking] unknown key 'flush_rowz'" in message
    assert "did you mean 'flush_rows'" in message
    assert "\n" not in message


def test_typo_in_section(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[storag]\nmetadata = "sqlite"\n')
    with pytest.raises(ConfigError, match=r"unknown section \[storag\]; did you mean 'storage'"):
        load_config(root)


def test_wrong_type(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[tracking]\nflush_rows = "many"\n')
    with pytest.raises(
        ConfigError, match=r"\[tracking\] flush_rows must be an integer of at least 1, got 'many'"
    ):
        load_config(root)


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[tracking]\nflush_rows = true\n')
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(root)


def test_bad_metadata_url(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[storage]\nmetadata = "mysql://x"\n')
    with pytest.raises(
        ConfigError,
        match=r'\[storage\] metadata must be "sqlite" or a URL postgresql://.*, got \'mysql://x\'',
    ):
        load_config(root)


def test_gc_grace(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "x"\n[storage]\ngc_grace = 30\n')
    assert load_config(root).storage.gc_grace == 30
    write(tmp_path, '[project]\nname = "x"\n[storage]\ngc_grace = -5\n')
    with pytest.raises(
        ConfigError, match=r"\[storage\] gc_grace must be a number of at least 0, got -5"
    ):
        load_config(root)


def test_invalid_toml(tmp_path: Path) -> None:
    root = write(tmp_path, "[project\nname=")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(root)


def test_missing_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[project\] missing 'name'; add name = \"...\""):
        load_config(write(tmp_path, "[project]\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="mlk init"):
        load_config(tmp_path)
