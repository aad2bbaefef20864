"""Check jobs and devices with LAVA's own schema before anything runs or is submitted.

lava-run does not check a job against the schema (lava-server does, at submission), so a
job that runs here could still be refused by a lab. lava_common comes from Debian's
lava-common package and lives in the system Python, not in the venv: the check runs there.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from harness.errors import ConfigError, InfraError

_CHECK = r"""
import json, sys
from voluptuous import Invalid
from lava_common.schemas import validate
from lava_common.schemas.device import validate as validate_device
req = json.load(sys.stdin)
try:
    if req["kind"] == "device":
        validate_device(req["data"])
    else:
        validate(req["data"], strict=True)
except Invalid as e:
    print(json.dumps({"path": [str(p) for p in e.path], "msg": e.msg}))
    sys.exit(1)
"""


def system_python() -> str:
    return os.environ.get("HARNESS_LAVA_PYTHON", "/usr/bin/python3")


def _check(kind: str, data: dict[str, Any], name: str) -> None:
    py = system_python()
    try:
        proc = subprocess.run(
            [py, "-c", _CHECK],
            input=json.dumps({"kind": kind, "data": data}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError as e:
        raise InfraError(f"{py} not found: LAVA's schema needs the system python3") from e
    if proc.returncode == 1 and proc.stdout.strip():
        err = json.loads(proc.stdout)
        where = ".".join(err["path"]) or "top level"
        raise ConfigError(f"{name}: LAVA schema: {where}: {err['msg']}")
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        if "No module named 'lava_common'" in proc.stderr or "voluptuous" in tail[0]:
            raise InfraError(
                f"{py} has no lava_common: apt-get install lava-dispatcher (./bootstrap.sh)"
            )
        raise InfraError(f"LAVA schema check failed to run: {tail[0]}")


def validate_job(data: dict[str, Any], name: str = "job.yaml") -> None:
    """Strict: unknown keys and a global timeout larger than the job's are errors."""
    _check("job", data, name)


def validate_device(data: dict[str, Any], name: str = "device.yaml") -> None:
    _check("device", data, name)
