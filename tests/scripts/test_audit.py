"""scripts/audit.py: OSV ranges and version lists matched against locked versions, offline."""
from __future__ import annotations

import json

import pytest
import yaml

from scripts import audit


def advisory(db, package, id_, ranges=(), versions=(), aliases=(), **extra):
    folder = db / "vulns" / package
    folder.mkdir(parents=True, exist_ok=True)
    body = {"id": id_, "aliases": list(aliases), "details": f"{package} is unsafe. More text.",
            "affected": [{"package": {"name": package, "ecosystem": "PyPI"},
                          "ranges": [{"type": "ECOSYSTEM", "events": list(r)} for r in ranges],
                          "versions": list(versions)}], **extra}
    (folder / f"{id_}.yaml").write_text(yaml.safe_dump(body))


@pytest.mark.parametrize("version,events,inside", [
    ("3.7.0", [{"introduced": "0"}, {"fixed": "3.7.4"}], True),
    ("3.7.4", [{"introduced": "0"}, {"fixed": "3.7.4"}], False),
    ("3.9.5", [{"introduced": "3.9.0"}, {"fixed": "3.9.2"}], False),
    ("2.0.0", [{"introduced": "1.0"}, {"last_affected": "2.0.0"}], True),
    ("2.0.1", [{"introduced": "1.0"}, {"last_affected": "2.0.0"}], False),
    ("0.9", [{"introduced": "1.0"}], False),
    ("5.0", [{"introduced": "1.0"}], True),  # no fix yet
    # two affected stretches in one range: 1.0-1.2 and 2.0-2.1
    ("1.5", [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
     False),
    ("2.0.5", [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
     True),
    ("2.0rc1", [{"introduced": "0"}, {"fixed": "2.0"}], True),  # PEP 440: rc before final
    ("not-a-version", [{"introduced": "0"}], False),
])
def test_in_range_follows_the_osv_events(version, events, inside):
    assert audit.in_range(version, events) is inside


def test_findings_come_from_ranges_or_version_lists_and_skip_withdrawn(tmp_path):
    advisory(tmp_path, "aiohttp", "PYSEC-1", ranges=[[{"introduced": "0"}, {"fixed": "3.7.4"}]],
             aliases=["CVE-2021-1"])
    advisory(tmp_path, "aiohttp", "PYSEC-2", versions=["3.7.0"])
    advisory(tmp_path, "aiohttp", "PYSEC-3", ranges=[[{"introduced": "0"}, {"fixed": "3.0"}]])
    advisory(tmp_path, "aiohttp", "PYSEC-4", versions=["3.7.0"], withdrawn="2024-01-01T00:00:00Z")
    advisory(tmp_path, "python-multipart", "PYSEC-5", versions=["0.0.5"])
    found = audit.audit({"aiohttp": "3.7.0", "python-multipart": "0.0.5", "other": "1.0"},
                        tmp_path)
    assert [(f.package, f.id) for f in found] == [
        ("aiohttp", "PYSEC-1"), ("aiohttp", "PYSEC-2"), ("python-multipart", "PYSEC-5")]
    assert found[0].fixed == ("3.7.4",) and found[0].aliases == ("CVE-2021-1",)
    assert found[0].summary == "aiohttp is unsafe"


def test_pins_are_read_with_canonical_names(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# comment\nJinja2==3.1.6\nPython_Multipart==0.0.5 ; python_version>'3'"
                           "\nuvicorn[standard]==0.30.0\n-e .\nrasa>=3.6\n")
    assert audit.read_pins(constraints) == {"jinja2": "3.1.6", "python-multipart": "0.0.5",
                                            "uvicorn": "0.30.0"}


def run(tmp_path, explained_text, capsys):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("aiohttp==3.7.0\n")
    doc = tmp_path / "security.md"
    doc.write_text(explained_text)
    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps({"packages": {"": {}, "node_modules/a": {}, "node_modules/b": {}}}))
    code = audit.main(["--db", str(tmp_path / "db"), "--constraints", str(constraints),
                       "--explained", str(doc), "--npm-lock", str(lock)])
    return code, capsys.readouterr()


def test_a_finding_not_explained_in_the_audit_section_fails(tmp_path, capsys):
    advisory(tmp_path / "db", "aiohttp", "PYSEC-2021-76", versions=["3.7.0"],
             aliases=["CVE-2021-21330", "GHSA-v6wp-4m6f-gcjg"])
    (tmp_path / "db" / "SNAPSHOT.md").write_text("Snapshot of 2024-10-10.")
    # Named only outside the section: not an explanation.
    code, out = run(tmp_path, "## Controls\nPYSEC-2021-76\n## Dependency audit\nnothing\n",
                    capsys)
    assert code == 1
    assert "snapshot of 2024-10-10: 1 finding(s)" in out.out
    assert "NOT EXPLAINED" in out.out and "PYSEC-2021-76" in out.err
    assert "2 npm packages, not covered" in out.out
    # An alias in the section explains it.
    code, out = run(tmp_path, "## Dependency audit\n| GHSA-v6wp-4m6f-gcjg | fixed later |\n",
                    capsys)
    assert code == 0 and "[explained]" in out.out


def test_a_missing_snapshot_is_a_clear_error(tmp_path, capsys):
    code = audit.main(["--db", str(tmp_path / "nowhere")])
    assert code == 2
    assert "no advisory snapshot" in capsys.readouterr().err
