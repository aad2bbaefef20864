"""Cells on a LAVA lab: which targets go there, where their artifacts are fetched, and a
check that the lab answers before the night starts.

The lab runs what a LAVA job can describe (the QEMU targets and the boards of the targets'
`lava:` mappings); the rest (the Xen dom0) runs here or on its SSH host, in the same night.
The harness does not schedule: it builds here, submits a job per cell, and the lab's
scheduler spreads them over its workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import load_target
from harness.errors import ConfigError, HarnessError
from harness.lava import job as jobmod
from harness.lava.store import ArtifactStore, serving
from harness.nightly.settings import LavaLab


@dataclass
class LabPlan:
    lab: LavaLab
    token: str
    targets: list[str]  # their cells run as jobs in the lab
    here: dict[str, str] = field(default_factory=dict)  # target -> why not in the lab
    workers: list[str] = field(default_factory=list)  # online when the night started

    def spec(self, store: ArtifactStore | None) -> dict[str, Any]:
        """What a cell's worker process needs (the token goes by environment, not here)."""
        return {
            "server": self.lab.server,
            "poll": self.lab.poll,
            "store": store.to_spec() if store else None,
        }


def _lab_can_run(target: str) -> str:
    """Why a LAVA job cannot describe the target ("" when it can)."""
    try:
        jobmod.check_supported(load_target(target))
    except ConfigError as e:
        return str(e)
    return ""


def plan(lab: LavaLab, targets: list[str], where: str) -> LabPlan:
    """Place every target: in the lab, or here with the reason."""
    for t in lab.targets:
        why = _lab_can_run(t)
        if why:
            raise ConfigError(f"{where}: lava.targets: {t}: {why}")
    placed, here = [], {}
    for t in targets:
        if lab.targets and t not in lab.targets:
            here[t] = "not in lava.targets"
            continue
        why = _lab_can_run(t)
        if why:
            here[t] = why.split(": ", 2)[-1]
        else:
            placed.append(t)
    return LabPlan(lab, lab.token() if placed else "", placed, here)


def check(p: LabPlan) -> None:
    """The lab answers and takes the token; note which workers are online."""
    from harness.lava.rest import LavaServer

    try:
        workers = LavaServer(p.lab.server, p.token).workers()
    except HarnessError as e:
        raise type(e)(f"--lava: {e}") from None
    p.workers = sorted(str(w.get("hostname")) for w in workers if w.get("state") == "Online")


@contextlib.contextmanager
def artifact_store(lab: LavaLab, folder: Path) -> Iterator[ArtifactStore | None]:
    """The night's store: served from the nightly folder, an upload command, or file://."""
    if lab.serve:
        with serving(folder, lab.serve) as port:
            host = lab.serve[0]
            url = lab.artifacts_url or f"http://{host}:{port}"
            yield ArtifactStore(url, root=folder)
        return
    if lab.upload:
        yield ArtifactStore(lab.artifacts_url, upload=lab.upload)
        return
    yield None
