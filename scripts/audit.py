"""Offline dependency audit: the locked versions against a snapshot of the PyPA Advisory Database.

    python scripts/audit.py [--db ../shared/datasets/pypa-advisory-db]
                            [--constraints constraints.txt] [--explained docs/security.md]

Why offline: pip-audit asks the PyPI JSON API or osv.dev, and neither is reachable
from the machines this project is built on. The PyPA Advisory Database (CC BY 4.0)
is the data pip-audit's PyPI service serves, one OSV file per advisory
(``vulns/<package>/<ID>.yaml``); a dated snapshot of it sits beside the repository.
``make audit`` runs this; pip-audit stays available as ``make audit-online``.

How a locked version is matched (the OSV schema, ossf.github.io/osv-schema): an
advisory affects ``name==version`` when one of its ``affected`` entries names the
PyPI package and either lists the version in ``versions`` or has an ``ECOSYSTEM``
range whose events put it inside: at or after an ``introduced`` and before the next
``fixed`` (or at most the next ``last_affected``). Versions are compared with
``packaging`` (PEP 440). Withdrawn advisories are skipped; GIT ranges (commit
hashes) are not versions and are ignored.

Each finding must be explained in the "Dependency audit" section of
docs/security.md, by its ID or one of its aliases (CVE, GHSA): fixed by an upgrade
or why it stays. The exit status is 1 when a finding is not, so CI fails on a new
one. The web chat's npm packages are not in this database (it covers PyPI only);
the report says so.

Raises (as exit status 2, with the fix): a missing snapshot or constraints file.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT.parent / "shared" / "datasets" / "pypa-advisory-db"
EXPLAINED_SECTION = "## Dependency audit"  # docs/security.md: findings explained below it
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class Finding:
    """One advisory that affects one locked package version."""

    package: str  # canonical name
    version: str
    id: str  # the advisory's ID (PYSEC-..., GHSA-...)
    aliases: Tuple[str, ...]
    fixed: Tuple[str, ...]  # versions that fix it, from the ECOSYSTEM ranges
    summary: str  # the first sentence of the advisory's summary or details

    def names(self) -> Tuple[str, ...]:
        return (self.id, *self.aliases)


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def read_pins(path: Path) -> Dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line in ``path``."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def _version(text: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def in_range(version: str, events: Sequence[dict]) -> bool:
    """Whether ``version`` lies inside an OSV ``ECOSYSTEM`` range given by ``events``.

    ``introduced: "0"`` means from the first release. An event whose version is not
    PEP 440 is ignored.
    """
    v = _version(version)
    if v is None:
        return False
    starts, limits = [], []
    for event in events:
        for kind, value in event.items():
            if kind == "introduced":
                start = _version("0") if str(value) == "0" else _version(value)
                if start is not None:
                    starts.append(start)
            elif kind in ("fixed", "last_affected"):
                limit = _version(value)
                if limit is not None:
                    limits.append((limit, kind))
    for start in sorted(starts):
        if v < start:
            continue
        following = sorted(limit for limit in limits if limit[0] >= start)
        if not following:
            return True
        limit, kind = following[0]
        if v < limit or (kind == "last_affected" and v == limit):
            return True
    return False


def affects(advisory: dict, name: str, version: str) -> Optional[Tuple[str, ...]]:
    """The fixed versions when ``advisory`` affects ``name==version``, else None."""
    if advisory.get("withdrawn"):
        return None
    for entry in advisory.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) != name:
            continue
        ranges = [r for r in entry.get("ranges") or [] if r.get("type") == "ECOSYSTEM"]
        listed = version in {str(v) for v in entry.get("versions") or []}
        if listed or any(in_range(version, r.get("events") or []) for r in ranges):
            return tuple(str(e["fixed"]) for r in ranges for e in r.get("events") or []
                         if "fixed" in e)
    return None


def advisories(db: Path) -> Dict[str, List[Path]]:
    """``{canonical package name: [advisory files]}`` of the snapshot."""
    vulns = db / "vulns"
    return {canonical(d.name): sorted(d.glob("*.yaml")) for d in vulns.iterdir() if d.is_dir()}


def audit(pins: Dict[str, str], db: Path) -> List[Finding]:
    """Every advisory in ``db`` that affects a pinned version, sorted by package and ID."""
    import yaml

    index, findings = advisories(db), []
    for name, version in sorted(pins.items()):
        for path in index.get(name, []):
            advisory = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            fixed = affects(advisory, name, version)
            if fixed is None:
                continue
            text = " ".join(str(advisory.get("summary") or advisory.get("details") or "").split())
            findings.append(Finding(name, version, str(advisory.get("id", path.stem)),
                                    tuple(str(a) for a in advisory.get("aliases") or []),
                                    fixed, text.split(". ")[0][:160]))
    return findings


def explained_names(security_doc: Path) -> set:
    """Advisory IDs and aliases named in the "Dependency audit" section of ``security_doc``."""
    text = security_doc.read_text(encoding="utf-8")
    section = text.split(EXPLAINED_SECTION, 1)[1] if EXPLAINED_SECTION in text else ""
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return set(re.findall(r"\b(?:PYSEC-\d{4}-\d+|GHSA(?:-[0-9a-z]{4}){3}|CVE-\d{4}-\d+)\b",
                          section))


def npm_packages(lock: Path) -> int:
    """How many packages ``lock`` (npm's package-lock.json) installs."""
    data = json.loads(lock.read_text(encoding="utf-8"))
    return sum(1 for key in data.get("packages", {}) if key)


def snapshot_date(db: Path) -> str:
    """The snapshot's date as SNAPSHOT.md states it (``unknown`` without one)."""
    notes = db / "SNAPSHOT.md"
    match = re.search(r"\d{4}-\d{2}-\d{2}", notes.read_text(encoding="utf-8")) \
        if notes.is_file() else None
    return match[0] if match else "unknown"


def report(findings: Iterable[Finding], explained: set) -> List[str]:
    lines = []
    for f in findings:
        mark = "explained" if explained & set(f.names()) else "NOT EXPLAINED"
        fixed = ", ".join(f.fixed) or "no fixed version"
        lines.append(f"{f.package} {f.version}  {f.id} ({', '.join(f.aliases) or 'no alias'}); "
                     f"fixed in {fixed}  [{mark}]\n    {f.summary}")
    return lines


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help="the advisory snapshot (holds vulns/<package>/<ID>.yaml)")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--explained", type=Path, default=ROOT / "docs" / "security.md")
    parser.add_argument("--npm-lock", type=Path, default=ROOT / "webchat" / "package-lock.json")
    args = parser.parse_args(argv)
    if not (args.db / "vulns").is_dir():
        print(f"audit: no advisory snapshot at {args.db} (expected {args.db}/vulns/). "
              f"Pass --db <folder of the PyPA Advisory Database>.", file=sys.stderr)
        return 2
    if not args.constraints.is_file():
        print(f"audit: {args.constraints} is missing; it is the locked dependency list.",
              file=sys.stderr)
        return 2
    pins = read_pins(args.constraints)
    findings = audit(pins, args.db)
    explained = explained_names(args.explained) if args.explained.is_file() else set()
    print(f"Offline audit of {len(pins)} locked PyPI packages ({args.constraints.name}) against "
          f"the PyPA Advisory Database snapshot of {snapshot_date(args.db)}: "
          f"{len(findings)} finding(s) in {len({f.package for f in findings})} package(s).")
    for line in report(findings, explained):
        print("  " + line)
    if args.npm_lock.is_file():
        lock = args.npm_lock
        print(f"{lock.relative_to(ROOT) if lock.is_relative_to(ROOT) else lock}: "
              f"{npm_packages(args.npm_lock)} npm packages, not covered (the PyPA database "
              f"holds PyPI advisories only); run `npm audit` in webchat/ on a connected machine.")
    unexplained = [f for f in findings if not explained & set(f.names())]
    if unexplained:
        print(f"\n{len(unexplained)} finding(s) not explained in {args.explained}: "
              f"{', '.join(f.id for f in unexplained)}. Upgrade the package, or add the ID "
              f"under '{EXPLAINED_SECTION}' with why it stays.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
