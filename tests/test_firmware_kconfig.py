"""The application's Kconfig and configuration fragments, parsed with kconfiglib.

Kconfig.zephyr (Zephyr and NCS) is not in this repository. The application Kconfig is parsed with
a stand-in for it generated from tests/firmware/upstream-kconfig-symbols.txt, which says where
each upstream symbol the fragments set is defined in the pinned NCS. So: every symbol a fragment
sets is either the application's own or listed there, with a type that accepts the value.
"""

from __future__ import annotations

import re
from pathlib import Path

import kconfiglib
import pytest

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS_FILE = ROOT / "tests" / "firmware" / "upstream-kconfig-symbols.txt"
APP_KCONFIG = ROOT / "Kconfig"

README = ROOT / "README.md"
SOURCES = sorted((ROOT / "app" / "src").glob("*.[ch]"))

ASSIGNMENT = re.compile(r"^CONFIG_(\w+)=(.*)$")
UNSET = re.compile(r"^# CONFIG_(\w+) is not set$")


def upstream_symbols() -> dict[str, tuple[str, str]]:
    """SYMBOL -> (type, repository:path) from the symbols file."""
    symbols: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(SYMBOLS_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 3, f"{SYMBOLS_FILE.name}:{number}: want SYMBOL TYPE REPO:PATH"
        name, kind, where = fields
        assert kind in {"bool", "int", "string", "hex"}, f"{SYMBOLS_FILE.name}:{number}: {kind}"
        assert re.fullmatch(r"(zephyr|nrf|nrfxlib):[\w./-]*Kconfig[\w.]*", where), where
        assert name not in symbols, f"{SYMBOLS_FILE.name}:{number}: {name} listed twice"
        symbols[name] = (kind, where)
    return symbols


def fragments() -> list[Path]:
    return sorted(
        [ROOT / "prj.conf", *ROOT.glob("overlay-*.conf"), *(ROOT / "boards").glob("*.conf")]
    )


def assignments(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := ASSIGNMENT.match(line.strip()):
            values[match.group(1)] = match.group(2)
        elif match := UNSET.match(line.strip()):
            values[match.group(1)] = "n"
    return values


@pytest.fixture(scope="module")
def srctree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in for $ZEPHYR_BASE: Kconfig.zephyr declaring the listed upstream symbols, and the
    logging template the application sources. Not a copy of upstream: just the declarations."""
    tree = tmp_path_factory.mktemp("srctree")
    lines = ["# Generated stand-in for Kconfig.zephyr (see upstream-kconfig-symbols.txt)"]
    for name, (kind, where) in upstream_symbols().items():
        lines += [f"config {name}", f'\t{kind} "{name} ({where})"', ""]
    (tree / "Kconfig.zephyr").write_text("\n".join(lines), encoding="utf-8")
    template = tree / "subsys" / "logging" / "Kconfig.template.log_config"
    template.parent.mkdir(parents=True)
    template.write_text(
        'config $(module)_LOG_LEVEL\n\tint "$(module-str) log level"\n\tdefault 3\n',
        encoding="utf-8",
    )
    return tree


def load(srctree: Path, monkeypatch: pytest.MonkeyPatch) -> kconfiglib.Kconfig:
    monkeypatch.setenv("srctree", str(srctree))
    kconf = kconfiglib.Kconfig(str(APP_KCONFIG), warn_to_stderr=False)
    assert kconf.warnings == [], kconf.warnings
    return kconf


def app_symbols(kconf: kconfiglib.Kconfig) -> set[str]:
    """Symbols the application's Kconfig defines, itself or through the logging template."""
    return {
        name
        for name, sym in kconf.syms.items()
        if any(Path(node.filename).name != "Kconfig.zephyr" for node in sym.nodes)
    }


def source_symbols() -> dict[str, str]:
    """CONFIG_ symbols app/src reads -> the first file that reads it."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for name in re.findall(r"\bCONFIG_(\w+)", source.read_text(encoding="utf-8")):
            found.setdefault(name, source.name)
    return found


def test_every_symbol_set_is_the_apps_or_listed_upstream(
    srctree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kconf = load(srctree, monkeypatch)
    own = app_symbols(kconf)
    listed = set(upstream_symbols())
    assert not own & listed, f"listed upstream but defined by the app: {own & listed}"
    used: set[str] = set()
    for path in fragments():
        for name in assignments(path):
            assert name in own or name in listed, (
                f"{path.relative_to(ROOT)}: CONFIG_{name} is neither the application's "
                f"nor listed in {SYMBOLS_FILE.relative_to(ROOT)}"
            )
            used.add(name)
    used |= set(source_symbols())
    assert listed <= used, f"listed but set or read nowhere (stale entries): {listed - used}"


@pytest.mark.parametrize("fragment", fragments(), ids=lambda p: p.name)
def test_fragment_loads_without_warnings(
    srctree: Path, monkeypatch: pytest.MonkeyPatch, fragment: Path
) -> None:
    kconf = load(srctree, monkeypatch)
    kconf.load_config(str(ROOT / "prj.conf"))
    if fragment.name != "prj.conf":
        kconf.load_config(str(fragment), replace=False)
    # Re-stating a prj.conf value in an overlay is deliberate (the release overlay pins peer
    # verification); every other warning (undefined symbol, bad value, type) is a failure.
    problems = [w for w in kconf.warnings if "set more than once" not in w]
    assert problems == [], problems
    for name, value in assignments(fragment).items():
        sym = kconf.syms[name]
        assert sym.str_value == value.strip('"'), f"{fragment.name}: {name}={sym.str_value}"


def test_app_defaults_are_the_secure_ones(srctree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kconf = load(srctree, monkeypatch)
    kconf.load_config(str(ROOT / "prj.conf"))
    syms = kconf.syms
    assert syms["MQTT_TLS_PEER_VERIFY"].str_value == "2"
    assert syms["MQTT_TLS_SEC_TAG"].str_value == "24"
    assert syms["MQTT_BROKER_PORT"].str_value == "8883"
    assert syms["PROVISION_CERTIFICATES"].str_value == "n"
    assert syms["MQTT_TLS_SESSION_CACHING"].str_value == "n"
    assert syms["PROVGUARD_APP_LOG_LEVEL"].str_value == "3"

    provision_help = " ".join(node.help or "" for node in syms["PROVISION_CERTIFICATES"].nodes)
    assert "development only" in provision_help.lower()
    assert "MODEM_KEY_MGMT" in {sym.name for sym, _ in syms["PROVISION_CERTIFICATES"].selects}

    sec_tag_range = syms["MQTT_TLS_SEC_TAG"].ranges[0]
    assert (sec_tag_range[0].str_value, sec_tag_range[1].str_value) == ("0", "2147483647")


def test_release_overlay_turns_provisioning_off(
    srctree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kconf = load(srctree, monkeypatch)
    kconf.load_config(str(ROOT / "prj.conf"))
    kconf.load_config(str(ROOT / "overlay-provision.conf"), replace=False)
    assert kconf.syms["PROVISION_CERTIFICATES"].str_value == "y"
    kconf.load_config(str(ROOT / "overlay-release.conf"), replace=False)
    assert kconf.syms["PROVISION_CERTIFICATES"].str_value == "n"
    assert kconf.syms["MQTT_TLS_PEER_VERIFY"].str_value == "2"


def readme_board_targets() -> set[str]:
    """Board targets the README tells users to build for: its table and its -b arguments."""
    text = README.read_text(encoding="utf-8")
    table = set(re.findall(r"^\|[^|\n]+\| `([a-z0-9_]+/[a-z0-9_]+/ns)` \|", text, re.MULTILINE))
    commands = set(re.findall(r"west build [^\n]*?-b ([a-z0-9_]+/[a-z0-9_]+/ns)", text))
    assert table, "README.md: no table of supported board targets found"
    assert commands <= table, f"README.md builds for boards its table omits: {commands - table}"
    return table


def test_board_fragments_exist_for_the_boards_the_readme_supports() -> None:
    """Zephyr (HWMv2) reads boards/<board>_<soc>_<variant>.conf for board target
    <board>/<soc>/<variant> (zephyr: cmake/modules/configuration_files.cmake, the normalised
    board target): one fragment per supported target, and none for a target the README does
    not support (it would never be read, or would be read for a board nobody tests)."""
    present = {p.name for p in (ROOT / "boards").glob("*.conf")}
    expected = {target.replace("/", "_") + ".conf" for target in readme_board_targets()}
    assert present == expected, (
        f"boards/: missing {expected - present}, unexpected {present - expected}"
    )
    for name in sorted(present):
        header = (ROOT / "boards" / name).read_text(encoding="utf-8").splitlines()[0]
        target = next(t for t in readme_board_targets() if t.replace("/", "_") + ".conf" == name)
        assert f"({target})" in header, f"boards/{name}: first line does not name {target}"


def test_every_config_the_sources_use_is_declared(
    srctree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kconf = load(srctree, monkeypatch)
    declared = app_symbols(kconf) | set(upstream_symbols())
    for name, source in source_symbols().items():
        assert name in declared, f"{source}: CONFIG_{name} is not declared"


def help_text(kconf: kconfiglib.Kconfig, name: str) -> str:
    return " ".join(" ".join(node.help.split()) for node in kconf.syms[name].nodes if node.help)


def test_help_says_what_off_and_traces_mean(srctree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kconf = load(srctree, monkeypatch)
    caching = help_text(kconf, "MQTT_TLS_SESSION_CACHING")
    assert "Off (default)" in caching
    assert "full TLS handshake" in caching
    assert "build fails on purpose" in caching
    provisioning = help_text(kconf, "PROVISION_CERTIFICATES")
    assert "nrf_modem_lib_trace_level_set()" in provisioning
    assert "NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE=y" in provisioning
    # The same requirement the firmware enforces at compile time.
    provision_c = (ROOT / "app" / "src" / "provision.c").read_text(encoding="utf-8")
    assert "needs CONFIG_NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE=y" in provision_c


def test_release_overlay_wins_over_any_provisioning_fragment(
    srctree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever came before (prj.conf, a development overlay, a board fragment), loading
    overlay-release.conf last leaves no credential compiled in and peer verification required."""
    for before in fragments():
        kconf = load(srctree, monkeypatch)
        kconf.load_config(str(ROOT / "prj.conf"))
        kconf.load_config(str(before), replace=False)
        kconf.load_config(str(ROOT / "overlay-release.conf"), replace=False)
        assert kconf.syms["PROVISION_CERTIFICATES"].str_value == "n", before.name
        assert kconf.syms["MQTT_TLS_PEER_VERIFY"].str_value == "2", before.name
