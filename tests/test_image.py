"""The Docker image without a Docker engine: the lock agrees with pyproject.toml, the Dockerfile installs
from it, and the files the Dockerfile copies make a working /app (card files, fixtures for the preview)."""
from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from support.helpers import REPO

LOCK = REPO / "requirements.lock"
DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
IMAGE_EXTRAS = ("postgres",)


def parse_lock(text: str) -> dict[str, dict]:
    """name -> {"version", "hashes", "via"} from a `uv pip compile --generate-hashes` file."""
    entries: dict[str, dict] = {}
    current = None
    via_block = False
    for line in text.splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if pin:
            current = entries.setdefault(canonicalize_name(pin.group(1)),
                                         {"version": Version(pin.group(2)), "hashes": 0, "via": set()})
            via_block = False
            continue
        if current is None:
            continue
        if "--hash=sha256:" in line:
            current["hashes"] += 1
        elif re.match(r"^\s+# via\s*$", line):
            via_block = True
        elif (m := re.match(r"^\s+# via (.+)$", line)):
            current["via"].add(m.group(1).strip())
        elif via_block and (m := re.match(r"^\s+#\s+(.+)$", line)):
            current["via"].add(m.group(1).strip())
    return entries


def image_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in IMAGE_EXTRAS:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_lock_pins_every_image_dependency_within_its_pyproject_range():
    lock = parse_lock(LOCK.read_text(encoding="utf-8"))
    assert len(lock) > 20, "the lock looks empty"
    for req in image_requirements() + [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]:
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is in pyproject.toml but not in requirements.lock: run scripts/lock.sh"
        assert req.specifier.contains(lock[name]["version"], prereleases=True), (
            f"requirements.lock pins {name}=={lock[name]['version']}, outside pyproject.toml's {req}: "
            "run scripts/lock.sh")
    for name, entry in lock.items():
        assert entry["hashes"] >= 1, f"{name} has no hash (the image installs with --require-hashes)"
        assert entry["via"], f"{name} says nothing about why it is locked"


def test_lock_has_no_direct_dependency_pyproject_no_longer_names():
    lock = parse_lock(LOCK.read_text(encoding="utf-8"))
    direct = {canonicalize_name(r.name) for r in image_requirements()}
    locked_direct = {name for name, e in lock.items() if "cds-service (pyproject.toml)" in e["via"]}
    assert locked_direct == direct, f"stale or missing: {sorted(locked_direct ^ direct)}; run scripts/lock.sh"


def test_lock_covers_the_extras_the_dependencies_ask_for():
    """PyJWT[crypto] and psycopg[binary] bring packages of their own; they must be locked too."""
    lock = parse_lock(LOCK.read_text(encoding="utf-8"))
    for req in image_requirements():
        for extra in req.extras:
            for raw in metadata.requires(req.name) or []:
                dep = Requirement(raw)
                env = {**default_environment(), "extra": extra}
                if dep.marker is not None and "extra" in str(dep.marker) and dep.marker.evaluate(env):
                    assert canonicalize_name(dep.name) in lock, f"{req.name}[{extra}] needs {dep.name}"


def test_dockerfile_installs_from_the_lock_and_nginx():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip install --require-hashes --no-deps -r requirements.lock" in text
    assert re.search(r"pip install --no-deps --no-build-isolation -e \. && pip check", text)
    assert not re.search(r"pip install (?!--)[^\n]*\"?\.\[", text), "nothing may be installed past the lock"
    assert re.search(r"apt-get install -y --no-install-recommends nginx\b", text)
    assert 'CMD ["cds-service", "serve"]' in text
    assert "/health/ready" in text.split("HEALTHCHECK", 1)[1], "the container health check is readiness"
    assert re.search(r"^USER cds$", text, re.M)


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(p, pattern[3:]) for p in parts):
                return True
        elif fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(parts[0], pattern):
            return True
    return False


def build_app_tree(target: Path) -> Path:
    """Lay out /app as the Dockerfile's COPY lines would, honouring .dockerignore (no engine needed)."""
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, dest = line.split()[1:]
        assert not any(s.startswith("--") for s in sources), line
        for source in sources:
            src = REPO / source
            out = target / dest if dest != "./" else target
            if src.is_dir():
                for path in src.rglob("*"):
                    rel = path.relative_to(REPO).as_posix()
                    if path.is_file() and not _dockerignored(rel, patterns):
                        (out / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out / path.relative_to(src))
            else:
                (out if dest.endswith("/") else out.parent).mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out / src.name if dest.endswith("/") else out)
    return target


def test_the_image_tree_has_card_files_and_the_preview_fixtures(tmp_path):
    app_dir = build_app_tree(tmp_path / "app")
    for needed in ("requirements.lock", "pyproject.toml", "README.md", "cds_service/app.py", "cards",
                   "fhir_fixtures/patients", "fhir_fixtures/orders"):
        assert (app_dir / needed).exists(), f"the image would lack {needed}"
    assert not list(app_dir.rglob("__pycache__"))
    # Run the code from that tree, from another directory, as the image does (the package sits in /app):
    # the preview must find its scenarios (cards/scenarios/ and the fixtures they name) and the card files load.
    script = ("import cds_service, sys; from datetime import datetime, timezone; "
              "from cds_service.preview import build_scenarios; from cds_service.hooks.cards import CardLibrary; "
              "from cds_service.config import load_config; "
              "assert cds_service.__file__.startswith(sys.argv[1]), cds_service.__file__; "
              "cards = load_config()['CDS_CARDS_DIR']; "
              "print(len([s for s in build_scenarios(datetime.now(timezone.utc), cards) if not s.broken]), "
              "len(CardLibrary(cards).files))")
    done = subprocess.run([sys.executable, "-c", script, str(app_dir)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(app_dir), "PATH": "/usr/bin:/bin", "CDS_CARDS_DIR": str(app_dir / "cards")},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scenarios, card_files = map(int, done.stdout.split())
    assert scenarios >= 20 and card_files == len(list((REPO / "cards").glob("*.yaml")))


def test_cds_bind_in_the_image_matches_what_it_exposes():
    text = DOCKERFILE.read_text(encoding="utf-8")
    bind = re.search(r"CDS_BIND=(\S+)", text).group(1)
    assert bind.rsplit(":", 1)[1] in re.search(r"^EXPOSE (\d+)", text, re.M).group(1)
