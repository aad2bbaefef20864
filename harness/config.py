"""Targets and scenarios: YAML files validated into typed objects.

Every error names the file and the key, so a typo in a target never surfaces later as a
mysterious build or boot failure.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.fsutil import check_name
from harness.state import ROOT  # the data root: a checkout, or share/harness when installed

TARGETS_DIR = ROOT / "configs" / "targets"
FRAGMENTS_DIR = ROOT / "configs" / "fragments"
SCENARIOS_DIR = ROOT / "scenarios"
WORKLOADS_DIR = SCENARIOS_DIR / "workloads"
PATCHES_DIR = SCENARIOS_DIR / "patches"  # patches several scenarios share (enablers)


def did_you_mean(name: str, known: list[str]) -> str:
    """ "; did you mean 'arm32-highmem'?" for a typo, "" when nothing is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def search_roots() -> list[Path]:
    """Folders laid out like this repository (configs/targets, configs/fragments,
    scenarios, kernels): those in $HARNESS_PATH first, then the harness's own. A lab keeps
    its own targets and scenarios there; the first folder that has a name wins."""
    extra = os.environ.get("HARNESS_PATH", "")
    roots = [Path(p).expanduser().resolve() for p in extra.split(os.pathsep) if p]
    return list(dict.fromkeys([*roots, ROOT]))


def search_dirs(sub: str, first: Path | None = None) -> list[Path]:
    """sub ("configs/targets", "scenarios", ...) in every search root; `first` before them."""
    dirs = [r / sub for r in search_roots()]
    return list(dict.fromkeys([first, *dirs] if first else dirs))


_CONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class Reader:
    """Typed access to one YAML mapping that reports errors as 'file: key: problem'."""

    def __init__(self, data: Any, path: Path, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: {prefix or 'top level'}: expected a mapping")
        self.data, self.path, self.prefix = data, path, prefix
        self.used: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self.path}: {self.prefix}{key}"

    def get(
        self, key: str, typ: type | tuple[type, ...], default: Any = ..., *, required: bool = False
    ) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required or default is ...:
                raise ConfigError(f"{self._where(key)}: required key is missing")
            return default
        value = self.data[key]
        if typ is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise ConfigError(
                f"{self._where(key)}: expected {names}, got {type(value).__name__} {value!r}"
            )
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.get(key, list, [])
        for i, item in enumerate(value):
            if not isinstance(item, (str, int)):
                raise ConfigError(f"{self._where(key)}[{i}]: expected a string, got {item!r}")
        return [str(v) for v in value]

    def sub(self, key: str) -> Reader:
        return Reader(self.get(key, dict, {}), self.path, f"{self.prefix}{key}.")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self._where(unknown[0])}: unknown key")


def load_yaml(path: Path) -> Any:
    """Read YAML safely; a syntax error names the file and the line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', e)}") from e


def read_fragment(path: Path) -> dict[str, str]:
    """Parse a Kconfig fragment into {CONFIG_X: value}; 'is not set' becomes 'n'."""
    options: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read fragment: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (offset {e.start})") from e
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if m := _NOT_SET.match(line):
            options[m.group(1)] = "n"
        elif line.startswith("#"):
            continue
        elif m := _CONFIG_LINE.match(line):
            options[m.group(1)] = m.group(2)
        else:
            raise ConfigError(f"{path}:{n}: not a Kconfig line: {raw!r}")
    return options


@dataclass(frozen=True)
class QemuProfile:
    """How a target's machine is started; one object per target, like kunit's QemuArchParams."""

    binary: str
    machine: str
    cpu: str
    smp: int
    memory_mb: int
    console: str
    accel: str = "auto"
    extra_args: tuple[str, ...] = ()
    kvm_cpu: str = ""  # the -cpu under KVM (e.g. host); the TCG model otherwise
    tcg_options: str = ""  # e.g. thread=multi: appended as -accel tcg,<options>

    def cpu_for(self, accel: str) -> str:
        return self.kvm_cpu if accel == "kvm" and self.kvm_cpu else self.cpu


@dataclass(frozen=True)
class Hypervisor:
    """A hypervisor QEMU boots first, with the target's kernel as its dom0 (Xen PV).

    The image comes from a Debian package, so nothing outside the Debian archive is
    needed; `cmdline` is the hypervisor's own command line, the kernel keeps `cmdline`.
    """

    kind: str
    package: str
    image: str  # path inside the package, e.g. boot/xen-4.17-amd64.gz (gunzipped if .gz)
    cmdline: str
    suites: tuple[str, ...] = ("bookworm",)


@dataclass(frozen=True)
class LavaBoard:
    """How a LAVA lab runs this target on a real board instead of QEMU (see docs/lava.md)."""

    device_type: str
    dtb: str = ""  # relative to the kernel build dir, e.g. arch/arm/boot/dts/...
    boot_method: str = "u-boot"
    boot_commands: str = "ramdisk"
    kernel_type: str = "zimage"
    console: str = ""  # the board's console= (the qemu.console otherwise)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshBoard:
    """A board on the desk, reached over SSH: the kernel is installed with kexec and
    boots the run's initramfs; its serial console is read by a command here (see
    docs/remote.md)."""

    host: str  # [user@]host[:port]
    console: tuple[str, ...]  # argv run here; its output is the board's serial console
    known_hosts: str = ""
    identity: str = ""
    power_on: tuple[str, ...] = ()  # argv run here once the console is attached (a PDU)
    power_off: tuple[str, ...] = ()  # argv run here when the run ends
    up_timeout: int = 300  # seconds for SSH to answer after power-on
    workdir: str = "/tmp"  # where on the board the kernel and the initramfs go


@dataclass(frozen=True)
class Target:
    """One kernel + machine: everything needed to build and boot it."""

    name: str
    path: Path
    description: str
    arch: str
    cross_compile: str
    debian_arch: str
    defconfig: str
    fragments: tuple[Path, ...]
    config: dict[str, str]
    image: str
    make_targets: tuple[str, ...]
    qemu: QemuProfile
    cmdline: str
    boot_timeout: int
    silence_timeout: int
    # after a fatal report (an oops, a BUG), this many quiet seconds end the boot: the
    # guest is often wedged by then (a dead task held mmap_lock), and the report is out
    crash_quiet: int = 10
    lava: LavaBoard | None = None
    hypervisor: Hypervisor | None = None
    board: SshBoard | None = None
    shares_build_with: str = ""  # another target with the same kernel config: one build

    @property
    def build_name(self) -> str:
        """The build directory's name: targets that boot one kernel two ways share it."""
        return self.shares_build_with or self.name

    def required_options(self) -> dict[str, str]:
        """Every option the fragments and inline config ask for, as the final .config must have."""
        wanted: dict[str, str] = {}
        for frag in self.fragments:
            wanted.update(read_fragment(frag))
        wanted.update(self.config)
        return wanted


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _target_dirs(targets_dir: Path | None) -> list[Path]:
    return [targets_dir] if targets_dir is not None else search_dirs("configs/targets")


def _raw_target(
    name: str, targets_dir: Path | None, seen: tuple[str, ...] = ()
) -> tuple[dict[str, Any], Path]:
    file = f"{check_name('target', name)}.yaml"
    found = [d / file for d in _target_dirs(targets_dir) if (d / file).exists()]
    path = found[0] if found else _target_dirs(targets_dir)[0] / file
    if not found:
        known = ", ".join(list_targets(targets_dir))
        where = f" (inherited by {seen[-1]})" if seen else ""
        hint = did_you_mean(name, list_targets(targets_dir))
        raise ConfigError(f"unknown target {name!r}{where}{hint}; known targets: {known}")
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level: expected a mapping")
    parent = data.pop("inherits", None)
    if parent is None:
        return data, path
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: inherits: expected a target name")
    if parent in seen or parent == name:
        raise ConfigError(f"{path}: inherits: cycle through {parent!r}")
    base, _ = _raw_target(parent, targets_dir, (*seen, name))
    # fragments listed by a child replace the parent's unless it says add_fragments
    return _merge(base, data), path


def load_target(name: str, targets_dir: Path | None = None) -> Target:
    """Load configs/targets/<name>.yaml (following `inherits`) into a Target."""
    data, path = _raw_target(name, targets_dir)
    data.pop("name", None)
    r = Reader(data, path)
    frag_names = r.str_list("fragments") + r.str_list("add_fragments")
    fragments = []
    frag_dirs = search_dirs("configs/fragments", path.parent.parent / "fragments")
    for frag in frag_names:
        if Path(frag).is_absolute():
            cands = [Path(frag)]
        elif ".." in Path(frag).parts:
            raise ConfigError(f"{path}: fragments: {frag}: a file name, not a path")
        else:
            cands = [d / frag for d in frag_dirs]
        fpath = next((c for c in cands if c.exists()), None)
        if fpath is None:
            where = " or ".join(str(d) for d in frag_dirs)
            raise ConfigError(f"{path}: fragments: {frag}: no such file in {where}")
        fragments.append(fpath)
    config = {}
    for key, value in r.get("config", dict, {}).items():
        if not re.fullmatch(r"CONFIG_[A-Za-z0-9_]+", str(key)):
            raise ConfigError(f"{path}: config.{key}: option names look like CONFIG_FOO")
        config[str(key)] = _kconfig_value(value)
    q = r.sub("qemu")
    qemu = QemuProfile(
        binary=q.get("binary", str, required=True),
        machine=q.get("machine", str, required=True),
        cpu=q.get("cpu", str, required=True),
        smp=q.get("smp", int, 1),
        memory_mb=q.get("memory_mb", int, 1024),
        console=q.get("console", str, required=True),
        accel=q.get("accel", str, "auto"),
        extra_args=tuple(q.str_list("extra_args")),
        kvm_cpu=q.get("kvm_cpu", str, ""),
        tcg_options=q.get("tcg_options", str, ""),
    )
    q.finish()
    target = Target(
        name=name,
        path=path,
        description=r.get("description", str, ""),
        arch=r.get("arch", str, required=True),
        cross_compile=r.get("cross_compile", str, ""),
        debian_arch=check_name(f"{path}: debian_arch", r.get("debian_arch", str, required=True)),
        defconfig=r.get("defconfig", str, required=True),
        fragments=tuple(fragments),
        config=config,
        image=r.get("image", str, required=True),
        make_targets=tuple(r.str_list("make_targets")),
        qemu=qemu,
        cmdline=r.get("cmdline", str, ""),
        boot_timeout=_positive(r, "boot_timeout", 600),
        silence_timeout=_positive(r, "silence_timeout", 120),
        crash_quiet=_positive(r, "crash_quiet", 10),
        lava=_lava_board(r),
        hypervisor=_hypervisor(r),
        board=_ssh_board(r),
        shares_build_with=r.get("shares_build_with", str, ""),
    )
    r.finish()
    if target.shares_build_with:
        _check_same_kernel(target, targets_dir)
    return target


def _positive(r: Reader, key: str, default: int) -> int:
    value: int = r.get(key, int, default)
    if value <= 0:
        raise ConfigError(f"{r._where(key)}: must be a number of seconds greater than 0")
    return value


def _non_negative(r: Reader, key: str) -> int:
    value: int = r.get(key, int, 0)
    if value < 0:
        raise ConfigError(f"{r._where(key)}: must be 0 (no limit) or a number of seconds")
    return value


_KERNEL_FIELDS = ("arch", "cross_compile", "defconfig", "fragments", "config", "make_targets")


def _check_same_kernel(target: Target, targets_dir: Path | None) -> None:
    """A shared build dir with a different config would rebuild it back and forth."""
    other = load_target(target.shares_build_with, targets_dir)
    if other.shares_build_with:
        raise ConfigError(
            f"{target.path}: shares_build_with: {other.name} itself shares "
            f"{other.shares_build_with}; name that one"
        )
    for field in _KERNEL_FIELDS:
        if getattr(target, field) != getattr(other, field):
            raise ConfigError(
                f"{target.path}: shares_build_with: {other.name} builds a different kernel "
                f"({field} differs); drop shares_build_with or make them equal"
            )


_HYPERVISOR_KINDS = ("xen",)


def _hypervisor(r: Reader) -> Hypervisor | None:
    if r.data.get("hypervisor") is None:
        r.used.add("hypervisor")
        return None
    h = r.sub("hypervisor")
    kind = h.get("kind", str, required=True)
    if kind not in _HYPERVISOR_KINDS:
        raise ConfigError(
            f"{r.path}: hypervisor.kind: {kind!r} is not one of {', '.join(_HYPERVISOR_KINDS)}"
        )
    image = h.get("image", str, required=True)
    if image.startswith("/") or ".." in Path(image).parts:
        raise ConfigError(f"{r.path}: hypervisor.image: a path inside the package, got {image!r}")
    hv = Hypervisor(
        kind=kind,
        package=h.get("package", str, required=True),
        image=image,
        cmdline=h.get("cmdline", str, ""),
        suites=tuple(h.str_list("suites")) or ("bookworm",),
    )
    h.finish()
    return hv


def _lava_board(r: Reader) -> LavaBoard | None:
    if r.data.get("lava") is None:
        r.used.add("lava")
        return None
    b = r.sub("lava")
    board = LavaBoard(
        device_type=b.get("device_type", str, required=True),
        dtb=b.get("dtb", str, ""),
        boot_method=b.get("boot_method", str, "u-boot"),
        boot_commands=b.get("boot_commands", str, "ramdisk"),
        kernel_type=b.get("kernel_type", str, "zimage"),
        console=b.get("console", str, ""),
        tags=tuple(b.str_list("tags")),
    )
    b.finish()
    return board


def _command(r: Reader, key: str) -> tuple[str, ...]:
    """An argv (run without a shell); YAML's on/off/yes/no are booleans: say so."""
    for i, item in enumerate(r.get(key, list, [])):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ConfigError(
                f"{r._where(key)}[{i}]: expected a string, got {item!r}"
                + (" (YAML reads on/off/yes/no as true/false: quote it)" if isinstance(item, bool)
                   else "")
            )  # fmt: skip
    return tuple(r.str_list(key))


def _ssh_board(r: Reader) -> SshBoard | None:
    if r.data.get("board") is None:
        r.used.add("board")
        return None
    b = r.sub("board")
    console = _command(b, "console")
    if not console:
        raise ConfigError(f"{b._where('console')}: required: the command that reads the console")
    board = SshBoard(
        host=b.get("host", str, required=True),
        console=console,
        known_hosts=b.get("known_hosts", str, ""),
        identity=b.get("identity", str, ""),
        power_on=_command(b, "power_on"),
        power_off=_command(b, "power_off"),
        up_timeout=_positive(b, "up_timeout", 300),
        workdir=b.get("workdir", str, "/tmp"),
    )
    install = b.get("install", str, "kexec")
    if install != "kexec":
        raise ConfigError(f"{b._where('install')}: only kexec is supported, got {install!r}")
    b.finish()
    return board


def _kconfig_value(value: Any) -> str:
    if value is True:
        return "y"
    if value is False:
        return "n"
    if isinstance(value, int):
        return str(value)
    s = str(value)
    if s in ("y", "n", "m") or re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", s) or s.startswith('"'):
        return s
    return f'"{s}"'


def list_targets(targets_dir: Path | None = None) -> list[str]:
    return sorted({p.stem for d in _target_dirs(targets_dir) for p in d.glob("*.yaml")})


@dataclass(frozen=True)
class Step:
    """One thing the guest init does: a workload binary or a shell line."""

    name: str
    run: str  # shell command line executed by busybox sh in the guest
    may_fail: bool = False
    timeout: int = 0  # seconds, 0 = no per-step limit


@dataclass(frozen=True)
class Expectation:
    """What a canary must produce for the harness to count it as caught."""

    title: str | None = None
    title_regex: str | None = None
    frames_include: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.title:
            return repr(self.title)
        return f"a title matching /{self.title_regex}/"


@dataclass(frozen=True)
class Variant:
    """Patches and expectation for one kernel version range."""

    versions: str
    patches: tuple[Path, ...]
    expect: Expectation | None
    note: str = ""
    not_applicable: str = ""  # why the scenario cannot mean anything on these kernels
    # console regexes proving a feature the variant asked for is in use (else infra error)
    requires_console: tuple[str, ...] = ()
    enablers: tuple[str, ...] = ()  # patches that enable a feature, kept by a clean twin

    def matches(self, version: tuple[int, int, int]) -> bool:
        return version_in_range(version, self.versions)


@dataclass(frozen=True)
class KnownFailure:
    """A kernel test that fails for a reason that is not the kernel under test (the
    emulator, the CI-sized config, a test bug), reported as xfail with that reason."""

    test: str  # a glob over test paths: "kselftest.mm.hugetlb-*"
    reason: str
    arches: tuple[str, ...] = ()
    kernel: str = ""
    accel: tuple[str, ...] = ()  # "tcg": a test too slow for emulation
    # options the test needs: on a kernel without one of them the failure is a skip
    # ("the kernel lacks CONFIG_UNIX"); with all of them it is a failure like any other
    needs: tuple[str, ...] = ()
    memory_below: int = 0  # MiB: a test that needs a bigger guest than the target's

    def matches(
        self, path: str, arch: str, version: tuple[int, int, int], accel: str, memory_mb: int = 0
    ) -> bool:
        import fnmatch

        return (
            fnmatch.fnmatchcase(path, self.test)
            and (not self.arches or arch in self.arches)
            and (not self.kernel or version_in_range(version, self.kernel))
            and (not self.accel or accel in self.accel)
            and (not self.memory_below or 0 < memory_mb < self.memory_below)
        )


@dataclass(frozen=True)
class Scenario:
    """What is done to a target: patches, workloads, cmdline/config, expectation."""

    name: str
    path: Path
    description: str
    canary: bool
    steps: tuple[Step, ...]
    workloads: tuple[Path, ...]
    patches: tuple[Path, ...]
    variants: tuple[Variant, ...]
    cmdline: str
    requires_config: tuple[str, ...]
    not_applicable_hint: str
    arches: tuple[str, ...] = ()  # kernel ARCH values it is meant for; empty = all
    requires_hypervisor: str = ""
    kselftests: tuple[str, ...] = ()  # the tree's selftest suites its steps run
    known_failures: tuple[KnownFailure, ...] = ()
    inherits: str = ""
    base: Scenario | None = None  # the scenario it inherits

    def known_failure(
        self,
        path: str,
        arch: str,
        version: tuple[int, int, int],
        accel: str = "",
        memory_mb: int = 0,
    ) -> KnownFailure | None:
        """The known_failures entry for the test at path here, if any."""
        return next(
            (k for k in self.known_failures if k.matches(path, arch, version, accel, memory_mb)),
            None,
        )

    def variant_for(self, version: tuple[int, int, int]) -> Variant | None:
        for v in self.variants:
            if v.matches(version):
                return v
        return None


def version_in_range(version: tuple[int, int, int], spec: str) -> bool:
    """Check a version against a spec such as '>=6.12,<6.13' (comma means and)."""
    for part in spec.split(","):
        part = part.strip()
        if not part or part == "*":
            continue
        m = re.fullmatch(r"(>=|<=|==|>|<)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", part)
        if not m:
            raise ConfigError(f"bad kernel version range {spec!r}: cannot read {part!r}")
        op = m.group(1) or "=="
        given = [int(g) for g in m.groups()[1:] if g is not None]
        have = list(version[: len(given)])
        ok = {
            ">=": have >= given,
            "<=": have <= given,
            "==": have == given,
            ">": have > given,
            "<": have < given,
        }[op]
        if not ok:
            return False
    return True


def _shared_dirs(scenario_dir: Path, sub: str) -> list[Path]:
    """A scenario's own sub folder, then the shared one beside it, then every search root's."""
    own = [scenario_dir / sub, scenario_dir.parent / sub]
    return list(dict.fromkeys([*own, *search_dirs(f"scenarios/{sub}")]))


def _find_workload(name: str, scenario_dir: Path, where: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise ConfigError(f"{where}: workload {name!r}: not a valid workload name")
    dirs = _shared_dirs(scenario_dir, "workloads")
    for d in dirs:
        if (d / f"{name}.c").exists():
            return d / f"{name}.c"
    raise ConfigError(
        f"{where}: workload {name!r}: no {name}.c in {' or '.join(str(d) for d in dirs)}"
    )


def _patch_list(
    r: Reader, key: str, scenario_dir: Path, base: Scenario | None = None
) -> tuple[Path, ...]:
    out = []
    # a scenario that inherits another finds that one's patches too (after its own)
    dirs = list(dict.fromkeys([*_shared_dirs(scenario_dir, "patches"),
                               *_base_patch_dirs(base)]))  # fmt: skip
    for p in r.str_list(key):
        if "/" in p or p.startswith("."):
            raise ConfigError(f"{r._where(key)}: {p}: a file name in patches/, not a path")
        found = [d / p for d in dirs if (d / p).exists()]
        if not found:
            where = " or ".join(str(d) for d in dirs)
            raise ConfigError(f"{r._where(key)}: {p}: no such file in {where}")
        out.append(found[0])
    return tuple(out)


def _base_patch_dirs(base: Scenario | None) -> list[Path]:
    out: list[Path] = []
    while base is not None:
        out.append(base.path.parent / "patches")
        base = base.base
    return out


def _scenario_dirs(scenarios_dir: Path | None) -> list[Path]:
    return [scenarios_dir] if scenarios_dir is not None else search_dirs("scenarios")


def _inherited(name: str, base: str, path: Path, scenarios_dir: Path | None,
               seen: tuple[str, ...]) -> Scenario | None:  # fmt: skip
    if not base:
        return None
    if base in (*seen, name):
        raise ConfigError(
            f"{path}: inherits: {base!r} makes a loop ({' -> '.join([*seen, name, base])})"
        )
    try:
        return load_scenario(base, scenarios_dir, _seen=(*seen, name))
    except ConfigError as e:
        raise ConfigError(f"{path}: inherits: {e}") from None


def load_scenario(
    name: str, scenarios_dir: Path | None = None, _seen: tuple[str, ...] = ()
) -> Scenario:
    """Load scenarios/<name>/scenario.yaml into a Scenario (over the scenario it
    inherits, if it names one: its patches and variants stay relative to their own
    folder)."""
    check_name("scenario", name)
    roots = _scenario_dirs(scenarios_dir)
    sdir = next((d / name for d in roots if (d / name / "scenario.yaml").exists()), roots[0] / name)
    path = sdir / "scenario.yaml"
    if not path.exists():
        known = ", ".join(list_scenarios(scenarios_dir))
        hint = did_you_mean(name, list_scenarios(scenarios_dir))
        raise ConfigError(f"unknown scenario {name!r}{hint}; known scenarios: {known}")
    r = Reader(load_yaml(path), path)
    base_name = r.get("inherits", str, "")
    base = _inherited(name, base_name, path, scenarios_dir, _seen)
    steps, workloads, suites = [], [], []
    for i, raw in enumerate(r.get("steps", list, [])):
        s = Reader(raw, path, f"steps[{i}].")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: steps[{i}]: a mapping (workload:, sh: or kselftest:)")
        if "kselftest" in raw:
            from harness import kselftest

            suite = kselftest.check_suite(s.get("kselftest", str), f"{path}: steps[{i}]")
            cats, tests = s.str_list("categories"), s.str_list("tests")
            if cats and tests:
                raise ConfigError(f"{path}: steps[{i}]: categories or tests, not both")
            per_test = s.get("test_timeout", int, 300)
            if per_test <= 0:
                raise ConfigError(f"{path}: steps[{i}].test_timeout: must be positive")
            run = kselftest.guest_command(suite, cats, tests, per_test)
            label = s.get("name", str, f"kselftest-{suite}")
            suites.append(suite)
        elif "workload" in raw:
            wname = s.get("workload", str)
            workloads.append(_find_workload(wname, sdir, f"{path}: steps[{i}]"))
            args = s.str_list("args")
            run = " ".join([f"/usr/bin/{wname}", *(_sh_quote(a) for a in args)])
            label = s.get("name", str, wname)
        else:
            run = s.get("sh", str, required=True)
            label = s.get("name", str, run.split()[0] if run.split() else f"step{i}")
        steps.append(
            Step(
                name=label,
                run=run,
                may_fail=s.get("may_fail", bool, False),
                timeout=_non_negative(s, "timeout"),
            )
        )
        s.finish()
    variants = []
    for i, raw in enumerate(r.get("variants", list, [])):
        v = Reader(raw, path, f"variants[{i}].")
        variants.append(
            Variant(
                versions=v.get("kernel", str, required=True),
                patches=_patch_list(v, "patches", sdir, base),
                expect=_expectation(v, "expect"),
                note=v.get("note", str, ""),
                not_applicable=v.get("not_applicable", str, ""),
                requires_console=_regex_list(v, "requires_console"),
                enablers=tuple(v.str_list("enablers")),
            )
        )
        version_in_range((0, 0, 0), variants[-1].versions)  # validate syntax now
        v.finish()
    known_failures = []
    for i, raw in enumerate(r.get("known_failures", list, [])):
        k = Reader(raw, path, f"known_failures[{i}].")
        kf = KnownFailure(
            test=k.get("test", str, required=True),
            reason=k.get("reason", str, required=True),
            arches=tuple(k.str_list("arches")),
            kernel=k.get("kernel", str, ""),
            accel=tuple(k.str_list("accel")),
            needs=tuple(k.str_list("needs")),
            memory_below=k.get("memory_below", int, 0),
        )
        if kf.memory_below < 0:
            raise ConfigError(f"{path}: known_failures[{i}].memory_below: MiB, not negative")
        bad = [o for o in kf.needs if not re.fullmatch(r"CONFIG_[A-Z0-9_]+", o)]
        if bad:
            raise ConfigError(f"{path}: known_failures[{i}].needs: {bad[0]!r} is not CONFIG_X")
        if kf.kernel:
            version_in_range((0, 0, 0), kf.kernel)
        known_failures.append(kf)
        k.finish()
    if base is not None:  # what the scenario does not say, it inherits
        given = set(r.data)
        if "steps" not in given:
            steps, workloads, suites = list(base.steps), list(base.workloads), list(base.kselftests)
        if "variants" not in given:
            variants = list(base.variants)
        if "known_failures" not in given:
            known_failures = list(base.known_failures)
    canary = r.get("canary", bool, base.canary if base else False)
    if canary and not variants:
        raise ConfigError(f"{path}: variants: a canary needs at least one variant with expect")
    for i, var in enumerate(variants):
        unknown = set(var.enablers) - {p.name for p in var.patches}
        if unknown:
            raise ConfigError(
                f"{path}: variants[{i}].enablers: {sorted(unknown)[0]} is not in its patches"
            )
        if var.not_applicable and (var.patches or var.expect):
            raise ConfigError(
                f"{path}: variants[{i}].not_applicable: such a variant has no patches or expect"
            )
        if canary and var.expect is None and not var.not_applicable:
            raise ConfigError(f"{path}: variants[{i}].expect: a canary variant needs expect")

    def inherited(key: str, value: Any) -> Any:
        return getattr(base, key) if base is not None and key not in r.data else value

    scenario = Scenario(
        name=name,
        path=path,
        description=r.get("description", str, ""),
        canary=canary,
        steps=tuple(steps),
        workloads=tuple(dict.fromkeys(workloads)),
        patches=inherited("patches", _patch_list(r, "patches", sdir, base)),
        variants=tuple(variants),
        cmdline=inherited("cmdline", r.get("cmdline", str, "")),
        requires_config=inherited("requires_config", tuple(r.str_list("requires_config"))),
        not_applicable_hint=inherited(
            "not_applicable_hint", r.get("not_applicable_hint", str, "")
        ),  # fmt: skip
        arches=inherited("arches", tuple(r.str_list("arches"))),
        requires_hypervisor=inherited(
            "requires_hypervisor", r.get("requires_hypervisor", str, "")
        ),  # fmt: skip
        kselftests=tuple(dict.fromkeys(suites)),
        known_failures=tuple(known_failures),
        inherits=base_name,
        base=base,
    )
    r.finish()
    return scenario


def _expectation(r: Reader, key: str) -> Expectation | None:
    if key not in r.data:
        r.used.add(key)
        return None
    e = r.sub(key)
    exp = Expectation(
        title=e.get("title", str, None),
        title_regex=e.get("title_regex", str, None),
        frames_include=tuple(e.str_list("frames_include")),
    )
    e.finish()
    if not exp.title and not exp.title_regex:
        raise ConfigError(f"{r.path}: {r.prefix}{key}: needs title or title_regex")
    if exp.title_regex:
        try:
            re.compile(exp.title_regex)
        except re.error as err:
            raise ConfigError(f"{r.path}: {r.prefix}{key}.title_regex: {err}") from err
    return exp


def _regex_list(r: Reader, key: str) -> tuple[str, ...]:
    out = r.str_list(key)
    for i, rx in enumerate(out):
        try:
            re.compile(rx)
        except re.error as err:
            raise ConfigError(f"{r._where(key)}[{i}]: {err}") from err
    return tuple(out)


def _sh_quote(arg: str) -> str:
    return shlex.quote(arg)


def list_scenarios(scenarios_dir: Path | None = None) -> list[str]:
    return sorted(
        {p.parent.name for d in _scenario_dirs(scenarios_dir) for p in d.glob("*/scenario.yaml")}
    )


_Reader = Reader  # the old name, for code outside the harness that used it
