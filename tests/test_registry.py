"""Registry behaviour: registration, validation of arguments, listing, describing, errors."""

import pytest

from resectbench import registry as reg
from resectbench.errors import RegistryError
from resectbench.search_space import Categorical, Float, Int, prefixed, suggest


@pytest.fixture
def fresh():
    return reg.Registry("widgets")


def make_widget(width: int = 8, depth: int = 2, *, name: str = "w"):
    """A widget for tests.

    More text that is not the description.
    """
    return {"width": width, "depth": depth, "name": name}


def test_register_create_and_defaults(fresh):
    fresh.register("my-widget", tags=("a", "b"))(make_widget)
    assert fresh.create("my-widget") == {"width": 8, "depth": 2, "name": "w"}
    assert fresh.create("my-widget", width=3, name="x") == {"width": 3, "depth": 2, "name": "x"}
    assert fresh.get("my-widget").description == "A widget for tests."


def test_duplicate_name_names_both_providers(fresh):
    token = reg.current_provider.set("first-plugin")
    fresh.register("dup")(make_widget)
    reg.current_provider.reset(token)
    token = reg.current_provider.set("second-plugin")
    try:
        with pytest.raises(RegistryError) as err:
            fresh.register("dup")(make_widget)
        assert "first-plugin" in str(err.value) and "second-plugin" in str(err.value)
        fresh.register("dup", override=True, description="replaced")(make_widget)
        assert fresh.get("dup").description == "replaced"
        assert fresh.get("dup").provider == "second-plugin"
    finally:
        reg.current_provider.reset(token)


@pytest.mark.parametrize("bad", ["CamelCase", "with space", "under_score", "-leading", ""])
def test_names_must_be_kebab_case(fresh, bad):
    with pytest.raises(RegistryError, match="kebab-case"):
        fresh.register(bad)(make_widget)


def test_unknown_name_suggests_close_matches(fresh):
    fresh.register("swin-unetr")(make_widget)
    fresh.register("segresnet")(make_widget)
    with pytest.raises(RegistryError) as err:
        fresh.create("swin-unter")
    message = str(err.value)
    assert "Did you mean: swin-unetr" in message
    assert "segresnet" in message  # the available list


def test_bad_kwarg_lists_valid_parameters(fresh):
    fresh.register("my-widget")(make_widget)
    with pytest.raises(RegistryError) as err:
        fresh.create("my-widget", widht=3)
    message = str(err.value)
    assert "'widht'" in message and "did you mean 'width'" in message
    assert "width, depth, name" in message


def test_missing_required_parameter(fresh):
    fresh.register("needs-x")(lambda x, y=1: (x, y))
    with pytest.raises(RegistryError, match="needs parameter"):
        fresh.create("needs-x")
    assert fresh.create("needs-x", x=2) == (2, 1)


def test_classes_are_validated_against_init(fresh):
    class Thing:
        def __init__(self, size: int = 4):
            self.size = size

    fresh.register("thing")(Thing)
    assert fresh.create("thing", size=5).size == 5
    with pytest.raises(RegistryError, match="Valid parameters: size"):
        fresh.create("thing", self=1)


def test_list_with_wildcards_and_tags(fresh):
    for name, tags in [
        ("swin-unetr", ("3d", "transformer")),
        ("vit3d", ("3d", "transformer")),
        ("cnn3d", ("3d", "cnn")),
        ("timm-2.5d", ("2.5d",)),
    ]:
        fresh.register(name, tags=tags)(make_widget)
    assert fresh.list() == ["cnn3d", "swin-unetr", "timm-2.5d", "vit3d"]
    assert fresh.list("*3d") == ["cnn3d", "vit3d"]
    assert fresh.list(tags=["transformer"]) == ["swin-unetr", "vit3d"]
    assert fresh.list("s*", tags=["3d"]) == ["swin-unetr"]


def test_describe_reports_parameters_space_and_provider(fresh):
    space = {"width": Categorical([4, 8]), "lr": Float(1e-4, 1e-2, log=True)}
    fresh.register("my-widget", tags=("t",), search_space=space)(make_widget)
    info = fresh.describe("my-widget")
    assert info["parameters"]["width"] == {"default": 8, "required": False, "annotation": "int"}
    assert info["search_space"] == {"width": "{4, 8}", "lr": "float[0.0001, 0.01] log"}
    assert info["provider"] == "user" and info["tags"] == ["t"]
    assert info["factory"].endswith("make_widget")


def test_marked_components_register_from_a_package(tmp_path, monkeypatch, fresh):
    pkg = tmp_path / "markedpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text(
        "from resectbench.registry import component\n"
        "@component('alpha', tags=('x',))\n"
        "def alpha(k: int = 1):\n    return k\n"
    )
    (pkg / "two.py").write_text("from markedpkg.one import alpha  # re-export must not register twice\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert fresh.add_marked("markedpkg") == ["alpha"]
    assert fresh.create("alpha", k=3) == 3


def test_search_space_sampling_is_seeded():
    optuna = pytest.importorskip("optuna")
    space = {"width": Categorical([4, 8, 16]), "depth": Int(1, 4), "lr": Float(1e-4, 1e-2, log=True)}

    def sample(seed):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        trial = study.ask()
        return suggest(prefixed(space, "backbone."), trial), trial.params

    (a, pa), (b, _), (c, _) = sample(1), sample(1), sample(2)
    assert a == b and a != c
    assert set(pa) == {"backbone.width", "backbone.depth", "backbone.lr"}
    assert 1 <= a["backbone.depth"] <= 4 and a["backbone.width"] in (4, 8, 16)


def test_kind_aliases_and_unknown_kind():
    assert reg.get_registry("fusion") is reg.fusions
    assert reg.get_registry("clinical") is reg.clinical_encoders
    with pytest.raises(RegistryError, match="unknown component kind"):
        reg.get_registry("nonsense")
